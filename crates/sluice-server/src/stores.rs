//! Opening the store that a configuration names.

use anyhow::Context;
use sluice::{Check, Decision, MemoryStore, RedisOptions, RedisStore, Store, StoreError};

use crate::config::StoreSpec;

/// Any store the program can run on, chosen at start-up.
pub enum AnyStore {
    /// The in-memory store.
    Memory(MemoryStore),
    /// Redis or Redis Cluster.
    Redis(RedisStore),
}

impl AnyStore {
    /// Opens the store `spec` names; `redis` says how to use Redis.
    pub async fn open(spec: &StoreSpec, redis: &RedisOptions) -> anyhow::Result<AnyStore> {
        match spec {
            StoreSpec::Memory => Ok(AnyStore::Memory(MemoryStore::new())),
            StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) => {
                let store = RedisStore::connect_with(url, redis.clone()).await;
                // The spec's Display hides any password in the URL.
                Ok(AnyStore::Redis(
                    store.with_context(|| format!("connecting to {spec}"))?,
                ))
            }
        }
    }
}

impl AnyStore {
    /// Whether the store answers: always for memory, a `PING` for Redis.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(_) => Ok(()),
            AnyStore::Redis(s) => s.ping().await,
        }
    }
}

impl Store for AnyStore {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        match self {
            AnyStore::Memory(s) => s.decide(checks).await,
            AnyStore::Redis(s) => s.decide(checks).await,
        }
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        match self {
            AnyStore::Memory(s) => s.decide_one(check).await,
            AnyStore::Redis(s) => s.decide_one(check).await,
        }
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        match self {
            AnyStore::Memory(s) => s.peek(check).await,
            AnyStore::Redis(s) => s.peek(check).await,
        }
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(s) => s.reset(check).await,
            AnyStore::Redis(s) => s.reset(check).await,
        }
    }
}
