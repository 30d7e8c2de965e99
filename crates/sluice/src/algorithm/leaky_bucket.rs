//! Leaky bucket, in its queue form (nginx `limit_req` without `nodelay`).
//!
//! Requests join a queue that drains at the constant rate `limit / period`.
//! A request of cost `c` is denied when admitting it would put more than
//! `burst` units in the bucket; an admitted request is told its `delay`: how
//! long until the units queued ahead of it have drained and its turn comes.
//! The first request into an empty bucket goes through at once.
//!
//! `burst` counts every unit in the bucket, including the one being served,
//! so nginx's `burst=N` corresponds to `burst: N + 1` here.
//!
//! As a meter the queue is the token bucket seen from the other side (the
//! queue's length is the bucket's missing tokens), so the state is the time
//! at which the queue will be empty, kept exactly as GCRA keeps its TAT.

use super::gcra;
use crate::{Decision, Quota};

/// When the queue will have drained; the same representation as GCRA's TAT.
pub type State = gcra::State;

/// Decides a request of `cost` at `now_us`; returns the state to store,
/// `None` when nothing changes (a denial, or a cost of zero).
#[inline(always)]
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    let (step, next) = gcra::step(state, quota, cost, now_us);
    let mut decision = step.decision;
    if decision.allowed {
        decision.delay = std::time::Duration::from_micros(step.wait_us);
    }
    (decision, next)
}

/// The state under `new` of a key that holds `state` under `old` at
/// `now_us`: the queue keeps its length in tokens, as GCRA's TAT does.
pub fn carry(state: &State, old: &Quota, new: &Quota, now_us: u64) -> Option<State> {
    gcra::carry(state, old, new, now_us)
}
