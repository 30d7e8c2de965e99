//! [`Fallback`]: what each check's policy chose, applied when the store
//! inside fails.
//!
//! When the inner store answers, its answer passes through untouched. When
//! it fails (any error but [`StoreError::DuplicateCheck`], the caller's own
//! mistake), each check is answered by its
//! [`on_store_error`](crate::Check::on_store_error):
//!
//! - `deny`: the store's error is returned (HTTP 503);
//! - `allow`: admitted, charged nothing anywhere, marked
//!   [`Source::Fallback`]; `limit` and `remaining` are the quota's capacity
//!   and `reset_after` is zero, since nothing is known;
//! - `local`: decided by an in-process [`MemoryStore`] on the same clock,
//!   under the quota scaled by the check's [`LocalShare`](crate::LocalShare)
//!   (rounded down, at least 1), marked [`Source::Fallback`]. Its state is
//!   this process's alone and is not carried back to the store when it
//!   returns.
//!
//! A call of several checks whose modes differ follows one rule: if any
//! check that is not in shadow mode is in `deny` mode, the whole call fails
//! with the store's error. Otherwise the `local` checks are decided
//! together, all or nothing, in memory, and the `allow` checks admit; the
//! request is denied only if a `local` check denies it, and then nothing
//! is charged anywhere. A shadow check never fails a call: in `deny` mode
//! it is answered as in `allow`.
//!
//! So in `allow` and `deny` modes a store failure never becomes a denial;
//! only `local`, which really decides, can deny.

use std::num::NonZeroUsize;
use std::sync::Arc;

use super::{Check, Store};
use crate::clock::{Clock, SystemClock};
use crate::{Decision, MemoryStore, OnStoreError, Quota, Source, StoreError};

/// The most keys the local store of `local` mode holds unless told
/// otherwise: 100,000, about 10 MB with short keys (128 MB at the longest,
/// [`MAX_KEY_LEN`](crate::MAX_KEY_LEN)). It only fills while the store is
/// down, and a key evicted from it starts afresh.
pub const DEFAULT_LOCAL_MAX_KEYS: NonZeroUsize = NonZeroUsize::MIN.saturating_add(99_999);

/// Answers by each check's [`OnStoreError`] when store `S` fails: see
/// [the module docs](self).
///
/// ```
/// use std::time::Duration;
/// use sluice::store::Fallback;
/// use sluice::{Algorithm, Check, FakeClock, MemoryStore, OnStoreError, Quota, Store};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = FakeClock::new(0);
/// let store = Fallback::new(MemoryStore::with_clock(clock.clone()), clock);
/// let quota = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(60), None).unwrap();
/// let check = Check::new("api", "k", &quota, 1).with_on_store_error(OnStoreError::Allow);
/// // The memory store never fails, so the store decides.
/// assert!(!store.decide_one(&check).await.unwrap().degraded());
/// # });
/// ```
pub struct Fallback<S, C = SystemClock> {
    inner: S,
    local: Arc<MemoryStore<C>>,
}

impl<S: Store, C: Clock> Fallback<S, C> {
    /// `inner`, with its failures answered by each check's mode; `local`
    /// mode decides in memory on `clock` (give the clock the store uses),
    /// in a store of at most [`DEFAULT_LOCAL_MAX_KEYS`] keys.
    pub fn new(inner: S, clock: C) -> Fallback<S, C> {
        let local = MemoryStore::with_clock(clock).with_max_keys(DEFAULT_LOCAL_MAX_KEYS);
        Fallback::with_local_store(inner, local)
    }

    /// `inner`, with `local` mode deciding in `local` (give it the clock
    /// the store uses, and a bound: see [`MemoryStore::with_max_keys`]).
    pub fn with_local_store(inner: S, local: MemoryStore<C>) -> Fallback<S, C> {
        Fallback {
            inner,
            local: Arc::new(local),
        }
    }

    /// The store that `local` mode decides in: to purge it now and then
    /// ([`MemoryStore::purge_expired`]) and to count its keys.
    pub fn local_store(&self) -> &Arc<MemoryStore<C>> {
        &self.local
    }

    /// The store inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The store inside, this wrapper dropped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The answer to `checks` when the store failed with `error`.
    async fn fall_back(
        &self,
        checks: &[Check<'_>],
        error: StoreError,
    ) -> Result<Vec<Decision>, StoreError> {
        if matches!(error, StoreError::DuplicateCheck { .. })
            || checks
                .iter()
                .any(|c| !c.shadow && c.on_store_error == OnStoreError::Deny)
        {
            return Err(error);
        }
        tracing::debug!(error = %crate::error::chain(&error), "the store failed; answering by the fallback");
        let mut scaled: Vec<Quota> = Vec::new();
        for check in checks
            .iter()
            .filter(|c| c.on_store_error == OnStoreError::Local)
        {
            scaled.push(check.local_share.scale_quota(check.quota).ok_or_else(|| {
                StoreError::Protocol(format!(
                    "no valid local share of policy {:?}'s quota",
                    check.policy
                ))
            })?);
        }
        let local_checks: Vec<Check<'_>> = (checks.iter())
            .filter(|c| c.on_store_error == OnStoreError::Local)
            .zip(&scaled)
            .map(|(c, quota)| Check { quota, ..*c })
            .collect();
        let mut local = if local_checks.is_empty() {
            Vec::new()
        } else {
            self.local.decide(&local_checks).await?
        }
        .into_iter();
        Ok(checks
            .iter()
            .map(|check| match check.on_store_error {
                OnStoreError::Local => local.next().unwrap_or_else(|| admit(check)),
                _ => admit(check),
            })
            .map(|d| d.with_source(Source::Fallback))
            .collect())
    }

    /// `check` in memory under its local share, when its mode is `local`.
    async fn local_peek(&self, check: &Check<'_>) -> Option<Decision> {
        let quota = check.local_share.scale_quota(check.quota)?;
        let decision = self
            .local
            .peek(&Check {
                quota: &quota,
                ..*check
            })
            .await
            .ok()?;
        Some(if check.shadow {
            decision.shadowed()
        } else {
            decision
        })
    }
}

/// The `allow` mode's admission: nothing known, nothing charged.
fn admit(check: &Check<'_>) -> Decision {
    let capacity = check.quota.capacity();
    Decision::allowed(capacity, capacity, 0)
}

impl<S: Store, C: Clock> Store for Fallback<S, C> {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        match self.inner.decide(checks).await {
            Ok(decisions) => Ok(decisions),
            Err(error) => self.fall_back(checks, error).await,
        }
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        match self.inner.decide_one(check).await {
            Ok(decision) => Ok(decision),
            Err(error) => {
                let mut decisions = self.fall_back(std::slice::from_ref(check), error).await?;
                decisions
                    .pop()
                    .ok_or_else(|| StoreError::Protocol("no decision for the check".into()))
            }
        }
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        let error = match self.inner.peek(check).await {
            Ok(decision) => return Ok(decision),
            Err(error) => error,
        };
        let local = match (check.on_store_error, check.shadow) {
            (OnStoreError::Local, _) => self.local_peek(check).await,
            (OnStoreError::Allow, _) | (_, true) => Some(admit(check)),
            _ => None,
        };
        local.map(|d| d.with_source(Source::Fallback)).ok_or(error)
    }

    /// Forgets the key in memory too, then in the store (whose error, if
    /// any, is returned: a reset is never pretended).
    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        if let Some(quota) = check.local_share.scale_quota(check.quota) {
            self.local
                .reset(&Check {
                    quota: &quota,
                    ..*check
                })
                .await?;
        }
        self.inner.reset(check).await
    }

    async fn inspect(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<crate::algorithm::State>, StoreError> {
        self.inner.inspect(check).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::{Algorithm, FakeClock, LocalShare};

    /// A memory store that fails while `down`.
    struct Switch {
        store: MemoryStore<FakeClock>,
        down: AtomicBool,
    }

    impl Switch {
        fn up(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Timeout(Duration::from_millis(300)));
            }
            Ok(())
        }
    }

    impl Store for Switch {
        async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
            self.up()?;
            self.store.decide(checks).await
        }
        async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
            self.up()?;
            self.store.peek(check).await
        }
        async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
            self.up()?;
            self.store.reset(check).await
        }
    }

    fn down() -> (Fallback<Switch, FakeClock>, FakeClock) {
        let clock = FakeClock::new(1_000_000);
        let switch = Switch {
            store: MemoryStore::with_clock(clock.clone()),
            down: AtomicBool::new(true),
        };
        (Fallback::new(switch, clock.clone()), clock)
    }

    /// Issue 12: while the store is down, a flood of distinct keys in
    /// `local` mode cannot grow the local store beyond its bound.
    #[tokio::test]
    async fn the_local_store_is_bounded() {
        let (store, clock) = down();
        let bound = NonZeroUsize::new(200).unwrap();
        let local = MemoryStore::with_clock(clock).with_max_keys(bound);
        let store = Fallback::with_local_store(store.into_inner(), local);
        let q = quota(5);
        for i in 0..5_000 {
            let key = format!("flood-{i}");
            let check = Check::new("api", &key, &q, 1).with_on_store_error(OnStoreError::Local);
            assert!(store.decide_one(&check).await.unwrap().allowed);
        }
        assert_eq!(store.local_store().len(), 200);
        assert_eq!(store.local_store().evictions(), 4_800);
        // Without one given, the default bound holds.
        let (store, _) = down();
        for i in 0..DEFAULT_LOCAL_MAX_KEYS.get() + 500 {
            let key = i.to_string();
            let check = Check::new("api", &key, &q, 1).with_on_store_error(OnStoreError::Local);
            store.decide_one(&check).await.unwrap();
        }
        // Each shard holds its share of the bound: the store as a whole
        // evicts a little before it is quite full.
        let held = store.local_store().len();
        assert!(held <= DEFAULT_LOCAL_MAX_KEYS.get(), "{held} keys held");
        assert!(store.local_store().evictions() >= 500);
    }

    fn quota(limit: u64) -> Quota {
        Quota::new(Algorithm::FixedWindow, limit, Duration::from_secs(60), None).unwrap()
    }

    #[tokio::test]
    async fn deny_returns_the_error_and_allow_admits_marked_degraded() {
        let (store, _) = down();
        let q = quota(2);
        let deny = Check::new("api", "k", &q, 1);
        for _ in 0..5 {
            assert!(matches!(
                store.decide_one(&deny).await,
                Err(StoreError::Timeout(_))
            ));
            assert!(matches!(
                store.peek(&deny).await,
                Err(StoreError::Timeout(_))
            ));
        }
        let allow = deny.with_on_store_error(OnStoreError::Allow);
        for _ in 0..5 {
            let d = store.decide_one(&allow).await.unwrap();
            assert!(d.allowed && d.degraded(), "{d:?}");
            assert_eq!((d.limit, d.remaining), (2, 2));
            assert!(store.peek(&allow).await.unwrap().degraded());
        }
    }

    #[tokio::test]
    async fn local_decides_a_share_of_the_limit_in_memory_until_the_store_is_back() {
        let (store, clock) = down();
        let q = quota(10);
        let check = Check::new("api", "k", &q, 1)
            .with_on_store_error(OnStoreError::Local)
            .with_local_share(LocalShare::new(0.25).unwrap());
        // A quarter of 10, rounded down: 2.
        for left in [1, 0] {
            let d = store.decide_one(&check).await.unwrap();
            assert!(d.allowed && d.degraded());
            assert_eq!((d.limit, d.remaining), (2, left));
        }
        let denied = store.decide_one(&check).await.unwrap();
        assert!(!denied.allowed && denied.degraded());
        assert_eq!(store.peek(&check).await.unwrap().remaining, 0);
        // The local window follows the same clock.
        clock.advance(Duration::from_secs(60));
        assert!(store.decide_one(&check).await.unwrap().allowed);
        // Back: the store decides, with its own state (untouched here).
        store.inner.down.store(false, Ordering::SeqCst);
        let d = store.decide_one(&check).await.unwrap();
        assert_eq!((d.source, d.remaining), (Source::Store, 9));
    }

    #[tokio::test]
    async fn in_allow_and_deny_a_store_failure_is_never_a_denial() {
        let (store, _) = down();
        let q = quota(1);
        for mode in [OnStoreError::Allow, OnStoreError::Deny] {
            for cost in [1, 1, 5] {
                let check = Check::new("p", "k", &q, cost).with_on_store_error(mode);
                if let Ok(d) = store.decide_one(&check).await {
                    assert!(d.allowed, "{mode}: {d:?}");
                }
                if let Ok(d) = store.decide(&[check]).await {
                    assert!(d[0].allowed, "{mode}: {d:?}");
                }
            }
        }
    }

    #[tokio::test]
    async fn mixed_modes_any_deny_fails_else_local_decides_all_or_nothing() {
        let (store, _) = down();
        let (one, many) = (quota(1), quota(100));
        let allow = Check::new("a", "k", &many, 1).with_on_store_error(OnStoreError::Allow);
        let local = Check::new("l", "k", &one, 1).with_on_store_error(OnStoreError::Local);
        let deny = Check::new("d", "k", &many, 1);
        assert!(store.decide(&[allow, local, deny]).await.is_err());
        // A shadow check in deny mode does not fail the call.
        let shadow_deny = Check::new("s", "k", &many, 1).with_shadow(true);
        let first = store.decide(&[allow, local, shadow_deny]).await.unwrap();
        assert!(first.iter().all(|d| d.allowed && d.degraded()), "{first:?}");
        let second = store.decide(&[allow, local]).await.unwrap();
        assert!(second[0].allowed && !second[1].allowed, "{second:?}");
        // The local check's second denial charged nothing: a lone local
        // check of another local key still fits once.
        let other = Check::new("l", "other", &one, 1).with_on_store_error(OnStoreError::Local);
        assert!(store.decide(&[allow, other]).await.unwrap()[1].allowed);
    }

    #[tokio::test]
    async fn a_reset_forgets_the_local_state_but_reports_the_stores_error() {
        let (store, _) = down();
        let q = quota(1);
        let check = Check::new("api", "k", &q, 1).with_on_store_error(OnStoreError::Local);
        assert!(store.decide_one(&check).await.unwrap().allowed);
        assert!(!store.decide_one(&check).await.unwrap().allowed);
        assert!(store.reset(&check).await.is_err());
        assert!(store.decide_one(&check).await.unwrap().allowed);
    }
}
