//! A connection kept open by a task of its own: it is opened in the
//! background (a store can be made while Redis is down), a loss is noticed
//! when the socket closes rather than by the next command, and it is
//! opened again with backoff. A [`Link`] is generic over what it keeps
//! open: [`single`] opens a single Redis; a cluster connection, which
//! reconnects to its nodes on its own, is only opened in the background.
//!
//! Why not redis-rs's `ConnectionManager` (1.8): on RESP2 it learns of a
//! loss only from the command that fails on the dead connection (so the
//! first request after a Redis restart failed), it cannot say whether that
//! command was sent, its retries cover connecting but not commands, and
//! `new_with_config` fails while Redis is down.
//!
//! A loss is known from RESP3's disconnect notice, which redis-rs's reader
//! gives as soon as it sees the socket close, before it drops the
//! connection's queue. A command is never sent to a connection known lost:
//! it waits for the next one instead (a command that would have failed
//! before any byte was sent goes once to the new connection). A command
//! that was handed to a connection that then failed is never sent again,
//! since it may have reached Redis and a decision is not idempotent.
//! Redis older than 6 (no `HELLO 3`) is spoken to in RESP2, where a loss is
//! known from the first command that fails on it.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Client, Cmd, FromRedisValue, ProtocolVersion, PushInfo, PushKind,
    RedisError, RedisResult,
};
use tokio::sync::{Notify, watch};

/// The least time between two attempts to connect: requests arriving
/// while Redis is down do not make a storm of connections.
pub const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The most time between two background attempts to connect (the wait
/// doubles from [`MIN_BACKOFF`] after each failure): a Redis back up is
/// found within this, or at once by the next request.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where the connection stands.
#[derive(Clone)]
enum State<C> {
    /// An attempt to connect is under way.
    Connecting,
    /// Open until its [`Liveness`] says it is lost.
    Up(C, Arc<Liveness>),
    /// The last attempt failed with this error.
    Down(RedisError),
}

/// Whether one connection is still open; turned off by the disconnect
/// notice or by a command failing on a broken connection.
#[derive(Debug)]
pub struct Liveness {
    alive: AtomicBool,
    lost: Notify,
}

impl Liveness {
    /// A connection just opened.
    pub fn new() -> Liveness {
        Liveness {
            alive: AtomicBool::new(true),
            lost: Notify::new(),
        }
    }

    fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    fn lose(&self) {
        if self.alive.swap(false, Ordering::AcqRel) {
            self.lost.notify_one();
        }
    }
}

/// One attempt to open a connection: the connection and its [`Liveness`].
pub type Attempt<C> = BoxFuture<'static, RedisResult<(C, Arc<Liveness>)>>;

/// A connection that a background task keeps open; cheap to clone (clones
/// share it). The task stops when the last clone is dropped.
pub struct Link<C> {
    state: watch::Receiver<State<C>>,
    /// How many connections the task has opened: a new one may be to
    /// another Redis (a restart, a failover), with other commands.
    opened: Arc<AtomicU64>,
    /// Asks the task for an attempt now rather than after its backoff.
    wake: Arc<Notify>,
    /// Whether a command failing on a broken connection makes it lost (a
    /// cluster connection replaces its nodes' connections on its own).
    lose_on_error: bool,
}

impl<C> Clone for Link<C> {
    fn clone(&self) -> Self {
        Link {
            state: self.state.clone(),
            opened: Arc::clone(&self.opened),
            wake: Arc::clone(&self.wake),
            lose_on_error: self.lose_on_error,
        }
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> Link<C> {
    /// Starts the task that opens connections with `connect`, and again
    /// after each loss. Must be called on a tokio runtime.
    pub fn open(
        connect: impl Fn() -> Attempt<C> + Send + Sync + 'static,
        lose_on_error: bool,
    ) -> Link<C> {
        let (state, receiver) = watch::channel(State::Connecting);
        let wake = Arc::new(Notify::new());
        let opened = Arc::new(AtomicU64::new(0));
        tokio::spawn(keep_open(
            connect,
            state,
            Arc::clone(&wake),
            Arc::clone(&opened),
        ));
        Link {
            state: receiver,
            opened,
            wake,
            lose_on_error,
        }
    }

    /// The outcome of the first attempt to connect (or of a later one, if
    /// the first already failed).
    pub async fn connected(&self) -> RedisResult<()> {
        let mut state = self.state.clone();
        loop {
            match &*state.borrow_and_update() {
                State::Up(..) => return Ok(()),
                State::Down(e) => return Err(e.clone()),
                State::Connecting => {}
            }
            if state.changed().await.is_err() {
                return Err(stopped());
            }
        }
    }

    /// Sends `cmd` on the open connection, waiting for one if the last was
    /// lost or an attempt is under way; while Redis is down, answers the
    /// last attempt's error after one more attempt (at most
    /// [`MIN_BACKOFF`] away).
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        let (mut connection, liveness) = self.connection().await?;
        let result = cmd.query_async(&mut connection).await;
        if let Err(e) = &result
            && self.lose_on_error
            && e.is_unrecoverable_error()
        {
            liveness.lose();
        }
        result
    }

    /// How many connections have been opened so far (1 after the first).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Acquire)
    }

    async fn connection(&self) -> RedisResult<(C, Arc<Liveness>)> {
        let mut state = self.state.clone();
        let mut asked = false;
        loop {
            match &*state.borrow_and_update() {
                State::Up(connection, liveness) if liveness.alive() => {
                    return Ok((connection.clone(), Arc::clone(liveness)));
                }
                // Lost: the task is told and connects again.
                State::Up(..) | State::Connecting => {}
                State::Down(e) if asked => return Err(e.clone()),
                State::Down(_) => {
                    asked = true;
                    self.wake.notify_one();
                }
            }
            if state.changed().await.is_err() {
                return Err(stopped());
            }
        }
    }
}

impl Link<redis::cluster_async::ClusterConnection> {
    /// Sends `cmd` to the node `routing` names, waiting for a connection
    /// as [`Link::query`] does: for a command the cluster client cannot
    /// route by its first argument (`SLUICE.CALL`, whose first argument is
    /// its number of keys, or `TIME`, which names no key).
    pub async fn route<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        routing: redis::cluster_routing::RoutingInfo,
    ) -> RedisResult<T> {
        let (mut connection, _) = self.connection().await?;
        // An error reply comes back as a value here (not as the error
        // `query_async` makes of it): made an error, so that callers can
        // read its code ("unknown command").
        let value = connection.route_command(cmd.clone(), routing).await?;
        Ok(redis::from_redis_value(value.extract_error()?)?)
    }
}

/// The task: connects, waits for the loss, connects again; after a failed
/// attempt waits [`MIN_BACKOFF`], then until a request asks or the backoff
/// (doubling up to [`MAX_BACKOFF`], with jitter so that many instances do
/// not return at once) has passed.
async fn keep_open<C>(
    connect: impl Fn() -> Attempt<C>,
    state: watch::Sender<State<C>>,
    wake: Arc<Notify>,
    opened: Arc<AtomicU64>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        state.send_replace(State::Connecting);
        let attempt = tokio::select! {
            attempt = connect() => attempt,
            () = state.closed() => return,
        };
        match attempt {
            Ok((connection, liveness)) => {
                backoff = MIN_BACKOFF;
                opened.fetch_add(1, Ordering::AcqRel);
                state.send_replace(State::Up(connection, Arc::clone(&liveness)));
                tokio::select! {
                    () = liveness.lost.notified() => {}
                    () = state.closed() => return,
                }
            }
            Err(e) => {
                state.send_replace(State::Down(e));
                let rest = jittered(backoff).saturating_sub(MIN_BACKOFF);
                tokio::select! {
                    () = tokio::time::sleep(MIN_BACKOFF) => {}
                    () = state.closed() => return,
                }
                tokio::select! {
                    () = tokio::time::sleep(rest) => {}
                    () = wake.notified() => {}
                    () = state.closed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Opens a single Redis with `client`, each attempt within `timeout`, in
/// RESP3 unless `resp3` is false (the URL chose a protocol) or Redis
/// refuses it.
pub fn single(
    client: Client,
    resp3: bool,
    timeout: Duration,
) -> impl Fn() -> Attempt<MultiplexedConnection> {
    let resp3 = Arc::new(AtomicBool::new(resp3));
    move || {
        let (client, resp3) = (client.clone(), Arc::clone(&resp3));
        Box::pin(async move {
            if resp3.load(Ordering::Relaxed) {
                match connect(&client, true, timeout).await {
                    // Redis before 6, or a proxy, without HELLO: RESP2.
                    Err(e) if refuses_resp3(&e) => resp3.store(false, Ordering::Relaxed),
                    attempt => return attempt,
                }
            }
            connect(&client, false, timeout).await
        })
    }
}

/// One attempt to connect within `timeout`.
async fn connect(
    client: &Client,
    resp3: bool,
    timeout: Duration,
) -> RedisResult<(MultiplexedConnection, Arc<Liveness>)> {
    let liveness = Arc::new(Liveness::new());
    // No response timeout: every call has its own deadline, kept above.
    let mut config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(None);
    let client = if resp3 {
        let notice = Arc::clone(&liveness);
        config = config.set_push_sender(move |info: PushInfo| {
            if info.kind == PushKind::Disconnection {
                notice.lose();
            }
            Ok::<(), std::convert::Infallible>(())
        });
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        Client::open(info.set_redis_settings(settings))?
    } else {
        client.clone()
    };
    let connecting = client.get_multiplexed_async_connection_with_config(&config);
    match tokio::time::timeout(timeout, connecting).await {
        Ok(connection) => Ok((connection?, liveness)),
        Err(_) => Err(super::connection::timed_out()),
    }
}

/// Whether `error` says that Redis does not speak RESP3 (no `HELLO`).
fn refuses_resp3(error: &RedisError) -> bool {
    error.code() == Some("NOPROTO")
        || (error.code().is_some() && error.to_string().to_lowercase().contains("hello"))
}

/// `backoff` give or take a half, at random.
fn jittered(backoff: Duration) -> Duration {
    // A random number without a dependency: std seeds each RandomState.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = backoff / 2;
    let spread = u64::try_from(backoff.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    half + Duration::from_micros(random % spread)
}

fn stopped() -> RedisError {
    RedisError::from((
        redis::ErrorKind::Client,
        "the Redis connection task has stopped",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(50) && d < Duration::from_millis(150));
        }
    }
}
