//! With axum's `route_layer`, a request that matches no route (a 404)
//! spends nothing; with `layer`, it spends as any other: what the docs
//! tell users to choose between.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use sluice_tower::{KeyBy, RateLimitLayer};
use tower::ServiceExt;

use common::limiter;

async fn status(app: &Router, path: &str) -> StatusCode {
    let request = Request::get(path).header("x-api-key", "k");
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    response.status()
}

/// `/` behind a layer of 2 per minute, attached by `attach`, with a
/// limiter of its own.
fn app(
    attach: fn(Router, RateLimitLayer<sluice::MemoryStore<sluice::FakeClock>>) -> Router,
) -> Router {
    let layer = RateLimitLayer::new(limiter(2), "api", KeyBy::header("x-api-key").unwrap());
    attach(
        Router::new().route("/", get(|| async { "ok" })),
        layer.unwrap(),
    )
}

#[tokio::test]
async fn with_route_layer_an_unknown_route_spends_nothing() {
    let app = app(|router, layer| router.route_layer(layer));
    for _ in 0..5 {
        assert_eq!(status(&app, "/no-such-route").await, StatusCode::NOT_FOUND);
    }
    assert_eq!(status(&app, "/").await, StatusCode::OK);
    assert_eq!(status(&app, "/").await, StatusCode::OK);
    assert_eq!(status(&app, "/").await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn with_layer_an_unknown_route_spends_the_quota() {
    let app = app(|router, layer| router.layer(layer));
    assert_eq!(status(&app, "/no-such-route").await, StatusCode::NOT_FOUND);
    assert_eq!(status(&app, "/no-such-route").await, StatusCode::NOT_FOUND);
    assert_eq!(status(&app, "/").await, StatusCode::TOO_MANY_REQUESTS);
}
