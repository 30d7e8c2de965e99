//! [`Resilient`]: the three decorators for a store that can fail, stacked
//! in their one right order, and [`Health`], what they report.
//!
//! From the outside in:
//!
//! 1. [`Fallback`]: answers by each check's
//!    [`OnStoreError`](crate::OnStoreError) when anything below fails, the
//!    open breaker included. Outermost, so that no failure escapes it.
//! 2. [`DenyCache`]: answers the store's standing denials itself. Above
//!    the breaker, so that its answers (exact, and the store's own) still
//!    come while the store is down and count as neither a success nor a
//!    failure; below the fallback, so that it only ever remembers what the
//!    store decided, never a fallback's answer.
//! 3. [`Breaker`]: right above the store, so that it counts the store's
//!    own errors and nothing else.

use std::sync::Arc;

use parking_lot::Mutex;

use super::breaker::{self, Breaker, BreakerOptions, BreakerState};
use super::deny_cache::{self, DEFAULT_DENY_CACHE_CAPACITY, DenyCache};
use super::fallback::Fallback;
use super::{Check, Store};
use crate::clock::{Clock, SystemClock};
use crate::{Decision, MemoryStore, StoreError};

/// Store `S` behind a [`Fallback`], a [`DenyCache`] and a [`Breaker`],
/// in that order (see [the module docs](self)), all on one clock.
///
/// ```
/// use std::time::Duration;
/// use sluice::store::{BreakerState, Resilient};
/// use sluice::{Algorithm, FakeClock, Limiter, MemoryStore, OnStoreError, Policy, Quota};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = FakeClock::new(0);
/// let store = Resilient::new(MemoryStore::with_clock(clock.clone()), clock);
/// let health = store.health();
/// let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(1), None).unwrap();
/// let policy = Policy::new("api", quota).unwrap().with_on_store_error(OnStoreError::Allow);
/// let limiter = Limiter::new(store, [policy]);
/// assert!(limiter.check("api", "k", 1).await.unwrap().allowed);
/// assert_eq!(health.breaker_state(), BreakerState::Closed);
/// # });
/// ```
pub struct Resilient<S, C = SystemClock> {
    stack: Fallback<DenyCache<Breaker<S, C>, C>, C>,
    health: Health,
}

/// What a [`Resilient`] stack reports, and the one thing it can be told
/// from outside: a cheap handle, shared with the stack (clone it freely).
#[derive(Clone)]
pub struct Health {
    breaker: Arc<breaker::Shared>,
    deny_cache: Arc<Mutex<deny_cache::Table>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("breaker", &self.breaker_state())
            .finish_non_exhaustive()
    }
}

impl Health {
    /// Where the circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Every store error so far, by [`StoreError::kind`], in the order
    /// first seen (the breaker's own refusals are not store errors and are
    /// not counted).
    pub fn store_errors(&self) -> Vec<(&'static str, u64)> {
        self.breaker.errors()
    }

    /// Forgets every denial the deny cache remembers: what a policy reload
    /// does, so that no denial outlives the numbers it was made under.
    pub fn clear_deny_cache(&self) {
        self.deny_cache.lock().clear();
    }
}

impl<S: Store, C: Clock + Clone> Resilient<S, C> {
    /// `store` with the default breaker ([`BreakerOptions::default`]) and a
    /// deny cache of [`DEFAULT_DENY_CACHE_CAPACITY`] entries, on `clock`
    /// (give the clock the store uses).
    pub fn new(store: S, clock: C) -> Resilient<S, C> {
        Resilient::with_options(
            store,
            clock,
            BreakerOptions::default(),
            DEFAULT_DENY_CACHE_CAPACITY,
        )
    }

    /// `store` with a breaker of `breaker` and a deny cache of at most
    /// `deny_cache_capacity` entries.
    pub fn with_options(
        store: S,
        clock: C,
        breaker: BreakerOptions,
        deny_cache_capacity: usize,
    ) -> Resilient<S, C> {
        let breaker = Breaker::new(store, clock.clone(), breaker);
        let cache = DenyCache::new(breaker, clock.clone()).with_capacity(deny_cache_capacity);
        let health = Health {
            breaker: cache.inner().shared(),
            deny_cache: cache.table(),
        };
        Resilient {
            stack: Fallback::new(cache, clock),
            health,
        }
    }

    /// The handle that reports the breaker's state and the store's errors.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// The same stack, with `local` mode deciding in `local` (give it the
    /// stack's clock and a bound, [`MemoryStore::with_max_keys`]).
    pub fn with_local_store(self, local: MemoryStore<C>) -> Resilient<S, C> {
        let Resilient { stack, health } = self;
        Resilient {
            stack: Fallback::with_local_store(stack.into_inner(), local),
            health,
        }
    }

    /// The in-memory store that `local` mode decides in: to purge it now
    /// and then ([`MemoryStore::purge_expired`]) and to count its keys.
    pub fn local_store(&self) -> Arc<MemoryStore<C>> {
        self.stack.local_store().clone()
    }

    /// The store at the bottom of the stack.
    pub fn store(&self) -> &S {
        self.stack.inner().inner().inner()
    }
}

impl<S: Store, C: Clock + Clone> Store for Resilient<S, C> {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        self.stack.decide(checks).await
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        self.stack.decide_one(check).await
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        self.stack.peek(check).await
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        self.stack.reset(check).await
    }

    async fn inspect(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<crate::algorithm::State>, StoreError> {
        self.stack.inspect(check).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.stack.ping().await
    }
}
