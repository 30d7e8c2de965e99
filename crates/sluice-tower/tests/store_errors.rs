//! What the layer answers when the store cannot decide (here a real
//! redis-server, killed), for each [`OnStoreError`] mode, with and without
//! the core's [`Resilient`] stack (`http.rs` tests the default 503 too).
//! `store_error_log.rs` reads what is logged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use sluice::store::Resilient;
use sluice::{Limiter, LocalShare, SystemClock};
use sluice_testkit::RedisServer;
use sluice_tower::{KeyBy, OnStoreError, RateLimitLayer};

use common::{Http, counted_app, limiter_on_a_dead_redis, serve};

/// The rate-limit headers a response must not carry when nothing was decided.
const RATE_LIMIT_HEADERS: [&str; 6] = [
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "ratelimit",
    "retry-after",
];

#[tokio::test]
async fn admit_lets_every_request_through_without_rate_limit_headers() {
    let mut redis = RedisServer::start();
    let limiter = limiter_on_a_dead_redis(&mut redis).await;
    let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip())
        .unwrap()
        .on_store_error(OnStoreError::Allow);
    let (app, calls) = counted_app(layer);
    let (addr, http) = (serve(app).await, Http::new());
    // More than the policy's 1 per minute: nothing is counted while the
    // store is down.
    for n in 1..=3 {
        let reply = http.get(addr, "/", &[]).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
        for name in RATE_LIMIT_HEADERS {
            assert!(reply.headers.get(name).is_none(), "{name} in {reply:#?}");
        }
        assert_eq!(calls.count(), n, "the inner service ran");
    }
}

#[tokio::test]
async fn respond_answers_what_the_function_builds_from_the_error() {
    let mut redis = RedisServer::start();
    let limiter = limiter_on_a_dead_redis(&mut redis).await;
    let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip())
        .unwrap()
        .on_unavailable(|error| {
            let body = json!({"degraded": true, "transient": error.is_transient()});
            let mut response = Response::new(Full::from(body.to_string()));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            response
                .headers_mut()
                .insert("x-degraded", http::HeaderValue::from_static("yes"));
            response
        });
    let (app, calls) = counted_app(layer);
    let (addr, http) = (serve(app).await, Http::new());
    let reply = http.get(addr, "/", &[]).await;
    assert_eq!(reply.status, StatusCode::IM_A_TEAPOT, "{reply:#?}");
    // A dead server is a failure that may pass.
    assert_eq!(reply.body, r#"{"degraded":true,"transient":true}"#);
    assert_eq!(reply.header("x-degraded"), "yes");
    for name in RATE_LIMIT_HEADERS {
        assert!(reply.headers.get(name).is_none(), "{name} in {reply:#?}");
    }
    assert_eq!(calls.count(), 0, "the inner service never ran");
}

/// A limiter of policy `api` (1 per minute, local share 1) on a
/// [`Resilient`] stack over a Redis that is then killed.
async fn resilient_limiter_on_a_dead_redis(
    redis: &mut RedisServer,
) -> Limiter<Resilient<sluice::RedisStore>> {
    let store = sluice::RedisStore::connect(&redis.url()).await.unwrap();
    let quota = sluice::Quota::new(
        sluice::Algorithm::TokenBucket,
        2,
        std::time::Duration::from_secs(60),
        None,
    )
    .unwrap();
    let policy = sluice::Policy::new("api", quota)
        .unwrap()
        .with_local_share(LocalShare::new(0.5).unwrap());
    let limiter = Limiter::new(Resilient::new(store, SystemClock), [policy]);
    assert!(limiter.check("api", "warm-up", 1).await.is_ok());
    redis.kill();
    limiter
}

/// Issue 11: the core's modes through the layer on a resilient stack:
/// `allow` lets everything through without headers, `local` admits this
/// process's share (half of 2: one) and then answers 429, `deny` 503.
#[tokio::test]
async fn i11_each_mode_through_the_layer_on_a_resilient_store() {
    let mut redis = RedisServer::start();
    let limiter = resilient_limiter_on_a_dead_redis(&mut redis).await;
    let want = [
        (OnStoreError::Allow, [200, 200, 200]),
        (OnStoreError::Local, [200, 429, 429]),
        (OnStoreError::Deny, [503, 503, 503]),
    ];
    for (mode, statuses) in want {
        let layer = RateLimitLayer::new(limiter.clone(), "api", KeyBy::peer_ip())
            .unwrap()
            .on_store_error(mode);
        let (app, calls) = counted_app(layer);
        let (addr, http) = (serve(app).await, Http::new());
        for (n, status) in statuses.into_iter().enumerate() {
            let reply = http.get(addr, "/", &[]).await;
            assert_eq!(
                reply.status.as_u16(),
                status,
                "{mode} request {n}: {reply:#?}"
            );
            if mode == OnStoreError::Allow {
                for name in RATE_LIMIT_HEADERS {
                    assert!(reply.headers.get(name).is_none(), "{name} in {reply:#?}");
                }
            }
            if status == 429 {
                assert_eq!(reply.header("ratelimit-limit"), "1", "the local share");
            }
        }
        let admitted = statuses.iter().filter(|&&s| s == 200).count();
        assert_eq!(calls.count(), admitted, "{mode}");
    }
    // The policy of the limiter the layers were built from is unchanged.
    assert_eq!(
        limiter.policy("api").unwrap().on_store_error(),
        OnStoreError::Deny
    );
}
