//! Issue 11: one key's value never fails its neighbours. Checks batched
//! into the same Redis calls as keys holding values Sluice did not write,
//! of every Redis type, are decided exactly; the foreign keys are answered
//! as `lua/prelude.lua` documents (a string or a sorted set reads as
//! untouched and is replaced at the next admission; a list, set, hash or
//! stream fails its own checks with [`StoreError::Key`] and is left alone);
//! nothing is charged for a check answered as failed; and a script error in
//! one group of a call leaves the other groups decided.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use sluice::store::redis::library::{self, Argument, Call, Mode};
use sluice::{Algorithm, Check, Decision, FakeClock, Quota, RedisStore, Store, StoreError};
use sluice_testkit::{RedisCluster, RedisServer};

const START_US: u64 = 1_764_000_000_000_000;
const LIMIT: u64 = 5;
const ROUNDS: usize = 8;
const HEALTHY_KEYS: usize = 16;

/// A value planted in a check's state key before the checks run.
#[derive(Clone, Copy, Debug)]
enum Foreign {
    Text,
    SortedSet,
    List,
    Set,
    Hash,
    Stream,
}

impl Foreign {
    const ALL: [Foreign; 6] = [
        Foreign::Text,
        Foreign::SortedSet,
        Foreign::List,
        Foreign::Set,
        Foreign::Hash,
        Foreign::Stream,
    ];

    fn plant(self, server: &RedisServer, key: &str) {
        let args: Vec<&str> = match self {
            Foreign::Text => vec!["SET", key, "not sluice's"],
            Foreign::SortedSet => vec!["ZADD", key, "1", "not sluice's"],
            Foreign::List => vec!["RPUSH", key, "a", "b"],
            Foreign::Set => vec!["SADD", key, "a"],
            Foreign::Hash => vec!["HSET", key, "f", "v"],
            Foreign::Stream => vec!["XADD", key, "*", "f", "v"],
        };
        server.cli(&args);
    }

    /// The Redis type's name, and the words the error uses for it (`None`
    /// for the types Sluice writes, which read as untouched).
    fn refused(self) -> Option<(&'static str, &'static str)> {
        match self {
            Foreign::Text | Foreign::SortedSet => None,
            Foreign::List => Some(("list", "a list")),
            Foreign::Set => Some(("set", "a set")),
            Foreign::Hash => Some(("hash", "a hash")),
            Foreign::Stream => Some(("stream", "a stream")),
        }
    }
}

/// How many calls of `command` Redis has run since its statistics were reset.
fn calls_of(server: &RedisServer, command: &str) -> u64 {
    let stats = server.cli(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Every algorithm at once: 16 healthy keys and one key per foreign value,
/// each checked 8 times under a limit of 5, all queued together.
#[tokio::test(flavor = "current_thread")]
async fn issue_11_one_keys_value_never_fails_its_batch_neighbours() {
    never_fails_its_batch_neighbours(&RedisServer::start(), "fcall").await;
}

/// Issue 15: the same on the native module.
#[tokio::test(flavor = "current_thread")]
async fn issue_15_the_module_never_fails_a_batch_neighbour() {
    never_fails_its_batch_neighbours(&RedisServer::with_module(), "sluice.call").await;
}

/// Isolation on `server`, whose decisions run as `command`.
async fn never_fails_its_batch_neighbours(server: &RedisServer, command: &str) {
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let quotas: Vec<Quota> = Algorithm::ALL
        .iter()
        .map(|&a| Quota::new(a, LIMIT, Duration::from_secs(3600), None).unwrap())
        .collect();
    // One policy per algorithm: a policy and a client share one Redis key.
    let policies: Vec<String> = Algorithm::ALL.iter().map(|a| format!("iso-{a}")).collect();
    let healthy: Vec<String> = (0..HEALTHY_KEYS).map(|i| format!("client-{i}")).collect();
    let foreign: Vec<String> = Foreign::ALL.iter().map(|f| format!("{f:?}")).collect();
    // The function is loaded before the statistics are reset.
    store
        .decide_one(&Check::new("warm", "up", &quotas[0], 1))
        .await
        .unwrap();
    for (quota, policy) in quotas.iter().zip(&policies) {
        for (f, key) in Foreign::ALL.iter().zip(&foreign) {
            let check = Check::new(policy, key, quota, 1);
            f.plant(server, &common::redis_key(&check));
        }
    }
    server.cli(&["CONFIG", "RESETSTAT"]);

    // Round by round, every key of every algorithm: the foreign keys sit
    // between healthy ones in every call.
    let mut checks = Vec::new();
    for round in 0..ROUNDS {
        for (quota, policy) in quotas.iter().zip(&policies) {
            for key in healthy.iter().chain(&foreign) {
                checks.push((round, Check::new(policy, key, quota, 1)));
            }
        }
    }
    let answers = common::join_all(checks.iter().map(|(_, c)| store.decide_one(c))).await;
    let calls = calls_of(server, command);
    assert!(
        calls <= (checks.len() as u64).div_ceil(64),
        "{calls} calls for {} checks: not batched",
        checks.len()
    );

    for ((round, check), answer) in checks.iter().zip(&answers) {
        let algorithm = check.quota.algorithm();
        let what = format!("{algorithm} key {} round {round}", check.key);
        let refused = Foreign::ALL
            .iter()
            .zip(&foreign)
            .find(|(_, k)| *k == check.key)
            .and_then(|(f, _)| f.refused());
        match (refused, answer) {
            (None, Ok(d)) => {
                // The contract's exact counts, in queue order.
                let admitted = (*round as u64) < LIMIT;
                assert_eq!(d.allowed, admitted, "{what}: {d:?}");
                let remaining = LIMIT.saturating_sub(*round as u64 + 1);
                assert_eq!(d.remaining, remaining, "{what}: {d:?}");
            }
            (
                Some((_, words)),
                Err(
                    error @ StoreError::Key {
                        policy,
                        key,
                        problem,
                    },
                ),
            ) => {
                assert!(!error.is_transient(), "{what}");
                assert_eq!(
                    (policy.as_str(), key.as_str()),
                    (check.policy, check.key),
                    "{what}"
                );
                let store_key = common::redis_key(check);
                assert!(
                    problem.contains(&store_key) && problem.contains(words),
                    "{what}: {problem}"
                );
            }
            (_, other) => panic!("{what}: {other:?}"),
        }
    }
    // The values Sluice never writes are left alone; the others replaced.
    for (quota, policy) in quotas.iter().zip(&policies) {
        for (f, key) in Foreign::ALL.iter().zip(&foreign) {
            let store_key = common::redis_key(&Check::new(policy, key, quota, 1));
            let kind = server.cli(&["TYPE", &store_key]);
            match f.refused() {
                Some((name, _)) => assert_eq!(kind, name, "{f:?} {}", quota.algorithm()),
                None => {
                    let ours = if quota.algorithm() == Algorithm::SlidingWindowLog {
                        "zset"
                    } else {
                        "string"
                    };
                    assert_eq!(kind, ours, "{f:?} {}: not replaced", quota.algorithm());
                }
            }
        }
        let list = common::redis_key(&Check::new(policy, "List", quota, 1));
        assert_eq!(server.cli(&["LRANGE", &list, "0", "-1"]), "a\nb");
    }
}

/// An all-or-nothing group with a key Sluice cannot use fails as a whole,
/// and charges none of its other keys: no check is both charged and
/// answered as failed.
#[tokio::test]
async fn issue_11_a_group_with_a_foreign_key_charges_nothing() {
    a_group_with_a_foreign_key_charges_nothing(&RedisServer::start()).await;
}

/// Issue 15: the same on the native module.
#[tokio::test]
async fn issue_15_on_the_module_a_group_with_a_foreign_key_charges_nothing() {
    a_group_with_a_foreign_key_charges_nothing(&RedisServer::with_module()).await;
}

async fn a_group_with_a_foreign_key_charges_nothing(server: &RedisServer) {
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_clock(clock.clone());
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(algorithm, LIMIT, Duration::from_secs(3600), None).unwrap();
        let (fine_name, bad_name) = (format!("{algorithm}-fine"), format!("{algorithm}-bad"));
        let fine = Check::new(&fine_name, "k", &quota, 1);
        let bad = Check::new(&bad_name, "k", &quota, 1);
        Foreign::Hash.plant(server, &common::redis_key(&bad));
        for group in [[fine, bad], [bad, fine]] {
            match store.decide(&group).await {
                Err(StoreError::Key { policy, .. }) => assert_eq!(policy, bad_name),
                other => panic!("{algorithm}: {other:?}"),
            }
        }
        let untouched = server.cli(&["EXISTS", &common::redis_key(&fine)]);
        assert_eq!(untouched, "0", "{algorithm}: the fine key was charged");
        assert_eq!(
            store.peek(&fine.with_cost(0)).await.unwrap().remaining,
            LIMIT
        );
        // A peek of the foreign key fails alone too.
        assert!(matches!(
            store.peek(&bad).await,
            Err(StoreError::Key { .. })
        ));
        // Deleting the value (an admin reset) makes the key usable.
        store.reset(&bad).await.unwrap();
        let d: Decision = store.decide(&[fine, bad]).await.unwrap()[1];
        assert!(d.allowed && d.remaining == LIMIT - 1, "{algorithm}: {d:?}");
    }
}

/// On a Redis Cluster a request over several clients' keys is one call per
/// slot: when a later slot's key cannot be used, the slots already charged
/// are refunded before the error is answered.
#[tokio::test]
async fn issue_11_a_cluster_request_failing_in_one_slot_charges_no_other() {
    let cluster = RedisCluster::start();
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&cluster.url())
        .await
        .unwrap()
        .with_clock(clock.clone());
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(algorithm, LIMIT, Duration::from_secs(3600), None).unwrap();
        let policy = algorithm.to_string();
        let (fine, bad) = (
            Check::new(&policy, "alice", &quota, 1),
            Check::new(&policy, "bob", &quota, 1),
        );
        let planted = common::redis_key(&bad);
        cluster.cli(0, &["-c", "RPUSH", &planted, "x"]);
        match store.decide(&[fine, bad]).await {
            Err(StoreError::Key { key, .. }) => assert_eq!(key, "bob", "{algorithm}"),
            other => panic!("{algorithm}: {other:?}"),
        }
        let d = store.peek(&fine.with_cost(0)).await.unwrap();
        assert_eq!(d.remaining, LIMIT, "{algorithm}: alice was charged: {d:?}");
        assert_eq!(cluster.cli(0, &["-c", "LLEN", &planted]), "1");
    }
}

/// A script error in one group of a call (here an algorithm code the
/// library does not know, sent through the documented calling protocol)
/// answers that group's error marker, logs the error in Redis's log, and
/// leaves the other groups of the same call decided.
#[tokio::test]
async fn issue_11_a_script_error_fails_its_own_group_only() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let quota = Quota::new(Algorithm::TokenBucket, LIMIT, Duration::from_secs(60), None).unwrap();
    // Loads the function.
    store
        .decide_one(&Check::new("warm", "up", &quota, 1))
        .await
        .unwrap();
    let good = library::values(&quota, 1, false);
    let mut bad = good;
    bad[0] = 99;
    let call = Call {
        now_us: Some(START_US),
        mode: Mode::Decide,
        groups: vec![vec![good], vec![good, bad], vec![good]],
    };
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(library::function_name()).arg(4);
    cmd.arg("{a}:1").arg("{a}:2").arg("{a}:3").arg("{a}:4");
    for argument in call.arguments() {
        cmd.arg(match argument {
            Argument::Text(text) => text.into_bytes(),
            other => other.to_bytes(),
        });
    }
    let reply: Vec<i64> = cmd.query_async(&mut connection).await.unwrap();
    assert_eq!(reply[0], START_US as i64);
    let per_check: Vec<&[i64]> = reply[1..].chunks(library::REPLY_PER_CHECK).collect();
    assert_eq!(per_check.len(), 4);
    assert_eq!(per_check[0][..3], [1, LIMIT as i64 - 1, 12_000_000]);
    // The failed group: check 1 of it is at fault; nothing of it written.
    assert_eq!(per_check[1], [-1, 2, 0, 1, 0, 0]);
    assert_eq!(per_check[2], [-1, 2, 0, 1, 0, 0]);
    assert_eq!(
        server.cli(&["EXISTS", "{a}:2"]),
        "0",
        "written by a failed group"
    );
    assert_eq!(per_check[3][..2], [1, LIMIT as i64 - 1]);
    assert!(
        server.log().contains("sluice: a check failed"),
        "{}",
        server.log()
    );
}
