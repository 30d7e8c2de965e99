//! Issue 15: the native module (`crates/sluice-redis-module`) beside the
//! Lua library. A fleet mid-rollout mixes them: a key written by one is
//! read correctly by the other, in both directions, for every algorithm
//! (quota changes, carried over, included); and the module's writes reach
//! a replica as their effects (the replica has no module, and holds the
//! same values and expiry instants).
//!
//! The contract suite runs on the module too (`stores.rs`, single Redis
//! and Cluster), and so do the isolation tests (`isolation.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::thread;
use std::time::{Duration, Instant};

use sluice::store::packed;
use sluice::{Algorithm, Check, FakeClock, MemoryStore, Quota, RedisOptions, RedisStore, Store};
use sluice_testkit::RedisServer;

const START_US: u64 = 1_764_000_000_000_000;

/// Costs and the gaps after them (ms): admissions, denials, a partial
/// refill, a window passing.
const STEPS: [(u64, u64); 10] = [
    (1, 0),
    (2, 150),
    (3, 0),
    (9, 40),
    (1, 700),
    (2, 0),
    (1, 1_100),
    (4, 10),
    (1, 2_500),
    (2, 0),
];

async fn store(server: &RedisServer, clock: &FakeClock, module: bool) -> RedisStore {
    let options = RedisOptions::default().with_module(module);
    RedisStore::connect_with(&server.url(), options)
        .await
        .unwrap()
        .with_clock(clock.clone())
}

/// Every step on one key goes to the module or to the Lua, alternating (so
/// each reads what the other wrote), under one quota and then a changed
/// one (carried over); a twin key takes the same steps on the Lua alone.
/// Each decision and peek equals the memory store's, and after each step
/// the mixed key holds exactly the twin's state.
#[tokio::test]
async fn issue_15_a_key_written_by_one_path_is_read_by_the_other() {
    let server = RedisServer::with_module();
    let clock = FakeClock::new(START_US);
    let memory = MemoryStore::with_clock(clock.clone());
    let module = store(&server, &clock, true).await;
    let lua = store(&server, &clock, false).await;
    for algorithm in Algorithm::ALL {
        let burst = algorithm.has_burst().then_some(7);
        let quotas = [
            Quota::new(algorithm, 5, Duration::from_secs(2), burst).unwrap(),
            Quota::new(algorithm, 3, Duration::from_secs(1), None).unwrap(),
        ];
        for (first, path) in [("module", 0), ("lua", 1)] {
            let key = format!("k-{algorithm}-{first}");
            let twin = format!("twin-{algorithm}-{first}");
            for (q, quota) in quotas.iter().enumerate() {
                for (i, (cost, gap_ms)) in STEPS.iter().copied().enumerate() {
                    let (name, redis) = if (i + q + path) % 2 == 0 {
                        ("module", &module)
                    } else {
                        ("lua", &lua)
                    };
                    let what = format!("{algorithm}, {first} first, quota {q}, step {i} on {name}");
                    let check = Check::new("mixed", &key, quota, cost);
                    let twin_check = Check::new("mixed", &twin, quota, cost);
                    let peeked = (
                        memory.peek(&check).await.unwrap(),
                        redis.peek(&check).await.unwrap(),
                    );
                    assert_eq!(peeked.0, peeked.1, "{what}: peek");
                    let decided = (
                        memory.decide_one(&check).await.unwrap(),
                        redis.decide_one(&check).await.unwrap(),
                    );
                    assert_eq!(decided.0, decided.1, "{what}: decision");
                    lua.decide_one(&twin_check).await.unwrap();
                    let states = (
                        redis.inspect(&check).await.unwrap(),
                        lua.inspect(&twin_check).await.unwrap(),
                    );
                    assert_eq!(states.0, states.1, "{what}: stored state");
                    clock.advance(Duration::from_millis(gap_ms));
                }
            }
        }
    }
    assert_eq!(module.library_form(), "module");
    assert_eq!(lua.library_form(), "function");
}

/// The module's writes reach a replica that has no module as the writes
/// themselves (`SET … PXAT`, `SET … KEEPTTL`, `DEL`, `ZADD`, `PEXPIREAT`),
/// never as `SLUICE.CALL`, which a replica would decide again with its own
/// clock: after decisions at Redis `TIME` (a quota changed and carried
/// over, another algorithm's state deleted, a refund), the replica holds the same value and the same expiry
/// instant for every algorithm.
#[tokio::test]
async fn issue_15_the_modules_writes_replicate_as_effects() {
    let master = RedisServer::with_module();
    let port = master.port().to_string();
    let replica = RedisServer::start_with_args(["--replicaof", "127.0.0.1", port.as_str()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica
        .cli(&["INFO", "replication"])
        .contains("master_link_status:up")
    {
        assert!(Instant::now() < deadline, "the replica did not sync");
        thread::sleep(Duration::from_millis(20));
    }
    let store = RedisStore::connect(&master.url()).await.unwrap();
    let client = redis::Client::open(master.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys = Vec::new();
    for algorithm in Algorithm::ALL {
        // A day: the windows end at midnight UTC, not during the test.
        let quota = Quota::new(algorithm, 5, Duration::from_secs(86_400), None).unwrap();
        // Another quota: a state saved under the first is carried over
        // (rewritten, or deleted when nothing carries).
        let changed = Quota::new(algorithm, 4, Duration::from_secs(43_200), None).unwrap();
        let key = format!("k-{algorithm}");
        for cost in [1, 2, 9, 1] {
            store
                .decide_one(&Check::new("replicated", &key, &quota, cost))
                .await
                .unwrap();
        }
        keys.push(format!("sluice:{{{key}}}:replicated"));
        let carried = format!("carried-{algorithm}");
        for quota in [&quota, &changed] {
            store
                .decide_one(&Check::new("replicated", &carried, quota, 1))
                .await
                .unwrap();
        }
        keys.push(format!("sluice:{{{carried}}}:replicated"));
        // Another algorithm's state carries nothing: the key is deleted,
        // whatever the decision (here a denial, which writes nothing else).
        let switched = format!("switched-{algorithm}");
        // (A bucket's state carries to another bucket only.)
        let other = if algorithm.has_burst() {
            Algorithm::FixedWindow
        } else {
            Algorithm::Gcra
        };
        let other = Quota::new(other, 5, Duration::from_secs(86_400), None).unwrap();
        for (quota, cost) in [(&other, 1), (&quota, 9)] {
            store
                .decide_one(&Check::new("replicated", &switched, quota, cost))
                .await
                .unwrap();
        }
        let switched = format!("sluice:{{{switched}}}:replicated");
        if algorithm != Algorithm::SlidingWindowLog {
            assert_eq!(master.cli(&["EXISTS", &switched]), "0", "{switched}");
        }
        keys.push(switched);
        // A refund (`SET … KEEPTTL` on a string, `ZREM`/`ZADD` on a log)
        // of a charge, both sent as the store sends them.
        let refunded_key = format!("sluice:{{refunded-{algorithm}}}:replicated");
        let mut values = Vec::new();
        packed::pack(&packed::values(&quota, 1, false), &mut values);
        let call = |mode: packed::Mode| {
            redis::cmd("SLUICE.CALL")
                .arg(1)
                .arg(&refunded_key)
                .arg("")
                .arg(&*mode.argument())
                .arg(1)
                .arg(&values[..])
                .to_owned()
        };
        let mut charged: Vec<i64> = Vec::new();
        for _ in 0..2 {
            charged = call(packed::Mode::Decide)
                .query_async(&mut raw)
                .await
                .unwrap();
        }
        assert_eq!(charged[1], 1, "{refunded_key}: not admitted");
        let before = master.cli(&["DUMP", &refunded_key]);
        let at_us = u64::try_from(charged[0]).unwrap();
        let _: Vec<i64> = call(packed::Mode::Refund { at_us })
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_ne!(
            master.cli(&["DUMP", &refunded_key]),
            before,
            "{refunded_key}: no refund"
        );
        keys.push(refunded_key);
    }
    assert_eq!(store.library_form(), "module");
    assert_eq!(master.cli(&["WAIT", "1", "5000"]), "1");
    for key in &keys {
        let read = |server: &RedisServer| {
            let value = match server.cli(&["TYPE", key]).as_str() {
                "zset" => server.cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
                "string" => server.cli(&["GET", key]),
                // Expired on both (a window that ended): equal too.
                "none" => String::new(),
                other => panic!("{key} is a {other}"),
            };
            (value, server.cli(&["PEXPIRETIME", key]))
        };
        let on_master = read(&master);
        assert!(on_master.1 != "-1", "{key}: no expiry");
        assert_eq!(on_master, read(&replica), "{key}");
    }
    let stats = replica.cli(&["INFO", "commandstats"]);
    assert!(!stats.contains("sluice.call"), "{stats}");
    assert!(
        stats.contains("cmdstat_zadd") && stats.contains("cmdstat_set"),
        "{stats}"
    );
}

/// A key may hold any byte, a NUL too: the module opens and writes the
/// call's own key arguments (it once copied each through a C string, which
/// panicked on a NUL and took Redis down).
#[tokio::test]
async fn issue_15_a_key_with_a_nul_byte_is_decided() {
    let server = RedisServer::with_module();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let quota = Quota::new(Algorithm::Gcra, 2, Duration::from_secs(60), None).unwrap();
    let check = Check::new("nul", "a\0b", &quota, 1);
    let allowed: Vec<bool> = [
        store.decide_one(&check).await.unwrap(),
        store.decide_one(&check).await.unwrap(),
        store.decide_one(&check).await.unwrap(),
    ]
    .iter()
    .map(|d| d.allowed)
    .collect();
    assert_eq!(allowed, [true, true, false]);
    assert_eq!(store.library_form(), "module");
}

/// The store asks for the module again after a reconnect: a Redis that
/// loads it while the store runs (`MODULE LOAD`) is used from the next
/// connection on, and until then the Lua library decides.
#[tokio::test]
async fn issue_15_a_module_loaded_later_is_used_after_a_reconnect() {
    let server = RedisServer::start_with_args(["--enable-module-command", "yes"]);
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let quota = Quota::new(Algorithm::TokenBucket, 100, Duration::from_secs(1), None).unwrap();
    let check = Check::new("later", "k", &quota, 1);
    assert!(store.decide_one(&check).await.unwrap().allowed);
    assert_eq!(store.library_form(), "function");
    let module = sluice_testkit::module_path();
    assert_eq!(
        server.cli(&["MODULE", "LOAD", module.to_str().unwrap()]),
        "OK"
    );
    // The same connection keeps the form it found.
    assert!(store.decide_one(&check).await.unwrap().allowed);
    assert_eq!(store.library_form(), "function");
    server.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    until_the_module_decides(&store, &check, Duration::from_secs(10)).await;
    let d = store.decide_one(&check).await.unwrap();
    assert!(d.allowed && d.remaining < 98, "{d:?}");
    assert!(
        server
            .cli(&["INFO", "commandstats"])
            .contains("cmdstat_sluice.call")
    );
}

/// A Sentinel failover to a replica that has the module (a rolling
/// upgrade: the master had none) moves the store onto the module: it asks
/// again on the new master's connection, as it does after a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_a_sentinel_failover_to_a_server_with_the_module_uses_it() {
    let mut redis =
        sluice_testkit::RedisSentinel::start_with_replica_args(1, &sluice_testkit::module_args());
    let store = RedisStore::connect_with(&redis.url(), RedisOptions::default())
        .await
        .unwrap();
    let quota = Quota::new(Algorithm::TokenBucket, 100, Duration::from_secs(1), None).unwrap();
    let check = Check::new("sentinel", "k", &quota, 1);
    assert!(store.decide_one(&check).await.unwrap().allowed);
    assert_eq!(store.library_form(), "function");
    // Blocking the test's thread while the runtime's workers run on.
    let old = redis.kill_master();
    redis.wait_for_failover(old);
    until_the_module_decides(&store, &check, Duration::from_secs(20)).await;
    assert!(store.decide_one(&check).await.unwrap().allowed);
    let stats = redis.cli(1, &["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_sluice.call"), "{stats}");
}

/// Decides `check` until the store has moved onto the module, failing
/// after `within`.
async fn until_the_module_decides(store: &RedisStore, check: &Check<'_>, within: Duration) {
    let deadline = Instant::now() + within;
    while store.library_form() != "module" {
        assert!(
            Instant::now() < deadline,
            "the store did not move onto the module within {within:?}"
        );
        let _ = store.decide_one(check).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One call deciding the same keys many times (what batching makes of a
/// hot key: one check per group, each group on the key again) sees each
/// of its own writes: for every algorithm, 24 checks over two keys in one
/// `SLUICE.CALL`, twice, answer what the memory store answers for the same
/// checks one at a time, and leave the state the Lua library reads as the
/// memory store's.
#[tokio::test]
async fn issue_15_one_call_on_a_key_many_times_sees_its_own_writes() {
    let server = RedisServer::with_module();
    let clock = FakeClock::new(START_US);
    let memory = MemoryStore::with_clock(clock.clone());
    let lua = store(&server, &clock, false).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(algorithm, 10, Duration::from_secs(86_400), None).unwrap();
        let names = [format!("hot-{algorithm}"), format!("warm-{algorithm}")];
        // Hot, hot, warm, hot, hot, warm…: the key read last changes too.
        let order: Vec<&String> = (0..24).map(|i| &names[usize::from(i % 3 == 2)]).collect();
        for round in 0..2 {
            let mut call = redis::cmd("SLUICE.CALL");
            call.arg(order.len());
            for name in &order {
                call.arg(format!("sluice:{{{name}}}:p"));
            }
            call.arg(START_US).arg(&*packed::Mode::Decide.argument());
            let mut values = Vec::new();
            packed::pack(&packed::values(&quota, 1, false), &mut values);
            for _ in &order {
                call.arg(1).arg(&values[..]);
            }
            let reply: Vec<i64> = call.query_async(&mut raw).await.unwrap();
            for (i, (name, answer)) in order.iter().zip(reply[1..].chunks(6)).enumerate() {
                let check = Check::new("p", name, &quota, 1);
                let expected = memory.decide_one(&check).await.unwrap();
                let what = format!("{algorithm}, round {round}, check {i} on {name}");
                assert_eq!(answer[0], i64::from(expected.allowed), "{what}: allowed");
                assert_eq!(answer[1], expected.remaining as i64, "{what}: remaining");
            }
        }
        for name in &names {
            let check = Check::new("p", name, &quota, 1);
            assert_eq!(
                lua.peek(&check).await.unwrap(),
                memory.peek(&check).await.unwrap(),
                "{algorithm}: {name} as the Lua reads it"
            );
        }
    }
}

/// Issue 15: the bytes reply (mode `bd`, `bp`, `br<at>`) holds the same
/// integers, in the same order, as the array the plain mode answers, for
/// the same call: twin keys take the same decisions (admissions, denials,
/// a group with a key of another type, which answers error markers), peeks
/// and refunds, in both forms; a late call stays an error.
#[tokio::test]
async fn issue_15_the_bytes_reply_holds_the_arrays_integers() {
    let server = RedisServer::with_module();
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    for twin in ["array", "bytes"] {
        server.cli(&["LPUSH", &format!("{{{twin}}}:listed"), "x"]);
    }
    // Two groups: two checks of different algorithms, then one on a list.
    let quotas = [
        Quota::new(Algorithm::TokenBucket, 3, Duration::from_secs(1), Some(4)).unwrap(),
        Quota::new(Algorithm::SlidingWindowLog, 2, Duration::from_secs(2), None).unwrap(),
        Quota::new(Algorithm::FixedWindow, 5, Duration::from_secs(1), None).unwrap(),
    ];
    let names = ["a", "b", "listed"];
    let call = |twin: &str, mode: String, now: String, cost: u64| {
        let mut cmd = redis::cmd("SLUICE.CALL");
        cmd.arg(names.len());
        for name in names {
            cmd.arg(format!("{{{twin}}}:{name}"));
        }
        cmd.arg(now).arg(mode);
        let mut first = Vec::new();
        for quota in &quotas[..2] {
            packed::pack(&packed::values(quota, cost, false), &mut first);
        }
        let mut second = Vec::new();
        packed::pack(&packed::values(&quotas[2], cost, false), &mut second);
        cmd.arg(2).arg(first).arg(1).arg(second);
        cmd
    };
    let (mut now, mut decided_at) = (START_US, START_US);
    for (step, (cost, gap_ms)) in STEPS.iter().copied().enumerate() {
        for mode in [String::from("p"), "d".into(), format!("r{decided_at}")] {
            let array: Vec<i64> = call("array", mode.clone(), now.to_string(), cost)
                .query_async(&mut raw)
                .await
                .unwrap();
            let bytes: Vec<u8> = call("bytes", format!("b{mode}"), now.to_string(), cost)
                .query_async(&mut raw)
                .await
                .unwrap();
            assert_eq!(bytes.len(), array.len() * 8, "step {step}, mode {mode}");
            let from_bytes: Vec<i64> = bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect();
            assert_eq!(from_bytes, array, "step {step}, mode {mode}");
            assert_eq!(array.len(), 1 + names.len() * packed::REPLY_PER_CHECK);
            if !mode.starts_with('r') {
                assert_eq!(array[13], -1, "the listed key's error marker: {array:?}");
            }
            if mode == "d" {
                decided_at = now;
            }
        }
        now += gap_ms * 1_000;
    }
    let late: redis::RedisResult<Vec<u8>> = call("bytes", "bd".into(), "<1".into(), 1)
        .query_async(&mut raw)
        .await;
    assert_eq!(late.unwrap_err().code(), Some(packed::LATE));
}
