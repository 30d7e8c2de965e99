//! Redis Sentinel: the master is whichever server the Sentinels name now.
//!
//! The redis crate's `SentinelClient` finds the master (asking each Sentinel,
//! then checking that the server it names says `ROLE` master) but connects
//! once: it does not notice a failover. This connection keeps the master's
//! multiplexed connection until a call shows the master may have changed
//! (the connection broke, Redis answered `READONLY`, or a call did not
//! finish), then forgets it; the next call asks the Sentinels again. During
//! a failover calls fail with transient errors (the old master refuses, or
//! the Sentinels name no healthy master yet) until the Sentinels name the
//! promoted replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ErrorKind, FromRedisValue, RedisError, RedisResult,
};

/// A `redis+sentinel://` URL, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct SentinelUrl {
    /// The Sentinels' addresses.
    pub sentinels: Vec<(String, u16)>,
    /// The name the Sentinels know the master by.
    pub master: String,
    /// The database on the master.
    pub db: i64,
    /// Credentials for the master (the Sentinels are asked without).
    pub username: Option<String>,
    /// The master's password.
    pub password: Option<String>,
}

impl SentinelUrl {
    /// Parses `redis+sentinel://[[user]:password@]host:port[,host:port…]/master[/db]`;
    /// `None` for a URL of another scheme, an error for a malformed one.
    pub fn parse(url: &str) -> Option<RedisResult<SentinelUrl>> {
        let rest = url.strip_prefix("redis+sentinel://")?;
        Some(parse_rest(rest))
    }
}

fn invalid(message: String) -> RedisError {
    RedisError::from((
        ErrorKind::InvalidClientConfig,
        "invalid Sentinel URL",
        message,
    ))
}

fn parse_rest(rest: &str) -> RedisResult<SentinelUrl> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (Some(credentials), hosts),
        None => (None, authority),
    };
    let (username, password) = match credentials {
        None => (None, None),
        Some(c) => match c.split_once(':') {
            Some((user, password)) => (
                (!user.is_empty()).then(|| user.to_owned()),
                Some(password.to_owned()),
            ),
            None => (Some(c.to_owned()), None),
        },
    };
    let sentinels = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            let (host, port) = h
                .rsplit_once(':')
                .ok_or_else(|| invalid(format!("{h:?} has no port")))?;
            let port = port
                .parse()
                .map_err(|_| invalid(format!("{h:?} has no valid port")))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok((host.to_owned(), port))
        })
        .collect::<RedisResult<Vec<_>>>()?;
    if sentinels.is_empty() {
        return Err(invalid("no Sentinel address".to_owned()));
    }
    let mut path = path.split('/').filter(|p| !p.is_empty());
    let master = path
        .next()
        .ok_or_else(|| invalid("no master name: redis+sentinel://host:port/NAME".to_owned()))?
        .to_owned();
    let db = match path.next() {
        None => 0,
        Some(db) => db
            .parse()
            .map_err(|_| invalid(format!("the database {db:?} is not a number")))?,
    };
    if let Some(extra) = path.next() {
        return Err(invalid(format!("unexpected {extra:?} after the database")));
    }
    Ok(SentinelUrl {
        sentinels,
        master,
        db,
        username,
        password,
    })
}

/// The master a [`SentinelConnection`] talks to now.
#[derive(Clone)]
struct Master {
    /// Which connection this is, so that a call that failed on an old one
    /// does not forget a newer one.
    generation: u64,
    connection: MultiplexedConnection,
}

struct Inner {
    /// Asks the Sentinels; one caller at a time (it caches its Sentinel
    /// connections), so that a failover makes one lookup, not one per call.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    master: parking_lot::Mutex<Option<Master>>,
    generations: AtomicU64,
    config: AsyncConnectionConfig,
}

/// A multiplexed connection to the master the Sentinels name; cheap to
/// clone (clones share it).
#[derive(Clone)]
pub struct SentinelConnection {
    inner: Arc<Inner>,
}

impl SentinelConnection {
    /// A connection to the master the Sentinels of `url` name; each
    /// connection and each call on it is limited to `timeout`. When
    /// `wait`, the master is found now (an error if it cannot be); else at
    /// the first call, so that a service starts while the Sentinels are
    /// not up yet.
    pub async fn open(
        url: SentinelUrl,
        timeout: Duration,
        wait: bool,
    ) -> RedisResult<SentinelConnection> {
        let addresses = url
            .sentinels
            .into_iter()
            .map(|(host, port)| ConnectionAddr::Tcp(host, port));
        let mut builder =
            SentinelClientBuilder::new(addresses, url.master, SentinelServerType::Master)?
                .set_client_to_redis_db(url.db);
        if let Some(username) = url.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = url.password {
            builder = builder.set_client_to_redis_password(password);
        }
        let connection = SentinelConnection {
            inner: Arc::new(Inner {
                sentinels: tokio::sync::Mutex::new(builder.build()?),
                master: parking_lot::Mutex::new(None),
                generations: AtomicU64::new(0),
                config: AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout)),
            }),
        };
        if wait {
            connection.master().await?;
        }
        Ok(connection)
    }

    /// Sends `cmd` to the master; forgets the master when the call shows
    /// it may no longer be one, or when the call is dropped unfinished
    /// (timed out by its caller: a master that stopped answering).
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        let master = self.master().await?;
        let mut unfinished = Forget {
            connection: self,
            generation: Some(master.generation),
        };
        let result = cmd.query_async(&mut master.connection.clone()).await;
        if !matches!(&result, Err(e) if master_lost(e)) {
            unfinished.generation = None;
        }
        result
    }

    /// The master's connection, asking the Sentinels when there is none.
    async fn master(&self) -> RedisResult<Master> {
        if let Some(master) = self.inner.master.lock().clone() {
            return Ok(master);
        }
        let mut sentinels = self.inner.sentinels.lock().await;
        // Another call may have found it while this one waited.
        if let Some(master) = self.inner.master.lock().clone() {
            return Ok(master);
        }
        let connection = sentinels
            .get_async_connection_with_config(&self.inner.config)
            .await?;
        let master = Master {
            generation: self.inner.generations.fetch_add(1, Ordering::Relaxed),
            connection,
        };
        *self.inner.master.lock() = Some(master.clone());
        Ok(master)
    }

    /// How many master connections have been opened: a change means a
    /// new connection, maybe to another server after a failover.
    pub fn opened(&self) -> u64 {
        self.inner.generations.load(Ordering::Relaxed)
    }

    fn forget(&self, generation: u64) {
        let mut master = self.inner.master.lock();
        if master.as_ref().is_some_and(|m| m.generation == generation) {
            *master = None;
        }
    }
}

/// Forgets the master of `generation` on drop, unless disarmed (`None`).
struct Forget<'a> {
    connection: &'a SentinelConnection,
    generation: Option<u64>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(generation) = self.generation {
            self.connection.forget(generation);
        }
    }
}

/// Whether `error` says the server may no longer be the master: the
/// connection failed, the call timed out, or the server is a replica now.
fn master_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || error.is_timeout()
        || matches!(error.code(), Some("READONLY" | "MASTERDOWN"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_the_sentinels_the_master_and_the_database() {
        let url = SentinelUrl::parse("redis+sentinel://127.0.0.1:26379,[::1]:26380/mymaster/2")
            .unwrap()
            .unwrap();
        assert_eq!(
            url,
            SentinelUrl {
                sentinels: vec![("127.0.0.1".into(), 26379), ("::1".into(), 26380)],
                master: "mymaster".into(),
                db: 2,
                username: None,
                password: None,
            }
        );
        let url = SentinelUrl::parse("redis+sentinel://app:s3cret@h:1/m")
            .unwrap()
            .unwrap();
        assert_eq!(url.username.as_deref(), Some("app"));
        assert_eq!(url.password.as_deref(), Some("s3cret"));
        assert_eq!((url.master.as_str(), url.db), ("m", 0));
        let url = SentinelUrl::parse("redis+sentinel://:pw@h:1/m")
            .unwrap()
            .unwrap();
        assert_eq!((url.username, url.password.as_deref()), (None, Some("pw")));
        assert!(SentinelUrl::parse("redis://h:1").is_none());
    }

    #[test]
    fn malformed_sentinel_urls_say_what_is_wrong() {
        for (url, says) in [
            ("redis+sentinel://h:1", "no master name"),
            ("redis+sentinel://h:1/", "no master name"),
            ("redis+sentinel:///m", "no Sentinel address"),
            ("redis+sentinel://h/m", "has no port"),
            ("redis+sentinel://h:x/m", "no valid port"),
            ("redis+sentinel://h:1/m/x", "not a number"),
            ("redis+sentinel://h:1/m/0/x", "after the database"),
        ] {
            let error = SentinelUrl::parse(url).unwrap().unwrap_err();
            assert!(error.to_string().contains(says), "{url}: {error}");
        }
    }
}
