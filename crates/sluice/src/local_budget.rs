//! [`LocalBudget`]: a policy's opt-in to spend slices of a hot key's
//! allowance in this process (see [`LocalBudgets`](crate::store::LocalBudgets)
//! for what it does and the bound it keeps).

use std::fmt;
use std::num::NonZeroU32;

use crate::{Algorithm, Quota};

/// Millionths in a whole.
const MILLION: u64 = 1_000_000;

/// The smallest slice worth taking: a slice of one unit saves no call.
pub const MIN_SLICE: u64 = 2;

/// How much of a key's allowance an instance may take from the store at
/// once and spend locally: slices sized so that `instances` processes
/// together over-admit at most `max_overshoot` of the key's capacity.
///
/// The slice is `max_overshoot × capacity / instances` units, rounded down
/// (`capacity` is the limit for the window algorithms, the burst for the
/// buckets). A key whose slice would be under [`MIN_SLICE`] units, a
/// leaky bucket (whose admissions are told their own wait) and a check of
/// cost 0 are decided by the store as without a local budget.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, LocalBudget, Quota};
///
/// let budget = LocalBudget::new(0.01, 4).unwrap();
/// let quota = Quota::new(Algorithm::FixedWindow, 100_000, Duration::from_secs(1), None).unwrap();
/// // 1% of 100,000 shared by 4 instances: slices of 250.
/// assert_eq!(budget.slice(&quota), Some(250));
/// // Four instances each hold under a slice: 4 × 249.
/// assert_eq!(budget.bound(&quota), 996);
/// let small = Quota::new(Algorithm::FixedWindow, 100, Duration::from_secs(1), None).unwrap();
/// assert_eq!(budget.slice(&small), None, "a quarter of one unit: no slices");
/// assert!(LocalBudget::new(0.0, 1).is_err() && LocalBudget::new(0.5, 0).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalBudget {
    /// The overshoot, in millionths of the capacity.
    millionths: NonZeroU32,
    instances: NonZeroU32,
}

/// Why a [`LocalBudget`] could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalBudgetError {
    /// `max_overshoot` is not above 0 and at most 1.
    #[error("max_overshoot must be above 0 and at most 1, got {0}")]
    Overshoot(String),
    /// `instances` is 0.
    #[error("instances must be at least 1")]
    Instances,
}

impl LocalBudget {
    /// Slices that keep `instances` processes within `max_overshoot` (above
    /// 0, at most 1, to the millionth) of a key's capacity.
    pub fn new(max_overshoot: f64, instances: u32) -> Result<LocalBudget, LocalBudgetError> {
        if !(max_overshoot > 0.0 && max_overshoot <= 1.0) {
            return Err(LocalBudgetError::Overshoot(max_overshoot.to_string()));
        }
        // In 0..=1e6 by the check above, so the cast cannot truncate.
        let millionths = (max_overshoot * MILLION as f64).round() as u32;
        Ok(LocalBudget {
            millionths: NonZeroU32::MIN.saturating_add(millionths.saturating_sub(1)),
            instances: NonZeroU32::new(instances).ok_or(LocalBudgetError::Instances)?,
        })
    }

    /// The largest over-admission allowed, as a fraction of the capacity.
    pub fn max_overshoot(&self) -> f64 {
        f64::from(self.millionths.get()) / MILLION as f64
    }

    /// How many processes share each limit.
    pub fn instances(&self) -> u32 {
        self.instances.get()
    }

    /// The slice size for `quota`, in units; `None` when `quota` is not
    /// sliced (a leaky bucket, or a slice under [`MIN_SLICE`]).
    pub fn slice(&self, quota: &Quota) -> Option<u64> {
        if quota.algorithm() == Algorithm::LeakyBucket {
            return None;
        }
        let overshoot =
            u128::from(quota.capacity()) * u128::from(self.millionths.get()) / u128::from(MILLION);
        let slice = overshoot / u128::from(self.instances.get());
        u64::try_from(slice).ok().filter(|&s| s >= MIN_SLICE)
    }

    /// The most `quota` over-admits under this budget, in units, when
    /// [`LocalBudget::instances`] processes share it: `instances × (slice −
    /// 1)` (each holds less than a slice unspent); 0 when not sliced.
    pub fn bound(&self, quota: &Quota) -> u64 {
        self.slice(quota)
            .map_or(0, |s| u64::from(self.instances.get()) * (s - 1))
    }
}

impl fmt::Display for LocalBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max_overshoot {} over {} instances",
            self.max_overshoot(),
            self.instances
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_slice_is_the_overshoot_shared_by_the_instances_and_leaky_buckets_are_not_sliced() {
        let budget = LocalBudget::new(0.05, 3).unwrap();
        let bucket = Quota::new(
            Algorithm::TokenBucket,
            10,
            Duration::from_secs(1),
            Some(600),
        )
        .unwrap();
        assert_eq!(budget.slice(&bucket), Some(10), "5% of the burst, over 3");
        assert_eq!(budget.bound(&bucket), 27);
        let leaky = Quota::new(
            Algorithm::LeakyBucket,
            10,
            Duration::from_secs(1),
            Some(600),
        )
        .unwrap();
        assert_eq!(budget.slice(&leaky), None);
        assert_eq!(budget.bound(&leaky), 0);
        assert!(budget.bound(&bucket) as f64 <= budget.max_overshoot() * 600.0);
        assert_eq!(
            LocalBudget::new(1.5, 1),
            Err(LocalBudgetError::Overshoot("1.5".into()))
        );
        assert_eq!(
            LocalBudget::new(0.01, 2).unwrap().to_string(),
            "max_overshoot 0.01 over 2 instances"
        );
    }
}
