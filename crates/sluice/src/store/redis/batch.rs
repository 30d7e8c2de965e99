//! Packing the decisions that are waiting at the same moment into one call.
//!
//! Every call of the library costs Redis a fixed price (the command, the
//! function call, `TIME`) before any decision. A driver task takes the
//! groups that callers queue and sends them together, at most
//! [`IN_FLIGHT`] calls at a time: at low load each group goes alone and at
//! once; under load, groups queue while the calls in flight are answered
//! and the next call carries them all, so the fixed price is shared. Each
//! group is still decided all or nothing, in queue order.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};

use super::call::{Form, Group, call};
use super::connection::{Connection, store_error};
use super::library::Mode;
use super::reply;
use crate::StoreError;

/// Calls in flight at once.
pub const IN_FLIGHT: usize = 2;
/// The most checks in one call, so that no call holds Redis for long.
pub const MAX_CHECKS: usize = 128;

/// The reply for one group: `now`, then its checks' values.
type Reply = Result<Vec<i64>, StoreError>;

struct Job {
    group: Group,
    now: Option<u64>,
    done: oneshot::Sender<Reply>,
}

/// Queues groups for the driver; cheap to clone.
#[derive(Clone, Debug)]
pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the driver on the current tokio runtime.
    pub fn start(connection: Connection, form: Arc<Form>, timeout: Duration) -> Batcher {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(drive(queue, connection, form, timeout));
        Batcher { jobs }
    }

    /// Decides `group` at `now` (Redis `TIME` when `None`; a call carrying
    /// several groups uses the latest of their times) in the next call.
    pub async fn decide(&self, group: Group, now: Option<u64>) -> Reply {
        let (done, answer) = oneshot::channel();
        let stopped = || StoreError::Protocol("the Redis call driver has stopped".into());
        self.jobs
            .send(Job { group, now, done })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn drive(
    mut queue: mpsc::UnboundedReceiver<Job>,
    connection: Connection,
    form: Arc<Form>,
    timeout: Duration,
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
                let mut checks = first.group.keys.len();
                let mut jobs = vec![first];
                while checks < MAX_CHECKS {
                    match queue.try_recv() {
                        Ok(job) => {
                            checks += job.group.keys.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let (connection, form) = (&connection, &form);
                in_flight.push(async move {
                    let now = jobs.iter().filter_map(|j| j.now).max();
                    let groups: Vec<&Group> = jobs.iter().map(|j| &j.group).collect();
                    let call = call(connection, form, now, Mode::Decide, &groups);
                    let reply = tokio::time::timeout(timeout, call).await;
                    drop(groups);
                    answer(jobs, reply, timeout);
                });
            }
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            else => return,
        }
    }
}

/// Hands each job its part of the reply (`now`, then its checks' values),
/// or the error.
fn answer(
    jobs: Vec<Job>,
    reply: Result<redis::RedisResult<Vec<i64>>, tokio::time::error::Elapsed>,
    timeout: Duration,
) {
    let failure: Box<dyn Fn() -> StoreError + Send> = match reply {
        Ok(Ok(values)) => {
            let sizes: Vec<usize> = jobs.iter().map(|j| j.group.keys.len()).collect();
            match reply::split(&values, &sizes) {
                Ok(parts) => {
                    for (job, part) in jobs.into_iter().zip(parts) {
                        let _ = job.done.send(Ok(part));
                    }
                    return;
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
        Ok(Err(e)) if !e.is_timeout() => Box::new(move || store_error(e.clone())),
        _ => Box::new(move || StoreError::Timeout(timeout)),
    };
    for job in jobs {
        let _ = job.done.send(Err(failure()));
    }
}
