//! Sluice's [`Limiter`] on the [`MemoryStore`] against governor's keyed
//! limiter (a `DashMap` with the std hasher), in the same groups so that
//! their ratio is meaningful.
//!
//! - `sluice` and `governor` run on their default *real* clocks, as users
//!   run them: Sluice's `SystemClock` (the wall clock: `clock_gettime`
//!   through the vDSO) and governor's `QuantaClock` (the TSC, monotonic).
//!   Sluice needs the wall clock (windows are aligned to the epoch and
//!   shared with other processes through Redis), so it pays for that read.
//! - `sluice-fake-clock` and `governor-fake-clock` run both on their fake
//!   clocks, which cost one atomic load: the limiters' own work.
//! - `governor-with-state` is governor answering what Sluice answers: its
//!   `StateInformationMiddleware` returns the key's state with each
//!   admission and the capacity left is read from it. Plain `governor`
//!   answers `()`, and Sluice always answers `limit`, `remaining`,
//!   `reset_after` (and `retry_after` when denied), which its headers need.
//!
//! All get the same pre-made 12-byte `String` keys in the same seeded
//! order, and the same quota: a burst of 10^9 (so every check is admitted
//! and writes its key's new state) refilled at one unit per 864 ms
//! (10^5 a day). The slow refill matters: Sluice forgets a key once it is
//! back to its untouched state (a full bucket), so under a quota that
//! refills within microseconds its store would hold almost none of the
//! 100k keys and measure inserts into a small table instead; here every key
//! stays resident for the whole run, as every key does in governor.

use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use governor::clock::{Clock as GovernorClock, FakeRelativeClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::state::keyed::DashMapStateStore;
use sluice::{Algorithm, Clock, FakeClock, Limiter, MemoryStore, Policy, Quota};

use super::algorithms::START_US;
use super::{Order, keys, now, on_threads};

/// The policy every Sluice check names.
const POLICY: &str = "api";

/// A limiter deciding one check of cost 1 on a `String` key.
pub trait Keyed: Sync {
    /// Checks `key`; whether it was admitted. A `&String` because that is
    /// what governor's `check_key` takes for `String` keys.
    #[allow(clippy::ptr_arg)]
    fn check(&self, key: &String) -> bool;

    /// The number of keys it holds.
    fn len(&self) -> usize;
}

impl<C: Clock> Keyed for Limiter<MemoryStore<C>> {
    fn check(&self, key: &String) -> bool {
        now(Limiter::check(self, POLICY, key, 1))
            .expect("a decision")
            .allowed
    }

    fn len(&self) -> usize {
        self.store().len()
    }
}

/// Governor's keyed limiter on clock `C`, with middleware `M`.
type Governor<C, M = NoOpMiddleware<<C as GovernorClock>::Instant>> =
    governor::RateLimiter<String, DashMapStateStore<String>, C, M>;

impl<C: GovernorClock + Sync> Keyed for Governor<C> {
    fn check(&self, key: &String) -> bool {
        self.check_key(key).is_ok()
    }

    fn len(&self) -> usize {
        governor::RateLimiter::len(self)
    }
}

/// Governor answering what Sluice answers: with its
/// `StateInformationMiddleware`, an admission returns a snapshot of the
/// key's state, and the burst capacity left is read from it (what a
/// `RateLimit-Remaining` header needs). Without it, governor's admission
/// is `()`: nothing to tell a client.
struct WithState<C: GovernorClock>(Governor<C, StateInformationMiddleware>);

impl<C: GovernorClock + Sync> Keyed for WithState<C> {
    fn check(&self, key: &String) -> bool {
        match self.0.check_key(key) {
            Ok(snapshot) => std::hint::black_box(snapshot.remaining_burst_capacity()) <= BURST,
            Err(_) => false,
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The refill interval of one unit: 10^5 a day.
const REFILL_EVERY: Duration = Duration::from_millis(864);

/// The burst: no key is ever denied during a run.
const BURST: u32 = 1_000_000_000;

/// Sluice's default algorithm, the token bucket: 10^5 a day, burst 10^9.
fn sluice<C: Clock>(clock: C) -> Limiter<MemoryStore<C>> {
    let day = Duration::from_secs(86_400);
    let quota = Quota::new(
        Algorithm::TokenBucket,
        day.as_micros() as u64 / REFILL_EVERY.as_micros() as u64,
        day,
        Some(u64::from(BURST)),
    )
    .expect("a valid quota");
    Limiter::new(
        MemoryStore::with_clock(clock),
        [Policy::new(POLICY, quota).expect("a valid policy")],
    )
}

/// Governor's GCRA with the same quota.
fn governor<C: GovernorClock>(clock: C) -> Governor<C> {
    governor::RateLimiter::dashmap_with_clock(governor_quota(), clock)
}

/// The quota of [`sluice`] in governor's terms.
fn governor_quota() -> governor::Quota {
    governor::Quota::with_period(REFILL_EVERY)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(BURST).expect("non-zero"))
}

pub fn bench(c: &mut Criterion) {
    for (label, n) in [("1key", 1), ("100k", 100_000)] {
        let keys = keys(n);
        let order = Order::uniform(n);
        for threads in [1, 2] {
            let plural = if threads == 1 { "thread" } else { "threads" };
            let mut group = c.benchmark_group(format!("keyed/{label}/{threads}{plural}"));
            group.throughput(Throughput::Elements(1));
            let (keys, order) = (&keys[..], &order);
            let sluice_real = sluice(sluice::SystemClock);
            bench_keyed(&mut group, "sluice", &sluice_real, keys, order, threads);
            let governor_real = governor(governor::clock::DefaultClock::default());
            bench_keyed(&mut group, "governor", &governor_real, keys, order, threads);
            let sluice_fake = sluice(FakeClock::new(START_US));
            bench_keyed(
                &mut group,
                "sluice-fake-clock",
                &sluice_fake,
                keys,
                order,
                threads,
            );
            let governor_fake = governor(FakeRelativeClock::default());
            bench_keyed(
                &mut group,
                "governor-fake-clock",
                &governor_fake,
                keys,
                order,
                threads,
            );
            let governor_state = WithState(
                governor(governor::clock::DefaultClock::default())
                    .with_middleware::<StateInformationMiddleware>(),
            );
            bench_keyed(
                &mut group,
                "governor-with-state",
                &governor_state,
                keys,
                order,
                threads,
            );
            group.finish();
        }
    }
}

/// Benchmarks `limiter` with every key already present, on `threads` threads.
fn bench_keyed<L: Keyed>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    limiter: &L,
    keys: &[String],
    order: &Order,
    threads: usize,
) {
    for key in keys {
        assert!(limiter.check(key), "{id} denied {key} at once");
    }
    let resident = |when: &str| {
        let held = limiter.len();
        assert_eq!(held, keys.len(), "{id} holds every key {when}");
    };
    resident("before the run");
    let check = |i: usize| limiter.check(&keys[order.at(i)]);
    group.bench_function(id, |b| {
        if threads == 1 {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                check(i)
            });
        } else {
            b.iter_custom(|iters| on_threads(threads, iters, check));
        }
    });
    resident("after the run");
}
