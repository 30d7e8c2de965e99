//! The answer to "may this request go through?".

use std::time::Duration;

/// What a limit decided for one request.
///
/// A denial is a value, not an error: `Err` from a store means that no
/// decision could be made at all. All durations are whole microseconds,
/// rounded up, so that a caller who waits `retry_after` and asks again is
/// admitted (when nobody else spent the capacity meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the request may go through.
    pub allowed: bool,
    /// The most units this key can be granted at once: the bucket capacity
    /// (`burst`) for bucket algorithms, `limit` for window algorithms.
    pub limit: u64,
    /// Units that could be taken right now, after this decision.
    pub remaining: u64,
    /// How long until the key is back to its untouched state (full bucket,
    /// empty window), if nothing else is admitted meanwhile.
    pub reset_after: Duration,
    /// When denied, the soonest this same request would be admitted; `None`
    /// when it never can be (its cost exceeds the capacity). Zero when allowed.
    pub retry_after: Option<Duration>,
    /// Leaky bucket only: how long an admitted request waits for its turn
    /// in the queue before it goes through. Zero otherwise.
    pub delay: Duration,
    /// The policy is in shadow mode and would have denied this request; it
    /// was admitted anyway (`allowed` is true).
    pub shadow: bool,
    /// What decided: the store itself, the local deny cache, or the
    /// fallback that answered because the store could not.
    pub source: Source,
}

/// What made a [`Decision`]: how far to trust it.
///
/// ```
/// use sluice::{Decision, Source};
///
/// let decision = Decision::allowed(10, 9, 6_000_000);
/// assert_eq!(decision.source, Source::Store);
/// assert!(!decision.degraded());
/// assert!(decision.with_source(Source::Fallback).degraded());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The store decided: the shared limit, exact.
    #[default]
    Store,
    /// The local deny cache answered a denial the store gave earlier and
    /// that still holds: exact (a denial changes no state), without asking
    /// the store. See [`DenyCache`](crate::store::DenyCache).
    DenyCache,
    /// The store could not decide and the policy's
    /// [`OnStoreError`](crate::OnStoreError) did: `allow` admitted without
    /// counting, `local` decided against this process's share of the limit.
    /// See [`Fallback`](crate::store::Fallback).
    Fallback,
    /// The key's override decided alone, without the store: `unlimited`
    /// (an allowlist: [`Decision::unlimited`]) or `block` (a blocklist:
    /// [`Decision::blocked`]). See [`Override`](crate::Override).
    Override,
    /// A slice of the key's allowance that this process took from the
    /// store earlier admitted it, without asking the store: within the
    /// policy's stated bound. See `LocalBudgets` (`store::local_budget`).
    LocalBudget,
}

impl Source {
    /// The name metrics use: `store`, `deny_cache`, `fallback`, `override`
    /// or `local_budget`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Store => "store",
            Source::DenyCache => "deny_cache",
            Source::Fallback => "fallback",
            Source::Override => "override",
            Source::LocalBudget => "local_budget",
        }
    }
}

impl Decision {
    /// An admission. `delay` is zero and `retry_after` is zero.
    #[inline(always)]
    pub fn allowed(limit: u64, remaining: u64, reset_after_us: u64) -> Decision {
        Decision {
            allowed: true,
            limit,
            remaining,
            reset_after: Duration::from_micros(reset_after_us),
            retry_after: Some(Duration::ZERO),
            delay: Duration::ZERO,
            shadow: false,
            source: Source::Store,
        }
    }

    /// A denial; `retry_after_us` is `None` when the request can never fit.
    #[inline(always)]
    pub fn denied(
        limit: u64,
        remaining: u64,
        reset_after_us: u64,
        retry_after_us: Option<u64>,
    ) -> Decision {
        Decision {
            allowed: false,
            limit,
            remaining,
            reset_after: Duration::from_micros(reset_after_us),
            retry_after: retry_after_us.map(Duration::from_micros),
            delay: Duration::ZERO,
            shadow: false,
            source: Source::Store,
        }
    }

    /// The admission of a key whose override is `unlimited`: the limit does
    /// not apply to it, so there is nothing to count (`limit` and
    /// `remaining` are `u64::MAX`, no reset). Made without the store.
    ///
    /// ```
    /// use sluice::Decision;
    ///
    /// assert!(Decision::unlimited().is_unlimited());
    /// assert!(!Decision::blocked().allowed);
    /// assert_eq!(Decision::blocked().retry_after, None, "never admitted");
    /// ```
    pub fn unlimited() -> Decision {
        Decision::allowed(u64::MAX, u64::MAX, 0).with_source(Source::Override)
    }

    /// The denial of a key whose override is `block`: always denied, with no
    /// retry time (`retry_after` is `None`). Made without the store.
    pub fn blocked() -> Decision {
        Decision::denied(0, 0, 0, None).with_source(Source::Override)
    }

    /// Whether an `unlimited` override admitted this request.
    pub fn is_unlimited(&self) -> bool {
        self.source == Source::Override && self.allowed && !self.shadow
    }

    /// Whether a `block` override denied this request (in shadow mode, would
    /// have denied it).
    pub fn is_blocked(&self) -> bool {
        self.source == Source::Override && !self.is_unlimited()
    }

    /// Why this denial can never turn into an admission, when it cannot:
    /// the key is blocked, or `cost` exceeds the most the key can hold at
    /// once (`limit`). `None` for an admission and for a denial that a later
    /// retry can pass (`retry_after` is then set).
    ///
    /// ```
    /// use sluice::Decision;
    ///
    /// let never = Decision::denied(10, 10, 0, None);
    /// assert_eq!(
    ///     never.never_admitted(50).as_deref(),
    ///     Some("cost 50 exceeds the burst 10: it can never be admitted")
    /// );
    /// assert_eq!(Decision::denied(10, 0, 0, Some(5)).never_admitted(1), None);
    /// ```
    pub fn never_admitted(&self, cost: u64) -> Option<String> {
        if self.allowed {
            return None;
        }
        if self.is_blocked() {
            return Some("the key is blocked".to_owned());
        }
        self.retry_after.is_none().then(|| {
            format!(
                "cost {cost} exceeds the burst {}: it can never be admitted",
                self.limit
            )
        })
    }

    /// The same decision, admitted in shadow mode if it was a denial: the
    /// caller lets the request through and reports that it would not have.
    #[inline(always)]
    pub fn shadowed(self) -> Decision {
        if self.allowed {
            return self;
        }
        Decision {
            allowed: true,
            retry_after: Some(Duration::ZERO),
            shadow: true,
            ..self
        }
    }

    /// The same decision, marked as made by `source`.
    pub fn with_source(mut self, source: Source) -> Decision {
        self.source = source;
        self
    }

    /// Whether the shared limit did not make this decision: the fallback
    /// answered because the store failed. A deny cache's answer is not
    /// degraded: it is the store's own denial, still in force.
    pub fn degraded(&self) -> bool {
        self.source == Source::Fallback
    }

    /// The same admission, told to wait `delay` for its turn (leaky bucket).
    pub fn with_delay(mut self, delay: Duration) -> Decision {
        self.delay = delay;
        self
    }

    /// Shifts every duration by `skew_us`: used when a key's stored time is
    /// ahead of the caller's clock, so that durations still count from the
    /// caller's `now`.
    #[inline(always)]
    pub(crate) fn delayed_by(mut self, skew_us: u64) -> Decision {
        if skew_us > 0 {
            let skew = Duration::from_micros(skew_us);
            self.reset_after += skew;
            if !self.allowed {
                self.retry_after = self.retry_after.map(|r| r + skew);
            }
        }
        self
    }
}

/// The index of the most restrictive of `decisions`: a denial before any
/// admission, the longest wait among denials (one that can never be
/// admitted first), and among admissions the longest leaky-bucket `delay`,
/// then the fewest units remaining, then the latest reset. `None` only when
/// `decisions` is empty.
///
/// It is the decision a client must heed when several limits applied: a
/// policy with several limits answers with its most restrictive one, and a
/// request under several policies shows the most restrictive policy.
pub fn most_restrictive<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> Option<usize> {
    let severity = |d: &Decision| {
        (
            !d.allowed,
            d.retry_after.unwrap_or(Duration::MAX),
            d.delay,
            std::cmp::Reverse(d.remaining),
            d.reset_after,
        )
    };
    decisions
        .into_iter()
        .enumerate()
        .max_by_key(|(_, d)| severity(d))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadowed_admits_a_denial_and_says_so() {
        let denied = Decision::denied(10, 0, 5_000, Some(1_000));
        let shadowed = denied.shadowed();
        assert!(shadowed.allowed && shadowed.shadow);
        assert_eq!(shadowed.retry_after, Some(Duration::ZERO));
        assert_eq!(
            (shadowed.remaining, shadowed.reset_after),
            (0, denied.reset_after)
        );
        let allowed = Decision::allowed(10, 3, 5_000);
        assert_eq!(allowed.shadowed(), allowed);
    }

    #[test]
    fn the_most_restrictive_is_the_denial_with_the_longest_wait_then_the_fewest_left() {
        let roomy = Decision::allowed(10, 8, 1_000);
        let tight = Decision::allowed(10, 1, 1_000);
        let soon = Decision::denied(10, 0, 5_000, Some(1_000));
        let late = Decision::denied(10, 0, 5_000, Some(9_000));
        let never = Decision::denied(10, 0, 5_000, None);
        assert_eq!(most_restrictive([&roomy, &tight]), Some(1));
        assert_eq!(most_restrictive([&tight, &soon, &roomy]), Some(1));
        assert_eq!(most_restrictive([&late, &soon]), Some(0));
        assert_eq!(most_restrictive([&soon, &never, &late]), Some(1));
        assert_eq!(most_restrictive([]), None);
    }
}
