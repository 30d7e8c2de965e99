//! Redis's time, learnt from the replies, to send each call's deadline in
//! the time of the Redis that runs it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::time::Instant;

use super::{ByLane, Lane};
use crate::store::redis::connection::Connection;

/// The offset between Redis `TIME` and this process's monotonic clock,
/// learnt from replies, to send deadlines in Redis's time.
///
/// One offset serves every lane (the nodes of a cluster agree to well
/// within a timeout where NTP runs), read and written without a lock:
/// a map of 16,384 slots, looked up and written on every call, cost the
/// batcher more than the calls it saved on random keys. A lane whose Redis
/// refused a call as late (its clock ahead of the offset's, or the offset
/// learnt from a reply that came late) gets an offset of its own, read
/// from its node's `TIME`. A node whose clock is behind runs a call past
/// the caller's deadline, whose charge is refunded as a late reply's.
pub(super) struct RedisClock {
    base: Instant,
    /// Redis µs minus local µs since `base`, last learnt on a lane without
    /// one of its own; [`UNKNOWN`] before the first.
    shared: AtomicI64,
    /// The lanes with an offset of their own (`None` until their node's
    /// `TIME` is read). Usually none.
    own: Mutex<ByLane<Option<i64>>>,
    /// Whether `own` holds any lane, so that it is locked only then.
    any_own: AtomicBool,
}

/// [`RedisClock::shared`] before any reply.
const UNKNOWN: i64 = i64::MIN;

impl RedisClock {
    pub(super) fn new() -> RedisClock {
        RedisClock {
            base: Instant::now(),
            shared: AtomicI64::new(UNKNOWN),
            own: Mutex::new(ByLane::default()),
            any_own: AtomicBool::new(false),
        }
    }

    fn own(&self) -> MutexGuard<'_, ByLane<Option<i64>>> {
        self.own.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `lane`'s offset; `None` when its Redis must be asked its time.
    fn offset(&self, lane: Lane) -> Option<i64> {
        if self.any_own.load(Ordering::Acquire)
            && let Some(&own) = self.own().get(&lane)
        {
            return own;
        }
        let shared = self.shared.load(Ordering::Relaxed);
        (shared != UNKNOWN).then_some(shared)
    }

    fn local_us(&self, at: Instant) -> i64 {
        i64::try_from(at.duration_since(self.base).as_micros()).unwrap_or(i64::MAX)
    }

    /// Learns from `lane`'s Redis time `redis_us`, read before `received`.
    pub(super) fn learn(&self, lane: Lane, redis_us: i64, received: Instant) {
        let offset = redis_us
            .saturating_sub(self.local_us(received))
            .max(UNKNOWN + 1);
        if self.any_own.load(Ordering::Acquire)
            && let Some(own) = self.own().get_mut(&lane)
        {
            *own = Some(offset);
            return;
        }
        self.shared.store(offset, Ordering::Relaxed);
    }

    /// Forgets `lane`'s offset: its next call reads Redis `TIME` first, and
    /// it keeps an offset of its own from then on.
    pub(super) fn forget(&self, lane: Lane) {
        self.own().insert(lane, None);
        self.any_own.store(true, Ordering::Release);
    }

    /// `deadline` in `lane`'s Redis time (µs since the epoch), asking
    /// `TIME` of the node that holds `key` first when no reply has told it
    /// yet.
    pub(super) async fn redis_time(
        &self,
        lane: Lane,
        key: &str,
        deadline: Instant,
        connection: &Connection,
    ) -> redis::RedisResult<u64> {
        let offset = match self.offset(lane) {
            Some(offset) => offset,
            None => {
                let time = redis::cmd("TIME");
                let (seconds, micros): (i64, i64) = connection.query_at(&time, key).await?;
                let received = Instant::now();
                let redis_us = seconds.saturating_mul(1_000_000).saturating_add(micros);
                self.learn(lane, redis_us, received);
                redis_us.saturating_sub(self.local_us(received))
            }
        };
        Ok(u64::try_from(offset.saturating_add(self.local_us(deadline))).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;

    /// One offset serves every lane until a lane is refused as late: that
    /// lane then asks its node, and keeps what it learns apart from the
    /// others.
    #[test]
    fn a_lane_refused_as_late_keeps_an_offset_of_its_own() {
        let clock = RedisClock::new();
        let (a, b) = (Some(Slot::for_key("a")), Some(Slot::for_key("b")));
        assert_ne!(a, b);
        assert_eq!(clock.offset(a), None, "nothing learnt yet: ask Redis");
        let at = clock.base;
        clock.learn(b, 1_000, at);
        assert_eq!(
            (clock.offset(a), clock.offset(b)),
            (Some(1_000), Some(1_000))
        );

        clock.forget(a);
        assert_eq!((clock.offset(a), clock.offset(b)), (None, Some(1_000)));
        clock.learn(a, 5_000, at);
        assert_eq!(
            (clock.offset(a), clock.offset(b)),
            (Some(5_000), Some(1_000))
        );
        clock.learn(b, 2_000, at);
        assert_eq!(
            (clock.offset(a), clock.offset(b)),
            (Some(5_000), Some(2_000))
        );
        // The single Redis is lane `None`, as any other.
        assert_eq!(clock.offset(None), Some(2_000));
    }
}
