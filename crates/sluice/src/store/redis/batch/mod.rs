//! Packing the decisions that are waiting at the same moment into one call,
//! each within its deadline.
//!
//! Every call of the library costs Redis a fixed price (the command, the
//! function call, `TIME`) before any decision. A driver task takes the
//! groups that callers queue and sends them together, at most
//! [`IN_FLIGHT`] calls at a time: at low load each group goes alone and at
//! once; under load, groups queue while the calls in flight are answered
//! and the next call carries them all, so the fixed price is shared. Each
//! group is still decided all or nothing, in queue order.
//!
//! **Bounded latency.** A check's deadline is its arrival plus the timeout,
//! whatever it waits for (the queue, the connection, Redis): its caller is
//! answered [`StoreError::Timeout`] then at the latest. The queue holds at
//! most [`QUEUE`] groups; when it is full a check is answered at once with
//! [`QueueFull`] (transient), rather than wait for a place it could not get
//! in time under a load Redis cannot keep up with.
//!
//! **Nothing charged for a check answered as failed.** A check whose
//! deadline has passed when the driver takes it is never sent. A call goes
//! with the earliest deadline of its checks, in Redis's time, and the
//! library refuses the call (`LATE`, nothing decided) if Redis runs it
//! after that: a call held in Redis's input while Redis was paused or
//! stopped, run when it resumes, charges nothing. Redis's time is learnt
//! from the replies (each carries Redis `TIME`): the offset between it and
//! this process's monotonic clock is taken as `reply time - time received`,
//! a lower bound, so the deadline sent is never later than the caller's
//! (on a cluster, in the time of the node it was learnt from).
//! A call Redis ran in time whose reply then came late (after the
//! deadline: Redis stopped or busy between running it and answering) is
//! still awaited, up to [`LATE_REPLY_WAIT`], and what it charged the checks
//! whose callers were answered `Timeout` is refunded. With a store clock
//! ([`RedisStore::with_clock`](super::RedisStore::with_clock), for tests)
//! calls carry no deadline.
//!
//! **Redis Cluster: one lane per slot.** Redis refuses a call whose keys
//! are in several slots (`CROSSSLOT`, even when one node holds them all),
//! so on a cluster the groups are packed per slot ([`lanes`]): each slot is
//! a lane with its own waiting groups (at most [`QUEUE`]; beyond,
//! [`QueueFull`] for that slot only) and its own [`IN_FLIGHT`] calls; the
//! offset to Redis's time is shared by the lanes until a node refuses a
//! call as late, when that slot's lane reads its node's `TIME` and keeps
//! an offset of its own ([`clock`]). A node that is down or
//! slow holds up only its slots' lanes; the others go on. The cluster
//! client follows `MOVED` and `ASK` on each call, as for an unbatched one.
//! Only the lanes with groups waiting or in flight are kept (a slot's own
//! time offset, once it has one, stays: at most one number per slot).

mod clock;
mod lanes;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use redis::cluster_routing::Slot;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::call::{Form, Group, call};
use super::connection::{Connection, store_error};
use super::library::{LATE, Mode, REPLY_PER_CHECK, VALUES_PER_CHECK};
use super::reply;
use crate::StoreError;
use clock::RedisClock;
use lanes::Lanes;

/// Calls in flight at once.
pub const IN_FLIGHT: usize = 4;
/// The most checks in one call, so that no call holds Redis for long.
pub const MAX_CHECKS: usize = 128;
/// The most groups waiting for a call. Far more than Redis decides within
/// any sensible timeout (a call of [`MAX_CHECKS`] takes it about a
/// millisecond), so a full queue means Redis cannot keep up.
pub const QUEUE: usize = 8192;

/// How long a call's reply is awaited past its deadline, to refund what
/// a call Redis ran in time charged when its reply comes too late. Redis
/// silent for longer is taken as lost for that call.
pub const LATE_REPLY_WAIT: Duration = Duration::from_secs(10);

/// The reply for one group: `now`, then its checks' values.
type Reply = Result<Vec<i64>, StoreError>;

/// Where a group's call goes: the single Redis (`None`), or the cluster
/// slot of its keys (which one call's keys must share).
type Lane = Option<Slot>;

/// A map by lane, looked up on every call: foldhash, not SipHash (a lane
/// is a slot, the CRC of a key, not something a client picks).
type ByLane<V> = std::collections::HashMap<Lane, V, foldhash::fast::RandomState>;

/// Why a check was refused at once: the queue of checks waiting for Redis
/// is full. The source of a transient [`StoreError::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[error("{QUEUE} decisions are already waiting for Redis")]
#[non_exhaustive]
pub struct QueueFull;

struct Job {
    group: Group,
    lane: Lane,
    now: Option<u64>,
    deadline: Instant,
    done: oneshot::Sender<Reply>,
}

/// Packs the groups of concurrent decisions into calls; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    route: Route,
    timeout: Duration,
}

/// Where a [`Batcher`]'s groups go.
#[derive(Clone)]
enum Route {
    /// A single Redis: to the driver task, which packs the calls.
    Driver(mpsc::Sender<Job>),
    /// A cluster: to the lane of their slot.
    Lanes(Arc<Lanes>),
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cluster = matches!(self.route, Route::Lanes(_));
        f.debug_struct("Batcher")
            .field("cluster", &cluster)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts batching on the current tokio runtime; each check gets
    /// `timeout` from its arrival.
    pub fn start(connection: Connection, form: Arc<Form>, timeout: Duration) -> Batcher {
        Batcher::start_with_clock(connection, form, timeout, RedisClock::new())
    }

    /// [`Batcher::start`] with Redis's time known through `clock`.
    fn start_with_clock(
        connection: Connection,
        form: Arc<Form>,
        timeout: Duration,
        clock: RedisClock,
    ) -> Batcher {
        let route = if connection.is_cluster() {
            Route::Lanes(Arc::new(Lanes::new(connection, form, timeout, clock)))
        } else {
            let (jobs, queue) = mpsc::channel(QUEUE);
            tokio::spawn(drive(queue, connection, form, timeout, clock));
            Route::Driver(jobs)
        };
        Batcher { route, timeout }
    }

    /// Decides `group`, which arrived at `arrived`, at `now` (Redis `TIME`
    /// when `None`; a call carrying several groups uses the latest of their
    /// times) in the next call; answers by `arrived` plus the timeout.
    pub async fn decide(&self, group: Group, now: Option<u64>, arrived: Instant) -> Reply {
        let (done, answer) = oneshot::channel();
        let deadline = arrived + self.timeout;
        let mut job = Job {
            group,
            lane: None,
            now,
            deadline,
            done,
        };
        match &self.route {
            Route::Driver(jobs) => {
                match jobs.try_send(job) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        return Err(StoreError::Unavailable(Box::new(QueueFull)));
                    }
                    Err(TrySendError::Closed(_)) => return Err(stopped()),
                }
                wait(answer, deadline, self.timeout).await
            }
            Route::Lanes(lanes) => {
                // The caller gives one slot's checks (keys of one hash
                // tag): the first key names the slot.
                job.lane = job.group.keys.first().map(Slot::for_key);
                lanes.decide(job, answer).await
            }
        }
    }
}

/// The error of a check whose call was dropped unanswered.
fn stopped() -> StoreError {
    StoreError::Protocol("the Redis call driver has stopped".into())
}

/// The reply `answer` brings, or [`StoreError::Timeout`] at `deadline`.
async fn wait(mut answer: oneshot::Receiver<Reply>, deadline: Instant, timeout: Duration) -> Reply {
    match tokio::time::timeout_at(deadline, &mut answer).await {
        Ok(reply) => reply.map_err(|_| stopped())?,
        Err(_) => {
            // Closed first: a reply sent from now on is refused, and the
            // call refunds what it charged; one sent just before is a
            // decision, and taken.
            answer.close();
            answer
                .try_recv()
                .unwrap_or(Err(StoreError::Timeout(timeout)))
        }
    }
}

/// Adds `job` to the next call, unless its caller has gone or its deadline
/// has passed (then it is answered, and never sent).
fn take(job: Job, jobs: &mut Vec<Job>, checks: &mut usize, now: Instant, timeout: Duration) {
    if job.done.is_closed() {
        return;
    }
    if job.deadline <= now {
        let _ = job.done.send(Err(StoreError::Timeout(timeout)));
        return;
    }
    *checks += job.group.keys.len();
    jobs.push(job);
}

async fn drive(
    mut queue: mpsc::Receiver<Job>,
    connection: Connection,
    form: Arc<Form>,
    timeout: Duration,
    // Declared before the calls, which borrow it.
    clock: RedisClock,
) {
    // The calls in flight are polled here, not spawned: no task per call.
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            // Taking work only while a call may start is what lets the
            // queue fill up under load.
            job = queue.recv(), if open && in_flight.len() < IN_FLIGHT => {
                let Some(first) = job else {
                    open = false;
                    continue;
                };
                let (mut checks, mut jobs, taken) = (0, Vec::new(), Instant::now());
                take(first, &mut jobs, &mut checks, taken, timeout);
                while checks < MAX_CHECKS {
                    match queue.try_recv() {
                        Ok(job) => take(job, &mut jobs, &mut checks, taken, timeout),
                        Err(_) => break,
                    }
                }
                if jobs.is_empty() {
                    continue;
                }
                in_flight.push(send(jobs, None, &connection, &form, &clock, timeout));
            }
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            else => return,
        }
    }
}

/// Sends `jobs` (not empty) in one call on `lane`, hands each its part of
/// the reply, and refunds the parts no caller took. Returns when the reply
/// came (awaited past the jobs' deadline, up to [`LATE_REPLY_WAIT`]) and
/// any refund is done.
async fn send(
    jobs: Vec<Job>,
    lane: Lane,
    connection: &Connection,
    form: &Form,
    clock: &RedisClock,
    timeout: Duration,
) {
    let (Some(deadline), Some(key)) = (
        jobs.iter().map(|j| j.deadline).min(),
        jobs.first().and_then(|j| j.group.keys.first()).cloned(),
    ) else {
        return;
    };
    let now = jobs.iter().filter_map(|j| j.now).max();
    let groups: Vec<&Group> = jobs.iter().map(|j| &j.group).collect();
    let call = async {
        // Only on Redis TIME: the library compares the
        // deadline with it.
        let until = match now {
            None => Some(clock.redis_time(lane, &key, deadline, connection).await?),
            Some(_) => None,
        };
        let reply = call(connection, form, now, until, Mode::Decide, &groups).await;
        match (now, &reply) {
            (None, Ok(values)) => {
                if let Some(&redis_now) = values.first() {
                    clock.learn(lane, redis_now, Instant::now());
                }
            }
            // Refused as late: the deadline sent may have
            // been early (an offset learnt from a reply that
            // came late, Redis stopped between running a call
            // and answering it), and every later call would
            // be refused too. Ask Redis its time again.
            (None, Err(e)) if e.code() == Some(LATE) => clock.forget(lane),
            _ => {}
        }
        reply
    };
    // The reply is awaited past the deadline (the callers
    // are answered by their own timers): a call Redis ran
    // in time whose reply came late is refunded.
    let reply = tokio::time::timeout_at(deadline + LATE_REPLY_WAIT, call).await;
    drop(groups);
    let unclaimed = answer(jobs, reply, timeout);
    let refund = refund(connection, form, now, unclaimed);
    let _ = tokio::time::timeout(timeout, refund).await;
}

/// Hands each job its part of the reply (`now`, then its checks' values),
/// or the error. Returns the groups whose part no caller took (their
/// deadline had passed), with that part.
fn answer(
    jobs: Vec<Job>,
    reply: Result<redis::RedisResult<Vec<i64>>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Vec<(Group, Vec<i64>)> {
    let failure: Box<dyn Fn() -> StoreError + Send> = match reply {
        Ok(Ok(values)) => {
            let sizes: Vec<usize> = jobs.iter().map(|j| j.group.keys.len()).collect();
            match reply::split(&values, &sizes) {
                Ok(parts) => {
                    let mut unclaimed = Vec::new();
                    for (job, part) in jobs.into_iter().zip(parts) {
                        if let Err(Ok(part)) = job.done.send(Ok(part)) {
                            unclaimed.push((job.group, part));
                        }
                    }
                    return unclaimed;
                }
                Err(error) => {
                    let message = match error {
                        StoreError::Protocol(message) => message,
                        other => other.to_string(),
                    };
                    Box::new(move || StoreError::Protocol(message.clone()))
                }
            }
        }
        // Redis ran the call after its deadline and decided nothing.
        Ok(Err(e)) if e.code() == Some(LATE) => Box::new(move || StoreError::Timeout(timeout)),
        Ok(Err(e)) if !e.is_timeout() => Box::new(move || store_error(e.clone())),
        _ => Box::new(move || StoreError::Timeout(timeout)),
    };
    for job in jobs {
        let _ = job.done.send(Err(failure()));
    }
    Vec::new()
}

/// Gives back what Redis charged the `unclaimed` groups: their callers had
/// been answered [`StoreError::Timeout`] when the decisions came, so these
/// must not count. A group was charged when every one of its checks
/// admitted (all or nothing), each check but a shadow one (whose denial,
/// reported as admitted, charged nothing). Refunding is best effort: if
/// this call fails too, the charge stands.
async fn refund(
    connection: &Connection,
    form: &Form,
    now: Option<u64>,
    unclaimed: Vec<(Group, Vec<i64>)>,
) {
    const PACKED: usize = VALUES_PER_CHECK * 8;
    let mut charged = Group::default();
    let mut at_us = 0;
    for (group, part) in &unclaimed {
        let Some((&decided_at, values)) = part.split_first() else {
            continue;
        };
        let decisions: Vec<&[i64]> = values.chunks_exact(REPLY_PER_CHECK).collect();
        if decisions.len() != group.keys.len() || decisions.iter().any(|d| d[0] != 1) {
            continue;
        }
        for (i, d) in decisions.iter().enumerate() {
            let packed = group.values.get(i * PACKED..(i + 1) * PACKED);
            if let (0, Some(packed)) = (d[5], packed) {
                charged.keys.push(group.keys[i].clone());
                charged.values.extend_from_slice(packed);
            }
        }
        at_us = u64::try_from(decided_at).unwrap_or(0);
    }
    if !charged.keys.is_empty() {
        let mode = Mode::Refund { at_us };
        let _ = call(connection, form, now, None, mode, &[&charged]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Check;
    use crate::store::redis::RedisStore;
    use crate::{Algorithm, Quota};

    /// A reply that came late (Redis stopped between running a call and
    /// answering it) teaches an offset below the true one: every deadline
    /// sent is then early, and Redis refuses each call as late. The driver
    /// must read Redis `TIME` again after a refusal, or the store never
    /// decides again (a fault test saw it stay refused for over 12 s after
    /// a SIGSTOP was lifted).
    #[tokio::test]
    async fn a_late_refusal_makes_the_driver_read_redis_time_again() {
        let redis = sluice_testkit::RedisServer::start();
        let timeout = Duration::from_millis(500);
        let options = crate::RedisOptions::default().with_timeout(timeout);
        let store = RedisStore::connect_with(&redis.url(), options)
            .await
            .unwrap();
        let (seconds, micros): (i64, i64) = (store.caller.connection)
            .query(&redis::cmd("TIME"))
            .await
            .unwrap();
        // Learnt as if the reply had come 5 s after Redis read its time.
        let clock = RedisClock::new();
        let redis_now = seconds * 1_000_000 + micros;
        clock.learn(None, redis_now - 5_000_000, Instant::now());
        let batcher = Batcher::start_with_clock(
            store.caller.connection.clone(),
            Arc::clone(&store.caller.form),
            timeout,
            clock,
        );
        let quota = Quota::new(Algorithm::FixedWindow, 10, Duration::from_secs(60), None).unwrap();
        let check = Check::new("p", "k", &quota, 1);
        let first = batcher
            .decide(store.caller.group(&[check]), None, Instant::now())
            .await;
        assert!(
            matches!(first, Err(StoreError::Timeout(_))),
            "a deadline 5 s early is refused as late: {first:?}"
        );
        let second = batcher
            .decide(store.caller.group(&[check]), None, Instant::now())
            .await;
        assert!(second.is_ok(), "decided again: {second:?}");
    }
}
