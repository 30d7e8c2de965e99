//! Where `now` comes from. Core code never reads a clock itself; stores
//! are given one, and tests give them a [`FakeClock`] they drive by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
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

/// The system's wall clock, read fast.
///
/// Reading the system clock costs tens of nanoseconds, as much as a whole
/// decision in memory. So it is read every [`SYNC_EVERY`] only, and in
/// between the time is that reading plus what the CPU's timestamp counter
/// (through `quanta`, which falls back to the monotonic clock where the
/// counter is unreliable) says has passed since: a few nanoseconds. The
/// two drift apart by the counter's error over at most that interval
/// (microseconds), and a change to the system clock is followed within it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// How often [`SystemClock`] reads the system clock itself.
pub const SYNC_EVERY: Duration = Duration::from_millis(100);

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        static WALL: OnceLock<CountedWallClock> = OnceLock::new();
        WALL.get_or_init(CountedWallClock::new).now_us()
    }
}

/// The wall clock as its last reading plus the counter's time since.
struct CountedWallClock {
    counter: quanta::Clock,
    start: u64,
    /// The wall clock minus the counter's microseconds, at the last reading.
    offset_us: AtomicU64,
    /// When, in the counter's microseconds, to read the wall clock again.
    next_reading_us: AtomicU64,
}

impl CountedWallClock {
    fn new() -> CountedWallClock {
        let counter = quanta::Clock::new();
        let start = counter.raw();
        let wall = CountedWallClock {
            counter,
            start,
            offset_us: AtomicU64::new(0),
            next_reading_us: AtomicU64::new(0),
        };
        wall.read(0);
        wall
    }

    fn now_us(&self) -> u64 {
        let counted_us = self.counter.delta_as_nanos(self.start, self.counter.raw()) / 1000;
        if counted_us >= self.next_reading_us.load(Ordering::Acquire) {
            return self.read(counted_us);
        }
        counted_us.wrapping_add(self.offset_us.load(Ordering::Relaxed))
    }

    /// Reads the system clock and anchors the counter to it.
    fn read(&self, counted_us: u64) -> u64 {
        let wall_us = system_time_us();
        self.offset_us
            .store(wall_us.wrapping_sub(counted_us), Ordering::Relaxed);
        let sync_us = u64::try_from(SYNC_EVERY.as_micros()).unwrap_or(u64::MAX);
        self.next_reading_us
            .store(counted_us.saturating_add(sync_us), Ordering::Release);
        wall_us
    }
}

/// The system clock in microseconds since the epoch; a clock set before
/// 1970 reads as the epoch rather than failing.
fn system_time_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_follows_the_wall_clock() {
        for _ in 0..1000 {
            let before = system_time_us();
            let now = SystemClock.now_us();
            let after = system_time_us();
            // Within the counter's drift over one sync interval (generous).
            assert!(
                now + 5_000 >= before && now <= after + 5_000,
                "{before} {now} {after}"
            );
        }
    }
}
