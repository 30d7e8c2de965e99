//! Issue 10: the layer's headers and 429 body under a fake clock, where
//! every wait is exact: a fraction of a second rounds up, a whole second
//! does not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sluice::{Algorithm, FakeClock, Limiter, MemoryStore, Policy, Quota};
use sluice_tower::{KeyBy, RateLimitLayer};
use tower::ServiceExt;

const START_US: u64 = 1_700_000_000_000_000;

/// An app behind the layer: policy `api`, 3 per minute as a token bucket
/// (a token every 20 s), keyed by `x-api-key`, on a store whose clock the
/// test moves.
fn app() -> (Router, FakeClock) {
    let clock = FakeClock::new(START_US);
    let quota = Quota::new(Algorithm::TokenBucket, 3, Duration::from_secs(60), None).unwrap();
    let limiter = Limiter::new(
        MemoryStore::with_clock(clock.clone()),
        [Policy::new("api", quota).unwrap()],
    );
    let key_by = KeyBy::header("x-api-key").unwrap();
    let layer = RateLimitLayer::new(limiter, "api", key_by).unwrap();
    (
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(layer),
        clock,
    )
}

/// `GET /` as client `k`: the status, `Retry-After` (empty when absent),
/// `RateLimit-Reset`, `RateLimit` and the body.
async fn get_as_k(app: &Router) -> (StatusCode, String, String, String, String) {
    let request = Request::get("/")
        .header("x-api-key", "k")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, retry_after, reset, current) = (
        response.status(),
        header("retry-after"),
        header("ratelimit-reset"),
        header("ratelimit"),
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    (status, retry_after, reset, current, body)
}

#[tokio::test]
async fn issue_10_the_layer_rounds_waits_up_to_the_second_and_the_millisecond() {
    let us = Duration::from_micros;
    // (time since the 3 tokens were spent, Retry-After, retry_after_ms,
    //  RateLimit-Reset): the next token comes 20 s after the spend, the
    // bucket is full 60 s after it.
    let cases = [
        (us(500_000), "20", 19_500, "60"),
        (us(1_000_000), "19", 19_000, "59"),
        (us(999_999), "20", 19_001, "60"),
        (us(250), "20", 20_000, "60"),
        (us(1_999_500), "19", 18_001, "59"),
        (us(19_999_999), "1", 1, "41"),
    ];
    for (elapsed, retry_after, retry_ms, reset) in cases {
        let (app, clock) = app();
        for _ in 0..3 {
            assert_eq!(get_as_k(&app).await.0, StatusCode::OK);
        }
        clock.advance(elapsed);
        let at = format!("{elapsed:?} after the spend");
        let (status, h_retry, h_reset, current, body) = get_as_k(&app).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{at}");
        assert_eq!(h_retry, retry_after, "{at}: Retry-After");
        assert_eq!(h_reset, reset, "{at}: RateLimit-Reset");
        assert_eq!(current, format!(r#""api";r=0;t={reset}"#), "{at}");
        assert_eq!(
            body,
            format!(
                r#"{{"error":"rate limit exceeded","policy":"api","retry_after_ms":{retry_ms}}}"#
            ),
            "{at}"
        );
    }
}

#[tokio::test]
async fn issue_10_an_admission_s_reset_rounds_up_too() {
    let (app, clock) = app();
    // Two tokens taken 1.25 s apart: the first is back 18.75 s after the
    // second, the bucket full 38.75 s after it.
    assert_eq!(get_as_k(&app).await.2, "20");
    clock.advance(Duration::from_millis(1_250));
    let (status, retry_after, reset, current, body) = get_as_k(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry_after, "", "no Retry-After on an admission");
    assert_eq!(reset, "39");
    assert_eq!(current, r#""api";r=1;t=39"#);
    assert_eq!(body, "ok");
}
