//! [`Summary`]: a key's stored [`State`] as a person reads it.
//!
//! What is left and when the key is untouched again come from
//! [`algorithm::peek`] at cost 0 (one place decides them); the summary adds
//! what each algorithm keeps, measured from `now`.

use std::fmt;
use std::time::Duration;

use crate::algorithm::{self, State};
use crate::{Quota, duration};

/// What a key's state says, at one instant, under one quota.
///
/// ```
/// use std::time::Duration;
/// use sluice::{algorithm, summary::Summary, Algorithm, Quota};
///
/// let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(10), None).unwrap();
/// let (_, state) = algorithm::decide(None, &quota, 3, 0);
/// let summary = Summary::new(state.as_ref(), &quota, 0);
/// assert_eq!(summary.to_string(), "token bucket: 7 of 10 tokens; full again in 3s");
/// assert_eq!(Summary::new(None, &quota, 0).to_string(), "untouched");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// What the algorithm keeps.
    pub kind: Kind,
    /// What a request of cost 1 would still find (tokens, or units left).
    pub remaining: u64,
    /// The most there can be: the burst of a bucket, the limit of a window.
    pub capacity: u64,
    /// Until the key is untouched again (a bucket full, a window empty).
    pub reset_after: Duration,
}

/// What one algorithm keeps, measured from the summary's instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Nothing is stored: the key is as new.
    Untouched,
    /// A token bucket (its tokens are [`Summary::remaining`]).
    TokenBucket,
    /// GCRA: how far ahead the theoretical arrival time is.
    Gcra {
        /// From now to the theoretical arrival time (zero when past).
        tat_in: Duration,
    },
    /// A leaky bucket: how long its queue takes to drain.
    LeakyBucket {
        /// From now until the queue is empty.
        drains_in: Duration,
    },
    /// A fixed window and the units admitted in it.
    FixedWindow {
        /// Units admitted in the stored window.
        used: u64,
        /// From now until that window ends (zero when it has).
        ends_in: Duration,
    },
    /// A sliding window log.
    SlidingWindowLog {
        /// Logged admissions (expired ones not yet dropped included).
        entries: usize,
        /// Since the oldest one, if any.
        oldest_ago: Option<Duration>,
    },
    /// A sliding window counter.
    SlidingWindowCounter {
        /// Units admitted in the stored window.
        current: u64,
        /// Units admitted in the window before it.
        previous: u64,
    },
}

impl Summary {
    /// The summary of `state` under `quota` at `now_us` (µs since the epoch).
    pub fn new(state: Option<&State>, quota: &Quota, now_us: u64) -> Summary {
        let standing = algorithm::peek(state, quota, 0, now_us);
        let since = |at_us: u64| micros(now_us.saturating_sub(at_us));
        let until = |at_us: u64| micros(at_us.saturating_sub(now_us));
        let kind = match state {
            None => Kind::Untouched,
            Some(State::TokenBucket(_)) => Kind::TokenBucket,
            Some(State::Gcra(s)) => Kind::Gcra {
                tat_in: until(s.at_us),
            },
            Some(State::LeakyBucket(s)) => Kind::LeakyBucket {
                drains_in: until(s.at_us),
            },
            Some(State::FixedWindow(s)) => Kind::FixedWindow {
                used: s.count,
                ends_in: until(s.window.saturating_add(1).saturating_mul(quota.period_us())),
            },
            Some(State::SlidingWindowLog(s)) => Kind::SlidingWindowLog {
                entries: s.entries.len(),
                oldest_ago: s.entries.front().map(|e| since(e.at_us)),
            },
            Some(State::SlidingWindowCounter(s)) => Kind::SlidingWindowCounter {
                current: s.current,
                previous: s.previous,
            },
        };
        Summary {
            kind,
            remaining: standing.remaining,
            capacity: quota.capacity(),
            reset_after: standing.reset_after,
        }
    }
}

/// `us` microseconds, rounded up to whole milliseconds: what a person reads.
fn micros(us: u64) -> Duration {
    Duration::from_millis(us.div_ceil(1000))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (left, of, reset) = (
            self.remaining,
            self.capacity,
            duration::display(self.reset_after),
        );
        match self.kind {
            Kind::Untouched => f.write_str("untouched"),
            Kind::TokenBucket => {
                write!(
                    f,
                    "token bucket: {left} of {of} tokens; full again in {reset}"
                )
            }
            Kind::Gcra { tat_in } => write!(
                f,
                "gcra: theoretical arrival time in {}; {left} of {of} left",
                duration::display(tat_in)
            ),
            Kind::LeakyBucket { drains_in } => write!(
                f,
                "leaky bucket: drains in {}; room for {left} of {of}",
                duration::display(drains_in)
            ),
            Kind::FixedWindow { used, ends_in } => write!(
                f,
                "fixed window: {used} used in the window that ends in {}",
                duration::display(ends_in)
            ),
            Kind::SlidingWindowLog {
                entries,
                oldest_ago,
            } => {
                write!(f, "sliding log: {entries} entries")?;
                if let Some(ago) = oldest_ago {
                    write!(f, ", oldest {} ago", duration::display(ago))?;
                }
                write!(f, "; {left} of {of} left")
            }
            Kind::SlidingWindowCounter { current, previous } => write!(
                f,
                "sliding window counter: {current} in this window, {previous} in the one before; {left} of {of} left"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    /// Each algorithm's line, after three units were admitted at 0 and
    /// 1.2 s went by.
    #[test]
    fn every_algorithm_reads_as_prose() {
        let expected = [
            (
                Algorithm::TokenBucket,
                "token bucket: 8 of 10 tokens; full again in 1s800ms",
            ),
            (
                Algorithm::Gcra,
                "gcra: theoretical arrival time in 1s800ms; 8 of 10 left",
            ),
            (
                Algorithm::LeakyBucket,
                "leaky bucket: drains in 1s800ms; room for 8 of 10",
            ),
            (
                Algorithm::FixedWindow,
                "fixed window: 3 used in the window that ends in 8s800ms",
            ),
            (
                Algorithm::SlidingWindowLog,
                "sliding log: 1 entries, oldest 1s200ms ago; 7 of 10 left",
            ),
            (
                Algorithm::SlidingWindowCounter,
                "sliding window counter: 3 in this window, 0 in the one before; 7 of 10 left",
            ),
        ];
        for (algorithm, line) in expected {
            let quota = Quota::new(algorithm, 10, Duration::from_secs(10), None).unwrap();
            let (_, state) = algorithm::decide(None, &quota, 3, 0);
            let summary = Summary::new(state.as_ref(), &quota, 1_200_000);
            assert_eq!(summary.to_string(), line, "{algorithm:?}");
        }
    }
}
