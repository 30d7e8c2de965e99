//! The six algorithms, each a pure step: `(state, quota, cost, now) ->
//! (decision, new state)`.
//!
//! A step does no I/O, takes no lock and reads no clock: `now` is whole
//! microseconds since the Unix epoch, given by the caller. A step returns
//! the state to store only when something changed (an admission of a
//! positive cost); a denial never changes the state, so a client that keeps
//! retrying cannot starve itself. A cost of zero decides nothing and reports
//! the key as it stands.
//!
//! Every store, in memory or in Redis, must decide exactly as these steps.

pub mod fixed_window;
pub mod gcra;
pub mod leaky_bucket;
pub mod sliding_window_counter;
pub mod sliding_window_log;
pub mod token_bucket;

use crate::{Algorithm, Decision, Quota};

/// The stored state of one key, whichever its algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// See [`token_bucket`].
    TokenBucket(token_bucket::State),
    /// See [`gcra`].
    Gcra(gcra::State),
    /// See [`leaky_bucket`].
    LeakyBucket(leaky_bucket::State),
    /// See [`fixed_window`].
    FixedWindow(fixed_window::State),
    /// See [`sliding_window_log`]; boxed so that the log does not make
    /// every other state larger.
    SlidingWindowLog(Box<sliding_window_log::State>),
    /// See [`sliding_window_counter`].
    SlidingWindowCounter(sliding_window_counter::State),
}

/// Decides a request of `cost` at `now_us` by the quota's algorithm.
///
/// A `state` of another algorithm than the quota's is ignored (the key
/// starts afresh). Returns the state to store, `None` when nothing changes.
///
/// ```
/// use std::time::Duration;
/// use sluice::{algorithm, Algorithm, Quota};
///
/// let quota = Quota::new(Algorithm::TokenBucket, 2, Duration::from_secs(1), None).unwrap();
/// let (first, state) = algorithm::decide(None, &quota, 1, 0);
/// assert!(first.allowed && first.remaining == 1);
/// let (second, state) = algorithm::decide(state.as_ref(), &quota, 1, 0);
/// assert!(second.allowed && second.remaining == 0);
/// let (third, _) = algorithm::decide(state.as_ref(), &quota, 1, 0);
/// assert!(!third.allowed);
/// assert_eq!(third.retry_after, Some(Duration::from_millis(500)));
/// ```
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    fn stored<S>(
        step: (Decision, Option<S>),
        wrap: impl FnOnce(S) -> State,
    ) -> (Decision, Option<State>) {
        (step.0, step.1.map(wrap))
    }
    match quota.algorithm() {
        Algorithm::TokenBucket => {
            let state = match state {
                Some(State::TokenBucket(s)) => Some(s),
                _ => None,
            };
            stored(
                token_bucket::decide(state, quota, cost, now_us),
                State::TokenBucket,
            )
        }
        Algorithm::Gcra => {
            let state = match state {
                Some(State::Gcra(s)) => Some(s),
                _ => None,
            };
            stored(gcra::decide(state, quota, cost, now_us), State::Gcra)
        }
        Algorithm::LeakyBucket => {
            let state = match state {
                Some(State::LeakyBucket(s)) => Some(s),
                _ => None,
            };
            stored(
                leaky_bucket::decide(state, quota, cost, now_us),
                State::LeakyBucket,
            )
        }
        Algorithm::FixedWindow => {
            let state = match state {
                Some(State::FixedWindow(s)) => Some(s),
                _ => None,
            };
            stored(
                fixed_window::decide(state, quota, cost, now_us),
                State::FixedWindow,
            )
        }
        Algorithm::SlidingWindowLog => {
            let state = match state {
                Some(State::SlidingWindowLog(s)) => Some(&**s),
                _ => None,
            };
            stored(
                sliding_window_log::decide(state, quota, cost, now_us),
                |s| State::SlidingWindowLog(Box::new(s)),
            )
        }
        Algorithm::SlidingWindowCounter => {
            let state = match state {
                Some(State::SlidingWindowCounter(s)) => Some(s),
                _ => None,
            };
            stored(
                sliding_window_counter::decide(state, quota, cost, now_us),
                State::SlidingWindowCounter,
            )
        }
    }
}

/// What a request of cost 1 would be told at `now_us`, without consuming
/// anything: `remaining` and `reset_after` describe the key as it stands.
pub fn peek(state: Option<&State>, quota: &Quota, now_us: u64) -> Decision {
    let (would, _) = decide(state, quota, 1, now_us);
    if !would.allowed {
        return would;
    }
    let (standing, _) = decide(state, quota, 0, now_us);
    Decision {
        delay: would.delay,
        ..standing
    }
}

/// `a / b` rounded up; `b` is never zero for a valid quota.
pub(crate) fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}
