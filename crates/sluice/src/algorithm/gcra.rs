//! GCRA, the generic cell rate algorithm.
//!
//! One stored time per key: the theoretical arrival time (TAT). With the
//! emission interval `T = period / limit` and a tolerance of `burst × T`, a
//! request of cost `c` is admitted iff `max(TAT, now) + c·T - now <= burst·T`,
//! and then `TAT = max(TAT, now) + c·T`. While time goes forward it admits
//! exactly the same sequences as [`token_bucket`](super::token_bucket) with
//! the same quota, with the same decisions (a property test holds them
//! equal): the bucket's level is `burst·T - (TAT - now)`.
//!
//! A clock behind the one that wrote the TAT (a slower server, a Redis
//! failover) decides by the same rule at its own `now`: the TAT may then be
//! further ahead than the tolerance, which leaves nothing to admit (a cost
//! of zero is still admitted: it reports the key as it stands), and every
//! duration counts from that `now` to the TAT: `reset_after` is
//! `TAT - now`, and `retry_after` is when `TAT + c·T - now <= burst·T`.
//! This is where GCRA parts from the token bucket, which counts from its
//! stored time when that is ahead.
//!
//! Times are kept in units of `1 / (limit / g)` microseconds, so `T` is the
//! whole number of scaled units per token (see [`Quota`]); the TAT is stored as whole
//! microseconds plus a remainder so that it fits Redis's Lua numbers too.
//!
//! When the quota's numbers change, the key keeps its debt, the time its
//! TAT is ahead of `now` (see [`carry`]), which may exceed the new
//! tolerance: the key is then denied until the TAT comes within it.

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
#[inline(always)]
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
    /// How long until the TAT as it was before this request, in whole
    /// microseconds rounded up: the backlog in the bucket drained (beyond
    /// the tolerance when the clock is behind the TAT's writer).
    pub(crate) wait_us: u64,
}

/// The GCRA step, also used by the leaky bucket, which adds the delay.
#[inline(always)]
pub(super) fn step(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Step, Option<State>) {
    let rate = quota.refill_per_us();
    let tolerance = quota.scaled_capacity();
    // How far the TAT is ahead of `now`: within the tolerance after every
    // admission, beyond it when our clock is behind the TAT's writer.
    // Durations count from our `now` to the TAT; what fits is decided on
    // the backlog clamped to the tolerance (a cost of zero always fits).
    let ahead = state.map_or(0, |s| {
        let tat = u128::from(s.at_us) * u128::from(rate) + u128::from(s.frac);
        tat.saturating_sub(u128::from(now_us) * u128::from(rate))
    });
    let backlog = ahead.min(u128::from(tolerance)) as u64;
    // Whole microseconds, rounded up, until `ahead` scaled units pass.
    let empty_after = |ahead: u128| match u64::try_from(ahead) {
        Ok(ahead) => quota.refill_us(ahead),
        Err(_) => u64::try_from(ahead.div_ceil(u128::from(rate))).unwrap_or(u64::MAX),
    };
    let remaining = |backlog: u64| quota.tokens_in(tolerance - backlog);

    let (decision, next) = if cost > quota.burst() {
        let d = Decision::denied(quota.burst(), remaining(backlog), empty_after(ahead), None);
        (d, None)
    } else if backlog + cost * quota.scaled_unit() <= tolerance {
        let after = backlog + cost * quota.scaled_unit();
        let reset = empty_after(ahead + u128::from(cost * quota.scaled_unit()));
        let d = Decision::allowed(quota.burst(), remaining(after), reset);
        let whole_us = quota.refill_whole_us(after);
        let next = (cost > 0).then_some(State {
            at_us: now_us + whole_us,
            frac: after - whole_us * rate,
        });
        (d, next)
    } else {
        let retry =
            empty_after(ahead + u128::from(cost * quota.scaled_unit()) - u128::from(tolerance));
        let d = Decision::denied(
            quota.burst(),
            remaining(backlog),
            empty_after(ahead),
            Some(retry),
        );
        (d, None)
    };
    let wait_us = empty_after(ahead);
    (Step { decision, wait_us }, next)
}

/// The debt a state holds at `now_us`, in `quota`'s scaled units: how far
/// the TAT is ahead of `now_us` (none once it has passed).
pub(crate) fn debt(state: &State, quota: &Quota, now_us: u64) -> u128 {
    let rate = u128::from(quota.refill_per_us());
    let tat = u128::from(state.at_us) * rate + u128::from(state.frac);
    tat.saturating_sub(u128::from(now_us) * rate)
}

/// The state that holds `debt` scaled units of `quota` at `now_us`: a TAT
/// that far ahead, exactly; `None` for no debt (an untouched key).
pub(crate) fn indebted(debt: u64, quota: &Quota, now_us: u64) -> Option<State> {
    let rate = quota.refill_per_us();
    (debt > 0).then(|| State {
        at_us: now_us + debt / rate,
        frac: debt % rate,
    })
}

/// The state under `new` of a key that holds `state` under `old` at
/// `now_us`: the same debt (whole tokens rounded up when a token's size
/// changes, at most [`MAX_DEBT`](super::MAX_DEBT) scaled units).
pub fn carry(state: &State, old: &Quota, new: &Quota, now_us: u64) -> Option<State> {
    let debt = super::carry_debt(debt(state, old, now_us), old, new);
    indebted(debt, new, now_us)
}
