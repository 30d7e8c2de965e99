//! What a policy does when its store cannot decide: [`OnStoreError`], and
//! [`LocalShare`], the part of the limit one process may grant alone.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use crate::Quota;

/// What a policy answers when the store fails (Redis is down, paused or
/// too slow) or its circuit breaker is open.
///
/// The choice is made by a [`Fallback`](crate::store::Fallback) in the
/// store stack ([`Resilient`](crate::store::Resilient) puts one there);
/// with no fallback every store error reaches the caller, as in `Deny`.
///
/// Whatever the mode, a store failure never becomes a denial (a 429) in
/// `Allow` or `Deny`: only `Local`, which decides for real against a
/// share of the limit, can deny.
///
/// ```
/// use sluice::OnStoreError;
///
/// assert_eq!("local".parse::<OnStoreError>().unwrap(), OnStoreError::Local);
/// assert_eq!(OnStoreError::default(), OnStoreError::Deny);
/// assert_eq!(OnStoreError::Allow.to_string(), "allow");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Return the store's error (HTTP 503): fail closed, for login and
    /// payment endpoints. The default, and what Sluice did before the
    /// choice existed.
    #[default]
    Deny,
    /// Admit without counting, and mark the decision
    /// [`degraded`](crate::Decision::degraded): fail open, for APIs whose
    /// availability matters more than their limit for a while.
    Allow,
    /// Decide in this process's memory against the policy's quota scaled
    /// by its [`LocalShare`], until the store answers again.
    Local,
}

impl OnStoreError {
    /// Every mode, in the order of their names in the docs.
    pub const ALL: [OnStoreError; 3] =
        [OnStoreError::Allow, OnStoreError::Deny, OnStoreError::Local];

    /// The mode's name in configuration files: `allow`, `deny` or `local`.
    pub fn name(self) -> &'static str {
        match self {
            OnStoreError::Allow => "allow",
            OnStoreError::Deny => "deny",
            OnStoreError::Local => "local",
        }
    }
}

impl fmt::Display for OnStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of `allow`, `deny` and `local`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown on_store_error {0:?}; expected allow, deny or local")]
pub struct UnknownOnStoreError(pub String);

impl FromStr for OnStoreError {
    type Err = UnknownOnStoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OnStoreError::ALL
            .into_iter()
            .find(|mode| mode.name() == s)
            .ok_or_else(|| UnknownOnStoreError(s.to_owned()))
    }
}

/// The share of a policy's limit that one process grants alone in
/// [`OnStoreError::Local`] mode: `0.25` when four instances share the
/// limit, so that together they admit about what the store would.
///
/// Kept in millionths so that it compares exactly. Scaled numbers are
/// rounded **down** (the instances together never exceed the limit by
/// rounding) and are at least 1 (a policy never stops admitting entirely).
///
/// ```
/// use sluice::LocalShare;
///
/// let share = LocalShare::new(0.25).unwrap();
/// assert_eq!(share.scale(10), 2); // 2.5 rounded down
/// assert_eq!(share.scale(3), 1); // 0.75, but at least 1
/// assert!(LocalShare::new(0.0).is_err() && LocalShare::new(1.5).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalShare(NonZeroU32);

/// Millionths in a whole.
const MILLION: u32 = 1_000_000;

impl LocalShare {
    /// The whole limit: one instance, or a limit meant per instance.
    pub const FULL: LocalShare = LocalShare(NonZeroU32::new(MILLION).unwrap());

    /// A share above 0 and at most 1, to the millionth (a share below one
    /// millionth counts as one millionth).
    pub fn new(share: f64) -> Result<LocalShare, LocalShareError> {
        if !(share > 0.0 && share <= 1.0) {
            return Err(LocalShareError(share.to_string()));
        }
        // In 0..=1e6 by the check above, so the cast cannot truncate.
        let millionths = (share * f64::from(MILLION)).round() as u32;
        Ok(LocalShare(
            NonZeroU32::MIN.saturating_add(millionths.saturating_sub(1)),
        ))
    }

    /// The share as a fraction.
    pub fn get(self) -> f64 {
        f64::from(self.0.get()) / f64::from(MILLION)
    }

    /// `n` times the share, rounded down, and at least 1.
    pub fn scale(self, n: u64) -> u64 {
        let scaled = u128::from(n) * u128::from(self.0.get()) / u128::from(MILLION);
        u64::try_from(scaled).unwrap_or(u64::MAX).max(1)
    }

    /// `quota` with its limit (and burst, for the buckets) scaled; the
    /// period is kept. `None` when the scaled numbers make no valid quota
    /// (a period too precise for the smaller limit, say): the fallback
    /// then answers as in `deny` mode rather than grant the whole limit.
    pub fn scale_quota(self, quota: &Quota) -> Option<Quota> {
        if self == LocalShare::FULL {
            return Some(*quota);
        }
        let algorithm = quota.algorithm();
        let burst = algorithm.has_burst().then(|| self.scale(quota.burst()));
        Quota::new(algorithm, self.scale(quota.limit()), quota.period(), burst).ok()
    }
}

impl Default for LocalShare {
    fn default() -> Self {
        LocalShare::FULL
    }
}

impl fmt::Display for LocalShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// A local share that is not above 0 and at most 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("local_share must be above 0 and at most 1, got {0}")]
pub struct LocalShareError(String);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Algorithm;

    #[test]
    fn a_share_scales_down_to_at_least_one_and_keeps_the_period() {
        let quota = Quota::new(
            Algorithm::TokenBucket,
            100,
            Duration::from_secs(60),
            Some(40),
        )
        .unwrap();
        let quarter = LocalShare::new(0.25).unwrap().scale_quota(&quota).unwrap();
        assert_eq!((quarter.limit(), quarter.burst()), (25, 10));
        assert_eq!(quarter.period(), quota.period());
        let tiny = LocalShare::new(0.000_000_1).unwrap();
        assert_eq!(tiny.scale(100), 1);
        assert_eq!(LocalShare::FULL.scale_quota(&quota), Some(quota));
        let window = Quota::new(Algorithm::FixedWindow, 7, Duration::from_secs(1), None).unwrap();
        assert_eq!(
            LocalShare::new(0.5)
                .unwrap()
                .scale_quota(&window)
                .unwrap()
                .limit(),
            3
        );
    }

    #[test]
    fn shares_outside_zero_to_one_are_refused() {
        for bad in [0.0, -0.5, 1.000_001, f64::NAN, f64::INFINITY] {
            assert!(LocalShare::new(bad).is_err(), "{bad}");
        }
        assert_eq!(LocalShare::new(1.0), Ok(LocalShare::FULL));
        assert_eq!(LocalShare::new(0.5).unwrap().to_string(), "0.5");
    }

    #[test]
    fn every_mode_parses_from_its_name() {
        for mode in OnStoreError::ALL {
            assert_eq!(mode.name().parse::<OnStoreError>(), Ok(mode));
        }
        assert!("open".parse::<OnStoreError>().is_err());
    }
}
