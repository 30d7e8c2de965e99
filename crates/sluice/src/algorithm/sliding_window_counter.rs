//! Sliding window counter: the weighted two-window estimate.
//!
//! Counts are kept per fixed window (aligned to the Unix epoch) for the
//! current and the previous window. At `elapsed` microseconds into the
//! current window the estimate of what was admitted in the last `period` is
//! `previous × (period - elapsed) / period + current`, and a request of
//! cost `c` is admitted iff `estimate + c <= limit`. The comparison is made
//! exactly in integers (both sides multiplied by `period`); `remaining`
//! rounds the estimate up, so it never promises more than would be admitted.
//!
//! A clock behind the stored window (a slower server, a Redis failover)
//! keeps counting in that newer window, as if the request were made at its
//! start: the weight is taken at `elapsed = 0` (the previous window weighs
//! in full, so the estimate may exceed the limit and even a cost of zero
//! is denied until the weight fades), never from the caller's place in its
//! own window. Every duration is lengthened by the difference, so that it
//! still counts from the caller's `now`.
//!
//! When the quota's numbers change (see [`carry`]), the counts stay under
//! the same period; under another one the estimate at `now` (rounded up)
//! becomes the count of the new window that holds `now`, as if spent at
//! `now`.
//!
//! It smooths the fixed window's boundary burst with two counters per key,
//! at the price of assuming the previous window's requests were evenly
//! spread.

use crate::{Decision, Quota};

/// The counts of the current and the previous window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// The current window's index `k`: it starts at `k × period` µs.
    pub(crate) window: u64,
    /// Units admitted in window `k`.
    pub(crate) current: u64,
    /// Units admitted in window `k - 1`.
    pub(crate) previous: u64,
}

/// Decides a request of `cost` at `now_us`; returns the state to store,
/// `None` when nothing changes (a denial, or a cost of zero).
#[inline(always)]
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    let period = quota.period_us();
    let limit = quota.limit();
    let mut window = now_us / period;
    let (mut current, mut previous) = (0, 0);
    if let Some(s) = state {
        if s.window >= window {
            // Equal, or ahead when our clock is behind: keep its counts.
            (window, current, previous) = (s.window, s.current, s.previous);
        } else if s.window + 1 == window {
            previous = s.current;
        }
    }
    let start = window * period;
    let skew = start.saturating_sub(now_us);
    let now_us = now_us.max(start);
    let elapsed = now_us - start;

    // Everything below is multiplied by `period` to stay in integers.
    let weighted_previous = u128::from(previous) * u128::from(period - elapsed);
    let scaled = |units: u64| u128::from(units) * u128::from(period);
    let fits =
        |current: u64, cost: u64| weighted_previous + scaled(current + cost) <= scaled(limit);
    let remaining = |current: u64| {
        let used = current + ceil_div_u128(weighted_previous, u128::from(period));
        limit.saturating_sub(used)
    };
    let reset_after = |current: u64| {
        if current > 0 {
            start + 2 * period - now_us
        } else if previous > 0 {
            start + period - now_us
        } else {
            0
        }
    };

    let (decision, next) = if cost > limit {
        let d = Decision::denied(limit, remaining(current), reset_after(current), None);
        (d, None)
    } else if fits(current, cost) {
        let current = current + cost;
        let d = Decision::allowed(limit, remaining(current), reset_after(current));
        let next = (cost > 0).then_some(State {
            window,
            current,
            previous,
        });
        (d, next)
    } else {
        let retry = retry_after(period, limit, current, previous, cost) + start - now_us;
        let d = Decision::denied(limit, remaining(current), reset_after(current), Some(retry));
        (d, None)
    };
    (decision.delayed_by(skew), next)
}

/// Microseconds from the start of the current window until a denied request
/// of `cost <= limit` would fit, if nothing else is admitted meanwhile.
fn retry_after(period: u64, limit: u64, current: u64, previous: u64, cost: u64) -> u64 {
    // The earliest `elapsed` at which `weight × (period - elapsed) <= room × period`.
    let earliest = |weight: u64, room: u64| -> u64 {
        if weight == 0 {
            return 0;
        }
        let slack = u128::from(room) * u128::from(period) / u128::from(weight);
        period.saturating_sub(u64::try_from(slack).unwrap_or(u64::MAX))
    };
    if current + cost <= limit {
        // Still this window: wait for the previous window's weight to fade.
        earliest(previous, limit - current - cost)
    } else {
        // The next window, where today's count becomes the previous one.
        period + earliest(current, limit - cost)
    }
}

/// The state under `new` of a key that holds `state` under `old` at
/// `now_us`: the same counts when the period is unchanged; else the
/// estimate at `now_us`, rounded up, as the count of the new window that
/// holds `now_us` (or the stored window's start, for a clock behind it),
/// with nothing in the previous one. The count is kept at most
/// `MAX_SCALED / period` (at least the new limit: the key is still denied
/// for the window) so that the scripts' products stay exact. `None` when
/// the estimate is nothing.
pub fn carry(state: &State, old: &Quota, new: &Quota, now_us: u64) -> Option<State> {
    let (period, new_period) = (old.period_us(), new.period_us());
    if period == new_period {
        return Some(*state);
    }
    let now_window = now_us / period;
    let (window, current, previous) = if state.window >= now_window {
        (state.window, state.current, state.previous)
    } else if state.window + 1 == now_window {
        (now_window, 0, state.current)
    } else {
        return None;
    };
    let start = window * period;
    let t = now_us.max(start);
    let weighted = u128::from(previous) * u128::from(period - (t - start));
    let used = current
        .saturating_add(ceil_div_u128(weighted, u128::from(period)))
        .min(crate::quota::MAX_SCALED / new_period);
    (used > 0).then_some(State {
        window: t / new_period,
        current: used,
        previous: 0,
    })
}

fn ceil_div_u128(a: u128, b: u128) -> u64 {
    u64::try_from(a.div_ceil(b)).unwrap_or(u64::MAX)
}
