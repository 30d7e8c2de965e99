//! The connection plumbing: a single Redis, a Sentinel-watched master or a
//! cluster behind one type, the time limit of every call, and Redis errors
//! as [`StoreError`]s.
//!
//! - `tls`: `rediss://` (the crypto provider, a CA, a client certificate).
//! - `sentinel`: `redis+sentinel://`, a master that follows failovers.

pub mod sentinel;
pub mod tls;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisError, RedisResult};

use crate::StoreError;
use sentinel::{SentinelConnection, SentinelUrl};
use tls::TlsOptions;

/// A multiplexed connection to a single Redis or to a cluster; cheap to
/// clone (clones share it).
#[derive(Clone)]
pub enum Connection {
    /// One Redis; reconnects on the next call after a loss.
    Single(ConnectionManager),
    /// A Redis Cluster; routes each command by its first key.
    Cluster(ClusterConnection),
    /// The master that Redis Sentinel names; follows a failover.
    Sentinel(SentinelConnection),
}

impl Connection {
    /// Connects to `url` (see [`RedisStore::connect`](super::RedisStore::connect))
    /// within `timeout`, with `tls`'s certificates (for `rediss://`).
    pub async fn open(
        url: &str,
        timeout: Duration,
        tls: Option<&TlsOptions>,
    ) -> Result<Connection, StoreError> {
        let connecting = async {
            tls::check_url(url, tls)?;
            if let Some(sentinel) = SentinelUrl::parse(url) {
                let connection = SentinelConnection::open(sentinel?, timeout).await?;
                Ok(Connection::Sentinel(connection))
            } else if let Some(nodes) = cluster_nodes(url) {
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            } else {
                let client = tls::client(url, tls)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                Ok(Connection::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
        };
        within(timeout, connecting).await
    }

    /// Sends `cmd` (routed by its key on a cluster).
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match self {
            Connection::Single(c) => cmd.query_async(&mut c.clone()).await,
            Connection::Cluster(c) => cmd.query_async(&mut c.clone()).await,
            Connection::Sentinel(c) => c.query(cmd).await,
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
/// succeed later (no connection, a cluster resharding, a Redis loading or
/// busy, Sentinels naming no healthy master during a failover), else a
/// protocol error.
pub fn store_error(error: RedisError) -> StoreError {
    const TRANSIENT_CODES: [&str; 6] = [
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
