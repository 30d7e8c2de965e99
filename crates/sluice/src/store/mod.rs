//! Where the state of every key lives, and the one trait every store
//! implements.
//!
//! A store is handed whole decisions to make ([`Check`]s), not reads and
//! writes, so that a remote store can make them atomically in one round
//! trip. Every store decides exactly as [`algorithm::decide`](crate::algorithm::decide).

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

use std::future::Future;

use crate::{Decision, Quota, StoreError};

/// One decision to make: charge `cost` to `key` under `policy`'s `quota`.
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    /// The policy's name: keys of different policies never share state.
    pub policy: &'a str,
    /// The client's key (an API key, an address, a user id).
    pub key: &'a str,
    /// The quota that applies to this key.
    pub quota: &'a Quota,
    /// Units to charge; zero decides nothing and reports the key.
    pub cost: u64,
    /// A shadow check is decided and charged like the others, but its
    /// denial does not deny the request: it reports [`Decision::shadow`].
    pub shadow: bool,
}

/// A place that keeps limiter state and decides checks against it.
///
/// Implementations must be exact under concurrency: no interleaving of
/// concurrent calls may admit more than the algorithm allows.
pub trait Store: Send + Sync + 'static {
    /// Decides every check at one instant, all or nothing: the request is
    /// admitted only if every non-shadow check admits it, and then every
    /// admitting check is charged; otherwise nothing is charged.
    ///
    /// Returns one decision per check, in order. When the request is denied,
    /// the checks that alone would have admitted it report `allowed` with
    /// their standing state (nothing was taken from them).
    fn decide(
        &self,
        checks: &[Check<'_>],
    ) -> impl Future<Output = Result<Vec<Decision>, StoreError>> + Send;

    /// Decides one check; the same as [`Store::decide`] on a single check.
    fn decide_one(
        &self,
        check: &Check<'_>,
    ) -> impl Future<Output = Result<Decision, StoreError>> + Send {
        async move {
            let mut decisions = self.decide(std::slice::from_ref(check)).await?;
            decisions
                .pop()
                .ok_or_else(|| StoreError::Protocol("no decision for the check".into()))
        }
    }

    /// What a check of cost 1 would be told, without charging anything
    /// (see [`algorithm::peek`](crate::algorithm::peek)). `check.cost` is ignored.
    fn peek(&self, check: &Check<'_>) -> impl Future<Output = Result<Decision, StoreError>> + Send;

    /// Forgets `check.key` under `check.policy`: its next check finds it
    /// untouched. `check.cost` is ignored.
    fn reset(&self, check: &Check<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Applies the all-or-nothing rule to decisions made one by one: whether
/// every non-shadow check admitted, and every shadow denial reported as such.
pub(crate) fn admitted_together(checks: &[Check<'_>], decisions: &mut [Decision]) -> bool {
    let mut all = true;
    for (check, decision) in checks.iter().zip(decisions.iter_mut()) {
        if check.shadow {
            *decision = decision.shadowed();
        } else {
            all &= decision.allowed;
        }
    }
    all
}
