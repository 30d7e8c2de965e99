//! The six algorithms pinned to their definitions.
//!
//! Each property drives `algorithm::decide` over a random trace (a small
//! quota, an epoch-like start that windows are not aligned to, and up to
//! 60 requests of cost 0 to capacity + 2) and compares every field of every
//! [`Decision`] with a brute-force reference model ([`common::Model`]),
//! written from the definitions and searching for every duration instead
//! of computing it. The unit cases at the end show each algorithm on a
//! trace small enough to follow by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use proptest::prelude::*;
use sluice::algorithm::{self, State, gcra, token_bucket};
use sluice::{Algorithm, Decision, Quota};

use common::{Model, Trace};

/// Enough cases to explore small quotas while the whole file runs in a few
/// seconds in debug mode.
const CASES: u32 = 256;

/// Feeds `trace` to `algorithm::decide`, threading the returned state, and
/// checks every decision against the model. Also checks that the state is
/// replaced exactly when a positive cost is admitted.
fn check_against_model(trace: &Trace) -> Result<(), TestCaseError> {
    let quota = &trace.quota;
    let mut model = Model::new(quota);
    let mut state: Option<State> = None;
    for (i, (now, cost)) in trace.timed().enumerate() {
        let (got, next) = algorithm::decide(state.as_ref(), quota, cost, now);
        let want = model.decide(cost, now);
        prop_assert_eq!(
            got,
            want,
            "step {} (cost {} at start + {} µs)",
            i,
            cost,
            now - trace.start_us
        );
        prop_assert_eq!(
            next.is_some(),
            got.allowed && cost > 0,
            "step {}: a state must be returned exactly when a positive cost is admitted",
            i
        );
        if next.is_some() {
            state = next;
        }
    }
    Ok(())
}

/// A random trace for any of the six algorithms.
fn any_trace() -> impl Strategy<Value = Trace> {
    prop::sample::select(Algorithm::ALL.to_vec()).prop_flat_map(common::trace)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn token_bucket_matches_model(trace in common::trace(Algorithm::TokenBucket)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn gcra_matches_model(trace in common::trace(Algorithm::Gcra)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn leaky_bucket_matches_model(trace in common::trace(Algorithm::LeakyBucket)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn fixed_window_matches_model(trace in common::trace(Algorithm::FixedWindow)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn sliding_window_log_matches_model(trace in common::trace(Algorithm::SlidingWindowLog)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn sliding_window_counter_matches_model(
        trace in common::trace(Algorithm::SlidingWindowCounter),
    ) {
        check_against_model(&trace)?;
    }

    /// GCRA is the token bucket kept as one time: the same quota and trace
    /// give the same decisions, field for field.
    #[test]
    fn gcra_decides_exactly_as_token_bucket(trace in common::trace(Algorithm::TokenBucket)) {
        let bucket_quota = trace.quota;
        let gcra_quota = Quota::new(
            Algorithm::Gcra,
            bucket_quota.limit(),
            bucket_quota.period(),
            Some(bucket_quota.burst()),
        )
        .unwrap();
        let mut bucket: Option<token_bucket::State> = None;
        let mut tat: Option<gcra::State> = None;
        for (i, (now, cost)) in trace.timed().enumerate() {
            let (by_bucket, next_bucket) = token_bucket::decide(bucket.as_ref(), &bucket_quota, cost, now);
            let (by_gcra, next_tat) = gcra::decide(tat.as_ref(), &gcra_quota, cost, now);
            prop_assert_eq!(by_gcra, by_bucket, "step {} (cost {})", i, cost);
            bucket = next_bucket.or(bucket);
            tat = next_tat.or(tat);
        }
    }

    /// Governor's `accurate_not_until`: after a denial with
    /// `retry_after = d`, the same request is still denied at `now + d - 1`
    /// and admitted at `now + d`.
    #[test]
    fn accurate_retry_after(trace in any_trace()) {
        let quota = &trace.quota;
        let mut state: Option<State> = None;
        for (i, (now, cost)) in trace.timed().enumerate() {
            let (decision, next) = algorithm::decide(state.as_ref(), quota, cost, now);
            if let Some(d) = decision.retry_after.filter(|_| !decision.allowed) {
                let d = u64::try_from(d.as_micros()).unwrap();
                prop_assert!(d > 0, "step {}: a denial's retry_after is positive", i);
                let (early, _) = algorithm::decide(state.as_ref(), quota, cost, now + d - 1);
                prop_assert!(!early.allowed, "step {}: admitted 1 µs before retry_after {} µs", i, d);
                let (on_time, _) = algorithm::decide(state.as_ref(), quota, cost, now + d);
                prop_assert!(on_time.allowed, "step {}: denied at retry_after {} µs", i, d);
            }
            if next.is_some() {
                state = next;
            }
        }
    }

    /// `peek` changes nothing and tells what a cost-1 request would be told,
    /// except that `remaining` and `reset_after` describe the key as it
    /// stands (before any consumption).
    #[test]
    fn peek_is_a_cost_one_question_that_consumes_nothing(trace in any_trace()) {
        let quota = &trace.quota;
        let mut model = Model::new(quota);
        let mut state: Option<State> = None;
        for (i, (now, cost)) in trace.timed().enumerate() {
            let before = state.clone();
            let peeked = algorithm::peek(state.as_ref(), quota, now);
            prop_assert_eq!(&state, &before);

            let (remaining, reset_after) = model.standing(now);
            let would = model.clone().decide(1, now);
            let mut want = would;
            want.remaining = remaining;
            want.reset_after = Duration::from_micros(reset_after);
            prop_assert_eq!(peeked, want, "step {}", i);

            let (decision, next) = algorithm::decide(state.as_ref(), quota, cost, now);
            prop_assert_eq!(decision, model.decide(cost, now), "step {}", i);
            if next.is_some() {
                state = next;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Unit cases, one trace per algorithm that can be followed by hand.
// ---------------------------------------------------------------------------

/// An epoch-like instant that is a multiple of every period used below, so
/// that window boundaries are easy to name.
const T0: u64 = 1_700_000_000_000_000;

fn quota(algorithm: Algorithm, limit: u64, period_us: u64, burst: Option<u64>) -> Quota {
    Quota::new(algorithm, limit, Duration::from_micros(period_us), burst).unwrap()
}

/// Runs `(time, cost)` requests in order, threading the state.
fn run(quota: &Quota, requests: &[(u64, u64)]) -> Vec<Decision> {
    let mut state = None;
    requests
        .iter()
        .map(|&(now, cost)| {
            let (decision, next) = algorithm::decide(state.as_ref(), quota, cost, now);
            if next.is_some() {
                state = next;
            }
            decision
        })
        .collect()
}

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

#[test]
fn token_bucket_polled_faster_than_it_refills_is_never_starved() {
    // 1 token per 1000 µs, room for 2, asked every 600 µs: denials do not
    // reset the refill, so about 60% of the polls go through and no two
    // polls in a row are denied.
    let q = quota(Algorithm::TokenBucket, 1, 1_000, Some(2));
    let polls: Vec<(u64, u64)> = (0..1_000).map(|i| (T0 + i * 600, 1)).collect();
    let decisions = run(&q, &polls);
    let admitted = decisions.iter().filter(|d| d.allowed).count();
    assert!(
        (595..=605).contains(&admitted),
        "{admitted} of 1000 admitted"
    );
    assert!(
        decisions.windows(2).all(|w| w[0].allowed || w[1].allowed),
        "two polls in a row were denied"
    );
}

#[test]
fn token_bucket_with_a_fractional_emission_interval() {
    // 3 per 1000 µs: one token every 333⅓ µs, so durations round up.
    let q = quota(Algorithm::TokenBucket, 3, 1_000, None);
    let d = run(&q, &[(T0, 3), (T0, 1), (T0 + 333, 1), (T0 + 334, 1)]);
    assert!(d[0].allowed && d[0].remaining == 0);
    assert_eq!(d[0].reset_after, us(1_000));
    assert!(!d[1].allowed);
    assert_eq!(d[1].retry_after, Some(us(334)));
    assert!(!d[2].allowed, "333 µs refill less than one token");
    assert_eq!(d[2].retry_after, Some(us(1)));
    assert!(d[3].allowed);
    // 334 µs refilled 1.002 tokens and 1 left: 2.998 tokens are missing,
    // 999⅓ µs of refill, rounded up.
    assert_eq!(d[3].reset_after, us(1_000));
}

#[test]
fn token_bucket_refuses_a_cost_above_the_burst_forever() {
    let q = quota(Algorithm::TokenBucket, 2, 1_000, Some(4));
    let d = run(&q, &[(T0, 5), (T0, 4)]);
    assert!(!d[0].allowed);
    assert_eq!((d[0].retry_after, d[0].remaining), (None, 4));
    assert!(d[1].allowed, "the refused request consumed nothing");
}

#[test]
fn gcra_answers_as_the_token_bucket_on_a_burst() {
    let requests = [(T0, 2), (T0 + 100, 1), (T0 + 400, 1), (T0 + 900, 0)];
    let by_bucket = run(&quota(Algorithm::TokenBucket, 2, 1_000, Some(3)), &requests);
    let by_gcra = run(&quota(Algorithm::Gcra, 2, 1_000, Some(3)), &requests);
    assert_eq!(by_gcra, by_bucket);
    assert!(by_gcra[1].allowed && !by_gcra[2].allowed);
}

#[test]
fn leaky_bucket_queues_with_rounded_up_delays() {
    // 3 per 1000 µs, 3 in the bucket: the queue drains one unit every
    // 333⅓ µs, so each request waits for the units ahead of it.
    let q = quota(Algorithm::LeakyBucket, 3, 1_000, None);
    let d = run(&q, &[(T0, 1), (T0, 1), (T0, 1), (T0, 1)]);
    let delays: Vec<Duration> = d.iter().map(|d| d.delay).collect();
    assert_eq!(delays, [us(0), us(334), us(667), us(0)]);
    assert!(d[..3].iter().all(|d| d.allowed));
    assert!(!d[3].allowed);
    assert_eq!(d[3].retry_after, Some(us(334)));
}

#[test]
fn fixed_window_allows_twice_the_limit_across_a_boundary() {
    let q = quota(Algorithm::FixedWindow, 3, 1_000, None);
    let end = T0 + 999;
    let d = run(&q, &[(end, 3), (end, 1), (T0 + 1_000, 3)]);
    assert!(d[0].allowed);
    assert_eq!((d[0].remaining, d[0].reset_after), (0, us(1)));
    assert!(!d[1].allowed);
    assert_eq!(d[1].retry_after, Some(us(1)));
    assert!(d[2].allowed, "a new window starts from zero");
    assert_eq!(d[2].reset_after, us(1_000));
}

#[test]
fn sliding_window_log_is_exact_to_the_microsecond() {
    // 2 per 1000 µs: an admission at t counts in (now - 1000, now], so it
    // stops counting at exactly t + 1000.
    let q = quota(Algorithm::SlidingWindowLog, 2, 1_000, None);
    let d = run(
        &q,
        &[
            (T0, 1),
            (T0 + 400, 1),
            (T0 + 999, 1),
            (T0 + 1_000, 1),
            (T0 + 1_000, 1),
        ],
    );
    assert!(d[0].allowed && d[1].allowed);
    assert_eq!(
        d[1].reset_after,
        us(1_000),
        "until the second admission expires"
    );
    assert!(!d[2].allowed);
    assert_eq!(d[2].retry_after, Some(us(1)));
    assert!(d[3].allowed);
    assert!(!d[4].allowed);
    assert_eq!(d[4].retry_after, Some(us(400)));
}

#[test]
fn sliding_window_counter_weighs_the_previous_window() {
    // 10 per 1000 µs, all 10 spent in the previous window. 250 µs into the
    // current one its weight is 3/4: an estimate of 7.5, so 2 remain and a
    // cost of 3 fits once the weight is down to 7/10, at 300 µs.
    let q = quota(Algorithm::SlidingWindowCounter, 10, 1_000, None);
    let d = run(&q, &[(T0 + 500, 10), (T0 + 1_250, 0), (T0 + 1_250, 3)]);
    assert!(d[0].allowed);
    assert_eq!(d[0].reset_after, us(1_500), "until the window after next");
    assert_eq!((d[1].remaining, d[1].reset_after), (2, us(750)));
    assert!(!d[2].allowed);
    assert_eq!(d[2].retry_after, Some(us(50)));
}
