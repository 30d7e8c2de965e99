//! The in-memory store: the embedded default for a single process.
//!
//! Keys are spread over independently locked shards, so concurrent checks
//! on different keys rarely meet, and a check on one key holds one shard's
//! lock for the few nanoseconds of its decision: exact, with no global lock
//! on the hot path. An all-or-nothing check over several keys locks their
//! shards in ascending order, so two such checks cannot deadlock.
//!
//! Memory stays bounded: every entry records when its key will be back to
//! its untouched state, and a shard that has doubled since its last sweep
//! drops the entries that have expired before growing further. The cost of
//! a sweep is paid by the inserts that made it necessary, so it is O(1)
//! amortised, and a shard never holds more than about twice its live keys.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};

use crate::algorithm::{self, State};
use crate::clock::{Clock, SystemClock};
use crate::store::{Check, Store, admitted_together};
use crate::{Decision, StoreError};

/// A shard is never swept below this many entries: sweeping tiny tables
/// would cost more than the memory it frees.
const MIN_SWEEP_LEN: usize = 1024;

/// The number of shards when none is given: enough that 2 × the cores
/// rarely contend.
const DEFAULT_SHARDS: usize = 64;

/// Limiter state in this process's memory.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Check, FakeClock, MemoryStore, Quota, Store};
///
/// # tokio_test_block_on(async {
/// let clock = FakeClock::new(0);
/// let store = MemoryStore::with_clock(clock.clone());
/// let quota = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(1), None).unwrap();
/// let check = Check { policy: "api", key: "alice", quota: &quota, cost: 1, shadow: false };
/// assert!(store.decide_one(&check).await.unwrap().allowed);
/// assert!(!store.decide_one(&check).await.unwrap().allowed);
/// clock.advance(Duration::from_secs(1));
/// assert!(store.decide_one(&check).await.unwrap().allowed);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct MemoryStore<C = SystemClock> {
    shards: Box<[Shard]>,
    hasher: foldhash::fast::RandomState,
    clock: C,
}

/// One lock's worth of keys, alone on its cache lines so that two cores
/// locking neighbouring shards do not slow each other.
#[repr(align(128))]
struct Shard {
    table: Mutex<Table>,
}

struct Table {
    entries: HashTable<Entry>,
    /// Sweep expired entries when `entries` reaches this length.
    sweep_at: usize,
}

/// One key's state. The key is stored as `policy` followed by `key`.
struct Entry {
    name: Box<str>,
    policy_len: u32,
    /// The quota the state was made under; another quota starts afresh.
    fingerprint: u32,
    /// When the key is back to its untouched state and the entry can go.
    expires_at_us: u64,
    state: State,
}

impl Entry {
    fn parts(&self) -> (&str, &str) {
        self.name.split_at(self.policy_len as usize)
    }

    fn is(&self, policy: &str, key: &str) -> bool {
        self.parts() == (policy, key)
    }
}

impl MemoryStore<SystemClock> {
    /// An empty store on the system clock.
    pub fn new() -> MemoryStore<SystemClock> {
        MemoryStore::with_clock(SystemClock)
    }
}

impl Default for MemoryStore<SystemClock> {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl<C: Clock> MemoryStore<C> {
    /// An empty store that reads the time from `clock`.
    pub fn with_clock(clock: C) -> MemoryStore<C> {
        MemoryStore::with_clock_and_shards(clock, DEFAULT_SHARDS)
    }

    /// An empty store with `shards` locks (rounded up to a power of two).
    pub fn with_clock_and_shards(clock: C, shards: usize) -> MemoryStore<C> {
        let shards = shards.max(1).next_power_of_two();
        MemoryStore {
            shards: (0..shards)
                .map(|_| Shard {
                    table: Mutex::new(Table {
                        entries: HashTable::new(),
                        sweep_at: MIN_SWEEP_LEN,
                    }),
                })
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
            clock,
        }
    }

    /// The number of keys held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.table.lock().entries.len())
            .sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key that is back to its untouched state now. Sweeps also
    /// happen by themselves as the store grows; this is for callers that
    /// want memory back at a time of their choosing.
    pub fn purge_expired(&self) {
        let now = self.clock.now_us();
        for shard in self.shards.iter() {
            let mut table = shard.table.lock();
            table.entries.retain(|e| e.expires_at_us > now);
            table.entries.shrink_to_fit(|e| self.hash_entry(e));
        }
    }

    fn hash(&self, policy: &str, key: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(policy.as_bytes());
        h.write_u8(0xff); // cannot occur in UTF-8, so (a, bc) and (ab, c) differ
        h.write(key.as_bytes());
        h.finish()
    }

    fn hash_entry(&self, entry: &Entry) -> u64 {
        let (policy, key) = entry.parts();
        self.hash(policy, key)
    }

    fn shard_of(&self, hash: u64) -> usize {
        // hashbrown indexes with the low bits and tags with the top seven;
        // the middle bits pick the shard independently of both.
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    /// Decides `check` in `table`, writing its new state; returns the
    /// decision and the entry's previous state (for an undo).
    fn decide_in(
        &self,
        table: &mut Table,
        hash: u64,
        check: &Check<'_>,
        now: u64,
    ) -> (Decision, Option<Undo>) {
        let fingerprint = check.quota.fingerprint();
        let found = table
            .entries
            .find_mut(hash, |e| e.is(check.policy, check.key));
        let state = found
            .as_ref()
            .filter(|e| e.fingerprint == fingerprint)
            .map(|e| &e.state);
        let (decision, next) = algorithm::decide(state, check.quota, check.cost, now);
        let decision = if check.shadow {
            decision.shadowed()
        } else {
            decision
        };
        let Some(state) = next else {
            return (decision, None);
        };
        let expires_at_us = now.saturating_add(decision.reset_after.as_micros() as u64);
        let undo = match found {
            Some(entry) => {
                let before = Undo::Restore {
                    fingerprint: entry.fingerprint,
                    expires_at_us: entry.expires_at_us,
                    state: std::mem::replace(&mut entry.state, state),
                };
                entry.fingerprint = fingerprint;
                entry.expires_at_us = expires_at_us;
                before
            }
            None => {
                if table.entries.len() >= table.sweep_at {
                    table.entries.retain(|e| e.expires_at_us > now);
                    table.sweep_at = MIN_SWEEP_LEN.max(2 * table.entries.len());
                }
                let name = [check.policy, check.key].concat().into_boxed_str();
                let entry = Entry {
                    name,
                    policy_len: check.policy.len() as u32,
                    fingerprint,
                    expires_at_us,
                    state,
                };
                table
                    .entries
                    .insert_unique(hash, entry, |e| self.hash_entry(e));
                Undo::Remove
            }
        };
        (decision, Some(undo))
    }

    fn decide_single(&self, check: &Check<'_>) -> Decision {
        let now = self.clock.now_us();
        let hash = self.hash(check.policy, check.key);
        let mut table = self.shards[self.shard_of(hash)].table.lock();
        self.decide_in(&mut table, hash, check, now).0
    }

    fn decide_many(&self, checks: &[Check<'_>]) -> Vec<Decision> {
        let now = self.clock.now_us();
        let hashes: Vec<u64> = checks.iter().map(|c| self.hash(c.policy, c.key)).collect();
        let shard_of: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        let mut shard_ids = shard_of.clone();
        shard_ids.sort_unstable();
        shard_ids.dedup();
        // Ascending order: two calls that share shards cannot deadlock.
        let mut guards: Vec<(usize, MutexGuard<'_, Table>)> = shard_ids
            .iter()
            .map(|&i| (i, self.shards[i].table.lock()))
            .collect();

        let mut decisions = Vec::with_capacity(checks.len());
        let mut undos = Vec::with_capacity(checks.len());
        for (i, (check, &hash)) in checks.iter().zip(&hashes).enumerate() {
            let (decision, undo) =
                self.decide_in(locked(&mut guards, shard_of[i]), hash, check, now);
            decisions.push(decision);
            undos.push(undo);
        }
        if admitted_together(checks, &mut decisions) {
            return decisions;
        }
        // Denied: undo every charge, newest first (a key may appear twice),
        // then report each check's standing state.
        for (i, undo) in undos.into_iter().enumerate().rev() {
            if let Some(undo) = undo {
                undo.apply(
                    &mut locked(&mut guards, shard_of[i]).entries,
                    hashes[i],
                    &checks[i],
                );
            }
        }
        for (i, decision) in decisions.iter_mut().enumerate() {
            if decision.allowed && !decision.shadow {
                let standing = Check {
                    cost: 0,
                    ..checks[i]
                };
                *decision = self
                    .decide_in(locked(&mut guards, shard_of[i]), hashes[i], &standing, now)
                    .0;
            }
        }
        decisions
    }
}

/// The locked table of `shard` among `guards`, which are sorted by shard.
fn locked<'g>(guards: &'g mut [(usize, MutexGuard<'_, Table>)], shard: usize) -> &'g mut Table {
    let at = guards.partition_point(|(i, _)| *i < shard);
    &mut guards[at].1
}

/// How to take back one write of [`MemoryStore::decide_in`].
enum Undo {
    /// The key was absent: remove it again.
    Remove,
    /// The key held this: put it back.
    Restore {
        fingerprint: u32,
        expires_at_us: u64,
        state: State,
    },
}

impl Undo {
    fn apply(self, entries: &mut HashTable<Entry>, hash: u64, check: &Check<'_>) {
        let Ok(found) = entries.find_entry(hash, |e| e.is(check.policy, check.key)) else {
            return;
        };
        match self {
            Undo::Remove => {
                found.remove();
            }
            Undo::Restore {
                fingerprint,
                expires_at_us,
                state,
            } => {
                let entry = found.into_mut();
                entry.fingerprint = fingerprint;
                entry.expires_at_us = expires_at_us;
                entry.state = state;
            }
        }
    }
}

impl<C: Clock> Store for MemoryStore<C> {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        Ok(match checks {
            [] => Vec::new(),
            [one] => vec![self.decide_single(one)],
            many => self.decide_many(many),
        })
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        Ok(self.decide_single(check))
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        let now = self.clock.now_us();
        let hash = self.hash(check.policy, check.key);
        let table = self.shards[self.shard_of(hash)].table.lock();
        let state = table
            .entries
            .find(hash, |e| e.is(check.policy, check.key))
            .filter(|e| e.fingerprint == check.quota.fingerprint())
            .map(|e| &e.state);
        Ok(algorithm::peek(state, check.quota, now))
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        let hash = self.hash(check.policy, check.key);
        let mut table = self.shards[self.shard_of(hash)].table.lock();
        if let Ok(found) = table
            .entries
            .find_entry(hash, |e| e.is(check.policy, check.key))
        {
            found.remove();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::FakeClock;
    use crate::{Algorithm, Quota};

    fn check<'a>(key: &'a str, quota: &'a Quota) -> Check<'a> {
        Check {
            policy: "p",
            key,
            quota,
            cost: 1,
            shadow: false,
        }
    }

    #[tokio::test]
    async fn ten_million_keys_passing_through_do_not_stay_resident() {
        // 10M distinct keys, 1000 per millisecond, each forgotten 10ms
        // after its only request: at most ~10k are live at any time.
        let clock = FakeClock::new(1_700_000_000_000_000);
        let store = MemoryStore::with_clock_and_shards(clock.clone(), 8);
        let quota = Quota::new(Algorithm::Gcra, 1, Duration::from_millis(10), None).unwrap();
        let mut most = 0;
        let mut key = String::new();
        for i in 0..10_000_000u64 {
            if i % 1000 == 0 {
                clock.advance(Duration::from_millis(1));
                most = most.max(store.len());
            }
            key.clear();
            key.push_str(&i.to_string());
            assert!(store.decide_single(&check(&key, &quota)).allowed);
        }
        // 8 shards, each swept at twice its live keys (or 1024).
        assert!(most <= 8 * 2 * 1024 + 2 * 11_000, "{most} entries resident");
    }

    #[tokio::test]
    async fn a_changed_quota_starts_the_key_afresh() {
        let store = MemoryStore::with_clock(FakeClock::new(0));
        let one = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(1), None).unwrap();
        let two = Quota::new(Algorithm::FixedWindow, 2, Duration::from_secs(1), None).unwrap();
        assert!(store.decide_single(&check("k", &one)).allowed);
        assert!(!store.decide_single(&check("k", &one)).allowed);
        let fresh = store.decide_single(&check("k", &two));
        assert!(fresh.allowed);
        assert_eq!(fresh.remaining, 1);
    }

    #[tokio::test]
    async fn policy_and_key_boundaries_cannot_collide() {
        let store = MemoryStore::with_clock(FakeClock::new(0));
        let q = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(1), None).unwrap();
        let ab_c = Check {
            policy: "ab",
            key: "c",
            ..check("", &q)
        };
        let a_bc = Check {
            policy: "a",
            key: "bc",
            ..check("", &q)
        };
        assert!(store.decide_single(&ab_c).allowed);
        assert!(store.decide_single(&a_bc).allowed);
        assert!(!store.decide_single(&ab_c).allowed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sixty_four_tasks_admit_exactly_the_budget() {
        for algorithm in Algorithm::ALL {
            let store = Arc::new(MemoryStore::with_clock(FakeClock::new(5_000_000)));
            let quota = Quota::new(algorithm, 1000, Duration::from_secs(3600), None).unwrap();
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        let mut admitted = 0;
                        for _ in 0..1000 {
                            let d = store.decide_one(&check("hot", &quota)).await.unwrap();
                            admitted += u64::from(d.allowed);
                            tokio::task::yield_now().await;
                        }
                        admitted
                    })
                })
                .collect();
            let mut admitted = 0;
            for t in tasks {
                admitted += t.await.unwrap();
            }
            assert_eq!(admitted, 1000, "{algorithm}");
        }
    }
}
