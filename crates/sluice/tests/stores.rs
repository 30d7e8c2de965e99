//! One contract for every [`Store`]: the same traces and behaviours run
//! against the pure core, the memory store, a real single Redis and a real
//! three-master Redis Cluster (started by `sluice-testkit`). A store that
//! decides differently from the core fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sluice::algorithm;
use sluice::store::Resilient;
use sluice::{
    Algorithm, Check, Decision, FakeClock, Limit, Limiter, MemoryStore, Policy, Quota,
    RedisOptions, RedisStore, Source, Store, StoreError,
};
use sluice_testkit::{RedisCluster, RedisServer};

use common::Xorshift;

/// An epoch-like start that is not aligned to any window in the traces.
const START_US: u64 = 1_764_000_000_123_457;

/// One step of a trace: advance the clock by `advance_us`, then charge `cost`.
#[derive(Clone, Copy, Debug)]
struct Step {
    advance_us: u64,
    cost: u64,
}

/// A quota and the requests made against it.
#[derive(Clone, Debug)]
struct Trace {
    quota: Quota,
    steps: Vec<Step>,
}

/// The shared table: for every algorithm, a few hand-picked quotas (sub-second
/// periods, fractional rates, bursts above and below the limit) and seeded
/// random traces of 40 steps each.
fn traces() -> Vec<Trace> {
    let mut rng = Xorshift(0x5eed_1234_abcd_ef01);
    let mut traces = Vec::new();
    for algorithm in Algorithm::ALL {
        for quota in common::contract_quotas(algorithm) {
            let (limit, period_us) = (quota.limit(), quota.period_us());
            for _ in 0..3 {
                let steps = (0..40)
                    .map(|_| Step {
                        advance_us: match rng.below(4) {
                            0 => 0,
                            1 => rng.below(period_us / limit + 1),
                            _ => rng.below(period_us * 2),
                        },
                        cost: rng.below(quota.capacity() + 2) + 1,
                    })
                    .collect();
                traces.push(Trace { quota, steps });
            }
        }
    }
    traces
}

/// Replays every trace on `store` (driven by `clock`) and compares each
/// decision with the core's, and after each step what the store peeks
/// with what the core peeks on the core's state.
async fn conforms(store: &impl Store, clock: &FakeClock, target: &str) {
    for (i, trace) in traces().iter().enumerate() {
        clock.set(START_US);
        let key = format!("trace-{i}");
        let mut now = START_US;
        let mut state = None;
        for (n, step) in trace.steps.iter().enumerate() {
            clock.advance(Duration::from_micros(step.advance_us));
            now += step.advance_us;
            let (want, next) = algorithm::decide(state.as_ref(), &trace.quota, step.cost, now);
            if next.is_some() {
                state = next;
            }
            let check = Check::new("conformance", &key, &trace.quota, step.cost);
            let got = store.decide_one(&check).await.unwrap();
            assert_eq!(
                got, want,
                "{target}: trace {i} ({:?}) step {n} {step:?}",
                trace.quota
            );
            for cost in [0, 1, step.cost] {
                let peeked = store.peek(&check.with_cost(cost)).await.unwrap();
                let want = algorithm::peek(state.as_ref(), &trace.quota, cost, now);
                assert_eq!(
                    peeked, want,
                    "{target}: peek of cost {cost} after trace {i} ({:?}) step {n} {step:?}",
                    trace.quota
                );
            }
        }
    }
}

/// Replays every trace with the deny cache on: the cache changes no
/// outcome. Each answer agrees with the core on admitted or denied; the
/// store's own answers are the core's exactly, and a cached denial's
/// `retry_after` is never later than the core's (the cache remembers the
/// wait of the smallest denied cost). The cache must answer some steps.
async fn the_deny_cache_keeps_every_outcome(store: &impl Store, clock: &FakeClock, target: &str) {
    let mut hits = 0;
    for (i, trace) in traces().iter().enumerate() {
        clock.set(START_US);
        let key = format!("cached-{i}");
        let mut now = START_US;
        let mut state = None;
        for (n, step) in trace.steps.iter().enumerate() {
            clock.advance(Duration::from_micros(step.advance_us));
            now += step.advance_us;
            let (want, next) = algorithm::decide(state.as_ref(), &trace.quota, step.cost, now);
            if next.is_some() {
                state = next;
            }
            let check = Check::new("cached", &key, &trace.quota, step.cost).with_deny_cache(true);
            let got = store.decide_one(&check).await.unwrap();
            let at = format!("{target}: trace {i} ({:?}) step {n} {step:?}", trace.quota);
            assert_eq!(got.allowed, want.allowed, "{at}: {got:?} {want:?}");
            if got.source == Source::DenyCache {
                hits += 1;
                if let Some(wait) = want.retry_after {
                    assert!(
                        got.retry_after.is_some_and(|g| g <= wait),
                        "{at}: {got:?} {want:?}"
                    );
                }
            } else {
                assert_eq!(got, want, "{at}");
            }
        }
    }
    assert!(hits > 50, "{target}: the cache answered {hits} steps only");
}

/// Issue 11: the quotas a reload may change a key's policy between, for a
/// trace on `algorithms`: each a few shapes with the limit (and burst)
/// raised and lowered at the same period, and the contract's quotas
/// (other periods; for the buckets, one near the 2^50 bound).
fn reload_pool(algorithms: &[Algorithm]) -> Vec<Quota> {
    let mut pool = Vec::new();
    for &algorithm in algorithms {
        let shapes: [(u64, u64, Option<u64>); 6] = [
            (3, 10_000, None),
            (6, 10_000, None),
            (1, 10_000, None),
            (5, 1_000_000, Some(9)),
            (10, 1_000_000, Some(4)),
            (2, 1_000_000, None),
        ];
        for (limit, period_us, burst) in shapes {
            let burst = burst.filter(|_| algorithm.has_burst());
            pool.push(
                Quota::new(algorithm, limit, Duration::from_micros(period_us), burst).unwrap(),
            );
        }
        pool.extend(common::contract_quotas(algorithm));
    }
    pool
}

/// One step of a reload trace: advance the clock, put `quota` (an index
/// in the pool) in force, then charge `cost`.
#[derive(Clone, Copy, Debug)]
struct ReloadStep {
    advance_us: u64,
    quota: usize,
    cost: u64,
}

/// Seeded random traces of 40 steps on one key whose quota changes about
/// one step in four: per algorithm among its own quotas, and among the
/// three buckets (whose debt carries from one to another) and the three
/// windows (which start afresh from one to another).
fn reload_traces() -> Vec<(Vec<Quota>, Vec<ReloadStep>)> {
    let mut rng = Xorshift(0x7e10_adca_7713_0011);
    let mut pools: Vec<Vec<Quota>> = Algorithm::ALL.iter().map(|&a| reload_pool(&[a])).collect();
    let (buckets, windows): (Vec<Algorithm>, Vec<Algorithm>) =
        Algorithm::ALL.iter().partition(|a| a.has_burst());
    pools.push(reload_pool(&buckets));
    pools.push(reload_pool(&windows));
    let mut traces = Vec::new();
    for pool in pools {
        for _ in 0..3 {
            let mut quota = rng.below(pool.len() as u64) as usize;
            let steps = (0..40)
                .map(|_| {
                    if rng.below(4) == 0 {
                        quota = rng.below(pool.len() as u64) as usize;
                    }
                    let q = &pool[quota];
                    let advance_us = match rng.below(4) {
                        0 => 0,
                        1 => rng.below(q.period_us() / q.limit() + 1),
                        _ => rng.below(q.period_us() * 2),
                    };
                    let cost = rng.below(q.capacity() + 2) + 1;
                    ReloadStep {
                        advance_us,
                        quota,
                        cost,
                    }
                })
                .collect();
            traces.push((pool.clone(), steps));
        }
    }
    traces
}

/// Whether a change from `old` to `new` carries the key's state over (a
/// change between a bucket and a window, or between two window
/// algorithms, starts afresh).
fn carries(old: &Quota, new: &Quota) -> bool {
    old.algorithm() == new.algorithm()
        || (old.algorithm().has_burst() && new.algorithm().has_burst())
}

/// Issue 11: a key whose policy's numbers change (a reload) keeps what it
/// spent, on every store, as `algorithm::carry` defines it. Replays
/// [`reload_traces`] on `store` against the core (each state carried over
/// at its first check under a changed quota, and kept whatever the
/// decision) and compares every decision and peek, so that every store
/// agrees with the core and so with every other after any sequence of
/// reloads. At every change, on what the store answers at that instant:
///
/// - (a) no fresh allowance: what remains under the new quota is at most
///   what remained under the old one, moved by the change of capacity:
///   `max(0, remaining_old + capacity_new - capacity_old)` (for a log
///   whose period shortens, only entries within the new period count, by
///   its definition; a change that starts afresh is exempt);
/// - (b) a raised limit shows at once: where something remained, exactly
///   that (the log: under the same period).
async fn carries_over_reloads(store: &impl Store, clock: &FakeClock, target: &str) {
    let (mut checked_a, mut checked_b) = (0, 0);
    for (i, (pool, steps)) in reload_traces().iter().enumerate() {
        clock.set(START_US);
        let key = format!("reload-{i}");
        let mut now = START_US;
        let mut state: Option<algorithm::State> = None;
        let mut saved_under = pool[steps[0].quota];
        for (n, step) in steps.iter().enumerate() {
            clock.advance(Duration::from_micros(step.advance_us));
            now += step.advance_us;
            let quota = &pool[step.quota];
            let at = format!("{target}: reload trace {i} step {n} {step:?} under {quota:?}");
            if *quota != saved_under {
                let old = &saved_under;
                let before = store.peek(&check("reload", &key, old, 0)).await.unwrap();
                assert_eq!(
                    before,
                    algorithm::peek(state.as_ref(), old, 0, now),
                    "{at}: old peek"
                );
                let carried = state
                    .as_ref()
                    .and_then(|s| algorithm::carry(s, old, quota, now));
                let after = store.peek(&check("reload", &key, quota, 0)).await.unwrap();
                assert_eq!(
                    after,
                    algorithm::peek(carried.as_ref(), quota, 0, now),
                    "{at}: new peek"
                );
                let moved = (before.remaining + quota.capacity()).saturating_sub(old.capacity());
                let log = quota.algorithm() == Algorithm::SlidingWindowLog;
                if carries(old, quota) && !(log && quota.period_us() < old.period_us()) {
                    assert!(
                        after.remaining <= moved,
                        "{at}: (a) {before:?} then {after:?}"
                    );
                    checked_a += 1;
                }
                let same_period = quota.period_us() == old.period_us();
                if carries(old, quota) && before.remaining > 0 && (!log || same_period) {
                    assert_eq!(
                        after.remaining, moved,
                        "{at}: (b) {before:?} then {after:?}"
                    );
                    checked_b += 1;
                }
                state = carried;
                saved_under = *quota;
            }
            let (want, next) = algorithm::decide(state.as_ref(), quota, step.cost, now);
            if next.is_some() {
                state = next;
            }
            let got = store
                .decide_one(&check("reload", &key, quota, step.cost))
                .await
                .unwrap();
            assert_eq!(got, want, "{at}");
            let peeked = store.peek(&check("reload", &key, quota, 1)).await.unwrap();
            assert_eq!(
                peeked,
                algorithm::peek(state.as_ref(), quota, 1, now),
                "{at}: peek"
            );
        }
    }
    assert!(
        checked_a > 100 && checked_b > 50,
        "{target}: {checked_a} {checked_b}"
    );
}

/// Issue 11, across the whole documented range: 150 random traces
/// (`common::wide_trace`, the clock also stepping back) whose policy then
/// changes to a random quota of the same algorithm (or, one in three, of
/// any algorithm), from 0 to 2 periods after the trace's latest instant:
/// each store peeks and decides under the new quota as the core does on
/// the carried state (limits up to `MAX_LIMIT`, periods up to a year,
/// bursts near the 2^50 bound, debts cut at `MAX_DEBT`: the Lua's
/// arithmetic must stay exact where the Rust computes in 128 bits).
async fn carries_over_wide_reloads(store: &impl Store, clock: &FakeClock, target: &str) {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::sample::select(Algorithm::ALL.to_vec()).prop_flat_map(|algorithm| {
        let to = prop_oneof![
            2 => common::wide_quota(algorithm).boxed(),
            1 => prop::sample::select(Algorithm::ALL.to_vec())
                .prop_flat_map(common::wide_quota)
                .boxed(),
        ];
        (common::wide_trace(algorithm), to, 0..=2u64)
    });
    for i in 0..150 {
        let (trace, new, periods) = strategy.new_tree(&mut runner).unwrap().current();
        let key = format!("wide-reload-{i}");
        let old = trace.quota;
        let (mut state, mut latest) = (None, trace.start_us);
        for (now, cost) in trace.timed() {
            clock.set(now);
            latest = latest.max(now);
            let (want, next) = algorithm::decide(state.as_ref(), &old, cost, now);
            if next.is_some() {
                state = next;
            }
            let got = store
                .decide_one(&check("wide", &key, &old, cost))
                .await
                .unwrap();
            assert_eq!(got, want, "{target}: wide reload {i} before the change");
        }
        let now = latest + periods * old.period_us() / 2;
        clock.set(now);
        let at = format!("{target}: wide reload {i}: {old:?} to {new:?} at +{now}");
        let mut state = state.and_then(|s| algorithm::carry(&s, &old, &new, now));
        let peeked = store.peek(&check("wide", &key, &new, 1)).await.unwrap();
        assert_eq!(
            peeked,
            algorithm::peek(state.as_ref(), &new, 1, now),
            "{at}: peek"
        );
        for cost in [1, new.capacity() / 2 + 1, 0] {
            let (want, next) = algorithm::decide(state.as_ref(), &new, cost, now);
            if next.is_some() {
                state = next;
            }
            let got = store
                .decide_one(&check("wide", &key, &new, cost))
                .await
                .unwrap();
            assert_eq!(got, want, "{at}: cost {cost}");
        }
    }
}

fn check<'a>(policy: &'a str, key: &'a str, quota: &'a Quota, cost: u64) -> Check<'a> {
    Check::new(policy, key, quota, cost)
}

/// Several policies on one request are charged all or nothing.
async fn all_or_nothing(store: &impl Store, clock: &FakeClock, key: &str) {
    clock.set(START_US);
    let second = Quota::new(Algorithm::TokenBucket, 2, Duration::from_secs(1), None).unwrap();
    let minute = Quota::new(Algorithm::FixedWindow, 3, Duration::from_secs(3600), None).unwrap();
    let both = |cost| {
        [
            check("per-second", key, &second, cost),
            check("per-hour", key, &minute, cost),
        ]
    };

    let first = store.decide(&both(2)).await.unwrap();
    assert!(first.iter().all(|d| d.allowed), "{first:?}");
    // The per-second bucket is empty: nothing is charged to the hourly window.
    let denied = store.decide(&both(1)).await.unwrap();
    assert!(!denied[0].allowed, "{denied:?}");
    assert!(
        denied[1].allowed && denied[1].remaining == 1,
        "the hour was not charged: {denied:?}"
    );
    clock.advance(Duration::from_secs(1));
    // Now the hour has 1 left: a cost of 2 is denied there and not charged per second.
    let denied = store.decide(&both(2)).await.unwrap();
    assert!(denied[0].allowed && denied[0].remaining == 2, "{denied:?}");
    assert!(!denied[1].allowed);
    let last = store.decide(&both(1)).await.unwrap();
    assert!(last.iter().all(|d| d.allowed));
    assert_eq!((last[0].remaining, last[1].remaining), (1, 0));
}

/// A shadow check reports a denial but does not deny, nor veto the others.
async fn shadow_never_denies(store: &impl Store, clock: &FakeClock, key: &str) {
    clock.set(START_US);
    let tiny = Quota::new(Algorithm::Gcra, 1, Duration::from_secs(60), None).unwrap();
    let roomy = Quota::new(Algorithm::Gcra, 100, Duration::from_secs(60), None).unwrap();
    let checks = |shadow| {
        [
            check("shadowed", key, &tiny, 1).with_shadow(shadow),
            check("enforced", key, &roomy, 1),
        ]
    };
    assert!(
        store
            .decide(&checks(true))
            .await
            .unwrap()
            .iter()
            .all(|d| d.allowed && !d.shadow)
    );
    let second = store.decide(&checks(true)).await.unwrap();
    assert!(second[0].allowed && second[0].shadow, "{second:?}");
    assert!(
        second[1].allowed && second[1].remaining == 98,
        "the shadow denial vetoed: {second:?}"
    );
}

/// Peek reports without charging; reset forgets.
async fn peek_and_reset(store: &impl Store, clock: &FakeClock, key: &str) {
    clock.set(START_US);
    let quota = Quota::new(
        Algorithm::SlidingWindowLog,
        2,
        Duration::from_secs(10),
        None,
    )
    .unwrap();
    let c = check("peeked", key, &quota, 1);
    assert_eq!(store.peek(&c.with_cost(0)).await.unwrap().remaining, 2);
    assert_eq!(
        store.peek(&c).await.unwrap().remaining,
        1,
        "what the check would leave"
    );
    store.decide_one(&c).await.unwrap();
    store.decide_one(&c).await.unwrap();
    let peeked = store.peek(&c).await.unwrap();
    assert!(!peeked.allowed);
    assert_eq!(peeked.retry_after, Some(Duration::from_secs(10)));
    assert_eq!(
        store.peek(&c).await.unwrap(),
        peeked,
        "peeking charged something"
    );
    store.reset(&c).await.unwrap();
    let after = store.peek(&c.with_cost(0)).await.unwrap();
    assert!(after.allowed && after.remaining == 2, "{after:?}");
}

/// Many clients at once never get one admission more than the limit.
async fn exact_under_concurrency<S: Store>(stores: &[Arc<S>], clock: &FakeClock, target: &str) {
    clock.set(START_US);
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(algorithm, 50, Duration::from_secs(3600), None).unwrap();
        let key = format!("hot-{algorithm}");
        let tasks: Vec<_> = (0..64)
            .map(|client| {
                let store = Arc::clone(&stores[client % stores.len()]);
                let key = key.clone();
                tokio::spawn(async move {
                    let mut admitted = 0u64;
                    for _ in 0..4 {
                        let d = store
                            .decide_one(&check("concurrency", &key, &quota, 1))
                            .await
                            .unwrap();
                        admitted += u64::from(d.allowed);
                    }
                    admitted
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += task.await.unwrap();
        }
        assert_eq!(
            admitted, 50,
            "{target}: {algorithm} admitted {admitted} of 256 against a limit of 50"
        );
    }
}

/// A call that names the same (policy, key) twice is refused before
/// anything is decided, whatever the quotas, and wherever the other checks
/// live (on a cluster, in another slot).
async fn a_check_named_twice_is_refused(store: &impl Store, clock: &FakeClock, key: &str) {
    clock.set(START_US);
    let five = Quota::new(Algorithm::FixedWindow, 5, Duration::from_secs(60), None).unwrap();
    let three = Quota::new(Algorithm::TokenBucket, 3, Duration::from_secs(60), None).unwrap();
    let elsewhere = format!("{key}-elsewhere");
    let calls = [
        vec![check("twice", key, &five, 1), check("twice", key, &five, 1)],
        vec![
            check("twice", key, &five, 1),
            check("other", &elsewhere, &three, 1),
            check("once", key, &three, 1),
            // The same policy and key under another quota is the same state.
            check("twice", key, &three, 2),
        ],
    ];
    for checks in &calls {
        let error = store.decide(checks).await.unwrap_err();
        assert!(
            matches!(&error, StoreError::DuplicateCheck { policy, key: k } if policy == "twice" && k == key),
            "{error:?}"
        );
        assert!(!error.is_transient(), "a caller's mistake: {error:?}");
    }
    let untouched = [
        (check("twice", key, &five, 1), 5),
        (check("twice", key, &three, 1), 3),
        (check("other", &elsewhere, &three, 1), 3),
        (check("once", key, &three, 1), 3),
    ];
    for (c, capacity) in untouched {
        let standing = store.peek(&c.with_cost(0)).await.unwrap();
        assert_eq!(
            standing.remaining, capacity,
            "{} on {}: charged by a refused call",
            c.policy, c.key
        );
    }
}

/// A policy of two limits through the `Limiter`: once the per-second limit
/// denies, the per-hour limit spends nothing, and the denial describes the
/// per-second limit; whichever of the two the policy lists first.
async fn a_denied_limit_spends_nothing_on_the_others<S: Store>(
    store: &Arc<S>,
    clock: &FakeClock,
    key: &str,
) {
    let second = Quota::new(Algorithm::FixedWindow, 2, Duration::from_secs(1), None).unwrap();
    let hour = Quota::new(Algorithm::TokenBucket, 5, Duration::from_secs(3600), None).unwrap();
    let policies = [
        Policy::with_limits("second-first", [Limit::new(second), Limit::new(hour)]).unwrap(),
        Policy::with_limits("hour-first", [Limit::new(hour), Limit::new(second)]).unwrap(),
    ];
    let limiter = Limiter::new(Arc::clone(store), policies);
    for (name, per_hour) in [("second-first", 1), ("hour-first", 0)] {
        clock.set(START_US);
        let per_hour = &limiter.policy(name).unwrap().limits()[per_hour];
        let hour_left = || async {
            let c = Check::new(per_hour.state_name(), key, per_hour.quota_for(key), 1);
            store.peek(&c.with_cost(0)).await.unwrap().remaining
        };

        for _ in 0..2 {
            assert!(limiter.check(name, key, 1).await.unwrap().allowed, "{name}");
        }
        assert_eq!(hour_left().await, 3, "{name}: both limits charged twice");
        for _ in 0..3 {
            let denied = limiter.check(name, key, 1).await.unwrap();
            assert!(!denied.allowed, "{name}: {denied:?}");
            assert_eq!(denied.limit, 2, "{name}: the per-second limit decided");
        }
        assert_eq!(
            hour_left().await,
            3,
            "{name}: the hour was charged for denials"
        );
        clock.advance(Duration::from_secs(1));
        assert!(limiter.check(name, key, 1).await.unwrap().allowed, "{name}");
        assert_eq!(hour_left().await, 2, "{name}");
    }
}

/// One limit of a multi-check trace: a policy's name and its quota.
#[derive(Clone, Debug)]
struct PolicyLimit {
    policy: String,
    quota: Quota,
}

/// One check of a multi-check step: which limit, which key, the cost, and
/// whether it is in shadow mode.
#[derive(Clone, Copy, Debug)]
struct MultiCheck {
    limit: usize,
    key: usize,
    cost: u64,
    shadow: bool,
}

/// One step: move the clock, then decide `checks` in one call.
#[derive(Clone, Debug)]
struct MultiStep {
    /// Negative: the clock steps back (a server with a slower clock).
    advance_us: i64,
    checks: Vec<MultiCheck>,
}

/// Several policies over several keys (on a cluster, in several slots),
/// and the calls made against them.
#[derive(Clone, Debug)]
struct MultiTrace {
    limits: Vec<PolicyLimit>,
    keys: Vec<String>,
    steps: Vec<MultiStep>,
}

impl MultiTrace {
    fn checks<'a>(&'a self, step: &MultiStep) -> Vec<Check<'a>> {
        step.checks
            .iter()
            .map(|c| {
                let limit = &self.limits[c.limit];
                Check::new(&limit.policy, &self.keys[c.key], &limit.quota, c.cost)
                    .with_shadow(c.shadow)
            })
            .collect()
    }

    /// Every (policy, key) of the trace, as a cost-1 check to peek.
    fn every_pair(&self) -> Vec<Check<'_>> {
        self.limits
            .iter()
            .flat_map(|l| {
                self.keys
                    .iter()
                    .map(move |k| Check::new(&l.policy, k, &l.quota, 1))
            })
            .collect()
    }
}

/// The shared multi-check table: seeded random traces of 30 calls of one
/// to four checks each (the clock sometimes stepping back up to a period), over two to four policies of any algorithm and
/// three keys, costs from 1 to one above the capacity, some in shadow mode.
fn multi_traces() -> Vec<MultiTrace> {
    let mut rng = Xorshift(0x0a11_0e40_7e11_3a5e);
    let shapes: [(u64, u64, Option<u64>); 6] = [
        (3, 10_000, None),
        (4, 50_000, Some(2)),
        (5, 100_000, Some(8)),
        (10, 1_000_000, None),
        (2, 1_000, Some(6)),
        (20, 3_600_000_000, None),
    ];
    (0..14)
        .map(|t| {
            let limits: Vec<PolicyLimit> = (0..2 + rng.below(3))
                .map(|j| {
                    let algorithm = Algorithm::ALL[rng.below(Algorithm::ALL.len() as u64) as usize];
                    let (limit, period_us, burst) = shapes[rng.below(shapes.len() as u64) as usize];
                    let burst = burst.filter(|_| algorithm.has_burst());
                    let quota =
                        Quota::new(algorithm, limit, Duration::from_micros(period_us), burst)
                            .unwrap();
                    PolicyLimit {
                        policy: format!("multi-{t}-{j}"),
                        quota,
                    }
                })
                .collect();
            let keys: Vec<String> = ["a", "b", "c"]
                .iter()
                .map(|k| format!("client-{t}-{k}"))
                .collect();
            let shortest = limits.iter().map(|l| l.quota.period_us()).min().unwrap();
            let steps = (0..30)
                .map(|_| {
                    let mut pairs: Vec<(usize, usize)> = (0..limits.len())
                        .flat_map(|l| (0..keys.len()).map(move |k| (l, k)))
                        .collect();
                    let n = 1 + rng.below(4) as usize;
                    let checks = (0..n)
                        .map(|_| {
                            let (limit, key) = pairs.remove(rng.below(pairs.len() as u64) as usize);
                            let capacity = limits[limit].quota.capacity();
                            MultiCheck {
                                limit,
                                key,
                                cost: 1 + rng.below(capacity + 1),
                                shadow: rng.below(6) == 0,
                            }
                        })
                        .collect();
                    let below = |rng: &mut Xorshift, n: u64| i64::try_from(rng.below(n)).unwrap();
                    let advance_us = match rng.below(8) {
                        0 | 1 => 0,
                        2 => -below(&mut rng, shortest + 1),
                        3 | 4 => below(&mut rng, shortest / 4 + 1),
                        _ => below(&mut rng, shortest * 2),
                    };
                    MultiStep { advance_us, checks }
                })
                .collect();
            MultiTrace {
                limits,
                keys,
                steps,
            }
        })
        .collect()
}

/// The core's state of every (policy, key) touched so far.
type States = HashMap<(String, String), algorithm::State>;

/// Drops from `states` those back to their untouched state at `now`: what
/// the memory store forgets ([`MemoryStore::purge_expired`]).
fn forget_untouched(states: &mut States, trace: &MultiTrace, now: u64) {
    states.retain(|(policy, _), state| {
        let Some(limit) = trace.limits.iter().find(|l| &l.policy == policy) else {
            return true;
        };
        let standing = algorithm::peek(Some(state), &limit.quota, 0, now);
        standing != algorithm::peek(None, &limit.quota, 0, now) || !standing.reset_after.is_zero()
    });
}

/// What the core decides for `checks` at `now` applied all or nothing, as
/// `Store::decide` documents: each check decided by `algorithm::decide` on
/// the state before the call; the request admitted only if every
/// non-shadow check admits, and then every admitting check charged;
/// otherwise nothing charged, and the checks that would have admitted
/// report their standing (a cost-0 decision).
///
/// With `per_slot`, as a Redis Cluster decides checks on several clients'
/// keys (cluster.rs): one all-or-nothing group per key (its hash tag), in
/// the order the keys first appear, stopping at the first group that
/// denies; the groups already charged are refunded, and the checks of the
/// groups never reached report their standing too.
fn core_all_or_nothing(
    states: &mut States,
    checks: &[Check<'_>],
    now: u64,
    per_slot: bool,
) -> Vec<Decision> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut tags: Vec<&str> = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let tag = if per_slot { c.key } else { "" };
        match tags.iter().position(|t| *t == tag) {
            Some(g) => groups[g].push(i),
            None => {
                tags.push(tag);
                groups.push(vec![i]);
            }
        }
    }
    let pair = |c: &Check<'_>| (c.policy.to_owned(), c.key.to_owned());
    let mut decisions: Vec<Option<Decision>> = vec![None; checks.len()];
    let mut charges = Vec::new();
    let mut all = true;
    for group in &groups {
        for &i in group {
            let c = &checks[i];
            let (mut d, next) = algorithm::decide(states.get(&pair(c)), c.quota, c.cost, now);
            if c.shadow {
                d = d.shadowed();
            }
            all &= d.allowed;
            if let Some(next) = next {
                charges.push((pair(c), next));
            }
            decisions[i] = Some(d);
        }
        if !all {
            break;
        }
    }
    if all {
        states.extend(charges);
    } else {
        for (c, d) in checks.iter().zip(decisions.iter_mut()) {
            if d.is_none_or(|d| d.allowed && !d.shadow) {
                *d = Some(algorithm::decide(states.get(&pair(c)), c.quota, 0, now).0);
            }
        }
    }
    decisions.into_iter().map(Option::unwrap).collect()
}

/// Replays every multi-check trace on `store` and compares every call's
/// decisions with the core applied all or nothing, and after every call
/// what the store peeks on every (policy, key) with the core's peek.
///
/// `forget`, for a store that forgets keys back to their untouched state
/// (the memory store), makes it forget them all after every call; the core's
/// states are forgotten the same, so that a clock stepping back finds the
/// same keys on both sides.
async fn multi_conforms(
    store: &impl Store,
    clock: &FakeClock,
    target: &str,
    per_slot: bool,
    forget: Option<&Forget>,
) {
    // Calls of several checks admitted, and denied with some check that
    // would have admitted: the table must have many of both.
    let (mut admitted, mut denied) = (0, 0);
    for (t, trace) in multi_traces().iter().enumerate() {
        clock.set(START_US);
        let mut now = START_US;
        let mut states = States::new();
        for (n, step) in trace.steps.iter().enumerate() {
            // On a cluster the clock only goes forward: a refund cannot
            // bring back what its charge overwrote (a window's count two
            // windows old), which counts again once the clock steps back
            // into the next window. `store::redis::refund` and
            // `a_refunded_window_is_untouched_when_the_clock_steps_back`
            // hold refunds to their rules on clocks that step back.
            let advance = if per_slot {
                step.advance_us.max(0)
            } else {
                step.advance_us
            };
            now = now.checked_add_signed(advance).unwrap();
            clock.set(now);
            let checks = trace.checks(step);
            let want = core_all_or_nothing(&mut states, &checks, now, per_slot);
            let got = store.decide(&checks).await.unwrap();
            assert_eq!(got, want, "{target}: multi trace {t} step {n} {checks:#?}");
            if let Some(forget) = forget {
                forget();
                forget_untouched(&mut states, trace, now);
            }
            if checks.len() > 1 && got.iter().all(|d| d.allowed) {
                admitted += 1;
            } else if got.iter().any(|d| !d.allowed) && got.iter().any(|d| d.allowed) {
                denied += 1;
            }
            for c in trace.every_pair() {
                let state = states.get(&(c.policy.to_owned(), c.key.to_owned()));
                let want = algorithm::peek(state, c.quota, c.cost, now);
                let got = store.peek(&c).await.unwrap();
                assert_eq!(
                    got, want,
                    "{target}: peek of {} on {} after multi trace {t} step {n} {checks:#?}",
                    c.policy, c.key
                );
            }
        }
    }
    assert!(
        admitted > 30 && denied > 30,
        "{target}: {admitted} {denied}"
    );
}

/// Multi-check calls racing single checks on the same keys never admit
/// more than a limit, and charge exactly what they report admitted: a
/// roomy limit on `a` charged 2 (and six other roomy limits of `a`'s
/// client charged 1) with a tight one on `b` (which soon denies every
/// call, which must then give back or never take `a`'s 2) against
/// single checks on `a` and on `b`, `rounds` calls per task (the roomy
/// limit is sized so that the single checks alone exhaust it). The clock
/// stands still, so the end state is exactly the admitted units.
async fn multi_races_single<S: Store>(
    stores: &[Arc<S>],
    clock: &FakeClock,
    target: &str,
    rounds: u64,
) {
    clock.set(START_US);
    const TASKS: u64 = 48;
    const TIGHT: u64 = 6;
    let roomy_limit = TASKS / 3 * rounds / 3;
    for algorithm in Algorithm::ALL {
        let roomy = Quota::new(algorithm, roomy_limit, Duration::from_secs(3600), None).unwrap();
        let tight = Quota::new(algorithm, TIGHT, Duration::from_secs(3600), None).unwrap();
        let a = format!("race-a-{algorithm}");
        let b = format!("race-b-{algorithm}");
        let tasks: Vec<_> = (0..TASKS)
            .map(|client| {
                let store = Arc::clone(&stores[client as usize % stores.len()]);
                let (a, b) = (a.clone(), b.clone());
                let between: Vec<String> = (0..6).map(|j| format!("race-{j}")).collect();
                tokio::spawn(async move {
                    let (mut on_a, mut on_b) = (0u64, 0u64);
                    for _ in 0..rounds {
                        let on_a_2 = check("race", &a, &roomy, 2);
                        match client % 3 {
                            0 => {
                                // Between a and b, other limits of a's
                                // client: the longer a store takes from
                                // charging a to learning that b denies,
                                // the likelier a single check meets it.
                                let mut all = vec![on_a_2];
                                all.extend(between.iter().map(|p| check(p, &a, &roomy, 1)));
                                all.push(check("race", &b, &tight, 1));
                                let d = store.decide(&all).await.unwrap();
                                if d.iter().all(|d| d.allowed) {
                                    on_a += 2;
                                    on_b += 1;
                                }
                            }
                            1 => {
                                let d = store.decide_one(&on_a_2.with_cost(1)).await.unwrap();
                                on_a += u64::from(d.allowed);
                            }
                            _ => {
                                let d = store
                                    .decide_one(&check("race", &b, &tight, 1))
                                    .await
                                    .unwrap();
                                on_b += u64::from(d.allowed);
                            }
                        }
                        // Interleave the tasks of each worker too.
                        tokio::task::yield_now().await;
                    }
                    (on_a, on_b)
                })
            })
            .collect();
        let (mut on_a, mut on_b) = (0, 0);
        for task in tasks {
            let (a, b) = task.await.unwrap();
            on_a += a;
            on_b += b;
        }
        assert!(
            on_a <= roomy_limit && on_b <= TIGHT,
            "{target}: {algorithm} admitted {on_a} of {roomy_limit} on a, {on_b} of {TIGHT} on b"
        );
        let left_a = stores[0].peek(&check("race", &a, &roomy, 0)).await.unwrap();
        let left_b = stores[0].peek(&check("race", &b, &tight, 0)).await.unwrap();
        assert_eq!(
            (left_a.remaining, left_b.remaining),
            (roomy_limit - on_a, TIGHT - on_b),
            "{target}: {algorithm}: what stands is not what was admitted ({on_a} on a, {on_b} on b)"
        );
        // The single checks on b alone far exceed its limit.
        assert_eq!(left_b.remaining, 0, "{target}: {algorithm}");
    }
}

/// Random multi-check traces for the memory store's property test: one to
/// three small quotas of any algorithm (`common::quota`), three keys, calls
/// of one to four distinct checks of cost 0 to 10, some in shadow mode.
fn multi_trace() -> impl Strategy<Value = (MultiTrace, usize)> {
    let quota = prop::sample::select(Algorithm::ALL.to_vec()).prop_flat_map(common::quota);
    let shards = prop_oneof![Just(1usize), Just(64)];
    (prop::collection::vec(quota, 1..=3), shards).prop_flat_map(|(quotas, shards)| {
        let check = (
            0..quotas.len(),
            0..3usize,
            0..=10u64,
            prop::bool::weighted(0.15),
        )
            .prop_map(|(limit, key, cost, shadow)| MultiCheck {
                limit,
                key,
                cost,
                shadow,
            });
        let advance = prop_oneof![Just(0i64), 0..=10i64, 0..=40_000i64, -20_000..=0i64];
        let step =
            (advance, prop::collection::vec(check, 1..=4)).prop_map(|(advance_us, mut checks)| {
                let mut seen = Vec::new();
                checks.retain(|c| {
                    let fresh = !seen.contains(&(c.limit, c.key));
                    seen.push((c.limit, c.key));
                    fresh
                });
                MultiStep { advance_us, checks }
            });
        let limits = quotas
            .into_iter()
            .enumerate()
            .map(|(j, quota)| PolicyLimit {
                policy: format!("p{j}"),
                quota,
            })
            .collect::<Vec<_>>();
        let keys = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        (
            prop::collection::vec(step, 1..=40).prop_map(move |steps| MultiTrace {
                limits: limits.clone(),
                keys: keys.clone(),
                steps,
            }),
            Just(shards),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The memory store's multi-check path (`decide` on two or more
    /// checks, locking several shards) decides as the core applied all or
    /// nothing, and peeks as the core afterwards.
    #[test]
    fn the_memory_stores_multi_check_path_is_the_core_all_or_nothing(
        (trace, shards) in multi_trace()
    ) {
        let clock = FakeClock::new(START_US);
        let store = MemoryStore::with_clock_and_shards(clock.clone(), shards);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut now = START_US;
        let mut states = States::new();
        for (n, step) in trace.steps.iter().enumerate() {
            now = now.checked_add_signed(step.advance_us).unwrap();
            clock.set(now);
            let checks = trace.checks(step);
            let want = core_all_or_nothing(&mut states, &checks, now, false);
            let got = runtime.block_on(store.decide(&checks)).unwrap();
            prop_assert_eq!(got, want, "step {}", n);
            // A key back to its untouched state may be forgotten (the store
            // reclaims such entries as it goes, whichever its cursor meets);
            // forgotten, it starts afresh even if the clock then steps back.
            // Forget all of them on both sides, so both hold the same keys.
            store.purge_expired();
            forget_untouched(&mut states, &trace, now);
            for c in trace.every_pair() {
                let state = states.get(&(c.policy.to_owned(), c.key.to_owned()));
                let want = algorithm::peek(state, c.quota, c.cost, now);
                let got = runtime.block_on(store.peek(&c)).unwrap();
                prop_assert_eq!(got, want, "peek of {} on {} after step {}", c.policy, c.key, n);
            }
        }
    }
}

/// Makes a store forget every key back to its untouched state now.
type Forget = dyn Fn() + Sync;

/// The contract on `stores` (connections to one store); `per_slot` when
/// the store is a Redis Cluster, which decides checks on several clients'
/// keys one slot at a time.
async fn contract<S: Store>(
    stores: &[Arc<S>],
    clock: &FakeClock,
    target: &str,
    per_slot: bool,
    race_rounds: u64,
    forget: Option<&Forget>,
) {
    let store = &*stores[0];
    conforms(store, clock, target).await;
    common::conforms_with_skew(store, clock, target).await;
    carries_over_reloads(store, clock, target).await;
    carries_over_wide_reloads(store, clock, target).await;
    multi_conforms(store, clock, target, per_slot, forget).await;
    all_or_nothing(store, clock, "user-1").await;
    shadow_never_denies(store, clock, "user-2").await;
    peek_and_reset(store, clock, "user-3").await;
    a_check_named_twice_is_refused(store, clock, "user-4").await;
    a_denied_limit_spends_nothing_on_the_others(&stores[0], clock, "user-5").await;
    exact_under_concurrency(stores, clock, target).await;
    multi_races_single(stores, clock, target, race_rounds).await;
}

async fn redis_store(url: &str, clock: &FakeClock) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::connect(url)
            .await
            .unwrap()
            .with_clock(clock.clone()),
    )
}

// More workers than cores: the races also interleave where the system
// preempts a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_keeps_the_contract() {
    let clock = FakeClock::new(START_US);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let forget = {
        let store = store.clone();
        move || {
            store.purge_expired();
        }
    };
    contract(&[store], &clock, "memory", false, 300, Some(&forget)).await;
}

/// The contract through the whole resilient stack (fallback, deny cache,
/// breaker): while the store answers, the stack changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_keeps_the_contract_through_the_resilient_stack() {
    let clock = FakeClock::new(START_US);
    let memory = Arc::new(MemoryStore::with_clock(clock.clone()));
    let forget = {
        let memory = memory.clone();
        move || {
            memory.purge_expired();
        }
    };
    let store = Resilient::new(memory, clock.clone());
    contract(
        &[Arc::new(store)],
        &clock,
        "memory+resilient",
        false,
        300,
        Some(&forget),
    )
    .await;
    let store = Resilient::new(MemoryStore::with_clock(clock.clone()), clock.clone());
    the_deny_cache_keeps_every_outcome(&store, &clock, "memory+resilient").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_redis_keeps_the_contract_through_the_resilient_stack() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let resilient = async || {
        let store = RedisStore::connect(&server.url()).await.unwrap();
        Arc::new(Resilient::new(
            store.with_clock(clock.clone()),
            clock.clone(),
        ))
    };
    let stores = [resilient().await, resilient().await];
    contract(&stores, &clock, "redis+resilient", false, 8, None).await;
    the_deny_cache_keeps_every_outcome(&*stores[0], &clock, "redis+resilient").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_redis_keeps_the_contract() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    // Two connections, as two API servers would have.
    let stores = [
        redis_store(&server.url(), &clock).await,
        redis_store(&server.url(), &clock).await,
    ];
    contract(&stores, &clock, "redis", false, 8, None).await;
}

/// The same with `EVALSHA` instead of a Redis Function, as on Redis 6 or
/// behind a proxy that passes scripts only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_redis_keeps_the_contract_with_scripts() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let options = || RedisOptions::default().with_functions(false);
    let connect = || async {
        let store = RedisStore::connect_with(&server.url(), options())
            .await
            .unwrap();
        Arc::new(store.with_clock(clock.clone()))
    };
    let stores = [connect().await, connect().await];
    contract(&stores, &clock, "redis-scripts", false, 8, None).await;
    let stats = server.cli(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_evalsha"), "{stats}");
    assert!(!stats.contains("cmdstat_fcall"), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_keeps_the_contract() {
    let cluster = RedisCluster::start();
    let clock = FakeClock::new(START_US);
    let stores = [
        redis_store(&cluster.url(), &clock).await,
        redis_store(&cluster.url(), &clock).await,
    ];
    // The multi-check traces' keys span several slots.
    for trace in multi_traces() {
        let slots: std::collections::HashSet<String> = trace
            .keys
            .iter()
            .map(|k| cluster.cli(0, &["cluster", "keyslot", k]))
            .collect();
        assert!(slots.len() > 1, "{:?} share a slot", trace.keys);
    }
    contract(&stores, &clock, "cluster", true, 8, None).await;
}

/// On a cluster, checks on different clients live in different slots: each
/// slot is charged atomically, and a denial in one refunds the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_in_one_cluster_slot_refunds_the_others() {
    let cluster = RedisCluster::start();
    let clock = FakeClock::new(START_US);
    let store = redis_store(&cluster.url(), &clock).await;
    for algorithm in Algorithm::ALL {
        let roomy = Quota::new(algorithm, 5, Duration::from_secs(60), None).unwrap();
        let tight = Quota::new(algorithm, 1, Duration::from_secs(60), None).unwrap();
        // Keys chosen to hash to different slots ("a" and "b" tags).
        let checks = [
            check("refund", "a", &roomy, 1),
            check("refund", "b", &tight, 1),
        ];
        let key_a = common::redis_key(&checks[0]);
        let key_b = common::redis_key(&checks[1]);
        let slot = |key: &str| cluster.cli(0, &["cluster", "keyslot", key]);
        assert_ne!(slot(&key_a), slot(&key_b), "the test needs two slots");

        assert!(
            store
                .decide(&checks)
                .await
                .unwrap()
                .iter()
                .all(|d| d.allowed),
            "{algorithm}"
        );
        let denied = store.decide(&checks).await.unwrap();
        assert!(!denied[1].allowed, "{algorithm}: {denied:?}");
        assert!(
            denied[0].allowed,
            "{algorithm}: a alone would pass: {denied:?}"
        );
        let standing = store.peek(&checks[0].with_cost(0)).await.unwrap();
        assert_eq!(
            standing.remaining, 4,
            "{algorithm}: the charge to a was not refunded"
        );
        clock.advance(Duration::from_secs(120));
    }
    a_refunded_window_is_untouched_when_the_clock_steps_back(&store, &clock).await;
}

/// A cross-slot refund that empties a window leaves the key untouched, as
/// if never charged: a window kept at 0 would still pull a clock that
/// steps back behind it into that window (and lengthen every duration).
async fn a_refunded_window_is_untouched_when_the_clock_steps_back(
    store: &RedisStore,
    clock: &FakeClock,
) {
    for algorithm in [Algorithm::FixedWindow, Algorithm::SlidingWindowCounter] {
        let quota = Quota::new(algorithm, 5, Duration::from_millis(100), None).unwrap();
        let never = Quota::new(algorithm, 1, Duration::from_millis(100), None).unwrap();
        let policy = format!("emptied-{algorithm}");
        // Keys "a" and "b" are in different slots (see above).
        let checks = [
            check(&policy, "a", &quota, 3),
            check(&policy, "b", &never, 2),
        ];
        clock.set(START_US);
        let denied = store.decide(&checks).await.unwrap();
        assert!(!denied[1].allowed, "{algorithm}: {denied:?}");
        // Back into the previous window, where the key never counted.
        clock.set(START_US - 100_000);
        for cost in [0, 5] {
            let want = algorithm::decide(None, &quota, cost, START_US - 100_000).0;
            let got = store.decide_one(&checks[0].with_cost(cost)).await.unwrap();
            assert_eq!(
                got, want,
                "{algorithm}: cost {cost} behind the refunded window"
            );
        }
    }
}

/// Issue 11, as the issue found it: a daily limit of 100, spent, lowered
/// to 50, then raised back to 100, admits nothing more that day, on
/// memory and on Redis alike (it had admitted 50 more, then 100 more on
/// memory and none on Redis), for every algorithm; on Redis the key stays
/// the same one.
async fn a_lowered_then_raised_limit_admits_nothing_more(
    store: &impl Store,
    clock: &FakeClock,
    target: &str,
) {
    let day = Duration::from_secs(86_400);
    for algorithm in Algorithm::ALL {
        clock.set(START_US);
        let key = format!("daily-{algorithm}");
        let hundred = Quota::new(algorithm, 100, day, None).unwrap();
        let fifty = Quota::new(algorithm, 50, day, None).unwrap();
        let spend = |quota| check("daily", &key, quota, 1);
        for _ in 0..100 {
            assert!(
                store.decide_one(&spend(&hundred)).await.unwrap().allowed,
                "{target}: {algorithm}"
            );
        }
        let mut admitted = 0;
        for quota in [&fifty, &hundred, &fifty, &hundred] {
            for _ in 0..10 {
                admitted += u64::from(store.decide_one(&spend(quota)).await.unwrap().allowed);
            }
            clock.advance(Duration::from_secs(60));
        }
        assert_eq!(
            admitted, 0,
            "{target}: {algorithm} admitted {admitted} after its 100 of the day"
        );
    }
}

#[tokio::test]
async fn a_lowered_then_raised_limit_admits_nothing_more_on_memory_and_redis() {
    let clock = FakeClock::new(START_US);
    let memory = MemoryStore::with_clock(clock.clone());
    a_lowered_then_raised_limit_admits_nothing_more(&memory, &clock, "memory").await;
    let server = RedisServer::start();
    let redis = redis_store(&server.url(), &clock).await;
    a_lowered_then_raised_limit_admits_nothing_more(&*redis, &clock, "redis").await;
    let keys = server.cli(&["--scan", "--pattern", "sluice:*daily*"]);
    assert_eq!(
        keys.lines().count(),
        Algorithm::ALL.len(),
        "one key per algorithm: {keys}"
    );
}

/// Issue 11: the master a Sentinel names keeps the same contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_keeps_the_contract() {
    let redis = sluice_testkit::RedisSentinel::start(1);
    let clock = FakeClock::new(START_US);
    let stores = [
        redis_store(&redis.url(), &clock).await,
        redis_store(&redis.url(), &clock).await,
    ];
    contract(&stores, &clock, "redis-sentinel", false, 8, None).await;
}

/// Issue 11: a Redis over TLS that asks for a client certificate keeps the
/// same contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_over_tls_keeps_the_contract() {
    let redis = sluice_testkit::TlsRedisServer::start(true);
    let certs = redis.certificates();
    let read = |path: std::path::PathBuf| std::fs::read(path).unwrap();
    let tls = sluice::TlsOptions::default()
        .with_ca(read(certs.ca()))
        .unwrap()
        .with_client_certificate(read(certs.client_cert()), read(certs.client_key()))
        .unwrap();
    let clock = FakeClock::new(START_US);
    let connect = || async {
        let options = RedisOptions::default().with_tls(tls.clone());
        let store = RedisStore::connect_with(&redis.url(), options)
            .await
            .unwrap();
        Arc::new(store.with_clock(clock.clone()))
    };
    let stores = [connect().await, connect().await];
    contract(&stores, &clock, "redis-tls", false, 8, None).await;
}

/// Issue 15: a Redis with the native module (`crates/sluice-redis-module`)
/// keeps the same contract, and the store decides with the module's
/// `SLUICE.CALL` only: no Lua runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_redis_keeps_the_contract_with_the_module() {
    let server = RedisServer::with_module();
    let clock = FakeClock::new(START_US);
    let stores = [
        redis_store(&server.url(), &clock).await,
        redis_store(&server.url(), &clock).await,
    ];
    contract(&stores, &clock, "redis-module", false, 8, None).await;
    assert_eq!(stores[0].library_form(), "module");
    let stats = server.cli(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_sluice.call"), "{stats}");
    assert!(!stats.contains("cmdstat_fcall"), "{stats}");
    assert!(!stats.contains("cmdstat_evalsha"), "{stats}");
}

/// Issue 15: the same on a Redis Cluster whose nodes load the module: each
/// call is routed to its keys' slot (the cluster client cannot route it by
/// its first argument, the number of keys), refunds included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_keeps_the_contract_with_the_module() {
    let cluster = RedisCluster::with_module();
    let clock = FakeClock::new(START_US);
    let stores = [
        redis_store(&cluster.url(), &clock).await,
        redis_store(&cluster.url(), &clock).await,
    ];
    contract(&stores, &clock, "cluster-module", true, 8, None).await;
    assert_eq!(stores[0].library_form(), "module");
    for node in 0..3 {
        let stats = cluster.cli(node, &["INFO", "commandstats"]);
        assert!(
            stats.contains("cmdstat_sluice.call"),
            "node {node}: {stats}"
        );
        assert!(!stats.contains("cmdstat_fcall"), "node {node}: {stats}");
    }
}

/// Issue 15: with the module turned off, a Redis that has it decides with
/// the Lua library.
#[tokio::test]
async fn the_module_can_be_turned_off() {
    let server = RedisServer::with_module();
    let clock = FakeClock::new(START_US);
    let options = RedisOptions::default().with_module(false);
    let store = RedisStore::connect_with(&server.url(), options)
        .await
        .unwrap()
        .with_clock(clock.clone());
    let quota = Quota::new(Algorithm::Gcra, 2, Duration::from_secs(1), None).unwrap();
    assert!(
        store
            .decide_one(&check("off", "k", &quota, 1))
            .await
            .unwrap()
            .allowed
    );
    assert_eq!(store.library_form(), "function");
    let stats = server.cli(&["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_sluice.call"), "{stats}");
    assert!(stats.contains("cmdstat_fcall"), "{stats}");
}
