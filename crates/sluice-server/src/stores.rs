//! Opening the store that a configuration names.

use anyhow::Context;
use sluice::{BoxStore, MemoryStore, RedisOptions, RedisStore};

use crate::config::StoreSpec;

/// Opens the store `spec` names; `redis` says how to use Redis.
pub async fn open(spec: &StoreSpec, redis: &RedisOptions) -> anyhow::Result<BoxStore> {
    match spec {
        StoreSpec::Memory => Ok(BoxStore::new(MemoryStore::new())),
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) | StoreSpec::RedisSentinel(url) => {
            let store = RedisStore::connect_with(url, redis.clone()).await;
            // The spec's Display hides any password in the URL.
            Ok(BoxStore::new(
                store.with_context(|| format!("connecting to {spec}"))?,
            ))
        }
    }
}
