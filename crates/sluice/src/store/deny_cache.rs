//! [`DenyCache`]: the store's denials, remembered in this process until
//! they lapse.
//!
//! When the store denies a check of cost `c` on a (policy, key) and says
//! the request fits again in `retry_after`, every check of that key of
//! cost `c` or more is denied until then: a denial changes no state, and
//! whatever else is admitted meanwhile only pushes the time back. So the
//! cache answers those checks itself, exactly, without asking the store:
//! an abusive client hammering a key it has exhausted costs this process a
//! hash lookup, and the store nothing.
//!
//! - Only checks with [`deny_cache`](crate::Check::deny_cache) set, and
//!   never shadow checks, are remembered or answered.
//! - A denial that can never fit (`retry_after: None`, a cost above the
//!   quota's capacity) is remembered until the key would be untouched
//!   (`reset_after`), for costs of `c` or more.
//! - An entry holds the quota it was denied under: after a policy change
//!   it no longer matches, and the store is asked again. [`Health`] (or
//!   [`DenyCache::clear`]) drops everything, as a reload should.
//! - [`Store::reset`] through this process drops the key's entry. A reset
//!   made through **another** process does not reach this one's cache: the
//!   key stays denied here for at most the `retry_after` the store gave
//!   (or `reset_after`, for a request that can never fit).
//! - The time to wait is counted from this process's clock just before it
//!   asked, so an entry lapses no later than the store's denial does.
//! - At most [`DEFAULT_DENY_CACHE_CAPACITY`] entries (or the capacity
//!   given); when full, the lapsed entries are dropped, and if none has
//!   lapsed, the one that lapses soonest makes room. Each entry is about
//!   150 bytes plus its names.
//!
//! A call of several checks of which one (not in shadow mode) is denied by
//! the cache is denied whole without asking the store, which is exact: the
//! request would be denied, and nothing would be charged. That check
//! reports its remembered denial, with `retry_after` and `reset_after`
//! counted down; the others, which were not asked, report an admission
//! (nothing was taken from them) with `remaining` 0 and `reset_after` 0,
//! since their standing is unknown. All are marked [`Source::DenyCache`].
//!
//! [`Health`]: super::Health

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Check, Store};
use crate::clock::{Clock, SystemClock};
use crate::{Decision, Quota, Source, StoreError};

/// The entries a [`DenyCache`] holds when no capacity is given: room for
/// ten thousand denied keys at once, about 2 MB.
pub const DEFAULT_DENY_CACHE_CAPACITY: usize = 10_000;

/// One remembered denial.
#[derive(Debug)]
struct Entry {
    policy: Box<str>,
    key: Box<str>,
    quota: Quota,
    /// The smallest cost known to be denied.
    cost: u64,
    /// When, on this process's clock, the denial lapses.
    until_us: u64,
    /// When the key would be back to untouched.
    reset_us: u64,
    /// The denial as the store gave it.
    decision: Decision,
}

/// The entries, by a hash of (policy, key); a colliding name is a miss.
#[derive(Debug, Default)]
pub(crate) struct Table {
    entries: HashMap<u64, Entry, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
}

impl Table {
    fn hash(&self, policy: &str, key: &str) -> u64 {
        self.hasher.hash_one((policy, key))
    }

    /// The remembered denial that answers `check` at `now_us`, if any.
    fn lookup(&self, check: &Check<'_>, now_us: u64) -> Option<Decision> {
        let entry = self.entries.get(&self.hash(check.policy, check.key))?;
        let hit = *entry.policy == *check.policy
            && *entry.key == *check.key
            && entry.quota == *check.quota
            && check.cost >= entry.cost
            && now_us < entry.until_us;
        hit.then(|| {
            let mut decision = entry.decision;
            let left = |at_us: u64| Duration::from_micros(at_us.saturating_sub(now_us));
            decision.reset_after = left(entry.reset_us);
            if decision.retry_after.is_some() {
                decision.retry_after = Some(left(entry.until_us));
            }
            decision.with_source(Source::DenyCache)
        })
    }

    /// Remembers that `check` was denied with `decision`, asked at `now_us`.
    fn remember(&mut self, check: &Check<'_>, decision: &Decision, now_us: u64, capacity: usize) {
        let reset_us = now_us.saturating_add(micros(decision.reset_after));
        let until_us = match decision.retry_after {
            Some(retry) => now_us.saturating_add(micros(retry)),
            None => reset_us,
        };
        if until_us <= now_us {
            return;
        }
        let hash = self.hash(check.policy, check.key);
        if !self.entries.contains_key(&hash) && self.entries.len() >= capacity {
            self.make_room(now_us);
        }
        let entry = Entry {
            policy: check.policy.into(),
            key: check.key.into(),
            quota: *check.quota,
            cost: check.cost,
            until_us,
            reset_us,
            decision: *decision,
        };
        self.entries.insert(hash, entry);
    }

    /// Drops the lapsed entries, or if none has lapsed the one that lapses
    /// soonest: O(entries), paid only by an insert into a full table.
    fn make_room(&mut self, now_us: u64) {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.until_us > now_us);
        if self.entries.len() < before {
            return;
        }
        let soonest = (self.entries.iter())
            .min_by_key(|(_, e)| e.until_us)
            .map(|(hash, _)| *hash);
        if let Some(hash) = soonest {
            self.entries.remove(&hash);
        }
    }

    fn forget(&mut self, check: &Check<'_>) {
        let hash = self.hash(check.policy, check.key);
        if self
            .entries
            .get(&hash)
            .is_some_and(|e| *e.policy == *check.policy && *e.key == *check.key)
        {
            self.entries.remove(&hash);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Remembers store `S`'s denials: see [the module docs](self).
///
/// ```
/// use std::time::Duration;
/// use sluice::store::DenyCache;
/// use sluice::{Algorithm, Check, FakeClock, MemoryStore, Quota, Source, Store};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = FakeClock::new(0);
/// let store = DenyCache::new(MemoryStore::with_clock(clock.clone()), clock);
/// let quota = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(60), None).unwrap();
/// let check = Check::new("api", "k", &quota, 1).with_deny_cache(true);
/// assert!(store.decide_one(&check).await.unwrap().allowed);
/// assert_eq!(store.decide_one(&check).await.unwrap().source, Source::Store);
/// assert_eq!(store.decide_one(&check).await.unwrap().source, Source::DenyCache);
/// # });
/// ```
pub struct DenyCache<S, C = SystemClock> {
    inner: S,
    clock: C,
    table: Arc<Mutex<Table>>,
    capacity: usize,
}

impl<S: Store, C: Clock> DenyCache<S, C> {
    /// An empty cache of [`DEFAULT_DENY_CACHE_CAPACITY`] entries in front of
    /// `inner`, timed by `clock`.
    pub fn new(inner: S, clock: C) -> DenyCache<S, C> {
        DenyCache {
            inner,
            clock,
            table: Arc::default(),
            capacity: DEFAULT_DENY_CACHE_CAPACITY,
        }
    }

    /// The same cache, holding at most `capacity` entries (at least 1).
    pub fn with_capacity(mut self, capacity: usize) -> DenyCache<S, C> {
        self.capacity = capacity.max(1);
        self
    }

    /// Forgets every remembered denial (after a policy reload, say).
    pub fn clear(&self) {
        self.table.lock().clear();
    }

    /// The number of remembered denials, lapsed ones included.
    pub fn len(&self) -> usize {
        self.table.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The store inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub(crate) fn table(&self) -> Arc<Mutex<Table>> {
        Arc::clone(&self.table)
    }

    /// The answer to `checks` from the cache alone, when one of them hits.
    fn answer(&self, checks: &[Check<'_>], now_us: u64) -> Option<Vec<Decision>> {
        if !checks.iter().any(|c| c.deny_cache && !c.shadow) {
            return None;
        }
        let table = self.table.lock();
        let hits: Vec<Option<Decision>> = (checks.iter())
            .map(|c| {
                (c.deny_cache && !c.shadow)
                    .then(|| table.lookup(c, now_us))
                    .flatten()
            })
            .collect();
        drop(table);
        if hits.iter().all(Option::is_none) {
            return None;
        }
        Some(
            checks
                .iter()
                .zip(hits)
                .map(|(check, hit)| {
                    hit.unwrap_or_else(|| {
                        Decision::allowed(check.quota.capacity(), 0, 0)
                            .with_source(Source::DenyCache)
                    })
                })
                .collect(),
        )
    }

    /// Remembers the denials among `decisions` of `checks`, asked at `now_us`.
    fn remember(&self, checks: &[Check<'_>], decisions: &[Decision], now_us: u64) {
        let mut denied = (checks.iter().zip(decisions))
            .filter(|(c, d)| c.deny_cache && !c.shadow && !d.allowed && d.source == Source::Store)
            .peekable();
        if denied.peek().is_none() {
            return;
        }
        let mut table = self.table.lock();
        for (check, decision) in denied {
            table.remember(check, decision, now_us, self.capacity);
        }
    }
}

impl<S: Store, C: Clock> Store for DenyCache<S, C> {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        let now_us = self.clock.now_us();
        if let Some(answer) = self.answer(checks, now_us) {
            super::ensure_distinct(checks)?;
            return Ok(answer);
        }
        let decisions = self.inner.decide(checks).await?;
        self.remember(checks, &decisions, now_us);
        Ok(decisions)
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        let now_us = self.clock.now_us();
        if check.deny_cache
            && !check.shadow
            && let Some(hit) = self.table.lock().lookup(check, now_us)
        {
            return Ok(hit);
        }
        let decision = self.inner.decide_one(check).await?;
        self.remember(
            std::slice::from_ref(check),
            std::slice::from_ref(&decision),
            now_us,
        );
        Ok(decision)
    }

    /// A peek of a positive cost is answered as a check of that cost; a
    /// peek of cost 0 (the key as it stands) always asks the store.
    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        if check.deny_cache && !check.shadow && check.cost > 0 {
            let hit = self.table.lock().lookup(check, self.clock.now_us());
            if let Some(hit) = hit {
                return Ok(hit);
            }
        }
        self.inner.peek(check).await
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        self.table.lock().forget(check);
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{Algorithm, FakeClock, MemoryStore};

    /// A memory store that counts the calls reaching it.
    struct Counted {
        store: MemoryStore<FakeClock>,
        calls: AtomicUsize,
    }

    impl Store for Counted {
        async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.store.decide(checks).await
        }
        async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.store.peek(check).await
        }
        async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
            self.store.reset(check).await
        }
    }

    fn cache() -> (DenyCache<Counted, FakeClock>, FakeClock) {
        let clock = FakeClock::new(5_000_000);
        let counted = Counted {
            store: MemoryStore::with_clock(clock.clone()),
            calls: AtomicUsize::new(0),
        };
        (DenyCache::new(counted, clock.clone()), clock)
    }

    fn calls(cache: &DenyCache<Counted, FakeClock>) -> usize {
        cache.inner.calls.load(Ordering::SeqCst)
    }

    fn gcra(limit: u64) -> Quota {
        Quota::new(Algorithm::Gcra, limit, Duration::from_secs(10), None).unwrap()
    }

    #[tokio::test]
    async fn same_or_larger_costs_are_denied_locally_until_the_retry_time() {
        let (cache, clock) = cache();
        let q = gcra(2);
        let check = |cost| Check::new("api", "k", &q, cost).with_deny_cache(true);
        cache.decide_one(&check(2)).await.unwrap();
        let denied = cache.decide_one(&check(1)).await.unwrap();
        assert_eq!((denied.allowed, denied.source), (false, Source::Store));
        let retry = denied.retry_after.unwrap();
        assert_eq!(calls(&cache), 2);
        clock.advance(retry - Duration::from_micros(1));
        for cost in [1, 2] {
            let hit = cache.decide_one(&check(cost)).await.unwrap();
            assert_eq!((hit.allowed, hit.source), (false, Source::DenyCache));
            assert_eq!(hit.retry_after, Some(Duration::from_micros(1)));
        }
        assert_eq!(calls(&cache), 2, "the store was not asked");
        // At the promised instant the store is asked again, and admits.
        clock.advance(Duration::from_micros(1));
        let admitted = cache.decide_one(&check(1)).await.unwrap();
        assert_eq!((admitted.allowed, admitted.source), (true, Source::Store));
    }

    #[tokio::test]
    async fn a_smaller_cost_a_shadow_check_or_a_check_without_the_flag_asks_the_store() {
        let (cache, _) = cache();
        let q = gcra(4);
        let check = |cost| Check::new("api", "k", &q, cost).with_deny_cache(true);
        cache.decide_one(&check(3)).await.unwrap();
        assert!(!cache.decide_one(&check(2)).await.unwrap().allowed);
        let before = calls(&cache);
        assert!(
            cache.decide_one(&check(1)).await.unwrap().allowed,
            "cost 1 still fits"
        );
        cache
            .decide_one(&check(2).with_deny_cache(false))
            .await
            .unwrap();
        cache.decide_one(&check(2).with_shadow(true)).await.unwrap();
        assert_eq!(calls(&cache), before + 3);
        // A shadow denial is never remembered.
        let (cache, _) = self::cache();
        let shadow = Check::new("s", "k", &q, 5)
            .with_deny_cache(true)
            .with_shadow(true);
        cache.decide_one(&shadow).await.unwrap();
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_request_that_can_never_fit_is_remembered_until_the_key_resets() {
        let (cache, clock) = cache();
        let q = gcra(2);
        let check = Check::new("api", "k", &q, 1).with_deny_cache(true);
        cache.decide_one(&check).await.unwrap();
        let never = cache.decide_one(&check.with_cost(3)).await.unwrap();
        assert_eq!(never.retry_after, None);
        let hit = cache.decide_one(&check.with_cost(5)).await.unwrap();
        assert_eq!((hit.source, hit.retry_after), (Source::DenyCache, None));
        clock.advance(never.reset_after);
        let asked = cache.decide_one(&check.with_cost(5)).await.unwrap();
        assert_eq!(asked.source, Source::Store);
    }

    #[tokio::test]
    async fn a_reset_or_a_changed_quota_or_a_clear_asks_the_store_again() {
        let (cache, _) = cache();
        let (q, bigger) = (gcra(1), gcra(5));
        let check = Check::new("api", "k", &q, 1).with_deny_cache(true);
        cache.decide_one(&check).await.unwrap();
        cache.decide_one(&check).await.unwrap();
        assert_eq!(
            cache.decide_one(&check).await.unwrap().source,
            Source::DenyCache
        );
        cache.reset(&check).await.unwrap();
        assert!(cache.decide_one(&check).await.unwrap().allowed);
        cache.decide_one(&check).await.unwrap();
        let raised = Check::new("api", "k", &bigger, 1).with_deny_cache(true);
        assert_eq!(
            cache.decide_one(&raised).await.unwrap().source,
            Source::Store
        );
        assert!(!cache.is_empty());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_hit_denies_a_call_of_several_checks_whole_and_charges_nothing() {
        let (cache, _) = cache();
        let (one, many) = (gcra(1), gcra(100));
        let hot = Check::new("hot", "k", &one, 1).with_deny_cache(true);
        let other = Check::new("other", "k", &many, 1);
        cache.decide_one(&hot).await.unwrap();
        cache.decide_one(&hot).await.unwrap();
        let before = calls(&cache);
        let answer = cache.decide(&[other, hot]).await.unwrap();
        assert_eq!(calls(&cache), before, "the store was not asked");
        assert!(answer[0].allowed && !answer[1].allowed, "{answer:?}");
        assert_eq!(
            (answer[0].remaining, answer[0].source),
            (0, Source::DenyCache)
        );
        assert_eq!(
            cache.peek(&other.with_cost(0)).await.unwrap().remaining,
            100,
            "nothing charged"
        );
        // Naming a key twice is still refused.
        assert!(matches!(
            cache.decide(&[hot, hot]).await,
            Err(StoreError::DuplicateCheck { .. })
        ));
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_capacity_lapsed_entries_first() {
        let (cache, clock) = cache();
        let cache = cache.with_capacity(3);
        let (short, long) = (
            Quota::new(Algorithm::Gcra, 1, Duration::from_secs(1), None).unwrap(),
            Quota::new(Algorithm::Gcra, 1, Duration::from_secs(100), None).unwrap(),
        );
        // Each denial a millisecond after the last: they lapse in that order.
        let deny = async |q: &Quota, key: &str| {
            clock.advance(Duration::from_millis(1));
            let check = Check::new("api", key, q, 1).with_deny_cache(true);
            cache.decide_one(&check).await.unwrap();
            cache.decide_one(&check).await.unwrap();
        };
        deny(&short, "a").await;
        deny(&long, "b").await;
        deny(&long, "c").await;
        assert_eq!(cache.len(), 3);
        clock.advance(Duration::from_secs(1));
        deny(&long, "d").await;
        assert_eq!(cache.len(), 3, "the lapsed entry made room");
        deny(&long, "e").await;
        assert_eq!(cache.len(), 3, "the soonest to lapse made room");
        let check = |key| Check::new("api", key, &long, 1).with_deny_cache(true);
        for key in ["c", "d", "e"] {
            assert_eq!(
                cache.decide_one(&check(key)).await.unwrap().source,
                Source::DenyCache,
                "{key}"
            );
        }
    }
}
