//! GCRA, the generic cell rate algorithm.
//!
//! One stored time per key: the theoretical arrival time (TAT). With the
//! emission interval `T = period / limit` and a tolerance of `burst × T`, a
//! request of cost `c` is admitted iff `max(TAT, now) + c·T - now <= burst·T`,
//! and then `TAT = max(TAT, now) + c·T`. It admits exactly the same
//! sequences as [`token_bucket`](super::token_bucket) with the same quota,
//! with the same decisions (a property test holds them equal): the bucket's
//! level is `burst·T - (TAT - now)`.
//!
//! Times are kept in units of `1 / (limit / g)` microseconds, so `T` is the
//! whole number of scaled units per token (see [`Quota`]); the TAT is stored as whole
//! microseconds plus a remainder so that it fits Redis's Lua numbers too.

use super::ceil_div;
use crate::{Decision, Quota};

/// The theoretical arrival time: `at_us + frac / (limit / g)` microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// Whole microseconds since the Unix epoch.
    pub(crate) at_us: u64,
    /// The fraction of a microsecond, in units of `1 / refill_per_us`.
    pub(crate) frac: u64,
}

/// Decides a request of `cost` at `now_us`; returns the state to store,
/// `None` when nothing changes (a denial, or a cost of zero).
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    let (d, next) = step(state, quota, cost, now_us);
    (d.decision, next)
}

/// What [`step`] found besides the decision.
pub(super) struct Step {
    pub(crate) decision: Decision,
    /// How far the TAT was ahead of `now` before this request, in scaled
    /// time units (`1 / refill_per_us` µs): the backlog in the bucket.
    pub(crate) backlog: u64,
}

/// The GCRA step, also used by the leaky bucket, which adds the delay.
pub(super) fn step(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Step, Option<State>) {
    let rate = quota.refill_per_us();
    let tolerance = quota.scaled_capacity();
    // The backlog is bounded by the tolerance after every admission; an
    // oversized stored value (from a foreign writer) is clamped to it.
    let backlog = state.map_or(0, |s| {
        let tat = u128::from(s.at_us) * u128::from(rate) + u128::from(s.frac);
        let now = u128::from(now_us) * u128::from(rate);
        tat.saturating_sub(now).min(u128::from(tolerance)) as u64
    });
    let empty_after = |backlog: u64| ceil_div(backlog, rate);
    let remaining = |backlog: u64| (tolerance - backlog) / quota.scaled_unit();

    let (decision, next) = if cost > quota.burst() {
        let d = Decision::denied(
            quota.burst(),
            remaining(backlog),
            empty_after(backlog),
            None,
        );
        (d, None)
    } else if backlog + cost * quota.scaled_unit() <= tolerance {
        let after = backlog + cost * quota.scaled_unit();
        let d = Decision::allowed(quota.burst(), remaining(after), empty_after(after));
        let next = (cost > 0).then_some(State {
            at_us: now_us + after / rate,
            frac: after % rate,
        });
        (d, next)
    } else {
        let retry = ceil_div(backlog + cost * quota.scaled_unit() - tolerance, rate);
        let d = Decision::denied(
            quota.burst(),
            remaining(backlog),
            empty_after(backlog),
            Some(retry),
        );
        (d, None)
    };
    (Step { decision, backlog }, next)
}
