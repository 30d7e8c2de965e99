//! Opening the store that a configuration names.

use sluice::{Check, Decision, MemoryStore, Store, StoreError};

use crate::config::StoreSpec;

/// Any store the program can run on, chosen at start-up.
pub enum AnyStore {
    /// The in-memory store.
    Memory(MemoryStore),
}

impl AnyStore {
    /// Opens the store `spec` names.
    pub async fn open(spec: &StoreSpec) -> anyhow::Result<AnyStore> {
        match spec {
            StoreSpec::Memory => Ok(AnyStore::Memory(MemoryStore::new())),
            StoreSpec::Redis(_) | StoreSpec::RedisCluster(_) => {
                anyhow::bail!("store {spec}: this build of sluice has no Redis store")
            }
        }
    }
}

impl Store for AnyStore {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        match self {
            AnyStore::Memory(s) => s.decide(checks).await,
        }
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        match self {
            AnyStore::Memory(s) => s.decide_one(check).await,
        }
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        match self {
            AnyStore::Memory(s) => s.peek(check).await,
        }
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(s) => s.reset(check).await,
        }
    }
}
