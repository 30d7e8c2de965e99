//! Issue 10: a denial writes nothing to Redis, shown on the caller's clock
//! (a [`FakeClock`]) so that no part of the test depends on how fast the
//! machine is: the key's value stays byte for byte, its expiry is not
//! touched, and Redis counts no write at all.
//!
//! The expiry is checked without reading the wall clock: the test removes
//! the key's TTL (`PERSIST`) after the admission, so any write of the
//! script's (a `SET … PX`, a `PEXPIRE`) would give it one again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sluice::{Algorithm, Check, Decision, FakeClock, Quota, RedisStore, Store};
use sluice_testkit::RedisServer;

/// A whole number of 30 s windows since the epoch.
const START_US: u64 = 1_764_000_000_000_000;

const PERIOD: Duration = Duration::from_secs(30);

async fn store(server: &RedisServer, clock: &FakeClock) -> RedisStore {
    RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_clock(clock.clone())
}

/// How many writes Redis has applied since it started
/// (`rdb_changes_since_last_save`: every command that changed the data set
/// counts, even one that wrote the value already there).
fn writes(server: &RedisServer) -> u64 {
    let info = server.cli(&["info", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .unwrap_or_else(|| panic!("no write count in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// The one key of `policy` for client `k`; panics unless there is exactly one.
fn key_of(server: &RedisServer, policy: &str) -> String {
    let keys = server.cli(&["keys", &format!("sluice:{{k}}:{policy}")]);
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys.len(), 1, "{policy}: keys {keys:?}");
    keys[0].to_owned()
}

/// A key's type, its whole value (escaped, so every byte counts) and its
/// PTTL (-1: none, -2: no key).
fn snapshot(server: &RedisServer, key: &str) -> (String, String, String) {
    let kind = server.cli(&["type", key]);
    let value = match kind.as_str() {
        "zset" => server.cli(&["--no-raw", "zrange", key, "0", "-1", "withscores"]),
        "string" => server.cli(&["--no-raw", "get", key]),
        _ => String::new(),
    };
    (kind, value, server.cli(&["pttl", key]))
}

#[tokio::test]
async fn issue_10_a_denial_writes_nothing_on_the_callers_clock() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server, &clock).await;
    for algorithm in Algorithm::ALL {
        clock.set(START_US);
        let quota = Quota::new(algorithm, 1, PERIOD, None).unwrap();
        let name = algorithm.to_string();
        // `spent` is denied from here on; `twin` had the same admission
        // and sees no denial, to compare with.
        let twin_name = format!("{name}-twin");
        let spent = Check::new(&name, "k", &quota, 1);
        let twin = Check::new(&twin_name, "k", &quota, 1);
        assert!(store.decide_one(&spent).await.unwrap().allowed, "{name}");
        assert!(store.decide_one(&twin).await.unwrap().allowed, "{name}");
        let key = key_of(&server, &name);
        assert_eq!(server.cli(&["persist", &key]), "1", "{name}: had a TTL");
        let before = snapshot(&server, &key);
        assert!(
            matches!(before.0.as_str(), "string" | "zset") && !before.1.is_empty(),
            "{name}: {before:?}"
        );
        assert_eq!(before.2, "-1");
        let writes_before = writes(&server);

        // Denied at once, then later and later within the period; a cost
        // above the limit, which no wait admits, is denied too.
        let too_big = Check::new(&name, "k", &quota, 2);
        for step in [0, 10_000_000, 10_000_000, 9_999_999] {
            clock.advance(Duration::from_micros(step));
            let d = store.decide_one(&spent).await.unwrap();
            assert!(!d.allowed, "{name} at +{step} µs: {d:?}");
            let d = store.decide_one(&too_big).await.unwrap();
            assert!(!d.allowed && d.retry_after.is_none(), "{name}: {d:?}");
            store.peek(&spent).await.unwrap();
        }

        let after = snapshot(&server, &key);
        assert_eq!(before, after, "{name}: a denial changed the key");
        assert_eq!(
            writes(&server),
            writes_before,
            "{name}: Redis counted writes"
        );
        // And the denials charged nothing: the key stands as its twin does.
        let standing = store.peek(&spent).await.unwrap();
        assert_eq!(standing, store.peek(&twin).await.unwrap(), "{name}");
        clock.advance(2 * PERIOD);
        let (d, t): (Decision, Decision) = (
            store.decide_one(&spent).await.unwrap(),
            store.decide_one(&twin).await.unwrap(),
        );
        assert!(d.allowed, "{name}: {d:?}");
        assert_eq!(d, t, "{name}");
    }
}

/// A group of checks decided all or nothing: when one denies, the checks
/// that admitted are not charged, whichever comes first, so their keys are
/// not even written.
#[tokio::test]
async fn issue_10_a_denied_group_writes_none_of_its_keys() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server, &clock).await;
    for algorithm in Algorithm::ALL {
        clock.set(START_US);
        let (one, five) = (
            Quota::new(algorithm, 1, PERIOD, None).unwrap(),
            Quota::new(algorithm, 5, PERIOD, None).unwrap(),
        );
        let (spent_name, fresh_name) = (format!("{algorithm}-spent"), format!("{algorithm}-fresh"));
        let spent = Check::new(&spent_name, "k", &one, 1);
        let fresh = Check::new(&fresh_name, "k", &five, 1);
        assert!(store.decide_one(&spent).await.unwrap().allowed);
        let key = key_of(&server, &spent_name);
        server.cli(&["persist", &key]);
        let before = snapshot(&server, &key);
        let writes_before = writes(&server);

        clock.advance(Duration::from_secs(1));
        for group in [[fresh, spent], [spent, fresh]] {
            let decisions = store.decide(&group).await.unwrap();
            let (f, s) = if group[0].policy == fresh_name {
                (&decisions[0], &decisions[1])
            } else {
                (&decisions[1], &decisions[0])
            };
            assert!(!s.allowed, "{algorithm}: {s:?}");
            assert!(
                f.allowed && f.remaining == 5,
                "{algorithm}: the fresh check's standing: {f:?}"
            );
        }

        let fresh_keys = server.cli(&["keys", &format!("sluice:{{k}}:{fresh_name}:*")]);
        assert_eq!(
            fresh_keys, "",
            "{algorithm}: the admitting check was written"
        );
        assert_eq!(snapshot(&server, &key), before, "{algorithm}");
        assert_eq!(writes(&server), writes_before, "{algorithm}");
        assert_eq!(store.peek(&fresh.with_cost(0)).await.unwrap().remaining, 5);
    }
}
