//! Opening the store that a configuration names.

use anyhow::Context;
use sluice::store::{Health, Resilient};
use sluice::{BoxStore, MemoryStore, RedisOptions, RedisStore, SystemClock};

use crate::config::StoreSpec;

/// Opens the store `spec` names; `redis` says how to use Redis.
pub async fn open(spec: &StoreSpec, redis: &RedisOptions) -> anyhow::Result<BoxStore> {
    match spec {
        StoreSpec::Memory => Ok(BoxStore::new(MemoryStore::new())),
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) => {
            let store = RedisStore::connect_with(url, redis.clone()).await;
            // The spec's Display hides any password in the URL.
            Ok(BoxStore::new(
                store.with_context(|| format!("connecting to {spec}"))?,
            ))
        }
    }
}

/// Opens the store `spec` names for deciding requests: a Redis store sits
/// behind the resilient stack (fallback by each policy's `on_store_error`,
/// deny cache, circuit breaker), whose [`Health`] is returned. The memory
/// store cannot fail and is used as it is.
pub async fn open_resilient(
    spec: &StoreSpec,
    redis: &RedisOptions,
) -> anyhow::Result<(BoxStore, Option<Health>)> {
    match spec {
        StoreSpec::Memory => Ok((BoxStore::new(MemoryStore::new()), None)),
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) => {
            let store = RedisStore::connect_with(url, redis.clone())
                .await
                .with_context(|| format!("connecting to {spec}"))?;
            let store = Resilient::new(store, SystemClock);
            let health = store.health();
            Ok((BoxStore::new(store), Some(health)))
        }
    }
}
