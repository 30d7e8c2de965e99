//! Decision services for the Envoy tests: envoyproxy/ratelimit's `config`
//! in force, the store on a fake clock at [`NOW_S`] so that windows are
//! exact.

use std::sync::Arc;
use std::time::Duration;

use sluice::store::Resilient;
use sluice::{BoxStore, FakeClock, Limiter, MemoryStore, RedisOptions, RedisStore};
use sluice_server::config::envoy::EnvoyConfig;
use sluice_server::service::DecisionService;
use sluice_server::stores::StoreHandles;

use super::envoy_examples::NOW_S;

/// `text` as one envoyproxy/ratelimit file.
pub fn load(text: &str) -> EnvoyConfig {
    let mut config = EnvoyConfig::default();
    config.add(text, "test.yaml", false).unwrap();
    config
}

/// A service over `store`, on `clock`, with `config` in force.
pub fn service(
    store: BoxStore,
    clock: &FakeClock,
    config: EnvoyConfig,
    handles: StoreHandles,
) -> DecisionService {
    let handles = StoreHandles {
        clock: Arc::new(clock.clone()),
        ..handles
    };
    let service = DecisionService::with_handles(Limiter::new(store, []), "memory", None, handles);
    service.set_envoy_config(config);
    service
}

/// A service over a fresh memory store, and its clock.
pub fn memory(config: EnvoyConfig) -> (DecisionService, FakeClock) {
    let clock = FakeClock::new(NOW_S * 1_000_000);
    let store = BoxStore::new(MemoryStore::with_clock(clock.clone()));
    (
        service(store, &clock, config, StoreHandles::default()),
        clock,
    )
}

/// A service over the Redis at `url` behind the resilient stack (as
/// `sluice serve` opens it).
pub async fn redis(url: &str, config: EnvoyConfig) -> DecisionService {
    let clock = FakeClock::new(NOW_S * 1_000_000);
    let options = RedisOptions::default().with_timeout(Duration::from_secs(2));
    let redis = RedisStore::connect_with(url, options)
        .await
        .unwrap()
        .with_clock(clock.clone());
    let store = Resilient::new(redis, clock.clone())
        .with_local_store(MemoryStore::with_clock(clock.clone()));
    let handles = StoreHandles {
        health: Some(store.health()),
        ..StoreHandles::default()
    };
    service(BoxStore::new(store), &clock, config, handles)
}
