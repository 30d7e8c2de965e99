//! What a limit allows: an algorithm, a limit per period and, for the bucket
//! algorithms, a burst. A [`Quota`] can only be built valid: with
//! [`Quota::new`], or governor-style with [`Quota::per_second`] (and
//! `per_minute`, `per_hour`, `per_period`), then [`Quota::allow_burst`] and
//! [`Quota::with_algorithm`].

mod divisor;
mod rates;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::duration::display;
pub(crate) use divisor::Divisor;

/// The shortest period a quota may have.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);

/// The longest period a quota may have (366 days).
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);

/// The largest `limit` or `burst` a quota may have.
pub const MAX_LIMIT: u64 = 1_000_000_000;

/// The largest `limit` of a `sliding_window_log` quota (a larger one is
/// refused with a [`QuotaError::Limit`] naming the field).
///
/// The log keeps one entry per microsecond that admitted something, so its
/// memory grows with the limit (on Redis, about 120 bytes an entry: 12 MB
/// by `MEMORY USAGE` for a full log at this limit). Its time does not: a check reads
/// the newest entry and the oldest live one, and a denial searches only
/// the ranks its answer can be in (`store/redis/lua/sliding_window_log.lua`),
/// so at this limit a check costs Redis at most a few times a token
/// bucket's. `tests/sliding_log.rs` holds it to that: a full log at this
/// limit, hammered by several clients with costs that make every search
/// differ, takes Redis under 4 times a token bucket's time per call
/// (1.5 to 2.3 times in the runs measured), and an unrelated client's p99
/// round trip stays within 4 times what it is beside the token bucket.
pub const MAX_LOG_LIMIT: u64 = 100_000;

/// The largest scaled quantity a quota may lead to: a bucket's scaled
/// capacity (`burst` in scaled units; see [`Quota`]), and `limit × period_us` for
/// the sliding window counter. Redis's Lua numbers are doubles, exact for
/// integers up to 2^53; keeping every operand at or below 2^50 leaves room
/// for the sums and products of the scripts' exact integer division, so
/// that every store computes the same decisions.
pub const MAX_SCALED: u64 = 1 << 50;

/// The rate limiting algorithms Sluice implements.
///
/// All of them decide from integer microseconds; see each module for the
/// exact definition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// A bucket of `burst` tokens refilled continuously at `limit / period`.
    #[default]
    TokenBucket,
    /// The generic cell rate algorithm: the token bucket kept as one time.
    Gcra,
    /// A queue that drains at `limit / period` and holds at most `burst`;
    /// admitted requests are told how long to wait for their turn.
    LeakyBucket,
    /// Counters over windows aligned to the Unix epoch.
    FixedWindow,
    /// The exact count of what was admitted in the last `period`.
    SlidingWindowLog,
    /// The weighted estimate over the current and the previous window.
    SlidingWindowCounter,
}

impl Algorithm {
    /// Every algorithm, in documentation order.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::TokenBucket,
        Algorithm::Gcra,
        Algorithm::LeakyBucket,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowLog,
        Algorithm::SlidingWindowCounter,
    ];

    /// The name used in configuration files and APIs, such as `token_bucket`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::Gcra => "gcra",
            Algorithm::LeakyBucket => "leaky_bucket",
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingWindowLog => "sliding_window_log",
            Algorithm::SlidingWindowCounter => "sliding_window_counter",
        }
    }

    /// Whether the algorithm is a bucket, and so takes a `burst`.
    pub fn has_burst(self) -> bool {
        matches!(
            self,
            Algorithm::TokenBucket | Algorithm::Gcra | Algorithm::LeakyBucket
        )
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a name that is not one of [`Algorithm::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown algorithm {0:?}; expected one of token_bucket, gcra, leaky_bucket, fixed_window, sliding_window_log, sliding_window_counter"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// Why a quota could not be built. Each variant names the field at fault
/// (see [`QuotaError::field`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// `limit` is zero or above [`MAX_LIMIT`] (or [`MAX_LOG_LIMIT`]).
    #[error("limit: must be a positive integer of at most {max}, got {got}")]
    Limit {
        /// The value given.
        got: u64,
        /// The largest value allowed for this algorithm.
        max: u64,
    },
    /// `period` is outside [`MIN_PERIOD`]..=[`MAX_PERIOD`] or not whole microseconds.
    #[error("period: must be whole microseconds from 1ms to 366d, got {}", display(*.0))]
    Period(Duration),
    /// `burst` is zero or above [`MAX_LIMIT`].
    #[error("burst: must be a positive integer of at most {MAX_LIMIT}, got {0}")]
    Burst(u64),
    /// `burst` was given for a window algorithm, which has none.
    #[error("burst: {0} has no burst; remove it or use a bucket algorithm")]
    BurstNotAllowed(Algorithm),
    /// A sliding window counter whose `limit × period` (in µs) exceeds
    /// [`MAX_SCALED`].
    #[error(
        "limit: {limit} per {} is too large for sliding_window_counter (limit x period in microseconds must be at most 2^50, about 13,000 per day or 312,000 per hour); use fixed_window or a shorter period",
        display(*.period)
    )]
    CounterTooLarge {
        /// The limit given.
        limit: u64,
        /// The period given.
        period: Duration,
    },
    /// The bucket cannot be computed exactly (see [`MAX_SCALED`]).
    #[error(
        "burst: {burst} with {limit} per {} cannot be computed exactly (burst x period / gcd(limit, period in microseconds) must be at most 2^50); use a shorter period or a smaller burst",
        display(*.period)
    )]
    TooPrecise {
        /// The limit given.
        limit: u64,
        /// The period given.
        period: Duration,
        /// The burst given or implied.
        burst: u64,
    },
}

impl QuotaError {
    /// The field at fault: `limit`, `period` or `burst`.
    pub fn field(&self) -> &'static str {
        match self {
            QuotaError::Limit { .. } | QuotaError::CounterTooLarge { .. } => "limit",
            QuotaError::Period(_) => "period",
            QuotaError::Burst(_)
            | QuotaError::BurstNotAllowed(_)
            | QuotaError::TooPrecise { .. } => "burst",
        }
    }
}

/// A validated quota: `limit` units per `period`, decided by `algorithm`,
/// with a bucket capacity of `burst` for the bucket algorithms.
///
/// Bucket algorithms compute in exact integer fractions: with
/// `g = gcd(limit, period_us)`, one token is `period_us / g` *scaled units*
/// and the bucket refills `limit / g` scaled units per microsecond, so no
/// refill is ever rounded away.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Quota};
///
/// let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
/// assert_eq!(quota.burst(), 10);
/// assert!(Quota::new(Algorithm::FixedWindow, 10, Duration::from_secs(60), Some(5)).is_err());
/// // The same quota, governor-style:
/// assert_eq!(Quota::per_minute(10).unwrap(), quota);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    algorithm: Algorithm,
    limit: u64,
    period_us: u64,
    burst: u64,
    /// Scaled units refilled per microsecond: `limit / g`.
    refill_per_us: Divisor,
    /// Scaled units per token: `period_us / g`.
    unit: Divisor,
}

impl Quota {
    /// Builds a quota. `burst` is only for the bucket algorithms; when it is
    /// `None` there, it follows `limit`.
    pub fn new(
        algorithm: Algorithm,
        limit: u64,
        period: Duration,
        burst: Option<u64>,
    ) -> Result<Quota, QuotaError> {
        let max_limit = if algorithm == Algorithm::SlidingWindowLog {
            MAX_LOG_LIMIT
        } else {
            MAX_LIMIT
        };
        if limit == 0 || limit > max_limit {
            return Err(QuotaError::Limit {
                got: limit,
                max: max_limit,
            });
        }
        if period < MIN_PERIOD
            || period > MAX_PERIOD
            || !period.subsec_nanos().is_multiple_of(1_000)
        {
            return Err(QuotaError::Period(period));
        }
        // In range by the check above: at most 366 days of microseconds.
        let period_us = period.as_micros() as u64;
        let burst = match (algorithm.has_burst(), burst) {
            (false, Some(_)) => return Err(QuotaError::BurstNotAllowed(algorithm)),
            (false, None) => limit,
            (true, None) => limit,
            (true, Some(b)) if b == 0 || b > MAX_LIMIT => return Err(QuotaError::Burst(b)),
            (true, Some(b)) => b,
        };
        let g = gcd(limit, period_us);
        let (refill_per_us, unit) = (limit / g, period_us / g);
        if algorithm == Algorithm::SlidingWindowCounter
            && u128::from(limit) * u128::from(period_us) > u128::from(MAX_SCALED)
        {
            return Err(QuotaError::CounterTooLarge { limit, period });
        }
        if algorithm.has_burst() && u128::from(burst) * u128::from(unit) > u128::from(MAX_SCALED) {
            return Err(QuotaError::TooPrecise {
                limit,
                period,
                burst,
            });
        }
        Ok(Quota {
            algorithm,
            limit,
            period_us,
            burst,
            refill_per_us: Divisor::new(refill_per_us),
            unit: Divisor::new(unit),
        })
    }

    /// The algorithm that decides.
    #[inline]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Units allowed per period.
    #[inline]
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_micros(self.period_us)
    }

    /// The period in microseconds.
    #[inline]
    pub fn period_us(&self) -> u64 {
        self.period_us
    }

    /// The bucket capacity; equal to `limit` for the window algorithms.
    #[inline(always)]
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The most units one key can be granted at once from its untouched
    /// state: `burst` for buckets, `limit` for windows. A cost above it can
    /// never be admitted.
    #[inline]
    pub fn capacity(&self) -> u64 {
        self.burst
    }

    /// Scaled units that one token is worth (`period_us / gcd`).
    #[inline(always)]
    pub(crate) fn scaled_unit(&self) -> u64 {
        self.unit.get()
    }

    /// Scaled units the bucket regains per microsecond (`limit / gcd`).
    #[inline(always)]
    pub(crate) fn refill_per_us(&self) -> u64 {
        self.refill_per_us.get()
    }

    /// `scaled / scaled_unit`, rounded down: whole tokens in `scaled`
    /// units, without a `div` (see [`Divisor`]).
    #[inline(always)]
    pub(crate) fn tokens_in(&self, scaled: u64) -> u64 {
        self.unit.quotient(scaled)
    }

    /// `scaled / refill_per_us`, rounded down: the whole microseconds in
    /// which the bucket refills at most `scaled` units, without a `div`.
    #[inline(always)]
    pub(crate) fn refill_whole_us(&self, scaled: u64) -> u64 {
        self.refill_per_us.quotient(scaled)
    }

    /// `scaled / refill_per_us`, rounded up: the whole microseconds the
    /// bucket takes to refill `scaled` units, without a `div`.
    #[inline(always)]
    pub(crate) fn refill_us(&self, scaled: u64) -> u64 {
        self.refill_per_us.ceil_quotient(scaled)
    }

    /// The bucket capacity in scaled units: `burst × scaled_unit`, at most
    /// [`MAX_SCALED`] for bucket algorithms.
    #[inline(always)]
    pub(crate) fn scaled_capacity(&self) -> u64 {
        self.burst.saturating_mul(self.unit.get())
    }

    /// A short stable digest of every parameter, the same in every process
    /// and version: to tell quotas apart cheaply (two quotas with the same
    /// digest are almost surely equal).
    pub fn fingerprint(&self) -> u32 {
        // FNV-1a over the parameters: stable across processes and versions.
        let mut hash: u32 = 0x811c_9dc5;
        let words = [
            self.algorithm as u64,
            self.limit,
            self.period_us,
            self.burst,
        ];
        for byte in words.iter().flat_map(|w| w.to_le_bytes()) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn every_algorithm_prints_its_name_and_parses_back() {
        for a in Algorithm::ALL {
            assert_eq!(a.to_string(), a.name());
            assert_eq!(a.name().parse::<Algorithm>(), Ok(a));
        }
        assert_eq!(Algorithm::Gcra.to_string(), "gcra");
        assert!("bucket".parse::<Algorithm>().is_err());
    }

    #[test]
    fn each_error_names_the_field_at_fault() {
        let refused = |a, limit, period, burst| Quota::new(a, limit, period, burst).unwrap_err();
        let day = Duration::from_secs(86_400);
        for (error, field) in [
            (refused(Algorithm::Gcra, 0, MINUTE, None), "limit"),
            (
                refused(Algorithm::SlidingWindowCounter, 13_100, day, None),
                "limit",
            ),
            (refused(Algorithm::Gcra, 1, Duration::ZERO, None), "period"),
            (refused(Algorithm::Gcra, 1, MINUTE, Some(0)), "burst"),
            (refused(Algorithm::FixedWindow, 1, MINUTE, Some(1)), "burst"),
        ] {
            assert_eq!(error.field(), field, "{error}");
            assert!(error.to_string().starts_with(field), "{error}");
        }
    }

    #[test]
    fn burst_defaults_to_limit_and_is_refused_on_windows() {
        let q = Quota::new(Algorithm::Gcra, 7, MINUTE, None).unwrap();
        assert_eq!(q.burst(), 7);
        for a in [
            Algorithm::FixedWindow,
            Algorithm::SlidingWindowLog,
            Algorithm::SlidingWindowCounter,
        ] {
            assert_eq!(
                Quota::new(a, 7, MINUTE, Some(7)),
                Err(QuotaError::BurstNotAllowed(a))
            );
        }
    }

    #[test]
    fn scaled_units_are_reduced_by_the_gcd() {
        // 1,000,000 per day: one token is 86,400 scaled units, refilled 1 per µs.
        let day = Duration::from_secs(86_400);
        let q = Quota::new(Algorithm::TokenBucket, 1_000_000, day, None).unwrap();
        assert_eq!((q.scaled_unit(), q.refill_per_us()), (86_400, 1));
        // 7 per minute does not reduce.
        let q = Quota::new(Algorithm::TokenBucket, 7, MINUTE, None).unwrap();
        assert_eq!((q.scaled_unit(), q.refill_per_us()), (60_000_000, 7));
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_field() {
        let err = Quota::new(Algorithm::TokenBucket, 0, MINUTE, None).unwrap_err();
        assert!(err.to_string().starts_with("limit:"), "{err}");
        let err =
            Quota::new(Algorithm::TokenBucket, 1, Duration::from_micros(999), None).unwrap_err();
        assert!(err.to_string().starts_with("period:"), "{err}");
        let err = Quota::new(Algorithm::TokenBucket, 1, MINUTE, Some(0)).unwrap_err();
        assert!(err.to_string().starts_with("burst:"), "{err}");
        let err =
            Quota::new(Algorithm::SlidingWindowLog, MAX_LOG_LIMIT + 1, MINUTE, None).unwrap_err();
        assert!(err.to_string().starts_with("limit:"), "{err}");
        let err = Quota::new(
            Algorithm::TokenBucket,
            7,
            Duration::from_secs(86_400 * 300),
            Some(MAX_LIMIT),
        )
        .unwrap_err();
        assert!(matches!(err, QuotaError::TooPrecise { .. }), "{err}");
        let day = Duration::from_secs(86_400);
        assert!(Quota::new(Algorithm::SlidingWindowCounter, 13_000, day, None).is_ok());
        let err = Quota::new(Algorithm::SlidingWindowCounter, 14_000, day, None).unwrap_err();
        assert!(matches!(err, QuotaError::CounterTooLarge { .. }), "{err}");
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>(), Ok(a));
        }
        assert!("token-bucket".parse::<Algorithm>().is_err());
    }

    #[test]
    fn fingerprint_changes_with_every_parameter() {
        let base = Quota::new(Algorithm::TokenBucket, 10, MINUTE, Some(20)).unwrap();
        let others = [
            Quota::new(Algorithm::Gcra, 10, MINUTE, Some(20)).unwrap(),
            Quota::new(Algorithm::TokenBucket, 11, MINUTE, Some(20)).unwrap(),
            Quota::new(Algorithm::TokenBucket, 10, MINUTE * 2, Some(20)).unwrap(),
            Quota::new(Algorithm::TokenBucket, 10, MINUTE, Some(21)).unwrap(),
        ];
        for other in others {
            assert_ne!(base.fingerprint(), other.fingerprint(), "{other:?}");
        }
    }
}
