//! Token bucket, the default algorithm.
//!
//! A bucket of capacity `burst` starts full and refills continuously at
//! `limit / period` up to its capacity. A request of cost `c` is admitted
//! iff the bucket holds at least `c` tokens, which then leave it. A denial
//! changes nothing, so a client that keeps retrying still sees the bucket
//! refill (the defect of resetting the refill clock on every request is
//! impossible here: only an admission writes the time).
//!
//! A clock behind the stored time (a slower server, a Redis failover)
//! counts from the stored time: the request is decided as if made then,
//! and every duration is lengthened by the difference, so that it still
//! counts from the caller's `now`.
//!
//! Tokens are counted in the quota's scaled units (see [`Quota`]), so a
//! refill is never rounded away; durations are rounded up to whole
//! microseconds.

use super::ceil_div;
use crate::{Decision, Quota};

/// A bucket's level at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// Tokens in the bucket, in scaled units.
    pub(crate) level: u64,
    /// When `level` was measured, in microseconds since the Unix epoch.
    pub(crate) at_us: u64,
}

/// Decides a request of `cost` at `now_us`; returns the state to store,
/// `None` when nothing changes (a denial, or a cost of zero).
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    let capacity = quota.scaled_capacity();
    let rate = quota.refill_per_us();
    let (t, level) = match state {
        None => (now_us, capacity),
        Some(s) => {
            let t = now_us.max(s.at_us);
            let refilled = u128::from(s.level) + u128::from(t - s.at_us) * u128::from(rate);
            (t, refilled.min(u128::from(capacity)) as u64)
        }
    };
    let skew = t - now_us;
    let full_after = |level: u64| ceil_div(capacity - level, rate);
    let remaining = |level: u64| level / quota.scaled_unit();

    if cost > quota.burst() {
        let d = Decision::denied(quota.burst(), remaining(level), full_after(level), None);
        return (d.delayed_by(skew), None);
    }
    let need = cost * quota.scaled_unit();
    if level >= need {
        let level = level - need;
        let d = Decision::allowed(quota.burst(), remaining(level), full_after(level));
        let next = (cost > 0).then_some(State { level, at_us: t });
        (d.delayed_by(skew), next)
    } else {
        let retry = ceil_div(need - level, rate);
        let d = Decision::denied(
            quota.burst(),
            remaining(level),
            full_after(level),
            Some(retry),
        );
        (d.delayed_by(skew), None)
    }
}
