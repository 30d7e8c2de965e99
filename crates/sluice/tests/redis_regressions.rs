//! Regression tests named after the defects of the article's Lua script,
//! which this store must not have, and after the failures it must survive
//! (a Redis restart, `SCRIPT FLUSH`). All against a real redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use sluice::{Algorithm, Check, FakeClock, Quota, RedisOptions, RedisStore, Store, StoreError};
use sluice_testkit::{RedisCluster, RedisServer};

const START_US: u64 = 1_764_000_000_000_000;

fn check<'a>(policy: &'a str, key: &'a str, quota: &'a Quota) -> Check<'a> {
    Check::new(policy, key, quota, 1)
}

async fn store(url: &str, clock: &FakeClock) -> RedisStore {
    RedisStore::connect(url)
        .await
        .unwrap()
        .with_clock(clock.clone())
}

/// The article's script resets the refill clock on every request, so a
/// client asking slightly faster than the refill rate is starved forever.
/// Here a client asking every 0.6 T of a 1-token-per-T bucket gets about 60%
/// through (the fraction a burst of 1 would drop is kept by a burst of 2).
#[tokio::test]
async fn polling_faster_than_the_refill_is_never_starved() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server.url(), &clock).await;
    for algorithm in [
        Algorithm::TokenBucket,
        Algorithm::Gcra,
        Algorithm::LeakyBucket,
    ] {
        let quota = Quota::new(algorithm, 1, Duration::from_secs(1), Some(2)).unwrap();
        let c = check("starve", "client", &quota);
        let mut admitted = 0;
        let mut longest_drought = 0;
        let mut drought = 0;
        for _ in 0..1000 {
            if store.decide_one(&c).await.unwrap().allowed {
                admitted += 1;
                drought = 0;
            } else {
                drought += 1;
                longest_drought = longest_drought.max(drought);
            }
            clock.advance(Duration::from_millis(600));
        }
        // 1000 requests over 600 s at 1 per second: 600 admitted, plus the
        // second token the bucket started with.
        assert!(
            (600..=602).contains(&admitted),
            "{algorithm}: {admitted} admitted"
        );
        assert_eq!(
            longest_drought, 1,
            "{algorithm}: a denial is always followed by an admission"
        );
    }
}

/// The article works in whole seconds: sub-second periods and fractional
/// refills are lost. Here 10 per 100 ms refills one token every 10 ms, and
/// half a token waits for its other half instead of vanishing.
#[tokio::test]
async fn sub_second_periods_and_fractional_refills_count() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server.url(), &clock).await;
    let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_millis(100), None).unwrap();
    let c = check("fast", "client", &quota);
    for _ in 0..10 {
        assert!(store.decide_one(&c).await.unwrap().allowed);
    }
    let empty = store.decide_one(&c).await.unwrap();
    assert!(!empty.allowed);
    assert_eq!(empty.retry_after, Some(Duration::from_millis(10)));
    clock.advance(Duration::from_millis(5));
    assert!(
        !store.decide_one(&c).await.unwrap().allowed,
        "half a token is not a token"
    );
    clock.advance(Duration::from_millis(5));
    let refilled = store.decide_one(&c).await.unwrap();
    assert!(refilled.allowed, "the two halves make one token");
    assert_eq!(refilled.remaining, 0);
}

/// The article keeps two keys per bucket, which Redis Cluster refuses
/// (CROSSSLOT) when they hash to different slots. Here every limit is one
/// key, and all the limits of one client share a slot.
#[tokio::test]
async fn every_limit_is_one_key_and_one_client_is_one_slot() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server.url(), &clock).await;
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(algorithm, 5, Duration::from_secs(60), None).unwrap();
        for _ in 0..3 {
            store
                .decide_one(&check(algorithm.name(), "client{1}:x", &quota))
                .await
                .unwrap();
        }
    }
    assert_eq!(server.cli(&["dbsize"]), "6", "one key per limit");
    let keys = server.cli(&["keys", "*"]);
    let slots: std::collections::HashSet<String> = keys
        .lines()
        .map(|k| server.cli(&["cluster", "keyslot", k]))
        .collect();
    assert_eq!(
        slots.len(),
        1,
        "the limits of one client are in one slot: {keys}"
    );

    // And on a real cluster, one client's limits are decided in one call.
    let cluster = RedisCluster::start();
    let store = RedisStore::connect(&cluster.url()).await.unwrap();
    let quotas: Vec<Quota> = Algorithm::ALL
        .iter()
        .map(|&a| Quota::new(a, 5, Duration::from_secs(60), None).unwrap())
        .collect();
    let checks: Vec<Check<'_>> = Algorithm::ALL
        .iter()
        .zip(&quotas)
        .map(|(a, q)| check(a.name(), "client{1}:x", q))
        .collect();
    let decisions = store.decide(&checks).await.unwrap();
    assert!(
        decisions.iter().all(|d| d.allowed && d.remaining == 4),
        "{decisions:?}"
    );
}

/// The article takes a `rate_limit` argument it never uses. Here the refill
/// rate follows `limit / period` with the capacity set apart by `burst`.
#[tokio::test]
async fn the_limit_sets_the_rate_and_the_burst_the_capacity() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server.url(), &clock).await;
    let slow = Quota::new(Algorithm::TokenBucket, 1, Duration::from_secs(1), Some(5)).unwrap();
    let fast = Quota::new(Algorithm::TokenBucket, 5, Duration::from_secs(1), Some(5)).unwrap();
    // One policy each: under one policy, a changed quota carries the key over.
    let name = |quota: &Quota| {
        if *quota == slow {
            "rate-slow"
        } else {
            "rate-fast"
        }
    };
    for quota in [&slow, &fast] {
        for _ in 0..5 {
            assert!(
                store
                    .decide_one(&check(name(quota), "k", quota))
                    .await
                    .unwrap()
                    .allowed
            );
        }
    }
    clock.advance(Duration::from_secs(1));
    let slow_left = store
        .peek(&check("rate-slow", "k", &slow).with_cost(0))
        .await
        .unwrap()
        .remaining;
    let fast_left = store
        .peek(&check("rate-fast", "k", &fast).with_cost(0))
        .await
        .unwrap()
        .remaining;
    assert_eq!((slow_left, fast_left), (1, 5));
}

/// The article writes the state on denied requests too, keeping it alive.
/// Here a denial writes nothing: the value stays and the expiry runs on.
#[tokio::test]
async fn a_denial_writes_nothing() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap(); // Redis TIME
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(algorithm, 1, Duration::from_secs(30), None).unwrap();
        let policy = format!("deny-{algorithm}");
        let c = check(&policy, "k", &quota);
        assert!(store.decide_one(&c).await.unwrap().allowed);
        let key = common::redis_key(&c);
        let dump = |s: &RedisServer| {
            let kind = s.cli(&["type", &key]);
            let value = if kind == "zset" {
                s.cli(&["zrange", &key, "0", "-1"])
            } else {
                s.cli(&["get", &key])
            };
            let ttl: i64 = s.cli(&["pttl", &key]).parse().unwrap();
            (value, ttl)
        };
        let (before, ttl_before) = dump(&server);
        for _ in 0..20 {
            assert!(!store.decide_one(&c).await.unwrap().allowed, "{algorithm}");
        }
        let (after, ttl_after) = dump(&server);
        assert_eq!(before, after, "{algorithm}: a denial changed the state");
        assert!(
            ttl_after <= ttl_before && ttl_after > 0,
            "{algorithm}: {ttl_before} -> {ttl_after}"
        );
    }
}

/// A Redis restart loses the loaded script and the connection; `SCRIPT
/// FLUSH` loses the script. Neither makes the store fail once Redis is back.
#[tokio::test]
async fn the_store_recovers_from_a_restart_and_a_script_or_function_flush() {
    let mut server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server.url(), &clock).await;
    let quota = Quota::new(Algorithm::Gcra, 100, Duration::from_secs(60), None).unwrap();
    let c = check("restart", "k", &quota);
    assert!(store.decide_one(&c).await.unwrap().allowed);

    server.cli(&["script", "flush"]);
    assert_eq!(
        store.decide_one(&c).await.unwrap().remaining,
        98,
        "after SCRIPT FLUSH"
    );
    server.cli(&["function", "flush"]);
    assert_eq!(
        store.decide_one(&c).await.unwrap().remaining,
        97,
        "after FUNCTION FLUSH"
    );

    server.kill();
    let down = store.decide_one(&c).await.unwrap_err();
    assert!(down.is_transient(), "{down:?}");
    assert!(matches!(
        down,
        StoreError::Unavailable(_) | StoreError::Timeout(_)
    ));

    server.restart();
    // The restarted server is empty: the key starts afresh.
    let decision = store.decide_one(&c).await;
    assert_eq!(decision.unwrap().remaining, 99, "after a restart");
    assert!(store.decide_one(&c).await.unwrap().allowed);
}

/// A Redis that stops answering turns into a timeout, not a hang.
#[tokio::test]
async fn a_silent_redis_times_out() {
    let server = RedisServer::start();
    let options = RedisOptions::default().with_timeout(Duration::from_millis(200));
    let store = RedisStore::connect_with(&server.url(), options)
        .await
        .unwrap();
    let quota = Quota::new(Algorithm::TokenBucket, 5, Duration::from_secs(1), None).unwrap();
    let c = check("slow", "k", &quota);
    assert!(store.decide_one(&c).await.unwrap().allowed);
    // Redis holds every client's commands for 2 s.
    server.cli(&["client", "pause", "2000", "all"]);
    let error = store.decide_one(&c).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Timeout(t) if t == Duration::from_millis(200)),
        "{error:?}"
    );
    assert!(error.is_transient());
    server.cli(&["client", "unpause"]);
}

/// Keys of any UTF-8, braces, colons and newlines included, up to 1024
/// bytes, each get their own limit.
#[tokio::test]
async fn any_key_gets_its_own_limit() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = store(&server.url(), &clock).await;
    let quota = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(60), None).unwrap();
    let long = "é}".repeat(341); // 1023 bytes
    let keys = [
        "{",
        "}",
        "a}{b",
        "x:y",
        "line\nbreak",
        "%7D",
        "%",
        "ключ",
        long.as_str(),
    ];
    for key in keys {
        assert!(
            store
                .decide_one(&check("any", key, &quota))
                .await
                .unwrap()
                .allowed,
            "{key:?}"
        );
    }
    for key in keys {
        assert!(
            !store
                .decide_one(&check("any", key, &quota))
                .await
                .unwrap()
                .allowed,
            "{key:?}"
        );
    }
    assert_eq!(server.cli(&["dbsize"]), keys.len().to_string());
}

/// A password and a database number in the URL are used.
#[tokio::test]
async fn the_url_carries_the_password_and_the_database() {
    let server = RedisServer::start();
    server.cli(&["config", "set", "requirepass", "s3cret"]);
    let port = server.port();
    let url = format!("redis://:s3cret@127.0.0.1:{port}/2");
    let store = RedisStore::connect(&url).await.unwrap();
    let quota = Quota::new(Algorithm::Gcra, 5, Duration::from_secs(1), None).unwrap();
    assert!(
        store
            .decide_one(&check("auth", "k", &quota))
            .await
            .unwrap()
            .allowed
    );
    let dbsize = |db: &str| server.cli(&["--no-auth-warning", "-a", "s3cret", "-n", db, "dbsize"]);
    assert_eq!((dbsize("0"), dbsize("2")), ("0".to_owned(), "1".to_owned()));

    let wrong = format!("redis://:wrong@127.0.0.1:{port}/2");
    assert!(
        RedisStore::connect(&wrong).await.is_err(),
        "a wrong password is refused"
    );
}

/// Decisions waiting at the same moment go to Redis in one call: on a
/// single-threaded runtime every one of 100 concurrent checks is queued
/// before the driver runs, so they share one call (and one `TIME`, one read
/// and one write per key), and each is still decided exactly.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_decisions_share_one_call() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let quota = Quota::new(Algorithm::FixedWindow, 60, Duration::from_secs(3600), None).unwrap();
    let keys: Vec<String> = (0..100).map(|i| format!("client-{}", i % 2)).collect();
    // Load the function first, so that only the batch is counted below.
    store
        .decide_one(&check("warm", "up", &quota))
        .await
        .unwrap();
    server.cli(&["CONFIG", "RESETSTAT"]);

    let checks: Vec<Check<'_>> = keys.iter().map(|k| check("batch", k, &quota)).collect();
    let decisions = common::join_all(checks.iter().map(|c| store.decide_one(c))).await;
    let admitted = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(admitted, 100, "two keys of 50 each, under a limit of 60");
    let stats = server.cli(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_fcall:calls=1,"), "{stats}");
    assert!(stats.contains("cmdstat_time:calls=1,"), "{stats}");
    // Each key is read once and written once, however many decisions it had.
    assert!(stats.contains("cmdstat_get:calls=2,"), "{stats}");
    assert!(stats.contains("cmdstat_set:calls=2,"), "{stats}");
    // In queue order: the last check of each key saw the 49 before it.
    let last = decisions[98].as_ref().unwrap();
    assert_eq!(last.remaining, 10);

    let over: Vec<Check<'_>> = (0..30)
        .map(|_| check("batch", "client-0", &quota))
        .collect();
    let decisions = common::join_all(over.iter().map(|c| store.decide_one(c))).await;
    let admitted = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(admitted, 10, "exactly what was left");
}

/// A state key holding a string Sluice did not write (text, or 16 bytes
/// that unpack to NaN or a negative number) reads as untouched, for every
/// algorithm (the sliding log, which keeps a sorted set, included), rather
/// than failing or admitting beyond the limit.
#[tokio::test]
async fn a_foreign_value_reads_as_untouched() {
    let server = RedisServer::start();
    let clock = FakeClock::new(1_700_000_000_000_000);
    let store = store(&server.url(), &clock).await;
    let nan = "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff";
    let negative =
        "\\x00\\x00\\x00\\x00\\x00\\x00\\xf0\\xbf\\x00\\x00\\x00\\x00\\x00\\x00\\xf0\\xbf";
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(algorithm, 3, Duration::from_secs(60), None).unwrap();
        for (i, junk) in ["hello", nan, negative, "1:2"].iter().enumerate() {
            let policy = format!("foreign-{i}");
            let c = check(&policy, "k", &quota);
            let key = common::redis_key(&c);
            // redis-cli reads "\xff" escapes inside double quotes.
            let command = format!("SET \"{}\" \"{junk}\"", key.replace('"', "\\\""));
            let out = std::process::Command::new("redis-cli")
                .args(["-p", &server.port().to_string()])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child.stdin.take().unwrap().write_all(command.as_bytes())?;
                    child.wait_with_output()
                })
                .unwrap();
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("OK"),
                "{command}"
            );
            // The sliding log keeps a sorted set: a string there is taken
            // for another algorithm's state, which nothing carries from: read as
            // untouched, and replaced.
            let d = store.decide_one(&c).await.unwrap();
            assert!(d.allowed, "{algorithm} {junk}");
            assert_eq!(d.remaining, 2, "{algorithm} {junk}: read as untouched");
        }
    }
}

/// Polls `done` every few milliseconds until it holds; panics after
/// `deadline` (generous: a slow machine only waits longer).
async fn wait_until(deadline: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < deadline,
            "{what}: not after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The remaining time to live of `key` in milliseconds: -2 when it is
/// gone, -1 when it never expires.
fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.cli(&["pttl", key]).parse().unwrap()
}

/// On Redis's own clock (no slack), every key Sluice writes expires when
/// it is back to its untouched state: its time to live, read right after
/// the decision, covers the decision's `reset_after` (less only the time
/// the round trips took, measured) and is not longer. For every
/// algorithm, short and day-long periods, a call of one check and one of
/// several (which writes its keys at the end).
#[tokio::test]
async fn every_key_lives_exactly_until_its_reset_on_redis_time() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap(); // Redis TIME
    for algorithm in Algorithm::ALL {
        let quotas = [
            Quota::new(algorithm, 3, Duration::from_secs(2), None).unwrap(),
            Quota::new(algorithm, 10, Duration::from_secs(3600), None).unwrap(),
            Quota::new(algorithm, 5, Duration::from_secs(86_400), None).unwrap(),
        ];
        let policies = ["two-seconds", "an-hour", "a-day"];
        for cost in [1, 3] {
            // Each call on a key of its own, untouched before it.
            let keys = [0, 1, 2].map(|n| format!("ttl-{cost}-{n}"));
            let on = |n: usize, range: std::ops::Range<usize>| -> Vec<Check<'_>> {
                range
                    .map(|i| Check::new(policies[i], &keys[n], &quotas[i], cost))
                    .collect()
            };
            for call in [on(0, 0..1), on(1, 1..2), on(2, 0..3)] {
                let call = &call[..];
                let started = Instant::now();
                let decisions = store.decide(call).await.unwrap();
                let ttls: Vec<i64> = call
                    .iter()
                    .map(|c| pttl(&server, &common::redis_key(c)))
                    .collect();
                let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap() + 1;
                for ((c, d), ttl) in call.iter().zip(&decisions).zip(ttls) {
                    assert!(d.allowed, "{algorithm} {}: {d:?}", c.policy);
                    let reset = i64::try_from(d.reset_after.as_micros().div_ceil(1000)).unwrap();
                    let what = format!(
                        "{algorithm} {} cost {cost}: ttl {ttl} ms, reset {reset} ms, {elapsed} ms elapsed",
                        c.policy
                    );
                    assert!(ttl <= reset + 1, "longer than the reset: {what}");
                    if elapsed < reset {
                        assert!(ttl >= reset - elapsed, "shorter than the reset: {what}");
                    } else {
                        assert!(ttl >= 0 || ttl == -2, "{what}");
                    }
                }
            }
            server.cli(&["flushall"]);
        }
    }
}

/// On Redis's own clock, a key charged under a short period starts afresh
/// once its reset has passed (Redis expired it, and no sooner), while the
/// same client's key under an hour-long period is still charged. Every
/// bound holds however slow the machine: a key seen gone, or a check
/// admitted again, after `w` of wall time since the charge began means
/// Redis's clock moved at most `w`.
#[tokio::test]
async fn a_short_reset_passes_on_redis_time_and_an_hour_long_one_does_not() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap(); // Redis TIME
    for algorithm in Algorithm::ALL {
        let short = Quota::new(algorithm, 1, Duration::from_millis(300), None).unwrap();
        let long = Quota::new(algorithm, 1, Duration::from_secs(3600), None).unwrap();
        let key = format!("expiry-{algorithm}");
        let on_short = check("short", &key, &short);
        let on_long = check("long", &key, &long);

        let started = Instant::now();
        let charged = store.decide(&[on_short, on_long]).await.unwrap();
        assert!(
            charged.iter().all(|d| d.allowed),
            "{algorithm}: {charged:?}"
        );
        let (short_reset, long_reset) = (charged[0].reset_after, charged[1].reset_after);

        let short_key = common::redis_key(&on_short);
        wait_until(
            Duration::from_secs(10) + short_reset,
            "the short key expires",
            || server.cli(&["exists", &short_key]) == "0",
        )
        .await;
        let gone_after = started.elapsed();
        assert!(
            gone_after >= short_reset,
            "{algorithm}: the short key was gone {gone_after:?} after the charge, before its reset of {short_reset:?}"
        );
        let again = store.decide_one(&on_short).await.unwrap();
        assert!(again.allowed, "{algorithm}: untouched again: {again:?}");

        let still = store.decide_one(&on_long).await.unwrap();
        let waited = started.elapsed();
        assert!(
            !still.allowed || waited >= long_reset,
            "{algorithm}: the hour-long limit admitted again {waited:?} after its charge, before its reset of {long_reset:?}"
        );
        let long_key = common::redis_key(&on_long);
        assert!(
            pttl(&server, &long_key) > 0 || waited >= long_reset,
            "{algorithm}: the hour-long key expired after {waited:?}"
        );
    }
}

/// Redis `TIME` is read as microseconds since the Unix epoch: a day-long
/// fixed window on Redis's own clock (aligned to the epoch, so to UTC
/// midnight) resets when the machine's clock says the day ends. Reading
/// `TIME` in the wrong unit would put the window's end anywhere in the day.
#[tokio::test]
async fn redis_time_is_the_unix_time_in_microseconds() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap(); // Redis TIME
    let day = Duration::from_secs(86_400);
    let quota = Quota::new(Algorithm::FixedWindow, 5, day, None).unwrap();
    let since_epoch = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    };
    let before = since_epoch();
    let decision = store
        .decide_one(&check("daily", "k", &quota))
        .await
        .unwrap();
    let after = since_epoch();
    let until_midnight =
        |now: Duration| day - Duration::from_micros((now.as_micros() % day.as_micros()) as u64);
    // Redis and the test read the same machine's clock: the reset lies
    // between the midnights seen before and after the call, give or take
    // a second of rounding (and a day boundary crossed in between).
    let (latest, earliest) = (until_midnight(before), until_midnight(after));
    let reset = decision.reset_after;
    assert!(
        (reset + Duration::from_secs(1) >= earliest && reset <= latest + Duration::from_secs(1))
            || reset + Duration::from_secs(2) >= day,
        "reset_after {reset:?}, expected between {earliest:?} and {latest:?}"
    );
}
