//! Batching on a Redis Cluster: one lane per slot, without a driver task.
//!
//! A caller whose lane has no call out sends its group at once from its
//! own task: with keys over many slots, concurrent decisions rarely share
//! a lane, and a hop through a driver task and a task per call cost more
//! than the batching saved (measured: 0.71× the unbatched decisions/s on
//! random keys). A caller whose lane is busy queues its group; the lane's
//! next call (up to [`IN_FLIGHT`] out) takes what waits, up to
//! [`MAX_CHECKS`] checks, when its own task runs. So a lane is batched
//! exactly when it is under load.
//!
//! A call polled by its caller's task is not lost with it: once the caller
//! is answered by its deadline, or gone, the call is finished on a task of
//! its own ([`Detached`]), so that a late reply is still read and what it
//! charged refunded, as for a queued group.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::clock::RedisClock;
use super::{ByLane, IN_FLIGHT, Job, Lane, MAX_CHECKS, QUEUE, QueueFull, Reply, send, take, wait};
use crate::StoreError;
use crate::store::redis::call::Form;
use crate::store::redis::connection::Connection;

/// The lanes of a cluster, shared by the callers and the calls.
pub(super) struct Lanes {
    waiting: Mutex<ByLane<Waiting>>,
    connection: Connection,
    form: Arc<Form>,
    clock: RedisClock,
    timeout: Duration,
}

impl Lanes {
    pub(super) fn new(
        connection: Connection,
        form: Arc<Form>,
        timeout: Duration,
        clock: RedisClock,
    ) -> Lanes {
        Lanes {
            waiting: Mutex::new(ByLane::default()),
            connection,
            form,
            clock,
            timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ByLane<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides `job` on its lane, answering through `answer` by the job's
    /// deadline: sent at once from this task when the lane has no call out,
    /// else queued for the lane's next call.
    pub(super) async fn decide(
        self: &Arc<Self>,
        job: Job,
        answer: oneshot::Receiver<Reply>,
    ) -> Reply {
        let (lane, deadline) = (job.lane, job.deadline);
        let alone = {
            let mut lanes = self.lock();
            let waiting = lanes.entry(lane).or_default();
            if waiting.calls == 0 && waiting.jobs.is_empty() {
                waiting.calls = 1;
                Some(job)
            } else {
                waiting.queue(job, Instant::now());
                self.start_next(lane, waiting);
                None
            }
        };
        if let Some(job) = alone {
            let mut call = Detached::new(Arc::clone(self).call(lane, vec![job]));
            // Dropped unfinished at the deadline: finished on a task of
            // its own.
            let _ = tokio::time::timeout_at(deadline, &mut call).await;
        }
        wait(answer, deadline, self.timeout).await
    }

    /// Starts `lane`'s next call on a task of its own, if groups wait and
    /// fewer than [`IN_FLIGHT`] calls are out. The call takes the groups
    /// when its task runs, not now: those queued in between (the callers a
    /// reply has just answered, deciding again) go with it.
    fn start_next(self: &Arc<Self>, lane: Lane, waiting: &mut Waiting) {
        if waiting.calls >= IN_FLIGHT || waiting.jobs.is_empty() {
            return;
        }
        // Without a runtime (shutting down) nothing is sent, and the
        // callers are answered at their deadlines.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            waiting.calls += 1;
            runtime.spawn(Arc::clone(self).gather(lane));
        }
    }

    /// Takes what waits on `lane` (up to [`MAX_CHECKS`] checks) and sends
    /// it; the lane has counted this call.
    async fn gather(self: Arc<Self>, lane: Lane) {
        let jobs = (self.lock().get_mut(&lane))
            .map(|waiting| waiting.next_call(Instant::now(), self.timeout))
            .unwrap_or_default();
        self.call(lane, jobs).await;
    }

    /// Sends `jobs` (if any; the lane has counted this call), then lets
    /// the lane's next call go.
    async fn call(self: Arc<Self>, lane: Lane, jobs: Vec<Job>) {
        // Dropped even if this call is (the runtime shutting down): a lane
        // whose call was never counted out would never send again.
        let _ended = Ended {
            lanes: Arc::clone(&self),
            lane,
        };
        let (connection, form, clock) = (&self.connection, &self.form, &self.clock);
        send(jobs, lane, connection, form, clock, self.timeout).await;
    }

    /// A call of `lane` has ended: the next one may start; a lane with
    /// nothing waiting or in flight is dropped.
    fn ended(self: &Arc<Self>, lane: Lane) {
        let mut lanes = self.lock();
        let Some(waiting) = lanes.get_mut(&lane) else {
            return;
        };
        waiting.calls = waiting.calls.saturating_sub(1);
        self.start_next(lane, waiting);
        if waiting.calls == 0 && waiting.jobs.is_empty() {
            lanes.remove(&lane);
        }
    }
}

/// Counts a call of a lane out when dropped.
struct Ended {
    lanes: Arc<Lanes>,
    lane: Lane,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.lanes.ended(self.lane);
    }
}

/// A future polled by its caller's task that, dropped unfinished, is
/// finished on a task of its own.
struct Detached(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Detached {
    fn new(future: impl Future<Output = ()> + Send + 'static) -> Detached {
        Detached(Some(Box::pin(future)))
    }
}

impl Future for Detached {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(future) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        let ready = future.as_mut().poll(cx);
        if ready.is_ready() {
            self.0 = None;
        }
        ready
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let (Some(future), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(future);
        }
    }
}

/// The groups waiting on one lane of a cluster, and its calls in flight.
#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Job>,
    calls: usize,
}

impl Waiting {
    /// Queues `job`, unless [`QUEUE`] groups still wait once those whose
    /// caller has gone or whose deadline has passed are dropped: then it is
    /// answered [`QueueFull`].
    fn queue(&mut self, job: Job, now: Instant) {
        if self.jobs.len() >= QUEUE {
            self.jobs
                .retain(|j| !j.done.is_closed() && j.deadline > now);
        }
        if self.jobs.len() >= QUEUE {
            let _ = job
                .done
                .send(Err(StoreError::Unavailable(Box::new(QueueFull))));
            return;
        }
        self.jobs.push_back(job);
    }

    /// The jobs of the lane's next call: up to [`MAX_CHECKS`] checks.
    fn next_call(&mut self, now: Instant, timeout: Duration) -> Vec<Job> {
        let (mut checks, mut jobs) = (0, Vec::new());
        while checks < MAX_CHECKS {
            let Some(job) = self.jobs.pop_front() else {
                break;
            };
            take(job, &mut jobs, &mut checks, now, timeout);
        }
        jobs
    }
}

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;
    use crate::store::redis::call::Group;
    use crate::store::redis::library::VALUES_PER_CHECK;

    /// A job on `lane` due at `deadline`, and the receiver of its answer.
    fn job(deadline: Instant) -> (Job, oneshot::Receiver<Reply>) {
        let (done, answer) = oneshot::channel();
        let mut group = Group::default();
        group.push("k".to_owned(), [0; VALUES_PER_CHECK]);
        let job = Job {
            group,
            lane: Some(Slot::for_key("k")),
            now: None,
            deadline,
            done,
        };
        (job, answer)
    }

    /// A cluster lane holds at most [`QUEUE`] groups: one more is answered
    /// [`QueueFull`] at once, unless groups whose caller has gone or whose
    /// deadline has passed make room; a call takes at most [`MAX_CHECKS`]
    /// checks.
    #[test]
    fn a_full_lane_refuses_until_stale_groups_make_room() {
        let full = |answer: &mut oneshot::Receiver<Reply>| {
            matches!(
                answer.try_recv(),
                Ok(Err(StoreError::Unavailable(cause))) if cause.downcast_ref::<QueueFull>().is_some()
            )
        };
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut lane = Waiting::default();
        let mut answers = Vec::new();
        for _ in 0..QUEUE {
            let (job, answer) = job(later);
            lane.queue(job, now);
            answers.push(answer);
        }
        let (extra, mut answer) = job(later);
        lane.queue(extra, now);
        assert!(full(&mut answer), "beyond the queue");

        // Two callers gone: room for two.
        answers.truncate(QUEUE - 2);
        for expected in [false, false, true] {
            let (extra, mut answer) = job(later);
            lane.queue(extra, now);
            assert_eq!(full(&mut answer), expected);
            answers.push(answer);
        }
        assert_eq!(lane.jobs.len(), QUEUE);

        let call = lane.next_call(now, Duration::from_secs(1));
        assert_eq!(call.len(), MAX_CHECKS);
        assert_eq!(lane.jobs.len(), QUEUE - MAX_CHECKS);
        // Once every deadline has passed, they all make room.
        lane.jobs.extend(call);
        let (extra, mut answer) = job(later + Duration::from_secs(1));
        lane.queue(extra, later);
        assert!(!full(&mut answer));
        assert_eq!(lane.jobs.len(), 1);
    }
}
