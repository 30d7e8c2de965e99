//! Opening the store that a configuration names.

use anyhow::Context;
use sluice::store::{Health, Resilient};
use sluice::{BoxStore, MemoryStore, RedisOptions, RedisStore, SystemClock};

use crate::config::StoreSpec;

/// When a Redis store is ready for use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connecting {
    /// Once connected: a Redis that cannot be reached is an error (a
    /// command that makes one decision, a benchmark).
    Wait,
    /// At once, connecting in the background: a service starts (unready)
    /// while Redis is not up yet, and answers by each policy's
    /// `on_store_error` meanwhile. Only a bad URL is an error.
    InBackground,
}

/// Opens the store `spec` names, as it is; `redis` says how to use Redis.
pub async fn open(
    spec: &StoreSpec,
    redis: &RedisOptions,
    connecting: Connecting,
) -> anyhow::Result<BoxStore> {
    match spec {
        StoreSpec::Memory => Ok(BoxStore::new(MemoryStore::new())),
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) | StoreSpec::RedisSentinel(url) => Ok(
            BoxStore::new(redis_store(spec, url, redis, connecting).await?),
        ),
    }
}

/// Opens the store `spec` names for deciding requests: a Redis store sits
/// behind the resilient stack (fallback by each policy's `on_store_error`,
/// deny cache, circuit breaker), whose [`Health`] is returned. The memory
/// store cannot fail and is used as it is.
pub async fn open_resilient(
    spec: &StoreSpec,
    redis: &RedisOptions,
    connecting: Connecting,
) -> anyhow::Result<(BoxStore, Option<Health>)> {
    match spec {
        StoreSpec::Memory => Ok((BoxStore::new(MemoryStore::new()), None)),
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) | StoreSpec::RedisSentinel(url) => {
            let store = Resilient::new(
                redis_store(spec, url, redis, connecting).await?,
                SystemClock,
            );
            let health = store.health();
            Ok((BoxStore::new(store), Some(health)))
        }
    }
}

async fn redis_store(
    spec: &StoreSpec,
    url: &str,
    redis: &RedisOptions,
    connecting: Connecting,
) -> anyhow::Result<RedisStore> {
    let store = match connecting {
        Connecting::Wait => RedisStore::connect_with(url, redis.clone()).await,
        Connecting::InBackground => RedisStore::open(url, redis.clone()).await,
    };
    // The spec's Display hides any password in the URL.
    store.with_context(|| format!("connecting to {spec}"))
}
