//! Where the state of every key lives, and the one trait every store
//! implements.
//!
//! A store is handed whole decisions to make ([`Check`]s), not reads and
//! writes, so that a remote store can make them atomically in one round
//! trip. Every store decides exactly as [`algorithm::decide`](crate::algorithm::decide).
//!
//! # Layout
//!
//! - [`memory`]: [`MemoryStore`](memory::MemoryStore), the embedded default.
//! - `redis`: the `RedisStore` (feature `redis`), deciding inside Redis.
//! - [`packed`]: the bytes the Redis library reads and writes (checks,
//!   packed states, log members), without the `redis` feature: the native
//!   Redis module shares them.
//! - [`refund`]: the Rust model of the Redis library's refunds.
//! - `boxed`: [`BoxStore`], any store (or stack of store decorators) behind one type.
//! - `open`: [`open()`] and [`open_with`], the store a URL names (`memory`, `redis://…`)
//!   as a [`BoxStore`], chosen at run time without generics.
//! - [`breaker`]: [`Breaker`], the circuit breaker: after repeated failures,
//!   answer at once and probe the store now and then.
//! - [`deny_cache`]: [`DenyCache`], the store's denials remembered until they lapse.
//! - [`fallback`]: [`Fallback`], each check's [`OnStoreError`] applied when the store fails.
//! - `local_budget`: `LocalBudgets` (feature `redis`), slices of hot keys' allowance
//!   taken from Redis and spent in this process, within a stated bound.
//! - [`resilient`]: [`Resilient`], the three stacked in their one right
//!   order, and [`Health`], what they report.

mod boxed;
pub mod breaker;
pub mod deny_cache;
pub mod fallback;
#[cfg(feature = "redis")]
pub mod local_budget;
pub mod memory;
mod open;
pub mod packed;
#[cfg(feature = "redis")]
pub mod redis;
pub mod refund;
pub mod resilient;

use std::future::Future;
use std::sync::Arc;

pub use boxed::BoxStore;
pub use breaker::{Breaker, BreakerOptions, BreakerState};
pub use deny_cache::{DEFAULT_DENY_CACHE_CAPACITY, DenyCache};
pub use fallback::{DEFAULT_LOCAL_MAX_KEYS, Fallback};
#[cfg(feature = "redis")]
pub use local_budget::{BudgetStats, LocalBudgets};
pub use open::{Connecting, OpenError, StoreKind, open};
#[cfg(feature = "redis")]
pub use open::{open_redis, open_with};
pub use resilient::{Health, Resilient};

use crate::algorithm::State;
use crate::{Decision, LocalBudget, LocalShare, OnStoreError, Quota, StoreError};

/// One decision to make: charge `cost` to `key` under `policy`'s `quota`.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Check, Quota};
///
/// let quota = Quota::new(Algorithm::Gcra, 10, Duration::from_secs(1), None).unwrap();
/// let check = Check::new("api", "user-42", &quota, 1).with_shadow(true);
/// assert!(check.shadow);
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Check<'a> {
    /// The policy's name (for a policy's second and later limits, the name
    /// of that limit's state, such as `api#1`): keys of different policies
    /// never share state.
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
    /// What to answer when the store cannot decide (read by a
    /// [`Fallback`]); the policy's choice, filled in by the
    /// [`Limiter`](crate::Limiter).
    pub on_store_error: OnStoreError,
    /// The share of the quota granted locally in
    /// [`OnStoreError::Local`] mode.
    pub local_share: LocalShare,
    /// Whether a [`DenyCache`] may remember this check's denials.
    pub deny_cache: bool,
    /// The slices a [`LocalBudgets`] may take of this check's key; `None`:
    /// every decision asks the store.
    pub local_budget: Option<LocalBudget>,
}

impl<'a> Check<'a> {
    /// A check of `cost` on `key` under `policy`'s `quota`, not in shadow mode.
    #[inline]
    pub fn new(policy: &'a str, key: &'a str, quota: &'a Quota, cost: u64) -> Check<'a> {
        Check {
            policy,
            key,
            quota,
            cost,
            shadow: false,
            on_store_error: OnStoreError::Deny,
            local_share: LocalShare::FULL,
            deny_cache: false,
            local_budget: None,
        }
    }

    /// The same check, in shadow mode when `shadow`.
    #[inline]
    pub fn with_shadow(mut self, shadow: bool) -> Check<'a> {
        self.shadow = shadow;
        self
    }

    /// The same check, answered by `mode` when the store cannot decide.
    #[inline]
    pub fn with_on_store_error(mut self, mode: OnStoreError) -> Check<'a> {
        self.on_store_error = mode;
        self
    }

    /// The same check, granted `share` of its quota locally in
    /// [`OnStoreError::Local`] mode.
    #[inline]
    pub fn with_local_share(mut self, share: LocalShare) -> Check<'a> {
        self.local_share = share;
        self
    }

    /// The same check, whose denials a [`DenyCache`] may remember when `on`.
    #[inline]
    pub fn with_deny_cache(mut self, on: bool) -> Check<'a> {
        self.deny_cache = on;
        self
    }

    /// The same check, spending slices of its key's allowance locally
    /// under `budget` (through a [`LocalBudgets`]).
    #[inline]
    pub fn with_local_budget(mut self, budget: Option<LocalBudget>) -> Check<'a> {
        self.local_budget = budget;
        self
    }

    /// The same check with another cost (zero reports the key as it stands).
    #[inline]
    pub fn with_cost(mut self, cost: u64) -> Check<'a> {
        self.cost = cost;
        self
    }
}

/// A place that keeps limiter state and decides checks against it.
///
/// Implementations must be exact under concurrency: no interleaving of
/// concurrent calls may admit more than the algorithm allows.
///
/// A store that wraps another (a fallback, a cache, a metrics recorder)
/// implements this trait over its inner store, as a tower `Layer` wraps a
/// `Service`; [`BoxStore`] holds any of them behind one type.
pub trait Store: Send + Sync + 'static {
    /// Decides every check at one instant, all or nothing: the request is
    /// admitted only if every non-shadow check admits it, and then every
    /// admitting check is charged; otherwise nothing is charged.
    ///
    /// Returns one decision per check, in order. When the request is denied,
    /// the checks that alone would have admitted it report `allowed` with
    /// their standing state (nothing was taken from them).
    ///
    /// The checks of one call name distinct (policy, key) pairs: a call that
    /// names one twice is refused with [`StoreError::DuplicateCheck`] before
    /// anything is decided (what the second should see of the first's
    /// charge has no good answer when the call is all or nothing).
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

    /// What `check` would be told, without charging anything (see
    /// [`algorithm::peek`](crate::algorithm::peek)): its decision at
    /// `check.cost`, alone and not in shadow mode; a cost of 0 tells the key
    /// as it stands.
    fn peek(&self, check: &Check<'_>) -> impl Future<Output = Result<Decision, StoreError>> + Send;

    /// Forgets `check.key` under `check.policy`: its next check finds it
    /// untouched. `check.cost` is ignored.
    fn reset(&self, check: &Check<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the store can decide now (a Redis `PING`); always for a
    /// store in this process.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }

    /// The state kept for `check.key` under `check.policy`, as it was
    /// saved (not carried over to `check.quota` if it was saved under
    /// another); `None` when the key is untouched. For people and tools
    /// (`sluice peek --state`), not for deciding. A store that cannot show
    /// its state answers so (the default).
    fn inspect(
        &self,
        check: &Check<'_>,
    ) -> impl Future<Output = Result<Option<State>, StoreError>> + Send {
        let _ = check;
        std::future::ready(Err(StoreError::Protocol(
            "this store cannot show a key's state".into(),
        )))
    }
}

/// Refuses `checks` that name the same (policy, key) twice: the rule of
/// [`Store::decide`], applied by every store before it decides anything.
pub(crate) fn ensure_distinct(checks: &[Check<'_>]) -> Result<(), StoreError> {
    for (i, check) in checks.iter().enumerate() {
        if checks[..i]
            .iter()
            .any(|c| c.policy == check.policy && c.key == check.key)
        {
            return Err(StoreError::DuplicateCheck {
                policy: check.policy.to_owned(),
                key: check.key.to_owned(),
            });
        }
    }
    Ok(())
}

impl<S: Store> Store for Arc<S> {
    fn decide(
        &self,
        checks: &[Check<'_>],
    ) -> impl Future<Output = Result<Vec<Decision>, StoreError>> + Send {
        S::decide(self, checks)
    }

    fn decide_one(
        &self,
        check: &Check<'_>,
    ) -> impl Future<Output = Result<Decision, StoreError>> + Send {
        S::decide_one(self, check)
    }

    fn peek(&self, check: &Check<'_>) -> impl Future<Output = Result<Decision, StoreError>> + Send {
        S::peek(self, check)
    }

    fn reset(&self, check: &Check<'_>) -> impl Future<Output = Result<(), StoreError>> + Send {
        S::reset(self, check)
    }

    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        S::ping(self)
    }

    fn inspect(
        &self,
        check: &Check<'_>,
    ) -> impl Future<Output = Result<Option<State>, StoreError>> + Send {
        S::inspect(self, check)
    }
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
