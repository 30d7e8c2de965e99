//! The rate constructors of [`Quota`], in the style of governor's
//! (`Quota::per_second(n).allow_burst(b)`): a token bucket of `n` per
//! period, whose burst and algorithm can then be changed.
//!
//! Unlike governor's, which take `NonZeroU32` and cannot fail, these take
//! plain integers and return a [`QuotaError`] naming the field at fault
//! (zero, too large, a burst on a window algorithm): the same checks as
//! [`Quota::new`], which each of them calls, so there is one place that
//! decides what a valid quota is.

use std::time::Duration;

use super::{Algorithm, Quota, QuotaError};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl Quota {
    /// `limit` per second, as a token bucket whose burst is `limit`.
    ///
    /// ```
    /// use sluice::{Algorithm, Quota};
    ///
    /// let quota = Quota::per_second(10)?.allow_burst(20)?;
    /// assert_eq!((quota.limit(), quota.burst()), (10, 20));
    /// assert_eq!(quota.algorithm(), Algorithm::TokenBucket);
    /// assert!(Quota::per_second(0).is_err());
    /// # Ok::<(), sluice::QuotaError>(())
    /// ```
    pub fn per_second(limit: u64) -> Result<Quota, QuotaError> {
        Quota::per_period(limit, SECOND)
    }

    /// `limit` per minute, as a token bucket whose burst is `limit`.
    pub fn per_minute(limit: u64) -> Result<Quota, QuotaError> {
        Quota::per_period(limit, MINUTE)
    }

    /// `limit` per hour, as a token bucket whose burst is `limit`.
    pub fn per_hour(limit: u64) -> Result<Quota, QuotaError> {
        Quota::per_period(limit, HOUR)
    }

    /// `limit` per `period` (1 ms to 366 days, whole microseconds), as a
    /// token bucket whose burst is `limit`.
    ///
    /// governor's `Quota::with_period(d)` (one cell every `d`) is
    /// `Quota::per_period(1, d)` here.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sluice::{Algorithm, Quota};
    ///
    /// let quota = Quota::per_period(3, Duration::from_millis(700))?;
    /// assert_eq!(quota, Quota::new(Algorithm::TokenBucket, 3, Duration::from_millis(700), None)?);
    /// assert!(Quota::per_period(3, Duration::ZERO).is_err());
    /// # Ok::<(), sluice::QuotaError>(())
    /// ```
    pub fn per_period(limit: u64, period: Duration) -> Result<Quota, QuotaError> {
        Quota::new(Algorithm::TokenBucket, limit, period, None)
    }

    /// This quota with a bucket capacity of `burst`: how much a key that
    /// has been idle may spend at once. Refused (never a panic) when
    /// `burst` is 0 or too large, or when the algorithm is a window
    /// ([`QuotaError::BurstNotAllowed`]).
    pub fn allow_burst(self, burst: u64) -> Result<Quota, QuotaError> {
        Quota::new(self.algorithm, self.limit, self.period(), Some(burst))
    }

    /// This quota decided by `algorithm` instead. A burst set with
    /// [`Quota::allow_burst`] (one other than the limit) is kept for a
    /// bucket algorithm and refused for a window one, which has none.
    ///
    /// ```
    /// use sluice::{Algorithm, Quota};
    ///
    /// let window = Quota::per_minute(100)?.with_algorithm(Algorithm::SlidingWindowCounter)?;
    /// assert_eq!(window.algorithm(), Algorithm::SlidingWindowCounter);
    /// let bursty = Quota::per_minute(100)?.allow_burst(150)?;
    /// assert!(bursty.with_algorithm(Algorithm::FixedWindow).is_err());
    /// assert_eq!(bursty.with_algorithm(Algorithm::Gcra)?.burst(), 150);
    /// # Ok::<(), sluice::QuotaError>(())
    /// ```
    pub fn with_algorithm(self, algorithm: Algorithm) -> Result<Quota, QuotaError> {
        let burst = (self.burst != self.limit).then_some(self.burst);
        Quota::new(algorithm, self.limit, self.period(), burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{MAX_LIMIT, MAX_LOG_LIMIT};

    #[test]
    fn each_rate_is_a_token_bucket_of_that_period() {
        for (quota, period) in [
            (Quota::per_second(5), SECOND),
            (Quota::per_minute(5), MINUTE),
            (Quota::per_hour(5), HOUR),
            (
                Quota::per_period(5, Duration::from_millis(250)),
                Duration::from_millis(250),
            ),
        ] {
            let quota = quota.unwrap();
            assert_eq!(
                quota,
                Quota::new(Algorithm::TokenBucket, 5, period, None).unwrap()
            );
            assert_eq!(quota.period(), period);
        }
    }

    #[test]
    fn zero_and_out_of_range_are_errors_naming_the_field() {
        let limit = |result: Result<Quota, QuotaError>| result.unwrap_err().field();
        assert_eq!(limit(Quota::per_second(0)), "limit");
        assert_eq!(limit(Quota::per_minute(0)), "limit");
        assert_eq!(limit(Quota::per_hour(MAX_LIMIT + 1)), "limit");
        assert_eq!(limit(Quota::per_period(1, Duration::ZERO)), "period");
        assert_eq!(
            limit(Quota::per_period(1, Duration::from_nanos(1_000_500))),
            "period"
        );
        let quota = Quota::per_second(10).unwrap();
        assert_eq!(quota.allow_burst(0), Err(QuotaError::Burst(0)));
        assert_eq!(
            quota.allow_burst(MAX_LIMIT + 1),
            Err(QuotaError::Burst(MAX_LIMIT + 1))
        );
    }

    #[test]
    fn allow_burst_sets_the_capacity_and_keeps_the_rest() {
        let quota = Quota::per_minute(10).unwrap().allow_burst(25).unwrap();
        assert_eq!(
            quota,
            Quota::new(Algorithm::TokenBucket, 10, MINUTE, Some(25)).unwrap()
        );
        let gcra = Quota::per_minute(10)
            .and_then(|q| q.with_algorithm(Algorithm::Gcra))
            .and_then(|q| q.allow_burst(3))
            .unwrap();
        assert_eq!(
            gcra,
            Quota::new(Algorithm::Gcra, 10, MINUTE, Some(3)).unwrap()
        );
        let window = Quota::per_minute(10)
            .and_then(|q| q.with_algorithm(Algorithm::FixedWindow))
            .unwrap();
        assert_eq!(
            window.allow_burst(3),
            Err(QuotaError::BurstNotAllowed(Algorithm::FixedWindow))
        );
    }

    #[test]
    fn with_algorithm_keeps_an_explicit_burst_only_where_there_is_one() {
        let plain = Quota::per_second(10).unwrap();
        for algorithm in Algorithm::ALL {
            let quota = plain.with_algorithm(algorithm).unwrap();
            assert_eq!(quota, Quota::new(algorithm, 10, SECOND, None).unwrap());
        }
        let bursty = plain.allow_burst(4).unwrap();
        assert_eq!(
            bursty
                .with_algorithm(Algorithm::LeakyBucket)
                .unwrap()
                .burst(),
            4
        );
        assert_eq!(
            bursty.with_algorithm(Algorithm::SlidingWindowLog),
            Err(QuotaError::BurstNotAllowed(Algorithm::SlidingWindowLog))
        );
        // The log's own, lower limit is checked too.
        let many = Quota::per_second(MAX_LOG_LIMIT + 1).unwrap();
        assert_eq!(
            many.with_algorithm(Algorithm::SlidingWindowLog)
                .unwrap_err()
                .field(),
            "limit"
        );
    }
}
