//! `Store::inspect` pins the Rust decoder of the Redis state
//! (`store::redis::library::stored`) to the Lua that packs it: the same
//! decisions, at the same fake-clock instants, on the memory store and on a
//! real Redis (single node and Cluster) must leave the same decoded state,
//! exactly (the Redis store decides at the caller's time when given a
//! clock, so nothing needs a tolerance).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sluice::{Algorithm, Check, FakeClock, MemoryStore, Quota, RedisStore, Store, StoreError};
use sluice_testkit::{RedisCluster, RedisServer};

const START_US: u64 = 1_764_000_000_000_000;

/// Costs and the gaps after them: admissions, a denial, a partial refill.
const STEPS: [(u64, u64); 6] = [(1, 0), (2, 150), (3, 0), (9, 40), (1, 700), (2, 0)];

async fn same_states_as_memory(url: &str) {
    let clock = FakeClock::new(START_US);
    let memory = MemoryStore::with_clock(clock.clone());
    let redis = RedisStore::connect(url)
        .await
        .unwrap()
        .with_clock(clock.clone());
    for algorithm in Algorithm::ALL {
        let burst = algorithm.has_burst().then_some(7);
        let quota = Quota::new(algorithm, 5, Duration::from_secs(2), burst).unwrap();
        let key = format!("k-{algorithm}");
        let untouched = Check::new("inspect", &key, &quota, 0);
        assert_eq!(redis.inspect(&untouched).await.unwrap(), None);
        for (cost, gap_ms) in STEPS {
            let check = Check::new("inspect", &key, &quota, cost);
            let (m, r) = (
                memory.decide_one(&check).await.unwrap(),
                redis.decide_one(&check).await.unwrap(),
            );
            assert_eq!(m.allowed, r.allowed, "{algorithm}: the stores disagree");
            let (m, r) = (
                memory.inspect(&check).await.unwrap(),
                redis.inspect(&check).await.unwrap(),
            );
            assert!(m.is_some(), "{algorithm}: nothing stored");
            assert_eq!(m, r, "{algorithm}: decoded state differs after cost {cost}");
            clock.advance(Duration::from_millis(gap_ms));
        }
    }
}

#[tokio::test]
async fn redis_states_decode_as_the_memory_store_keeps_them() {
    let server = RedisServer::start();
    same_states_as_memory(&server.url()).await;
}

#[tokio::test]
async fn cluster_states_decode_as_the_memory_store_keeps_them() {
    let cluster = RedisCluster::start();
    same_states_as_memory(&cluster.url()).await;
}

/// Issue 15: the native module writes the states the decoder reads.
#[tokio::test]
async fn module_states_decode_as_the_memory_store_keeps_them() {
    let server = RedisServer::with_module();
    same_states_as_memory(&server.url()).await;
    assert!(
        server
            .cli(&["INFO", "commandstats"])
            .contains("cmdstat_sluice.call")
    );
}

#[tokio::test]
async fn module_cluster_states_decode_as_the_memory_store_keeps_them() {
    let cluster = RedisCluster::with_module();
    same_states_as_memory(&cluster.url()).await;
}

/// A value Sluice did not write is an error naming the key, not a panic.
#[tokio::test]
async fn a_foreign_value_is_an_error_naming_its_key() {
    let server = RedisServer::start();
    let redis = RedisStore::connect(&server.url()).await.unwrap();
    let quota = Quota::new(Algorithm::Gcra, 5, Duration::from_secs(1), None).unwrap();
    let check = Check::new("api", "alice", &quota, 0);
    for setup in [
        &["SET", "sluice:{alice}:api", "hello"][..],
        &["DEL", "sluice:{alice}:api"],
        &["RPUSH", "sluice:{alice}:api", "x"],
    ] {
        server.cli(setup);
        if setup[0] == "DEL" {
            server.cli(&["ZADD", "sluice:{alice}:api", "1", "junk"]);
        }
        match redis.inspect(&check).await {
            Err(StoreError::Key { problem, .. }) => {
                assert!(problem.contains("sluice:{alice}:api"), "{problem}")
            }
            other => panic!("{setup:?}: {other:?}"),
        }
        server.cli(&["DEL", "sluice:{alice}:api"]);
    }
}

/// The shared codec (`sluice::store::packed`, which the native module
/// writes with) encodes exactly the bytes the Lua library wrote: after
/// every step, the memory store's state encoded in Rust equals the Redis
/// value (a packed string, or the log's members), for all six algorithms.
#[tokio::test]
async fn rust_encodes_the_bytes_lua_wrote() {
    use sluice::store::packed;
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let memory = MemoryStore::with_clock(clock.clone());
    let redis = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    for algorithm in Algorithm::ALL {
        let burst = algorithm.has_burst().then_some(7);
        let quota = Quota::new(algorithm, 5, Duration::from_secs(2), burst).unwrap();
        let key = format!("k-{algorithm}");
        for (cost, gap_ms) in STEPS {
            let check = Check::new("codec", &key, &quota, cost);
            memory.decide_one(&check).await.unwrap();
            redis.decide_one(&check).await.unwrap();
            let state = memory.inspect(&check).await.unwrap().unwrap();
            let redis_key = format!("sluice:{{{key}}}:codec");
            if algorithm == Algorithm::SlidingWindowLog {
                let members: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&redis_key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                let sluice::algorithm::State::SlidingWindowLog(log) = &state else {
                    panic!("{state:?}");
                };
                let encoded: Vec<String> = log.entries().iter().map(packed::member).collect();
                assert_eq!(members, encoded, "{algorithm} after cost {cost}");
                assert!(packed::encode(&quota, &state).is_none());
            } else {
                let stored: Vec<u8> = redis::cmd("GET")
                    .arg(&redis_key)
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                let encoded = packed::encode(&quota, &state).unwrap();
                assert_eq!(stored, encoded, "{algorithm} after cost {cost}");
                assert_eq!(packed::saved_under(&stored), Some(quota));
            }
            clock.advance(Duration::from_millis(gap_ms));
        }
    }
}
