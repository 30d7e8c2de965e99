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
//! # Cost
//!
//! Each entry also keeps the running total of the costs logged up to and
//! including it (`cum`), so that what a span of entries holds is the
//! difference of two totals: a decision finds the oldest live entry and a
//! denial's wait by exponential searches from the front, in O(log n) for a
//! log of n entries at worst and O(1) for the usual answers near the front,
//! and never sums or copies the log. [`decide_in_place`] (what the memory
//! store runs) appends to the log where it lies and drops expired entries
//! from its front, amortised O(1); [`decide`], the pure step, copies the
//! log only to return the new state of an admission. The Redis store keeps
//! the same totals in its sorted set (`lua/sliding_window_log.lua`).
//!
//! The log records absolute times and costs, so a change of the quota's
//! numbers needs no conversion (see [`carry`]): the new limit and period
//! read the same entries. A longer period cannot count admissions that
//! the log had already dropped (older than the old period).

use std::collections::VecDeque;

use crate::{Decision, Quota};

/// One logged admission: the costs admitted at one microsecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When it was admitted, in microseconds since the Unix epoch.
    pub(crate) at_us: u64,
    /// Units admitted at that microsecond.
    pub(crate) cost: u64,
    /// The units of this entry and of every older one logged since the log
    /// began, dropped ones included: what a span of entries holds is the
    /// difference of two of these.
    pub(crate) cum: u64,
}

/// The admissions of the last period, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Logged admissions in time order (expired ones may remain at the
    /// front until the next admission drops them; they count for nothing).
    pub(crate) entries: VecDeque<Entry>,
}

impl Entry {
    /// When it was admitted, in microseconds since the Unix epoch.
    pub fn at_us(&self) -> u64 {
        self.at_us
    }

    /// Units admitted at that microsecond.
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// The units of this entry and of every older one logged since the
    /// log began.
    pub fn cum(&self) -> u64 {
        self.cum
    }
}

impl State {
    /// The logged admissions, oldest first (expired ones may remain at
    /// the front).
    pub fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    /// The position of the first entry still live at `t`.
    fn first_live(&self, t: u64, period: u64) -> usize {
        self.gallop(0, |e| e.at_us + period <= t)
    }

    /// The first position from `from` on whose entry fails `before` (which
    /// holds for a prefix of the log), by an exponential search from
    /// `from`: O(log d) for an answer d entries on, touching the entries
    /// near `from` (those the answers are near: few entries have expired
    /// since the last admission, and a denial's wait is within `cost`
    /// entries of the oldest live one), not a binary search's path through
    /// the whole log.
    fn gallop(&self, from: usize, before: impl Fn(&Entry) -> bool) -> usize {
        let n = self.entries.len();
        let (mut lo, mut step) = (from, 1);
        // Invariant: every entry before `lo` holds `before`.
        loop {
            let probe = lo + step - 1;
            if probe >= n || !before(&self.entries[probe]) {
                let mut hi = probe.min(n);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if before(&self.entries[mid]) {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                return lo;
            }
            lo = probe + 1;
            step *= 2;
        }
    }

    /// What the entries from position `first` on hold.
    fn held_from(&self, first: usize) -> u64 {
        match (self.entries.get(first), self.entries.back()) {
            (Some(oldest), Some(newest)) => newest.cum - (oldest.cum - oldest.cost),
            _ => 0,
        }
    }

    /// What [`State::retract`] needs to take back the next admission: the
    /// newest entry as it stands.
    pub(crate) fn mark(&self) -> Option<Entry> {
        self.entries.back().copied()
    }

    /// Takes back the one admission logged since `mark` was taken, in O(1):
    /// the newest entry goes back to the marked one (an admission at the
    /// same instant merged into it) or goes (it was new). The entries the
    /// admission dropped from the front had expired by the marked newest
    /// entry's time, so they count for nothing again.
    pub(crate) fn retract(&mut self, mark: Option<Entry>) {
        match (self.entries.back_mut(), mark) {
            (Some(last), Some(marked)) if last.at_us == marked.at_us => *last = marked,
            _ => {
                self.entries.pop_back();
            }
        }
    }

    /// Logs `cost` at `t` (never before the newest entry), first dropping
    /// the entries that expired before the newest one was logged: those
    /// can never count again, whatever the clock does next, since every
    /// decision counts from the newest entry at the earliest.
    fn log(&mut self, t: u64, cost: u64, period: u64) {
        let newest = self.entries.back().map_or(0, |e| e.at_us);
        while self
            .entries
            .front()
            .is_some_and(|e| e.at_us + period <= newest)
        {
            self.entries.pop_front();
        }
        match self.entries.back_mut() {
            Some(last) if last.at_us == t => {
                last.cost += cost;
                last.cum += cost;
            }
            last => {
                let cum = last.map_or(0, |e| e.cum) + cost;
                self.entries.push_back(Entry {
                    at_us: t,
                    cost,
                    cum,
                });
            }
        }
    }
}

/// Decides a request of `cost` at `now_us`; returns the state to store,
/// `None` when nothing changes (a denial, or a cost of zero).
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    let (decision, admitted_at) = judge(state, quota, cost, now_us);
    let next = admitted_at.map(|t| {
        let mut next = state.cloned().unwrap_or_default();
        next.log(t, cost, quota.period_us());
        next
    });
    (decision, next)
}

/// [`decide`] on the log where it lies: logs an admission in place (no
/// copy) and returns whether it wrote. The same decisions as [`decide`].
pub fn decide_in_place(
    state: &mut State,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, bool) {
    let (decision, admitted_at) = judge(Some(state), quota, cost, now_us);
    if let Some(t) = admitted_at {
        state.log(t, cost, quota.period_us());
    }
    (decision, admitted_at.is_some())
}

/// [`decide`]'s decision alone, building no state: what a peek needs.
pub fn decision(state: Option<&State>, quota: &Quota, cost: u64, now_us: u64) -> Decision {
    judge(state, quota, cost, now_us).0
}

/// The decision, and the instant to log the request at when it is
/// admitted with a positive cost.
fn judge(state: Option<&State>, quota: &Quota, cost: u64, now_us: u64) -> (Decision, Option<u64>) {
    let period = quota.period_us();
    let limit = quota.limit();
    let newest = state.and_then(|s| s.entries.back()).map_or(0, |e| e.at_us);
    // A logged time ahead of ours means our clock is behind: count from it.
    let skew = newest.saturating_sub(now_us);
    let now_us = now_us.max(newest);
    let first = state.map_or(0, |s| s.first_live(now_us, period));
    let used = state.map_or(0, |s| s.held_from(first));
    // The newest entry is live exactly when any is.
    let newest_live = (used > 0).then_some(newest);
    let reset_after = |newest_live: Option<u64>| newest_live.map_or(0, |at| at + period - now_us);

    let (decision, admitted_at) = if cost > limit {
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
        (d, (cost > 0).then_some(now_us))
    } else {
        // The first entry whose expiry makes room: once it and every older
        // one have gone, what is left plus `cost` fits, that is when the
        // total up to it reaches the newest total + cost - limit. There is
        // one (the newest: then nothing is left), since cost <= limit.
        let retry = state.map_or(0, |s| {
            let newest_cum = s.entries.back().map_or(0, |e| e.cum);
            let target = newest_cum + cost - limit;
            // Expired entries hold less than the oldest live one's total.
            let at = s.gallop(first, |e| e.cum < target);
            s.entries.get(at).map_or(0, |e| e.at_us + period - now_us)
        });
        let d = Decision::denied(
            limit,
            limit.saturating_sub(used),
            reset_after(newest_live),
            Some(retry),
        );
        (d, None)
    };
    (decision.delayed_by(skew), admitted_at)
}

/// The state under `new` of a key that holds `state` under `old`: the
/// same log, which the new quota reads with its own limit and period.
pub fn carry(state: &State, _old: &Quota, _new: &Quota, _now_us: u64) -> Option<State> {
    Some(state.clone())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Algorithm;

    /// The memory store's step writes where the log lies: an admission
    /// neither copies the log nor moves it, a denial leaves it as it is,
    /// and both decide as the pure step; a retracted admission leaves the
    /// log deciding as before it.
    #[test]
    fn an_admission_appends_in_place_and_is_retracted() {
        let quota = Quota::new(
            Algorithm::SlidingWindowLog,
            10_000,
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        let mut state = State::default();
        for t in 0..9_999 {
            assert!(decide_in_place(&mut state, &quota, 1, 1_000 + t).0.allowed);
        }
        state.entries.reserve(16);
        let buffer = state.entries.as_slices().0.as_ptr();
        let pure = state.clone();
        let now = 50_000;
        for cost in [1, 2, 1] {
            let before = state.clone();
            let mark = state.mark();
            let (want, _) = decide(Some(&before), &quota, cost, now);
            let (got, wrote) = decide_in_place(&mut state, &quota, cost, now);
            assert_eq!((got, wrote), (want, want.allowed), "cost {cost}");
            assert_eq!(
                state.entries.as_slices().0.as_ptr(),
                buffer,
                "the log moved"
            );
            if wrote {
                state.retract(mark);
                let again = decide(Some(&state), &quota, cost, now).0;
                assert_eq!(again, want, "retracted: cost {cost}");
                decide_in_place(&mut state, &quota, cost, now);
            }
        }
        // 9,999 + 1 admitted: full; the denial's wait is the oldest's expiry.
        let (denied, _) = decide(Some(&state), &quota, 1, now);
        assert!(!denied.allowed);
        assert_eq!(
            denied.retry_after,
            Some(Duration::from_micros(1_000 + 1_000_000 - now))
        );
        assert_eq!(decide(Some(&pure), &quota, 1, now).0.remaining, 0);
    }
}
