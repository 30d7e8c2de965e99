//! The connection plumbing: a single Redis, a Sentinel-watched master or a
//! cluster behind one type, the time limit of every call, and Redis errors
//! as [`StoreError`]s.
//!
//! - `tls`: `rediss://` (the crypto provider, a CA, a client certificate).
//! - `sentinel`: `redis+sentinel://`, a master that follows failovers.

pub mod sentinel;
pub mod tls;

use std::time::Duration;

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisError, RedisResult};

use super::link::{self, Link, Liveness};
use crate::StoreError;
use sentinel::{SentinelConnection, SentinelUrl};
use tls::TlsOptions;

/// The least time an attempt to connect may take, whatever the call
/// timeout: a TLS handshake to a distant Redis takes several round trips.
/// Connecting does not hold decisions up (they fail or wait within their
/// own deadline), so a longer wait here costs nothing.
pub const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A multiplexed connection to a single Redis or to a cluster; cheap to
/// clone (clones share it).
#[derive(Clone)]
pub enum Connection {
    /// One Redis, kept open (and opened again after a loss) by a task.
    Single(Link<MultiplexedConnection>),
    /// A Redis Cluster, opened by a task; routes each command by its first
    /// key, and reconnects to its nodes on its own.
    Cluster(Link<ClusterConnection>),
    /// The master that Redis Sentinel names; follows a failover.
    Sentinel(SentinelConnection),
}

impl Connection {
    /// Connects to `url` (see [`RedisStore::connect`](super::RedisStore::connect))
    /// with calls of `timeout` and `tls`'s certificates (for `rediss://`).
    /// When `wait`, returns once connected (an error if the first attempt
    /// fails); else it connects in the background and only a bad URL is an
    /// error.
    pub async fn open(
        url: &str,
        timeout: Duration,
        tls: Option<&TlsOptions>,
        wait: bool,
    ) -> Result<Connection, StoreError> {
        let connect_timeout = timeout.max(MIN_CONNECT_TIMEOUT);
        let connecting = async {
            tls::check_url(url, tls)?;
            if let Some(sentinel) = SentinelUrl::parse(url) {
                // Boxed, as in `query`: the Sentinel client nests deep.
                let connection =
                    Box::pin(SentinelConnection::open(sentinel?, timeout, wait)).await?;
                Ok(Connection::Sentinel(connection))
            } else if let Some(nodes) = cluster_nodes(url) {
                // Every call has its own deadline, kept by the caller; the
                // client waits longer for a reply, so that one Redis sends
                // after the deadline still reaches the batcher, which
                // refunds what it charged (as on a single Redis, whose
                // connection has no response timeout).
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout + super::batch::LATE_REPLY_WAIT)
                    .build()?;
                let link = Link::open(
                    move || {
                        let client = client.clone();
                        Box::pin(async move {
                            let connecting = client.get_async_connection();
                            let connection = tokio::time::timeout(connect_timeout, connecting)
                                .await
                                .map_err(|_| timed_out())??;
                            Ok((connection, Arc::new(Liveness::new())))
                        })
                    },
                    false,
                );
                if wait {
                    link.connected().await?;
                }
                Ok(Connection::Cluster(link))
            } else {
                let client = tls::client(url, tls)?;
                // RESP3 tells of a lost connection at once; a URL that
                // names its protocol keeps it.
                let resp3 = !url.contains("protocol=");
                let link = Link::open(link::single(client, resp3, connect_timeout), true);
                if wait {
                    link.connected().await?;
                }
                Ok(Connection::Single(link))
            }
        };
        within(connect_timeout, connecting).await
    }

    /// Sends `cmd` (routed by its key on a cluster).
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match self {
            Connection::Single(link) => link.query(cmd).await,
            Connection::Cluster(link) => link.query(cmd).await,
            // Boxed: the Sentinel lookup nests deep, and every caller's future
            // would otherwise carry its layout (and the compiler's query depth).
            Connection::Sentinel(c) => Box::pin(c.query(cmd)).await,
        }
    }
}

impl Connection {
    /// Whether this is a Redis Cluster, where one call's keys must share a
    /// slot.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Connection::Cluster(_))
    }

    /// Sends `cmd` to the Redis that holds `key` (on a cluster, the
    /// primary of its slot, whatever the command's arguments are: for
    /// `SLUICE.CALL`, whose first argument is its number of keys, and for
    /// a command that names no key, such as `TIME`).
    pub async fn query_at<T: FromRedisValue>(&self, cmd: &redis::Cmd, key: &str) -> RedisResult<T> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        match self {
            Connection::Cluster(link) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                link.route(cmd, routing).await
            }
            _ => self.query(cmd).await,
        }
    }

    /// How many connections have been opened: a change means a reconnect,
    /// maybe to another Redis.
    pub fn opened(&self) -> u64 {
        match self {
            Connection::Single(link) => link.opened(),
            Connection::Cluster(link) => link.opened(),
            Connection::Sentinel(c) => c.opened(),
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Cluster(_) => "Connection::Cluster",
            Connection::Sentinel(_) => "Connection::Sentinel",
        })
    }
}

/// The nodes of a `redis+cluster://[credentials@]host:port,host:port` URL,
/// as `redis://` URLs; `None` for any other URL.
fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.strip_prefix("redis+cluster://")?;
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.trim_end_matches('/');
    Some(
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{credentials}{h}"))
            .collect(),
    )
}

/// The error of an attempt to connect that took too long.
pub fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

/// Runs a Redis call within `timeout`, mapping its errors.
pub async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(StoreError::Timeout(timeout)),
        // The client's own response timeout (the same duration) may fire first.
        Ok(Err(error)) if error.is_timeout() => Err(StoreError::Timeout(timeout)),
        Ok(result) => result.map_err(store_error),
    }
}

/// A Redis error as a [`StoreError`]: transient when the same call may
/// succeed later (no connection, a cluster resharding, a Redis loading,
/// busy or out of memory, Sentinels naming no healthy master during a
/// failover), else a protocol error.
pub fn store_error(error: RedisError) -> StoreError {
    const TRANSIENT_CODES: [&str; 7] = [
        "OOM",
        "LOADING",
        "BUSY",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "MASTERDOWN",
        "READONLY",
    ];
    let transient = error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_cluster_error()
        || error.kind() == redis::ErrorKind::MasterNameNotFoundBySentinel
        || error.code().is_some_and(|c| TRANSIENT_CODES.contains(&c));
    if transient {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Protocol(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_list_their_nodes() {
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/"),
            Some(vec![
                "redis://127.0.0.1:7000".to_owned(),
                "redis://127.0.0.1:7001".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001"),
            Some(vec![
                "redis://:pw@127.0.0.1:7000".to_owned(),
                "redis://:pw@127.0.0.1:7001".to_owned()
            ])
        );
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
    }
}
