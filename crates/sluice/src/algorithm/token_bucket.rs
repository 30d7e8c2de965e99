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
//!
//! When the quota's numbers change, the key keeps its debt (see
//! [`carry`]): the tokens missing from a full bucket, and beyond an empty
//! one the refill of the time its stored instant is ahead of `now`. A debt
//! larger than the new capacity is kept as an empty bucket measured that
//! much later, which reads as a clock behind the stored time: denied, with
//! every duration counted from `now`, until the debt has drained.

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
#[inline(always)]
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    let (raw, next) = step(state, quota, cost, now_us);
    (raw.decision(quota), next)
}

/// [`decide`] on a state where it lies, leaving the [`Decision`] to be
/// built from the returned [`Raw`] (by [`Raw::decision`], under the same
/// quota): a store can do that after releasing its lock. Returns whether
/// the state was written.
#[inline(always)]
pub(crate) fn decide_raw(state: &mut State, quota: &Quota, cost: u64, now_us: u64) -> (Raw, bool) {
    match step(Some(state), quota, cost, now_us) {
        (raw, Some(next)) => {
            *state = next;
            (raw, true)
        }
        (raw, None) => (raw, false),
    }
}

/// What the token bucket's step found, in raw numbers: the few it needs
/// to write the state and its expiry, from which [`Raw::decision`] builds
/// the [`Decision`] (the divisions and the `Duration`s are left to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Raw {
    /// The level after the decision, in scaled units.
    level: u64,
    /// How far the stored instant is ahead of `now` (a clock behind).
    skew_us: u64,
    /// Whole microseconds until the bucket is full again, from `now`.
    pub(crate) reset_after_us: u64,
    /// Admitted (`None`), denied short of this many scaled units
    /// (`Some(Some(_))`), or denied for good: the cost exceeds the burst.
    short: Option<Option<u64>>,
}

impl Raw {
    /// The decision of [`decide`], built from these numbers under `quota`
    /// (the quota they were found under).
    #[inline(always)]
    pub(crate) fn decision(self, quota: &Quota) -> Decision {
        let remaining = quota.tokens_in(self.level);
        let skew = self.skew_us;
        match self.short {
            None => Decision::allowed(quota.burst(), remaining, self.reset_after_us),
            Some(short) => Decision::denied(
                quota.burst(),
                remaining,
                self.reset_after_us,
                short.map(|units| quota.refill_us(units) + skew),
            ),
        }
    }
}

/// The step of [`decide`], its decision in raw numbers.
#[inline(always)]
fn step(state: Option<&State>, quota: &Quota, cost: u64, now_us: u64) -> (Raw, Option<State>) {
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
    // Durations count from the caller's `now`: lengthened by the skew.
    let skew_us = t - now_us;
    let raw = |level: u64, short| Raw {
        level,
        skew_us,
        reset_after_us: quota.refill_us(capacity - level) + skew_us,
        short,
    };

    if cost > quota.burst() {
        return (raw(level, Some(None)), None);
    }
    let need = cost * quota.scaled_unit();
    if level >= need {
        let level = level - need;
        let next = (cost > 0).then_some(State { level, at_us: t });
        (raw(level, None), next)
    } else {
        (raw(level, Some(Some(need - level))), None)
    }
}

/// The debt a state holds at `now_us`, in `quota`'s scaled units: the
/// tokens missing from a full bucket, plus the refill of the time the
/// stored instant is ahead of `now_us` (a bucket emptied beyond its
/// capacity, or a clock behind the state's writer).
pub(crate) fn debt(state: &State, quota: &Quota, now_us: u64) -> u128 {
    let t = now_us.max(state.at_us);
    let rate = u128::from(quota.refill_per_us());
    let capacity = u128::from(quota.scaled_capacity());
    let level = (u128::from(state.level) + u128::from(t - state.at_us) * rate).min(capacity);
    capacity - level + u128::from(t - now_us) * rate
}

/// The state that holds `debt` scaled units of `quota` at `now_us`; `None`
/// for no debt (an untouched key). Beyond the capacity the bucket is empty
/// and measured when the excess will have refilled, rounded up: never a
/// unit in the client's favour.
pub(crate) fn indebted(debt: u64, quota: &Quota, now_us: u64) -> Option<State> {
    let capacity = quota.scaled_capacity();
    match debt {
        0 => None,
        d if d <= capacity => Some(State {
            level: capacity - d,
            at_us: now_us,
        }),
        d => Some(State {
            level: 0,
            at_us: now_us + quota.refill_us(d - capacity),
        }),
    }
}

/// The state under `new` of a key that holds `state` under `old` at
/// `now_us`: the same debt (whole tokens rounded up when a token's size
/// changes, at most [`MAX_DEBT`](super::MAX_DEBT) scaled units). A raised burst shows in
/// `remaining` at once; a lowered one leaves the key denied until its debt
/// drains at the new rate.
pub fn carry(state: &State, old: &Quota, new: &Quota, now_us: u64) -> Option<State> {
    let debt = super::carry_debt(debt(state, old, now_us), old, new);
    indebted(debt, new, now_us)
}
