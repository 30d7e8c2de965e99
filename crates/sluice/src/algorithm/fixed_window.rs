//! Fixed window counter.
//!
//! Time is cut into windows `[k·period, (k+1)·period)` aligned to the Unix
//! epoch, each with its own counter. A request of cost `c` is admitted iff
//! the window's count plus `c` is at most `limit`. Cheap and predictable,
//! but a client can spend up to twice the limit across a window boundary.
//!
//! A clock behind the stored window (a slower server, a Redis failover)
//! keeps counting in that newer window, as if the request were made at its
//! start, rather than forget what it admitted; every duration is
//! lengthened by the difference, so that it still counts from the caller's
//! `now`.
//!
//! When the quota's numbers change (see [`carry`]), the current window's
//! count stays: under the same period it counts against the new limit at
//! once; under another period it moves to the new window that holds `now`,
//! as if spent at `now` (the window does not record when within it).

use crate::{Decision, Quota};

/// The count of one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// The window's index `k`: it starts at `k × period` µs after the epoch.
    pub(crate) window: u64,
    /// Units admitted in that window.
    pub(crate) count: u64,
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
    let mut count = 0;
    if let Some(s) = state {
        // A stored window ahead of ours means our clock is behind: keep
        // counting in it rather than forget what it admitted.
        if s.window >= window {
            (window, count) = (s.window, s.count);
        }
    }
    let skew = (window * period).saturating_sub(now_us);
    let now_us = now_us.max(window * period);
    let ends_after = (window + 1) * period - now_us;
    let reset_after = |count: u64| if count > 0 { ends_after } else { 0 };
    let remaining = |count: u64| limit.saturating_sub(count);

    let (decision, next) = if cost > limit {
        (
            Decision::denied(limit, remaining(count), reset_after(count), None),
            None,
        )
    } else if count + cost <= limit {
        let count = count + cost;
        let d = Decision::allowed(limit, remaining(count), reset_after(count));
        (d, (cost > 0).then_some(State { window, count }))
    } else {
        let d = Decision::denied(
            limit,
            remaining(count),
            reset_after(count),
            Some(ends_after),
        );
        (d, None)
    };
    (decision.delayed_by(skew), next)
}

/// The state under `new` of a key that holds `state` under `old` at
/// `now_us`: the same count, in the same window when the period is
/// unchanged, else in the new window that holds `now_us` (or the stored
/// window's start, when a clock behind it). A window that has ended
/// counts nothing: `None`.
pub fn carry(state: &State, old: &Quota, new: &Quota, now_us: u64) -> Option<State> {
    let (period, new_period) = (old.period_us(), new.period_us());
    if period == new_period {
        return Some(*state);
    }
    let start = state.window * period;
    if start + period <= now_us || state.count == 0 {
        return None;
    }
    Some(State {
        window: now_us.max(start) / new_period,
        count: state.count,
    })
}
