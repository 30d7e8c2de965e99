//! Opening the store that a configuration names, and keeping the memory it
//! holds in this process bounded.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice::store::{Health, LocalBudgets, Resilient};
use sluice::{BoxStore, Clock, MemoryStore, RedisOptions, RedisStore, SystemClock};

use crate::config::{MemorySettings, StoreSpec};

/// When a Redis store is ready for use: the core's, which opens every
/// store (`sluice::store::open_with`).
pub use sluice::store::Connecting;

/// How often the keys back to their untouched state are dropped from
/// process memory ([`purge_every_second`]).
pub const PURGE_PERIOD: Duration = Duration::from_secs(1);

/// What the service keeps of an opened store besides the store itself.
#[derive(Clone)]
pub struct StoreHandles {
    /// The resilient stack's report (breaker, store errors), when the
    /// store can fail.
    pub health: Option<Health>,
    /// The store that keeps keys in this process: the memory store, or the
    /// local store of `on_store_error: local` in front of Redis.
    pub memory: Option<Arc<MemoryStore>>,
    /// The store's clock (the system's unless a test gives a fake one):
    /// Envoy's answers say when a window ends by it.
    pub clock: Arc<dyn Clock>,
    /// The local budgets in front of Redis (the slices of the policies
    /// with a `local_budget`): returned when idle, on reload and at the end.
    pub budgets: Option<LocalBudgets>,
}

impl Default for StoreHandles {
    fn default() -> StoreHandles {
        StoreHandles {
            health: None,
            memory: None,
            clock: Arc::new(SystemClock),
            budgets: None,
        }
    }
}

/// Opens the store `spec` names, as it is; `redis` says how to use Redis.
pub async fn open(
    spec: &StoreSpec,
    redis: &RedisOptions,
    connecting: Connecting,
) -> anyhow::Result<BoxStore> {
    let url = match spec {
        StoreSpec::Memory => "memory",
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) | StoreSpec::RedisSentinel(url) => url,
    };
    // The spec's Display hides any password in the URL.
    sluice::store::open_with(url, redis, connecting)
        .await
        .with_context(|| format!("connecting to {spec}"))
}

/// Opens the store `spec` names for deciding requests, holding at most
/// `memory.max_keys` keys in process memory: a Redis store sits behind the
/// resilient stack (fallback by each policy's `on_store_error`, deny cache,
/// circuit breaker) over the local budgets (slices of the keys of the
/// policies with a `local_budget`, answered in this process, within their
/// bound); the memory store cannot fail and is used as it is.
pub async fn open_resilient(
    spec: &StoreSpec,
    redis: &RedisOptions,
    memory: &MemorySettings,
    connecting: Connecting,
) -> anyhow::Result<(BoxStore, StoreHandles)> {
    let bounded = || MemoryStore::new().with_max_keys(memory.max_keys);
    match spec {
        StoreSpec::Memory => {
            let store = Arc::new(bounded());
            let handles = StoreHandles {
                memory: Some(store.clone()),
                ..StoreHandles::default()
            };
            Ok((BoxStore::new(store), handles))
        }
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) | StoreSpec::RedisSentinel(url) => {
            let redis = redis_store(spec, url, redis, connecting).await?;
            let budgets = LocalBudgets::new(redis, SystemClock);
            let store = Resilient::new(budgets.clone(), SystemClock).with_local_store(bounded());
            let handles = StoreHandles {
                health: Some(store.health()),
                memory: Some(store.local_store()),
                budgets: Some(budgets),
                ..StoreHandles::default()
            };
            Ok((BoxStore::new(store), handles))
        }
    }
}

/// Drops the keys of `memory` that are back to their untouched state every
/// [`PURGE_PERIOD`], for as long as the store is in use: inserts reclaim
/// as they go, and this gives the memory back once they stop. Each purge
/// runs on the blocking pool (it locks one shard at a time, briefly).
pub fn purge_every_second(memory: &Arc<MemoryStore>) {
    let memory = Arc::downgrade(memory);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_PERIOD);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(memory) = memory.upgrade() else {
                return;
            };
            let purged = tokio::task::spawn_blocking(move || memory.purge_expired()).await;
            if let Err(e) = purged {
                tracing::error!(error = %sluice::error::chain(&e), "purging the memory store failed");
            }
        }
    });
}

/// Gives back `budgets`' slices unused for a second, every second
/// ([`PURGE_PERIOD`]), for as long as the store is in use.
pub fn return_idle_slices(budgets: &LocalBudgets) {
    let budgets = budgets.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_PERIOD);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            budgets.return_idle().await;
        }
    });
}

/// The Redis store of `spec`, a Redis spec whose URL is `url`; errors name
/// the spec with its password hidden.
pub async fn redis_store(
    spec: &StoreSpec,
    url: &str,
    redis: &RedisOptions,
    connecting: Connecting,
) -> anyhow::Result<RedisStore> {
    // The spec's Display hides any password in the URL.
    sluice::store::open_redis(url, redis, connecting)
        .await
        .with_context(|| format!("connecting to {spec}"))
}
