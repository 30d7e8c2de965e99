//! `Reloader`: the policies of a running layer are swapped for the next
//! request, and every key keeps its state in the store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use http::{Request, StatusCode};
use sluice::OnStoreError;
use sluice_tower::{KeyBy, RateLimitLayer};
use tower::ServiceExt;

use common::{counted_app, limiter, policy};

/// `GET /` with `x-api-key: key` through `app`: the status and the
/// `ratelimit-remaining` header ("-" when absent).
async fn get(app: &axum::Router, key: &str) -> (StatusCode, String) {
    let request = Request::get("/").header("x-api-key", key);
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let remaining = response.headers().get("ratelimit-remaining");
    let remaining = remaining.map_or("-".to_owned(), |v| v.to_str().unwrap().to_owned());
    (response.status(), remaining)
}

fn layer() -> RateLimitLayer<sluice::MemoryStore<sluice::FakeClock>> {
    RateLimitLayer::new(limiter(2), "api", KeyBy::header("x-api-key").unwrap()).unwrap()
}

#[tokio::test]
async fn a_swap_takes_effect_for_the_next_request() {
    let layer = layer();
    let reloader = layer.reloader();
    let (app, calls) = counted_app(layer);
    assert_eq!(get(&app, "k").await, (StatusCode::OK, "1".into()));
    assert_eq!(get(&app, "k").await, (StatusCode::OK, "0".into()));
    assert_eq!(get(&app, "k").await.0, StatusCode::TOO_MANY_REQUESTS);
    // Raised to 10 per minute: the same router admits `k` again at once.
    reloader.replace_policies([policy("api", 10)]).unwrap();
    assert_eq!(get(&app, "k").await.0, StatusCode::OK);
    assert_eq!(calls.count(), 3);
    // Lowered to 1: a fresh key gets 1.
    reloader.replace_policies([policy("api", 1)]).unwrap();
    assert_eq!(get(&app, "fresh").await, (StatusCode::OK, "0".into()));
    assert_eq!(get(&app, "fresh").await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_unchanged_policy_keeps_its_state_across_a_swap() {
    let layer = layer();
    let reloader = layer.reloader();
    let (app, _calls) = counted_app(layer);
    assert_eq!(get(&app, "k").await, (StatusCode::OK, "1".into()));
    // The same `api`, and a new policy beside it.
    reloader
        .replace_policies([policy("api", 2), policy("search", 100)])
        .unwrap();
    assert_eq!(
        get(&app, "k").await,
        (StatusCode::OK, "0".into()),
        "1 was spent before"
    );
    assert_eq!(get(&app, "k").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert!(reloader.limiter().policy("search").is_some());
}

#[tokio::test]
async fn a_set_without_the_layers_policy_is_refused_and_changes_nothing() {
    let layer = layer();
    let reloader = layer.reloader();
    let (app, _calls) = counted_app(layer);
    let refused = reloader.replace_policies([policy("other", 100)]);
    assert!(
        matches!(refused, Err(sluice::Error::UnknownPolicy(ref name)) if name == "api"),
        "{refused:?}"
    );
    assert_eq!(get(&app, "k").await, (StatusCode::OK, "1".into()));
}

#[tokio::test]
async fn the_layers_store_error_mode_survives_a_swap() {
    let layer = layer().on_store_error(OnStoreError::Allow);
    let reloader = layer.reloader();
    reloader.replace_policies([policy("api", 5)]).unwrap();
    let limiter = reloader.limiter();
    let api = limiter.policy("api").unwrap();
    assert_eq!(api.on_store_error(), OnStoreError::Allow);
}
