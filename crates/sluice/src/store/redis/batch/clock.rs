//! Redis's time, learnt from the replies, to send each call's deadline in
//! the time of the Redis that runs it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

use super::Lane;
use crate::store::redis::connection::Connection;

/// The offset between Redis `TIME` and this process's monotonic clock,
/// learnt from replies, to send deadlines in Redis's time; one per lane
/// (each cluster node has its own clock).
pub(super) struct RedisClock {
    base: Instant,
    /// Redis µs minus local µs since `base`, per lane (`None` once
    /// forgotten), and under [`ANY`] the last learnt on a cluster lane.
    offsets: Mutex<HashMap<Lane, Option<i64>>>,
}

/// Where [`RedisClock`] keeps the offset last learnt on any cluster lane
/// (a cluster's groups are never on lane `None`, a single Redis's).
const ANY: Lane = None;

impl RedisClock {
    pub(super) fn new() -> RedisClock {
        RedisClock {
            base: Instant::now(),
            offsets: Mutex::new(HashMap::new()),
        }
    }

    /// `lane`'s offset; for a cluster lane never learnt, the last one
    /// learnt on any lane (the nodes' clocks agree to well within a
    /// timeout where NTP runs), rather than a `TIME` call per slot. A node
    /// whose clock is ahead refuses that lane's first call as late, and the
    /// lane then reads its own node's `TIME`; one behind runs a call past
    /// the caller's deadline, whose charge is refunded as a late reply's.
    fn offset(&self, lane: Lane) -> Option<i64> {
        let offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        match offsets.get(&lane) {
            Some(&Some(offset)) => Some(offset),
            // Forgotten after a refusal: this lane's node must be asked.
            Some(None) => None,
            None if lane.is_some() => offsets.get(&ANY).copied().flatten(),
            None => None,
        }
    }

    fn local_us(&self, at: Instant) -> i64 {
        i64::try_from(at.duration_since(self.base).as_micros()).unwrap_or(i64::MAX)
    }

    /// Learns from `lane`'s Redis time `redis_us`, read before `received`.
    pub(super) fn learn(&self, lane: Lane, redis_us: i64, received: Instant) {
        let offset = redis_us.saturating_sub(self.local_us(received));
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        offsets.insert(lane, Some(offset));
        if lane.is_some() {
            offsets.insert(ANY, Some(offset));
        }
    }

    /// Forgets `lane`'s offset: its next call reads Redis `TIME` first.
    pub(super) fn forget(&self, lane: Lane) {
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        offsets.insert(lane, None);
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
