//! Shared helpers for the integration tests: a brute-force reference model
//! of the six algorithms and proptest strategies for random traces.
//!
//! The model is written from the algorithms' definitions, not from the
//! implementation: it keeps the whole history of admissions and answers
//! "would a request of cost `c` be admitted at `t`?" by re-reading that
//! history. Every duration in a [`Decision`] is then found by searching
//! over whole microseconds on that predicate, never by a closed form, so
//! that a rounding slip in the implementation cannot be mirrored here.
//!
//! Time may step back (a server whose clock is slower than the last
//! writer's, a Redis failover to a replica whose clock is behind). Each
//! algorithm's documented rule for a `now` behind the key's state is one
//! line here, [`Model::counts_at`]: the instant a request made at `now`
//! counts at. Everything else, the answer and every duration (which
//! count from the caller's `now`), is searched for from the history.

// Each test crate that declares `mod common;` compiles its own copy and may
// use only part of it.
#![allow(dead_code)]

pub mod process;

use std::time::Duration;

use proptest::prelude::*;
use sluice::algorithm;
use sluice::quota::{MAX_LIMIT, MAX_LOG_LIMIT, MAX_PERIOD, MAX_SCALED};
use sluice::{Algorithm, Decision, Quota};

/// A brute-force reference for one key under one quota.
#[derive(Clone, Debug)]
pub struct Model {
    algorithm: Algorithm,
    /// `L`: units per period.
    limit: u64,
    /// `P`: the period in microseconds.
    period: u64,
    /// `B`: the bucket capacity (equal to `limit` for windows).
    burst: u64,
    /// Every admission of a positive cost, `(time_us, cost)`, in the order
    /// made, each at the instant it counted at ([`Model::counts_at`]).
    admitted: Vec<(u64, u64)>,
}

impl Model {
    /// An untouched key under `quota`.
    pub fn new(quota: &Quota) -> Model {
        Model {
            algorithm: quota.algorithm(),
            limit: quota.limit(),
            period: quota.period_us(),
            burst: quota.burst(),
            admitted: Vec::new(),
        }
    }

    /// The most units one request can ever be granted: `B` for buckets,
    /// `L` for windows.
    pub fn capacity(&self) -> u64 {
        if self.algorithm.has_burst() {
            self.burst
        } else {
            self.limit
        }
    }

    /// The bucket's level at `t`, multiplied by `P` so that it is an exact
    /// integer: `min(B·P, min over admitted s of [B·P + L·(t - s) -
    /// P·(costs admitted at s or later)])`.
    ///
    /// For the token bucket every admission counted at or before `t` (see
    /// [`Model::counts_at`]). For GCRA and the leaky bucket some may count
    /// after `t` (the clock stepped back): the formula is then GCRA's own,
    /// `B·T - (TAT - t)` in tokens, with the theoretical arrival time `TAT`
    /// beyond `t`, and the level may be negative: less than nothing is
    /// left until the clock catches up with the admissions.
    fn bucket_level_scaled(&self, t: u64) -> i128 {
        let (l, p, b) = (
            i128::from(self.limit),
            i128::from(self.period),
            i128::from(self.burst),
        );
        let full = b * p;
        let mut level = full;
        let mut spent_since = 0i128;
        // Walking back through the admissions, `spent_since` is the sum
        // from `s` on.
        for &(s, c) in self.admitted.iter().rev() {
            spent_since += i128::from(c);
            level = level.min(full + l * (i128::from(t) - i128::from(s)) - p * spent_since);
        }
        level
    }

    /// Units admitted at times in `[from, to)`.
    fn admitted_in(&self, from: u64, to: u64) -> u64 {
        self.admitted
            .iter()
            .filter(|(s, _)| (from..to).contains(s))
            .map(|(_, c)| c)
            .sum()
    }

    /// `(prev, cur, e)` of the sliding window counter at `t`: the units
    /// admitted in window `k - 1`, in window `k`, and `t - k·P`.
    fn counter_windows(&self, t: u64) -> (u64, u64, u64) {
        let p = self.period;
        let start = t / p * p;
        let prev = self.admitted_in(start.saturating_sub(p), start);
        let cur = self.admitted_in(start, start + p);
        (prev, cur, t - start)
    }

    /// Whether a request of `cost` at `t` would be admitted, given the
    /// admissions so far. Monotone: false for `cost` means false for any
    /// larger cost, and (with no further admissions) true at `t` means true
    /// at any later time.
    pub fn admits(&self, cost: u64, t: u64) -> bool {
        let (l, p) = (self.limit, self.period);
        match self.algorithm {
            // A cost of zero is admitted by a bucket whatever its level: it
            // reports the key as it stands (a level below zero is possible
            // behind GCRA's arrival time).
            Algorithm::TokenBucket | Algorithm::Gcra | Algorithm::LeakyBucket => {
                cost == 0 || self.bucket_level_scaled(t) >= i128::from(cost) * i128::from(p)
            }
            Algorithm::FixedWindow => {
                let start = t / p * p;
                self.admitted_in(start, start + p) + cost <= l
            }
            Algorithm::SlidingWindowLog => self.admitted_in(t + 1 - p, t + 1) + cost <= l,
            Algorithm::SlidingWindowCounter => {
                // prev·(P - e)/P + cur + c <= L, multiplied through by P.
                let (prev, cur, e) = self.counter_windows(t);
                u128::from(prev) * u128::from(p - e) + u128::from(cur + cost) * u128::from(p)
                    <= u128::from(l) * u128::from(p)
            }
            other => panic!("no reference model for {other}"),
        }
    }

    /// Whether the key is back to its untouched state at `t`: a full
    /// bucket, or nothing counting in any window the algorithm looks at.
    pub fn untouched(&self, t: u64) -> bool {
        let p = self.period;
        match self.algorithm {
            Algorithm::TokenBucket | Algorithm::Gcra | Algorithm::LeakyBucket => {
                self.bucket_level_scaled(t) == i128::from(self.burst) * i128::from(p)
            }
            Algorithm::FixedWindow => {
                let start = t / p * p;
                self.admitted_in(start, start + p) == 0
            }
            Algorithm::SlidingWindowLog => self.admitted_in(t + 1 - p, t + 1) == 0,
            Algorithm::SlidingWindowCounter => {
                let (prev, cur, e) = self.counter_windows(t);
                cur == 0 && prev * (p - e) == 0
            }
            other => panic!("no reference model for {other}"),
        }
    }

    /// The largest `n` up to the capacity such that a request of cost `n`
    /// would be admitted at `t`, or zero (a binary search: `admits` is
    /// monotone in the cost).
    pub fn remaining(&self, t: u64) -> u64 {
        if !self.admits(0, t) {
            return 0;
        }
        let (mut good, mut bad) = (0, self.capacity() + 1);
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if self.admits(mid, t) {
                good = mid;
            } else {
                bad = mid;
            }
        }
        good
    }

    /// The instant a request made at `now` counts at, by each algorithm's
    /// rule for a clock that is behind the key's state (see each module of
    /// `sluice::algorithm`): the token bucket counts from its stored time
    /// and the sliding log from its newest entry when they are ahead; the
    /// fixed window and the sliding counter keep counting in a newer
    /// stored window, from its start; GCRA and the leaky bucket decide at
    /// `now` against the stored arrival time, however far ahead it is.
    /// With time going forward, `now` itself.
    pub fn counts_at(&self, now: u64) -> u64 {
        let Some(&(last, _)) = self.admitted.last() else {
            return now;
        };
        let p = self.period;
        match self.algorithm {
            Algorithm::TokenBucket | Algorithm::SlidingWindowLog => now.max(last),
            Algorithm::FixedWindow | Algorithm::SlidingWindowCounter => now.max(last / p * p),
            Algorithm::Gcra | Algorithm::LeakyBucket => now,
            other => panic!("no reference model for {other}"),
        }
    }

    /// Whether a request of `cost` made at `now` would be admitted.
    pub fn would_admit(&self, cost: u64, now: u64) -> bool {
        self.admits(cost, self.counts_at(now))
    }

    /// The smallest `d >= 0` such that the key is untouched at the instant
    /// a request made at `now + d` counts at.
    pub fn reset_after(&self, now: u64) -> u64 {
        smallest_from(0, |d| self.untouched(self.counts_at(now + d)))
    }

    /// What the key looks like to a request made at `now`, without
    /// deciding anything: `(remaining, reset_after_us)`.
    pub fn standing(&self, now: u64) -> (u64, u64) {
        (self.remaining(self.counts_at(now)), self.reset_after(now))
    }

    /// Decides a request of `cost` made at `now` (which may be behind
    /// earlier requests) and records it when admitted, returning the
    /// decision the definitions call for. Every duration counts from `now`.
    pub fn decide(&mut self, cost: u64, now: u64) -> Decision {
        // How long until the queue ahead of this request drains: the time
        // until the bucket is full again as it stands before admission.
        let queue_wait = if self.algorithm == Algorithm::LeakyBucket {
            self.reset_after(now)
        } else {
            0
        };
        let allowed = self.would_admit(cost, now);
        // When denied: the soonest the same request fits, if it ever can.
        let retry_after_us = (!allowed && cost <= self.capacity())
            .then(|| smallest_from(1, |d| self.would_admit(cost, now + d)));
        if allowed && cost > 0 {
            let at = self.counts_at(now);
            self.admitted.push((at, cost));
        }
        let (remaining, reset_after) = self.standing(now);
        if allowed {
            Decision::allowed(self.capacity(), remaining, reset_after)
                .with_delay(Duration::from_micros(queue_wait))
        } else {
            Decision::denied(self.capacity(), remaining, reset_after, retry_after_us)
        }
    }
}

/// The smallest `d >= lo` for which `pred(d)` holds, `pred` being monotone
/// (false up to some point, true from there on): an exponential search for
/// an upper bound, then a binary search.
pub fn smallest_from(lo: u64, pred: impl Fn(u64) -> bool) -> u64 {
    if pred(lo) {
        return lo;
    }
    // Invariant: pred(bad) is false and pred(good) is true.
    let mut bad = lo;
    let mut step = 1u64;
    let mut good = loop {
        let probe = lo + step;
        if pred(probe) {
            break probe;
        }
        bad = probe;
        step *= 2;
        assert!(step < 1 << 60, "the predicate never becomes true");
    };
    while good - bad > 1 {
        let mid = bad + (good - bad) / 2;
        if pred(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
}

/// One step of a trace: move the clock by `advance_us` (back when it is
/// negative, as a slower server's clock or a failover would), then ask for
/// `cost`.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Microseconds since the previous step; negative steps back.
    pub advance_us: i64,
    /// The cost asked for, possibly zero or above the capacity.
    pub cost: u64,
}

/// A quota, start time and sequence of requests for one key.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The quota the key is under.
    pub quota: Quota,
    /// The time of the first step before its advance, in µs since the epoch.
    pub start_us: u64,
    /// The requests.
    pub steps: Vec<Step>,
}

impl Trace {
    /// The steps with the absolute time of each: `(now_us, cost)`.
    pub fn timed(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.steps.iter().scan(self.start_us, |now, step| {
            *now = now
                .checked_add_signed(step.advance_us)
                .expect("traces start far from the epoch");
            Some((*now, step.cost))
        })
    }

    /// How many steps are made at a time behind the instant of an earlier
    /// step that changed the key's state (by the core): the steps that take
    /// each algorithm's rule for a clock behind its state.
    pub fn backward_steps_on_state(&self) -> usize {
        let mut state = None;
        let mut last_write: Option<u64> = None;
        let mut behind = 0;
        for (now, cost) in self.timed() {
            if last_write.is_some_and(|at| now < at) {
                behind += 1;
            }
            let (_, next) = algorithm::decide(state.as_ref(), &self.quota, cost, now);
            if next.is_some() {
                state = next;
                last_write = Some(last_write.map_or(now, |at| at.max(now)));
            }
        }
        behind
    }
}

/// What the pure core decides for each step of `trace`, threading the
/// state: what every store must answer.
pub fn core_decisions(trace: &Trace) -> Vec<Decision> {
    let mut state = None;
    trace
        .timed()
        .map(|(now, cost)| {
            let (decision, next) = algorithm::decide(state.as_ref(), &trace.quota, cost, now);
            if next.is_some() {
                state = next;
            }
            decision
        })
        .collect()
}

/// A random valid quota for `algorithm` with small numbers: `L` in 1..=8,
/// `P` in 1,000..=20,000 µs (mostly not a multiple of `L`), and for buckets
/// a burst in 1..=12 or the default.
pub fn quota(algorithm: Algorithm) -> impl Strategy<Value = Quota> {
    (1..=8u64, 1_000..=20_000u64, prop::option::of(1..=12u64)).prop_map(
        move |(limit, period_us, burst)| {
            let burst = burst.filter(|_| algorithm.has_burst());
            Quota::new(algorithm, limit, Duration::from_micros(period_us), burst)
                .expect("small quotas are valid")
        },
    )
}

/// How a wide quota's burst is picked.
#[derive(Clone, Copy, Debug)]
enum BurstPick {
    /// None: the burst follows the limit (when that is valid).
    Default,
    /// A burst of its own, lowered to the largest valid one.
    Of(u64),
    /// The largest valid burst less this: near `MAX_SCALED` or `MAX_LIMIT`.
    BelowMax(u64),
}

/// A random valid quota for `algorithm` across the whole documented range:
/// limits up to [`MAX_LIMIT`] ([`MAX_LOG_LIMIT`] for the log), periods from
/// 1 ms to [`MAX_PERIOD`] (a day and a 30-day month among them), bursts up
/// to the limit, and shapes at the numeric bounds: a scaled bucket
/// capacity or a counter's `limit × period` at or just below
/// [`MAX_SCALED`].
pub fn wide_quota(algorithm: Algorithm) -> impl Strategy<Value = Quota> {
    const DAY_US: u64 = 86_400_000_000;
    let max_period = MAX_PERIOD.as_micros() as u64;
    let limit = prop_oneof![
        1..=8u64,
        9..=1_000u64,
        1_001..=1_000_000u64,
        1_000_001..=MAX_LIMIT,
        Just(MAX_LIMIT),
    ];
    let period = prop_oneof![
        1_000..=20_000u64,
        20_001..=3_600_000_000u64,
        Just(DAY_US),
        Just(30 * DAY_US),
        3_600_000_000..=max_period,
        Just(max_period),
    ];
    let burst = prop_oneof![
        Just(BurstPick::Default),
        (1..=12u64).prop_map(BurstPick::Of),
        (13..=MAX_LIMIT).prop_map(BurstPick::Of),
        (0..=3u64).prop_map(BurstPick::BelowMax),
    ];
    // Limits near the counter's bound: `limit × period <= MAX_SCALED`.
    let at_bound = prop::bool::weighted(0.25);
    (limit, period, burst, at_bound).prop_map(move |(limit, period_us, burst, at_bound)| {
        let limit = match algorithm {
            Algorithm::SlidingWindowLog => limit.min(MAX_LOG_LIMIT),
            Algorithm::SlidingWindowCounter => {
                let most = (MAX_SCALED / period_us).min(MAX_LIMIT);
                if at_bound { most } else { limit.min(most) }
            }
            _ => limit,
        };
        let burst = algorithm.has_burst().then(|| {
            // The largest burst whose scaled capacity is at most MAX_SCALED.
            let unit = period_us / gcd(limit, period_us);
            let most = (MAX_SCALED / unit).min(MAX_LIMIT);
            match burst {
                BurstPick::Default if limit <= most => limit,
                BurstPick::Default => most,
                BurstPick::Of(n) => n.min(most),
                BurstPick::BelowMax(k) => most.saturating_sub(k).max(1),
            }
        });
        Quota::new(algorithm, limit, Duration::from_micros(period_us), burst)
            .expect("limits and bursts are lowered to valid ones")
    })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Random steps under `quota`: advances often zero or small, up to a unit's
/// emission interval, up to `2P`, and from `2P` to `5P`; when `backward`,
/// steps back by up to `2P` too; costs from 0 to two above the capacity,
/// most often 1, sometimes at the capacity.
fn steps(quota: Quota, backward: bool, most: usize) -> impl Strategy<Value = Vec<Step>> {
    let p = i64::try_from(quota.period_us()).expect("periods fit an i64");
    let emission = p / i64::try_from(quota.limit()).expect("limits fit an i64");
    let back_weight = if backward { 2 } else { 0 };
    let advance = prop_oneof![
        3 => Just(0i64),
        3 => 0..=10i64,
        3 => 0..=emission + 1,
        2 => 0..=2 * p,
        1 => 2 * p..=5 * p,
        back_weight => -2 * p..=-1,
        back_weight => -10..=-1i64,
    ];
    let capacity = quota.capacity();
    let cost = prop_oneof![
        3 => Just(1u64),
        2 => 0..=capacity + 2,
        1 => capacity.saturating_sub(2)..=capacity,
    ];
    prop::collection::vec(
        (advance, cost).prop_map(|(advance_us, cost)| Step { advance_us, cost }),
        1..=most,
    )
}

/// A random trace under a quota from `quotas`: an epoch-like start (so
/// windows are not aligned with it) and up to `most` steps (see [`steps`]).
fn trace_of(
    quotas: impl Strategy<Value = Quota>,
    backward: bool,
    most: usize,
) -> impl Strategy<Value = Trace> {
    quotas.prop_flat_map(move |quota| {
        let start = 1_700_000_000_000_000u64..1_700_000_000_000_000 + 1_000_000_000;
        (Just(quota), start, steps(quota, backward, most)).prop_map(|(quota, start_us, steps)| {
            Trace {
                quota,
                start_us,
                steps,
            }
        })
    })
}

/// A random trace for `algorithm` with a small quota ([`quota`]) and up to
/// 60 steps, time stepping back as well as forward.
pub fn trace(algorithm: Algorithm) -> impl Strategy<Value = Trace> {
    trace_of(quota(algorithm), true, 60)
}

/// As [`trace`], with time only going forward.
pub fn forward_trace(algorithm: Algorithm) -> impl Strategy<Value = Trace> {
    trace_of(quota(algorithm), false, 60)
}

/// A random trace for `algorithm` with a quota from the whole documented
/// range ([`wide_quota`]) and up to 40 steps, time stepping back as well
/// as forward.
pub fn wide_trace(algorithm: Algorithm) -> impl Strategy<Value = Trace> {
    trace_of(wide_quota(algorithm), true, 40)
}

/// A tiny deterministic generator, so that every store sees the same traces.
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next number below `n` (below 1 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// A fixed table of traces in which the clock steps back on keys that hold
/// state, for every algorithm, for the store contract: replay each on a
/// store (`clock.set(now)` before each step of [`Trace::timed`], one key per
/// trace) and compare every decision with [`core_decisions`]. Lua and Rust
/// then meet on the branches for a clock behind the state.
///
/// Quotas: sub-second, fractional and second-long shapes, and ones near the
/// 2^50 bound, as in the contract's forward traces. The clock only steps
/// back while the key is not back to its untouched state at the latest
/// time seen, so that a store that drops an untouched key (the memory
/// store's sweep, a Redis TTL) holds the same state as the core. Every
/// trace has such steps (the property tests in `algorithms.rs` check it).
pub fn skew_traces() -> Vec<Trace> {
    let start_us = 1_764_000_000_123_457;
    let mut rng = Xorshift(0x0bac_4ad5_cafe_f00d);
    let mut traces = Vec::new();
    for algorithm in Algorithm::ALL {
        for quota in contract_quotas(algorithm) {
            for _ in 0..2 {
                traces.push(skew_trace(&mut rng, quota, start_us));
            }
        }
    }
    traces
}

/// The contract's quotas of `algorithm`: sub-second, fractional and
/// second-long shapes, bursts above and below the limit, and one near the
/// 2^50 bound of exact Lua arithmetic: 7 per 30 days with a burst of 400
/// (scaled capacity 1.04e15); 13,000 per day for the sliding counter
/// (limit x period 1.12e15); 100,000 per day for the log.
pub fn contract_quotas(algorithm: Algorithm) -> Vec<Quota> {
    const DAY_US: u64 = 86_400_000_000;
    let shapes: [(u64, u64, Option<u64>); 5] = [
        (1, 1_000, None),
        (3, 10_000, None),
        (7, 100_000, Some(4)),
        (5, 1_000_000, Some(9)),
        match algorithm {
            Algorithm::SlidingWindowCounter => (13_000, DAY_US, None),
            Algorithm::SlidingWindowLog => (100_000, DAY_US, None),
            _ => (7, 30 * DAY_US, Some(400)),
        },
    ];
    shapes
        .into_iter()
        .map(|(limit, period_us, burst)| {
            let burst = burst.filter(|_| algorithm.has_burst());
            Quota::new(algorithm, limit, Duration::from_micros(period_us), burst).unwrap()
        })
        .collect()
}

/// One trace of [`skew_traces`]: 40 steps, about one in three back.
fn skew_trace(rng: &mut Xorshift, quota: Quota, start_us: u64) -> Trace {
    let period = quota.period_us();
    let mut state = None;
    let (mut now, mut latest) = (start_us, start_us);
    let mut steps = Vec::new();
    while steps.len() < 40 {
        // The key holds state at the latest time seen: stepping back is safe.
        let held = algorithm::peek(state.as_ref(), &quota, 0, latest).reset_after > Duration::ZERO;
        let to = match rng.below(6) {
            0 | 1 if held => {
                let back = match rng.below(3) {
                    0 => rng.below(10) + 1,
                    1 => rng.below(period / quota.limit() + 1) + 1,
                    _ => rng.below(2 * period) + 1,
                };
                now.saturating_sub(back).max(start_us)
            }
            0 | 1 => continue,
            2 => now,
            3 => now + rng.below(period / quota.limit() + 1),
            _ => now + rng.below(2 * period),
        };
        let cost = rng.below(quota.capacity() + 2) + u64::from(rng.below(4) != 0);
        let advance_us = i64::try_from(to).unwrap() - i64::try_from(now).unwrap();
        steps.push(Step { advance_us, cost });
        now = to;
        latest = latest.max(now);
        let (_, next) = algorithm::decide(state.as_ref(), &quota, cost, now);
        if next.is_some() {
            state = next;
        }
    }
    Trace {
        quota,
        start_us,
        steps,
    }
}

/// Replays [`skew_traces`] on `store`, driven by `clock`, and compares
/// every decision with the core's; keys are `skew-<i>` under the policy
/// `skew`. For the store contract (`tests/stores.rs`).
pub async fn conforms_with_skew(
    store: &impl sluice::Store,
    clock: &sluice::FakeClock,
    target: &str,
) {
    for (i, trace) in skew_traces().iter().enumerate() {
        let key = format!("skew-{i}");
        let expected = core_decisions(trace);
        for (n, ((now, cost), want)) in trace.timed().zip(expected).enumerate() {
            clock.set(now);
            let check = sluice::Check::new("skew", &key, &trace.quota, cost);
            let got = store.decide_one(&check).await.unwrap();
            assert_eq!(
                got,
                want,
                "{target}: skew trace {i} ({:?}) step {n}: cost {cost} at start + {} µs",
                trace.quota,
                i128::from(now) - i128::from(trace.start_us)
            );
        }
    }
}

/// The Redis key of `check`'s state under the default prefix, by the
/// layout `store::redis` documents: `sluice:{<key>}:<policy>`, with `%`,
/// `{` and `}` percent-encoded in the key and the policy (the quota is not
/// part of it: a changed quota carries the state over).
pub fn redis_key(check: &sluice::Check<'_>) -> String {
    let escape = |text: &str| {
        text.replace('%', "%25")
            .replace('{', "%7B")
            .replace('}', "%7D")
    };
    format!("sluice:{{{}}}:{}", escape(check.key), escape(check.policy))
}

/// Polls every future to completion, concurrently, on this task: on a
/// single-threaded runtime every check is queued before the store's call
/// driver runs, so they share calls of up to 128 checks.
pub async fn join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => *slot = Some(out),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
