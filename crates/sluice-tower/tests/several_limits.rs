//! A policy of a per-second and a per-hour limit behind one layer, over HTTP
//! on `127.0.0.1:0`, on memory, a real Redis and a real three-master Redis
//! Cluster, every store on a fake clock: a request the per-second limit
//! denies spends nothing on the hour, and every answer carries the headers of
//! the limit that decided it (issue 9).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use sluice::{
    Algorithm, Check, Decision, FakeClock, Limit, Limiter, MemoryStore, Policy, Quota, RedisStore,
    Store,
};
use sluice_testkit::{RedisCluster, RedisServer};
use sluice_tower::{KeyBy, RateLimitLayer};

use common::{Http, Reply, START_US, counted_app, serve};

/// The key every request of the test has: the client's address.
const CLIENT: &str = "127.0.0.1";

/// 2 per second, as a token bucket: one token back every 500 ms.
fn per_second() -> Quota {
    Quota::new(Algorithm::TokenBucket, 2, Duration::from_secs(1), None).unwrap()
}

/// 3 per hour, as a fixed window. Windows are aligned to the Unix epoch:
/// [`START_US`] is 800 s into one, so it ends 2800 s after the start.
fn per_hour() -> Quota {
    Quota::new(Algorithm::FixedWindow, 3, Duration::from_secs(3600), None).unwrap()
}

/// `api`: both limits, all or nothing.
fn two_limits() -> Policy {
    Policy::with_limits("api", [Limit::new(per_second()), Limit::new(per_hour())]).unwrap()
}

/// The per-hour limit's standing for [`CLIENT`], read from the store
/// without charging anything (its state is kept as `api#1`).
async fn hour<S: Store>(limiter: &Limiter<S>) -> Decision {
    let policy = limiter.policy("api").unwrap();
    let limit = &policy.limits()[1];
    assert_eq!(limit.state_name(), "api#1");
    let quota = limit.quota_for(CLIENT);
    let check = Check::new(limit.state_name(), CLIENT, quota, 0);
    limiter.store().peek(&check).await.unwrap()
}

/// Asserts that `reply` is an admission described by the limit `policy`
/// (`"api";q=..;w=..`) with `remaining` left.
fn assert_admitted(reply: &Reply, policy: &str, remaining: u64) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    assert_eq!(reply.body, "ok");
    assert_eq!(reply.header("ratelimit-policy"), policy, "{reply:#?}");
    assert_eq!(
        reply.header("ratelimit-remaining"),
        remaining.to_string(),
        "{reply:#?}"
    );
    assert!(reply.headers.get("retry-after").is_none(), "{reply:#?}");
}

/// The scenario, on whatever store `limiter` has; `clock` is that store's.
async fn a_per_second_denial_spends_nothing_on_the_hour<S: Store>(
    limiter: Limiter<S>,
    clock: &FakeClock,
) {
    let layer = RateLimitLayer::new(limiter.clone(), "api", KeyBy::peer_ip()).unwrap();
    let (app, calls) = counted_app(layer);
    let addr: SocketAddr = serve(app).await;
    let http = Http::new();
    let second = r#""api";q=2;w=1"#;
    let hour_policy = r#""api";q=3;w=3600"#;

    // Two admissions: each limit is charged once per request, and the
    // second's limit, with fewer left, is the one the headers describe.
    assert_admitted(&http.get(addr, "/", &[]).await, second, 1);
    assert_admitted(&http.get(addr, "/", &[]).await, second, 0);
    assert_eq!(hour(&limiter).await.remaining, 1, "3 per hour, 2 taken");

    // Three denials by the per-second limit, with its headers.
    for _ in 0..3 {
        let denied = http.get(addr, "/", &[]).await;
        assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS, "{denied:#?}");
        assert_eq!(
            denied.body,
            r#"{"error":"rate limit exceeded","policy":"api","retry_after_ms":500}"#
        );
        assert_eq!(denied.header("ratelimit-policy"), second);
        assert_eq!(denied.header("ratelimit"), r#""api";r=0;t=1"#);
        assert_eq!(denied.header("ratelimit-limit"), "2");
        assert_eq!(denied.header("retry-after"), "1");
    }
    assert_eq!(
        hour(&limiter).await.remaining,
        1,
        "the per-second denials took nothing from the hour"
    );
    assert_eq!(calls.count(), 2, "a denied request never runs");

    // A second later the per-second bucket is full again. The hour still
    // has its one unit left, so the next request is admitted, and with
    // nothing left in the hour, its headers are now the hour's.
    clock.advance(Duration::from_secs(1));
    let admitted = http.get(addr, "/", &[]).await;
    assert_admitted(&admitted, hour_policy, 0);
    assert_eq!(admitted.header("ratelimit-limit"), "3");
    assert_eq!(admitted.header("ratelimit"), r#""api";r=0;t=2799"#);
    assert_eq!(calls.count(), 3);

    // The per-second limit would admit the next one; the hour denies it,
    // and the 429 carries the hour's headers.
    let denied = http.get(addr, "/", &[]).await;
    assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS, "{denied:#?}");
    assert_eq!(denied.header("ratelimit-policy"), hour_policy);
    assert_eq!(denied.header("ratelimit"), r#""api";r=0;t=2799"#);
    assert_eq!(denied.header("retry-after"), "2799");
    assert_eq!(
        denied.body,
        r#"{"error":"rate limit exceeded","policy":"api","retry_after_ms":2799000}"#
    );
    assert_eq!(calls.count(), 3);
}

#[tokio::test]
async fn on_memory() {
    let clock = FakeClock::new(START_US);
    let store = MemoryStore::with_clock(clock.clone());
    a_per_second_denial_spends_nothing_on_the_hour(Limiter::new(store, [two_limits()]), &clock)
        .await;
}

#[tokio::test]
async fn on_redis() {
    let redis = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&redis.url())
        .await
        .unwrap_or_else(|e| panic!("{e}; Redis log:\n{}", redis.log()))
        .with_clock(clock.clone());
    a_per_second_denial_spends_nothing_on_the_hour(Limiter::new(store, [two_limits()]), &clock)
        .await;
    // One key per limit: the client's second and hour.
    assert_eq!(redis.cli(&["dbsize"]), "2");
}

#[tokio::test]
async fn on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&cluster.url())
        .await
        .unwrap_or_else(|e| panic!("{e}; cluster logs:\n{}", cluster.logs()))
        .with_clock(clock.clone());
    a_per_second_denial_spends_nothing_on_the_hour(Limiter::new(store, [two_limits()]), &clock)
        .await;
}
