//! Opening the store that a configuration names.

use anyhow::Context;
use sluice::{BoxStore, MemoryStore, RedisOptions, RedisStore};

use crate::config::StoreSpec;

/// Opens the store `spec` names, connected; `redis` says how to use Redis.
pub async fn open(spec: &StoreSpec, redis: &RedisOptions) -> anyhow::Result<BoxStore> {
    make(spec, redis, true).await
}

/// Opens the store `spec` names, connecting to a single Redis in the
/// background: a service starts (unready) while Redis is not up yet.
pub async fn open_in_background(
    spec: &StoreSpec,
    redis: &RedisOptions,
) -> anyhow::Result<BoxStore> {
    make(spec, redis, false).await
}

async fn make(spec: &StoreSpec, redis: &RedisOptions, wait: bool) -> anyhow::Result<BoxStore> {
    match spec {
        StoreSpec::Memory => Ok(BoxStore::new(MemoryStore::new())),
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) => {
            let store = if wait {
                RedisStore::connect_with(url, redis.clone()).await
            } else {
                RedisStore::open(url, redis.clone()).await
            };
            // The spec's Display hides any password in the URL.
            Ok(BoxStore::new(
                store.with_context(|| format!("connecting to {spec}"))?,
            ))
        }
    }
}
