//! What the layer answers when the store cannot decide (here a real
//! redis-server, killed), for each [`OnStoreError`] choice but the default,
//! 503, which `http.rs` tests. `store_error_log.rs` reads what is logged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
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
        .on_store_error(OnStoreError::Admit);
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
        .on_store_error(OnStoreError::respond(|error| {
            let body = json!({"degraded": true, "transient": error.is_transient()});
            let mut response = Response::new(Full::from(body.to_string()));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            response
                .headers_mut()
                .insert("x-degraded", http::HeaderValue::from_static("yes"));
            response
        }));
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
