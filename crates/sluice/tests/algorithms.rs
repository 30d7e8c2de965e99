//! The six algorithms pinned to their definitions.
//!
//! Each property drives `algorithm::decide` over a random trace (a small
//! quota, an epoch-like start that windows are not aligned to, and up to
//! 60 requests of cost 0 to capacity + 2, the clock moving forward, by up
//! to five periods, and back, by up to two, on keys that hold state) and
//! compares every field of every [`Decision`] with a brute-force reference
//! model ([`common::Model`]), written from the definitions and searching
//! for every duration instead of computing it. The `wide_` properties do
//! the same across the whole documented range: limits up to `MAX_LIMIT`,
//! periods up to `MAX_PERIOD`, and shapes at the 2^50 bound. The unit
//! cases at the end show each algorithm on a trace small enough to follow
//! by hand, among them a clock that steps back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use proptest::prelude::*;
use sluice::algorithm::{self, State, gcra, token_bucket};
use sluice::{Algorithm, Decision, Quota};

use common::{Model, Trace};

/// Enough cases to explore small quotas while the whole file runs in a few
/// seconds in debug mode.
const CASES: u32 = 2_000;

/// Cases for the properties over the whole documented range, whose model
/// searches are longer.
const WIDE_CASES: u32 = 1_000;

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
            i128::from(now) - i128::from(trace.start_us)
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

/// A random trace from the whole documented range, for any algorithm.
fn any_wide_trace() -> impl Strategy<Value = Trace> {
    prop::sample::select(Algorithm::ALL.to_vec()).prop_flat_map(common::wide_trace)
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
    /// give the same decisions, field for field, while time goes forward
    /// (behind the state they part: the bucket counts from its stored
    /// time, GCRA from `now` against its arrival time; see `gcra`).
    #[test]
    fn gcra_decides_exactly_as_token_bucket(trace in common::forward_trace(Algorithm::TokenBucket)) {
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
    /// and admitted at `now + d`, whichever way the clock moved before.
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

    /// Issue 14: `peek` tells exactly what a request of its cost would be
    /// told (every field), consuming nothing; a cost of 0 tells the key as
    /// it stands.
    #[test]
    fn peek_is_the_decision_of_its_cost_and_consumes_nothing(trace in any_trace()) {
        let quota = &trace.quota;
        let mut model = Model::new(quota);
        let mut state: Option<State> = None;
        for (i, (now, cost)) in trace.timed().enumerate() {
            for c in [0, 1, cost] {
                let peeked = algorithm::peek(state.as_ref(), quota, c, now);
                let (would, _) = algorithm::decide(state.as_ref(), quota, c, now);
                prop_assert_eq!(peeked, would, "step {}: peek of cost {}", i, c);
            }
            let (remaining, reset_after) = model.standing(now);
            let standing = algorithm::peek(state.as_ref(), quota, 0, now);
            prop_assert_eq!(
                (standing.remaining, standing.reset_after),
                (remaining, Duration::from_micros(reset_after)),
                "step {}: the standing", i
            );
            prop_assert_eq!(
                algorithm::peek(state.as_ref(), quota, 1, now),
                model.clone().decide(1, now),
                "step {}", i
            );

            let (decision, next) = algorithm::decide(state.as_ref(), quota, cost, now);
            prop_assert_eq!(decision, model.decide(cost, now), "step {}", i);
            if next.is_some() {
                state = next;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(WIDE_CASES))]

    #[test]
    fn wide_token_bucket_matches_model(trace in common::wide_trace(Algorithm::TokenBucket)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn wide_gcra_matches_model(trace in common::wide_trace(Algorithm::Gcra)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn wide_leaky_bucket_matches_model(trace in common::wide_trace(Algorithm::LeakyBucket)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn wide_fixed_window_matches_model(trace in common::wide_trace(Algorithm::FixedWindow)) {
        check_against_model(&trace)?;
    }

    #[test]
    fn wide_sliding_window_log_matches_model(
        trace in common::wide_trace(Algorithm::SlidingWindowLog),
    ) {
        check_against_model(&trace)?;
    }

    #[test]
    fn wide_sliding_window_counter_matches_model(
        trace in common::wide_trace(Algorithm::SlidingWindowCounter),
    ) {
        check_against_model(&trace)?;
    }

    /// As [`accurate_retry_after`], across the whole documented range.
    #[test]
    fn wide_accurate_retry_after(trace in any_wide_trace()) {
        let quota = &trace.quota;
        let mut state: Option<State> = None;
        for (i, (now, cost)) in trace.timed().enumerate() {
            let (decision, next) = algorithm::decide(state.as_ref(), quota, cost, now);
            if let Some(d) = decision.retry_after.filter(|_| !decision.allowed) {
                let d = u64::try_from(d.as_micros()).unwrap();
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
}

/// A trace, then a quota its key's policy changes to and how long after
/// the trace's latest instant: mostly another quota of the same algorithm
/// (small or from the whole range), else of any algorithm.
fn reload() -> impl Strategy<Value = (Trace, Quota, u64)> {
    prop_oneof![any_trace(), any_wide_trace()].prop_flat_map(|trace| {
        let algorithm = trace.quota.algorithm();
        let to = prop_oneof![
            2 => common::quota(algorithm).boxed(),
            2 => common::wide_quota(algorithm).boxed(),
            1 => prop::sample::select(Algorithm::ALL.to_vec())
                .prop_flat_map(common::wide_quota)
                .boxed(),
        ];
        let period = trace.quota.period_us();
        (Just(trace), to, prop_oneof![Just(0), 0..=2 * period])
    })
}

/// The state a trace leaves its key in, and the latest instant it reached.
fn end_of(trace: &Trace) -> (Option<State>, u64) {
    let (mut state, mut latest) = (None, trace.start_us);
    for (now, cost) in trace.timed() {
        latest = latest.max(now);
        let (_, next) = algorithm::decide(state.as_ref(), &trace.quota, cost, now);
        if next.is_some() {
            state = next;
        }
    }
    (state, latest)
}

/// Scaled units per token of `quota` (see `Quota`): `period / gcd`.
fn scaled_unit(quota: &Quota) -> u64 {
    let (mut a, mut b) = (quota.limit(), quota.period_us());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    quota.period_us() / a
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(WIDE_CASES))]

    /// Issue 11: what `algorithm::carry` leaves of a key whose policy's
    /// numbers change, at an instant the key's clock is not behind. With
    /// `before` what a cost-1 check is told under the old quota and
    /// `after` under the new one, and `moved = max(0, before.remaining +
    /// capacity_new - capacity_old)`:
    ///
    /// - (a) no fresh allowance: `after.remaining <= moved` (except for a
    ///   log whose period shortens, which counts only the entries within
    ///   its new period);
    /// - (b) a raised limit shows at once: `after.remaining == moved`
    ///   where something remained (the log: under the same period);
    /// - lowered and raised back at the same instant leaves no more than
    ///   before (where the debt is within what a carry keeps,
    ///   `algorithm::MAX_DEBT`, and a counter's count within `2^50 / period`);
    /// - a change of algorithm other than between buckets starts afresh.
    #[test]
    fn a_carry_never_hands_out_a_fresh_allowance((trace, new, later) in reload()) {
        let old = trace.quota;
        let (state, latest) = end_of(&trace);
        let now = latest + later;
        let Some(state) = state else { return Ok(()) };
        let carried = algorithm::carry(&state, &old, &new, now);
        let (a, b) = (old.algorithm(), new.algorithm());
        if a != b && !(a.has_burst() && b.has_burst()) {
            prop_assert_eq!(carried, None);
            return Ok(());
        }
        let before = algorithm::peek(Some(&state), &old, 0, now);
        let after = algorithm::peek(carried.as_ref(), &new, 0, now);
        let moved = (before.remaining + new.capacity()).saturating_sub(old.capacity());
        let log = b == Algorithm::SlidingWindowLog;
        if !(log && new.period_us() < old.period_us()) {
            prop_assert!(after.remaining <= moved, "(a) {:?} then {:?}", before, after);
        }
        if before.remaining > 0 && (!log || new.period_us() == old.period_us()) {
            prop_assert_eq!(after.remaining, moved, "(b) {:?} then {:?}", before, after);
        }
        let held = old.capacity() - before.remaining;
        let kept = match b {
            _ if b.has_burst() => held.saturating_mul(scaled_unit(&new)) <= algorithm::MAX_DEBT,
            Algorithm::SlidingWindowCounter => held <= sluice::quota::MAX_SCALED / new.period_us(),
            _ => true,
        };
        if before.remaining > 0 && kept {
            let back = carried.and_then(|c| algorithm::carry(&c, &new, &old, now));
            let again = algorithm::peek(back.as_ref(), &old, 0, now);
            prop_assert!(again.remaining <= before.remaining, "{:?} then {:?}", before, again);
        }
    }
}

/// The contract's table of traces with a clock that steps back
/// ([`common::skew_traces`], which `tests/stores.rs` replays on every
/// store) is right by the model, and every trace in it does step back on
/// a key that holds state.
#[test]
fn skew_traces_match_model_and_step_back() {
    for (i, trace) in common::skew_traces().iter().enumerate() {
        assert!(
            trace.backward_steps_on_state() > 0,
            "skew trace {i} ({:?}) never steps back on state",
            trace.quota
        );
        check_against_model(trace).unwrap_or_else(|e| panic!("skew trace {i}: {e}"));
    }
}

/// The random traces do step back on keys that hold state, often.
#[test]
fn random_traces_step_back_on_state() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    for strategy in [any_trace().boxed(), any_wide_trace().boxed()] {
        let stepping_back = (0..200)
            .filter(|_| {
                let trace = strategy.new_tree(&mut runner).unwrap().current();
                trace.backward_steps_on_state() > 0
            })
            .count();
        assert!(
            stepping_back >= 100,
            "{stepping_back} of 200 traces step back on state"
        );
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

// ---------------------------------------------------------------------------
// A clock that steps back on a key that holds state.
// ---------------------------------------------------------------------------

#[test]
fn token_bucket_counts_from_its_stored_time_when_the_clock_is_behind() {
    // 1 per 1000 µs, room for 2. Both spent at T0 + 500; a request from a
    // clock 300 µs behind is decided at T0 + 500, and told to wait 300 µs
    // more than a request made then.
    let q = quota(Algorithm::TokenBucket, 1, 1_000, Some(2));
    let d = run(&q, &[(T0 + 500, 2), (T0 + 200, 1), (T0 + 1_500, 1)]);
    assert!(!d[1].allowed);
    assert_eq!(d[1].retry_after, Some(us(1_300)));
    assert_eq!(d[1].reset_after, us(2_300));
    assert!(d[2].allowed);
}

#[test]
fn fixed_window_keeps_counting_in_a_newer_window_when_the_clock_is_behind() {
    // The window [T0 + 1000, T0 + 2000) is spent. A clock behind, in the
    // previous window, must not start that window afresh: it counts in the
    // newer one, and waits for its end.
    let q = quota(Algorithm::FixedWindow, 3, 1_000, None);
    let d = run(&q, &[(T0 + 1_200, 3), (T0 + 900, 1), (T0 + 900, 0)]);
    assert!(d[0].allowed);
    assert!(!d[1].allowed, "a newer window was forgotten");
    assert_eq!(d[1].retry_after, Some(us(1_100)));
    assert_eq!((d[2].remaining, d[2].reset_after), (0, us(1_100)));
}

#[test]
fn sliding_window_counter_weighs_from_the_newer_windows_start_when_the_clock_is_behind() {
    // 10 per 1000 µs: 5 in [T0, T0 + 1000), then 7 at T0 + 1500 (the 5
    // weigh 2.5 there). A clock behind, at T0 + 700, counts from the start
    // of the newer window, where the 5 weigh all they can: 12 > 10, so
    // nothing remains, and a cost of 1 fits once their weight is down to
    // 2/5, 600 µs into the window. Weighing from the caller's own place in
    // its window (700 µs in, a weight of 3/10: 8.5) would admit it.
    let q = quota(Algorithm::SlidingWindowCounter, 10, 1_000, None);
    let d = run(&q, &[(T0 + 100, 5), (T0 + 1_500, 7), (T0 + 700, 1)]);
    assert!(d[0].allowed && d[1].allowed);
    assert!(!d[2].allowed, "weighed from the caller's clock");
    assert_eq!(d[2].remaining, 0);
    assert_eq!(d[2].retry_after, Some(us(300 + 600)));
    assert_eq!(d[2].reset_after, us(300 + 2_000));
}

#[test]
fn sliding_window_log_counts_from_its_newest_entry_when_the_clock_is_behind() {
    // 2 per 1000 µs, both at T0 + 500 and T0 + 600: a clock behind, at
    // T0 + 100, counts from T0 + 600, where both still count.
    let q = quota(Algorithm::SlidingWindowLog, 2, 1_000, None);
    let d = run(&q, &[(T0 + 500, 1), (T0 + 600, 1), (T0 + 100, 1)]);
    assert!(!d[2].allowed);
    assert_eq!(d[2].retry_after, Some(us(500 + 900)));
    assert_eq!(d[2].reset_after, us(500 + 1_000));
}

#[test]
fn gcra_far_behind_its_arrival_time_waits_until_the_clock_catches_up() {
    // 1 per 1000 µs, burst 2: both spent at T0 + 5000, so the arrival time
    // is T0 + 7000. A clock at T0 finds it 7000 µs ahead, 5000 µs beyond
    // the tolerance: a cost of 1 fits at T0 + 6000, and the key is
    // untouched at T0 + 7000.
    let q = quota(Algorithm::Gcra, 1, 1_000, Some(2));
    let d = run(&q, &[(T0 + 5_000, 2), (T0, 1), (T0, 0)]);
    assert!(!d[1].allowed);
    assert_eq!(d[1].retry_after, Some(us(6_000)));
    assert_eq!(d[1].reset_after, us(7_000));
    assert_eq!((d[2].remaining, d[2].reset_after), (0, us(7_000)));
}
