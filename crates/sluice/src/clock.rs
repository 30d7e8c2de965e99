//! Where `now` comes from. Core code never reads a clock itself; stores
//! are given one, and tests give them a [`FakeClock`] they drive by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time, in whole microseconds since the Unix epoch.
///
/// Wall-clock time (not a monotonic instant) because fixed and sliding
/// windows are aligned to the epoch, and because every process sharing a
/// limit must agree on it.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in microseconds since the Unix epoch.
    fn now_us(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        // A clock set before 1970 reads as the epoch rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Clock, FakeClock};
///
/// let clock = FakeClock::new(1_000);
/// clock.advance(Duration::from_millis(2));
/// assert_eq!(clock.now_us(), 3_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FakeClock {
    now_us: Arc<AtomicU64>,
}

impl FakeClock {
    /// A clock that reads `start_us` until moved.
    pub fn new(start_us: u64) -> FakeClock {
        FakeClock {
            now_us: Arc::new(AtomicU64::new(start_us)),
        }
    }

    /// Moves the clock forward by `by` (whole microseconds).
    pub fn advance(&self, by: Duration) {
        let us = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.now_us.fetch_add(us, Ordering::SeqCst);
    }

    /// Sets the clock to `now_us`, backwards too.
    pub fn set(&self, now_us: u64) {
        self.now_us.store(now_us, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_us(&self) -> u64 {
        self.now_us.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
}
