//! The layer in a real axum app, driven over HTTP on `127.0.0.1:0`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::num::NonZeroU64;

use axum::Router;
use axum::routing::get;
use http::{Response, StatusCode};
use http_body_util::Full;
use ipnet::IpNet;
use sluice::{Limiter, RedisStore};
use sluice_testkit::RedisServer;
use sluice_tower::{KeyBy, ProxyHeader, RateLimitLayer, Unkeyed};

use common::{Http, counted_app as app, limiter, policy, serve};

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

fn api_key() -> KeyBy {
    KeyBy::header("x-api-key").unwrap()
}

#[tokio::test]
async fn three_admitted_then_429_with_exact_headers_and_json_body() {
    let (app, calls) = app(RateLimitLayer::new(limiter(3), "api", KeyBy::peer_ip()).unwrap());
    let addr = serve(app).await;
    let http = Http::new();
    // The bucket refills one token every 20 s, so it is full again 20 s
    // after each token taken.
    for (remaining, reset) in [(2, 20), (1, 40), (0, 60)] {
        let reply = http.get(addr, "/", &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "ok");
        assert_eq!(reply.header("ratelimit-limit"), "3");
        assert_eq!(reply.header("ratelimit-remaining"), remaining.to_string());
        assert_eq!(reply.header("ratelimit-reset"), reset.to_string());
        assert_eq!(reply.header("ratelimit-policy"), r#""api";q=3;w=60"#);
        assert_eq!(
            reply.header("ratelimit"),
            format!(r#""api";r={remaining};t={reset}"#)
        );
        assert!(reply.headers.get("retry-after").is_none());
    }
    let denied = http.get(addr, "/", &[]).await;
    assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(denied.header("content-type"), "application/json");
    assert_eq!(
        denied.body,
        r#"{"error":"rate limit exceeded","policy":"api","retry_after_ms":20000}"#
    );
    assert_eq!(denied.header("retry-after"), "20");
    assert_eq!(denied.header("ratelimit-limit"), "3");
    assert_eq!(denied.header("ratelimit-remaining"), "0");
    assert_eq!(denied.header("ratelimit-reset"), "60");
    assert_eq!(denied.header("ratelimit-policy"), r#""api";q=3;w=60"#);
    assert_eq!(denied.header("ratelimit"), r#""api";r=0;t=60"#);
    assert_eq!(calls.count(), 3, "the denied request never ran");
}

#[tokio::test]
async fn an_admission_keeps_the_inner_status_headers_and_body() {
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                (
                    StatusCode::CREATED,
                    [("x-inner", "kept"), ("content-type", "text/x-inner")],
                    "inner body",
                )
            }),
        )
        .layer(RateLimitLayer::new(limiter(5), "api", KeyBy::peer_ip()).unwrap());
    let reply = Http::new().get(serve(app).await, "/", &[]).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("x-inner"), "kept");
    assert_eq!(reply.header("content-type"), "text/x-inner");
    assert_eq!(reply.body, "inner body");
    assert_eq!(reply.header("ratelimit-remaining"), "4");
}

#[tokio::test]
async fn each_api_key_in_a_header_gets_its_own_limit() {
    let (app, _) = app(RateLimitLayer::new(limiter(1), "api", api_key()).unwrap());
    let (addr, http) = (serve(app).await, Http::new());
    let with_key = |key: &'static str| [("x-api-key", key)];
    assert_eq!(http.get(addr, "/", &with_key("a")).await.status, 200);
    assert_eq!(http.get(addr, "/", &with_key("a")).await.status, 429);
    assert_eq!(http.get(addr, "/", &with_key("b")).await.status, 200);
    let missing = http.get(addr, "/", &[]).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body,
        r#"{"error":"no rate-limit key found in the request"}"#
    );
    let long = "k".repeat(1025);
    let too_long = http.get(addr, "/", &[("x-api-key", &long)]).await;
    assert_eq!(too_long.status, 400);
    assert_eq!(
        too_long.body,
        r#"{"error":"rate-limit key longer than 1024 bytes"}"#
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_gets_its_own_limit() {
    // The test client's address, 127.0.0.1, is the trusted proxy.
    let key_by = KeyBy::forwarded(ProxyHeader::XForwardedFor, nets(&["127.0.0.0/8"]));
    let (app, _) = app(RateLimitLayer::new(limiter(1), "api", key_by).unwrap());
    let (addr, http) = (serve(app).await, Http::new());
    let from = |client: &'static str| [("x-forwarded-for", client)];
    assert_eq!(http.get(addr, "/", &from("203.0.113.7")).await.status, 200);
    assert_eq!(http.get(addr, "/", &from("203.0.113.7")).await.status, 429);
    assert_eq!(http.get(addr, "/", &from("203.0.113.8")).await.status, 200);
    // A client's own claim, left of what the proxy appended, is not read.
    let spoofed = [("x-forwarded-for", "198.51.100.1, 203.0.113.8")];
    assert_eq!(http.get(addr, "/", &spoofed).await.status, 429);
    // Issue 12: the proxy (nginx) appends to X-Forwarded-For and passes
    // the client's own `Forwarded` through: that one is never read, or
    // each request would pick a fresh key.
    for n in 1..=3 {
        let claim = format!("for=\"[2001:db8::{n}]:4711\"");
        let both = [
            ("forwarded", claim.as_str()),
            ("x-forwarded-for", "203.0.113.8"),
        ];
        assert_eq!(http.get(addr, "/", &both).await.status, 429, "{claim}");
    }
}

#[tokio::test]
async fn from_an_untrusted_peer_the_forwarded_headers_are_ignored() {
    let key_by = KeyBy::forwarded(ProxyHeader::XForwardedFor, nets(&["10.0.0.0/8"]));
    let (app, _) = app(RateLimitLayer::new(limiter(1), "api", key_by).unwrap());
    let (addr, http) = (serve(app).await, Http::new());
    let from = |client: &'static str| [("x-forwarded-for", client)];
    assert_eq!(http.get(addr, "/", &from("203.0.113.7")).await.status, 200);
    // Another claimed client, but the same peer, 127.0.0.1: the same key.
    let denied = http.get(addr, "/", &from("203.0.113.8")).await;
    assert_eq!(denied.status, 429);
    assert_eq!(http.get(addr, "/", &[]).await.status, 429);
}

#[tokio::test]
async fn unkeyed_requests_are_rejected_by_default_or_follow_on_unkeyed() {
    let http = Http::new();
    let (reject, calls) = app(RateLimitLayer::new(limiter(1), "api", api_key()).unwrap());
    let reply = http.get(serve(reject).await, "/", &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(
        reply.body,
        r#"{"error":"no rate-limit key found in the request"}"#
    );
    assert_eq!(calls.count(), 0);

    let allow = RateLimitLayer::new(limiter(1), "api", api_key())
        .unwrap()
        .on_unkeyed(Unkeyed::Allow);
    let addr = serve(app(allow).0).await;
    for _ in 0..3 {
        let reply = http.get(addr, "/", &[]).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
        assert!(reply.headers.get("ratelimit-remaining").is_none());
    }

    let shared = RateLimitLayer::new(limiter(1), "api", api_key())
        .unwrap()
        .on_unkeyed(Unkeyed::SharedKey("anonymous".into()));
    let addr = serve(app(shared).0).await;
    assert_eq!(http.get(addr, "/", &[]).await.status, 200);
    assert_eq!(http.get(addr, "/", &[]).await.status, 429);
    assert_eq!(http.get(addr, "/", &[("x-api-key", "a")]).await.status, 200);
}

#[test]
fn a_policy_missing_from_the_limiter_is_refused_when_the_layer_is_built() {
    let error = RateLimitLayer::new(limiter(1), "nope", KeyBy::peer_ip()).unwrap_err();
    assert!(matches!(error, sluice::Error::UnknownPolicy(name) if name == "nope"));
}

#[tokio::test]
async fn a_store_error_is_503_and_leaks_nothing() {
    let mut redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let limiter = Limiter::new(store, [policy("api", 5)]);
    let (app, calls) = app(RateLimitLayer::new(limiter, "api", KeyBy::peer_ip()).unwrap());
    let (addr, http) = (serve(app).await, Http::new());
    let reply = http.get(addr, "/", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "Redis log:\n{}", redis.log());
    assert_eq!(reply.header("ratelimit-remaining"), "4");

    redis.kill();
    let reply = http.get(addr, "/", &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.body, r#"{"error":"rate limiter unavailable"}"#);
    assert_eq!(calls.count(), 1, "the inner service never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_of_the_layer_enforce_one_limit_under_concurrency() {
    // axum clones the service for every request: the clones share one limit.
    let (app, calls) = app(RateLimitLayer::new(limiter(10), "api", KeyBy::peer_ip()).unwrap());
    let (addr, http) = (serve(app).await, Http::new());
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let http = http.clone();
        requests.spawn(async move { http.get(addr, "/", &[]).await.status });
    }
    let statuses = requests.join_all().await;
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let denied = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((admitted, denied), (10, 40), "{statuses:?}");
    assert_eq!(calls.count(), 10);
}

#[tokio::test]
async fn on_denied_replaces_the_body_and_keeps_the_headers() {
    let layer = RateLimitLayer::new(limiter(2), "api", KeyBy::peer_ip())
        .unwrap()
        .cost(NonZeroU64::new(2).unwrap())
        .on_denied(|decision| {
            let mut response = Response::new(Full::from(format!("{} left\n", decision.remaining)));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
        });
    let (addr, http) = (serve(app(layer).0).await, Http::new());
    let admitted = http.get(addr, "/", &[]).await;
    assert_eq!(admitted.header("ratelimit-remaining"), "0", "cost 2 of 2");
    let denied = http.get(addr, "/", &[]).await;
    assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(denied.body, "0 left\n");
    assert_eq!(denied.header("retry-after"), "60");
    assert_eq!(denied.header("ratelimit"), r#""api";r=0;t=60"#);
}
