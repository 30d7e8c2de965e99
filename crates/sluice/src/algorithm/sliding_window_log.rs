//! Sliding window log: exact.
//!
//! Every admission is logged with its time. A request of cost `c` at `now`
//! is admitted iff the costs admitted in `(now - period, now]` plus `c` are
//! at most `limit`. Exact at any instant, at the price of one log entry per
//! admission (admissions in the same microsecond share an entry).
//!
//! A clock behind the newest entry (a slower server, a Redis failover)
//! counts from that entry's time: the request is decided, and logged, as if
//! made then, and every duration is lengthened by the difference, so that
//! it still counts from the caller's `now`.
//!
//! The log records absolute times and costs, so a change of the quota's
//! numbers needs no conversion (see [`carry`]): the new limit and period
//! read the same entries. A longer period cannot count admissions that
//! the log had already dropped (older than the old period).

use std::collections::VecDeque;

use crate::{Decision, Quota};

/// One logged admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When it was admitted, in microseconds since the Unix epoch.
    pub(crate) at_us: u64,
    /// Units admitted at that microsecond.
    pub(crate) cost: u64,
}

/// The admissions of the last period, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Logged admissions in time order.
    pub(crate) entries: VecDeque<Entry>,
}

/// Decides a request of `cost` at `now_us`; returns the state to store,
/// `None` when nothing changes (a denial, or a cost of zero).
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    let period = quota.period_us();
    let limit = quota.limit();
    let entries = state.map(|s| &s.entries);
    let newest = entries.and_then(|e| e.back()).map_or(0, |e| e.at_us);
    // A logged time ahead of ours means our clock is behind: count from it.
    let skew = newest.saturating_sub(now_us);
    let now_us = now_us.max(newest);
    let live = || {
        entries
            .into_iter()
            .flatten()
            .filter(move |e| e.at_us + period > now_us)
    };
    let used: u64 = live().map(|e| e.cost).sum();
    let reset_after = |newest_live: Option<u64>| newest_live.map_or(0, |at| at + period - now_us);
    let newest_live = live().next_back().map(|e| e.at_us);

    let (decision, next) = if cost > limit {
        let d = Decision::denied(
            limit,
            limit.saturating_sub(used),
            reset_after(newest_live),
            None,
        );
        (d, None)
    } else if used + cost <= limit {
        let d = Decision::allowed(
            limit,
            limit - used - cost,
            reset_after(if cost > 0 { Some(now_us) } else { newest_live }),
        );
        let next = (cost > 0).then(|| {
            let mut log: VecDeque<Entry> = live().copied().collect();
            match log.back_mut() {
                Some(last) if last.at_us == now_us => last.cost += cost,
                _ => log.push_back(Entry {
                    at_us: now_us,
                    cost,
                }),
            }
            State { entries: log }
        });
        (d, next)
    } else {
        // Walk the log oldest first until enough has expired to make room.
        let mut still_used = used;
        let mut retry = 0;
        for e in live() {
            still_used -= e.cost;
            if still_used + cost <= limit {
                retry = e.at_us + period - now_us;
                break;
            }
        }
        let d = Decision::denied(
            limit,
            limit.saturating_sub(used),
            reset_after(newest_live),
            Some(retry),
        );
        (d, None)
    };
    (decision.delayed_by(skew), next)
}

/// The state under `new` of a key that holds `state` under `old`: the
/// same log, which the new quota reads with its own limit and period.
pub fn carry(state: &State, _old: &Quota, _new: &Quota, _now_us: u64) -> Option<State> {
    Some(state.clone())
}
