//! Opening the store a URL names, chosen at run time: `memory`, or one of
//! the Redis URLs. The one place that knows the schemes and how each store
//! is opened; `sluice serve` opens its store through it too.

use super::BoxStore;
#[cfg(feature = "redis")]
use super::redis::{RedisOptions, RedisStore};
use crate::{MemoryStore, StoreError};

/// The kinds of store a URL can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// `memory`: the in-memory store of this process.
    Memory,
    /// `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS.
    Redis,
    /// `redis+cluster://host:port[,host:port…]`.
    RedisCluster,
    /// `redis+sentinel://host:port[,host:port…]/master[/db]`.
    RedisSentinel,
}

impl StoreKind {
    /// The kind `url` names (surrounding whitespace ignored).
    pub fn of(url: &str) -> Result<StoreKind, OpenError> {
        let url = url.trim();
        if url == "memory" {
            Ok(StoreKind::Memory)
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(StoreKind::Redis)
        } else if url.starts_with("redis+cluster://") {
            Ok(StoreKind::RedisCluster)
        } else if url.starts_with("redis+sentinel://") {
            Ok(StoreKind::RedisSentinel)
        } else {
            Err(OpenError::Url(url.to_owned()))
        }
    }

    /// The kind's name, as metrics label it: `memory`, `redis`,
    /// `redis_cluster` or `redis_sentinel`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Redis => "redis",
            StoreKind::RedisCluster => "redis_cluster",
            StoreKind::RedisSentinel => "redis_sentinel",
        }
    }
}

/// When a Redis store is ready for use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Connecting {
    /// Once connected: a Redis that cannot be reached is an error (a
    /// program that makes decisions at once, a command, a benchmark).
    #[default]
    Wait,
    /// At once, connecting in the background: a service starts while Redis
    /// is not up yet (see [`RedisStore::open`]). Only a bad URL is an error.
    InBackground,
}

/// Why [`open`] could not open a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL names no store Sluice knows. Holds the URL, which may hold a
    /// password: the message does not show it, and leaves naming the
    /// setting to the caller (`store: must be memory, …`).
    #[error(
        "must be memory, redis://host:port, rediss://host:port, redis+cluster://host:port,host:port or redis+sentinel://host:port,host:port/master"
    )]
    Url(String),
    /// A Redis URL, in a build without the `redis` feature.
    #[error("this build has no Redis store (the `redis` feature of sluice is off)")]
    NoRedis,
    /// The store could not be opened (Redis refused, a bad Redis URL).
    #[error("cannot open the store")]
    Store(#[source] StoreError),
}

/// Opens the store `url` names with the default options, waiting for Redis
/// to answer: a [`MemoryStore`] for `memory`, a `RedisStore` for the Redis
/// URLs. The store's type is [`BoxStore`] either way, so a program that
/// reads its store from a flag or the environment needs no generics.
///
/// ```
/// use sluice::{Limiter, Policy, Quota};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let url = std::env::var("STORE").unwrap_or_else(|_| "memory".to_owned());
/// let store = sluice::store::open(&url).await?;
/// let limiter = Limiter::new(store, [Policy::new("api", Quota::per_second(10)?)?]);
/// assert!(limiter.check("api", "user-42", 1).await?.allowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn open(url: &str) -> Result<BoxStore, OpenError> {
    #[cfg(feature = "redis")]
    return open_with(url, &RedisOptions::default(), Connecting::Wait).await;
    #[cfg(not(feature = "redis"))]
    return match StoreKind::of(url)? {
        StoreKind::Memory => Ok(BoxStore::new(MemoryStore::new())),
        _ => Err(OpenError::NoRedis),
    };
}

/// [`open`] with Redis's `options`, connecting as `connecting` says.
#[cfg(feature = "redis")]
pub async fn open_with(
    url: &str,
    options: &RedisOptions,
    connecting: Connecting,
) -> Result<BoxStore, OpenError> {
    Ok(match StoreKind::of(url)? {
        StoreKind::Memory => BoxStore::new(MemoryStore::new()),
        _ => BoxStore::new(open_redis(url, options, connecting).await?),
    })
}

/// The Redis store of a Redis `url` (any of the Redis schemes).
#[cfg(feature = "redis")]
pub async fn open_redis(
    url: &str,
    options: &RedisOptions,
    connecting: Connecting,
) -> Result<RedisStore, OpenError> {
    let url = url.trim();
    let store = match connecting {
        Connecting::Wait => RedisStore::connect_with(url, options.clone()).await,
        Connecting::InBackground => RedisStore::open(url, options.clone()).await,
    };
    store.map_err(OpenError::Store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_names_its_kind() {
        for (url, kind) in [
            ("memory", StoreKind::Memory),
            (" memory\n", StoreKind::Memory),
            ("redis://127.0.0.1:6379", StoreKind::Redis),
            ("rediss://h:6380/2", StoreKind::Redis),
            ("redis+cluster://a:7000,b:7001", StoreKind::RedisCluster),
            ("redis+sentinel://a:26379/m", StoreKind::RedisSentinel),
        ] {
            assert_eq!(StoreKind::of(url).unwrap(), kind, "{url}");
        }
        assert_eq!(StoreKind::RedisSentinel.name(), "redis_sentinel");
    }

    #[test]
    fn an_unknown_scheme_is_refused_without_showing_the_url() {
        let error = StoreKind::of("http://:s3cret@x").unwrap_err();
        assert!(matches!(error, OpenError::Url(_)));
        let message = error.to_string();
        assert!(message.starts_with("must be memory"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
