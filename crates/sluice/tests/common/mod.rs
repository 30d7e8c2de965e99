//! Shared helpers for the integration tests: a brute-force reference model
//! of the six algorithms and proptest strategies for random traces.
//!
//! The model is written from the algorithms' definitions, not from the
//! implementation: it keeps the whole history of admissions and answers
//! "would a request of cost `c` be admitted at `t`?" by re-reading that
//! history. Every duration in a [`Decision`] is then found by searching
//! over whole microseconds on that predicate, never by a closed form, so
//! that a rounding slip in the implementation cannot be mirrored here.

// Each test crate that declares `mod common;` compiles its own copy and may
// use only part of it.
#![allow(dead_code)]

use std::time::Duration;

use proptest::prelude::*;
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
    /// Every admission of a positive cost, `(time_us, cost)`, in time order.
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

    /// The token bucket's level at `t`, multiplied by `P` so that it is an
    /// exact integer: `min(B·P, min over admitted s <= t of
    /// [B·P + L·(t - s) - P·(costs admitted at times in [s, t])])`.
    fn bucket_level_scaled(&self, t: u64) -> i128 {
        let (l, p, b) = (
            i128::from(self.limit),
            i128::from(self.period),
            i128::from(self.burst),
        );
        let full = b * p;
        let mut level = full;
        let mut spent_since = 0i128;
        // Walking back in time, `spent_since` is the sum over [s, t]. When
        // several admissions share a time, only the last one walked (which
        // has them all summed) matters for the minimum.
        for &(s, c) in self.admitted.iter().rev().filter(|(s, _)| *s <= t) {
            spent_since += i128::from(c);
            level = level.min(full + l * i128::from(t - s) - p * spent_since);
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
            Algorithm::TokenBucket | Algorithm::Gcra | Algorithm::LeakyBucket => {
                self.bucket_level_scaled(t) >= i128::from(cost) * i128::from(p)
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

    /// The largest `n` such that a request of cost `n` would be admitted at
    /// `t`, found by trying every cost up to the capacity.
    pub fn remaining(&self, t: u64) -> u64 {
        (0..=self.capacity())
            .take_while(|&n| self.admits(n, t))
            .last()
            .unwrap_or(0)
    }

    /// The smallest `d >= 0` at which the key is untouched at `t + d`.
    pub fn reset_after(&self, t: u64) -> u64 {
        smallest_from(0, |d| self.untouched(t + d))
    }

    /// What the key looks like at `t` without deciding anything:
    /// `(remaining, reset_after_us)`.
    pub fn standing(&self, t: u64) -> (u64, u64) {
        (self.remaining(t), self.reset_after(t))
    }

    /// Decides a request of `cost` at `now` (times never go back) and
    /// records it when admitted, returning the decision the definitions
    /// call for.
    pub fn decide(&mut self, cost: u64, now: u64) -> Decision {
        if let Some(&(last, _)) = self.admitted.last() {
            assert!(last <= now, "the model only goes forward in time");
        }
        // How long until the queue ahead of this request drains: the time
        // until the bucket is full again as it stands before admission.
        let queue_wait = if self.algorithm == Algorithm::LeakyBucket {
            self.reset_after(now)
        } else {
            0
        };
        let allowed = self.admits(cost, now);
        // When denied: the soonest the same request fits, if it ever can.
        let retry_after_us = (!allowed && cost <= self.capacity())
            .then(|| smallest_from(1, |d| self.admits(cost, now + d)));
        if allowed && cost > 0 {
            self.admitted.push((now, cost));
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
        assert!(step < 1 << 40, "the predicate never becomes true");
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

/// One step of a trace: advance the clock by `advance_us`, then ask for
/// `cost`.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Microseconds since the previous step.
    pub advance_us: u64,
    /// The cost asked for, possibly zero or above the capacity.
    pub cost: u64,
}

/// A random quota, start time and sequence of requests for one key.
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
    /// The steps with the absolute time of each.
    pub fn timed(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.steps.iter().scan(self.start_us, |now, step| {
            *now += step.advance_us;
            Some((*now, step.cost))
        })
    }
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

/// A random trace for `algorithm`: an epoch-like start (so windows are not
/// aligned with it) and 1..=60 steps whose advances are often zero or small
/// and at most `2P`, and whose costs run from 0 to two above the capacity.
pub fn trace(algorithm: Algorithm) -> impl Strategy<Value = Trace> {
    quota(algorithm).prop_flat_map(|quota| {
        let p = quota.period_us();
        let emission = p / quota.limit();
        let advance = prop_oneof![
            3 => Just(0u64),
            3 => 0..=10u64,
            3 => 0..=emission + 1,
            2 => 0..=2 * p,
        ];
        let cost = prop_oneof![
            3 => Just(1u64),
            2 => 0..=quota.capacity() + 2,
        ];
        let steps = prop::collection::vec(
            (advance, cost).prop_map(|(advance_us, cost)| Step { advance_us, cost }),
            1..=60,
        );
        let start = 1_700_000_000_000_000u64..1_700_000_000_000_000 + 1_000_000_000;
        (Just(quota), start, steps).prop_map(|(quota, start_us, steps)| Trace {
            quota,
            start_us,
            steps,
        })
    })
}

/// The Redis key of `check`'s state under the default prefix, by the
/// layout `store::redis` documents: `sluice:{<key>}:<policy>:<fingerprint>`,
/// with `%`, `{` and `}` percent-encoded in the key and the policy, and the
/// quota's fingerprint as eight lowercase hex digits.
pub fn redis_key(check: &sluice::Check<'_>) -> String {
    let escape = |text: &str| {
        text.replace('%', "%25")
            .replace('{', "%7B")
            .replace('}', "%7D")
    };
    format!(
        "sluice:{{{}}}:{}:{:08x}",
        escape(check.key),
        escape(check.policy),
        check.quota.fingerprint()
    )
}
