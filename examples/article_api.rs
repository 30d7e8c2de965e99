//! The example API of "Building a Robust and Scalable API Rate Limiter with
//! Redis and Lua", on axum with Sluice: `GET /api/resource` allows each client
//! IP 10 requests per 60 s (a token bucket of 10), answering 200
//! `{"message":"Resource accessed successfully!"}` or 429
//! `{"message":"Rate limit exceeded. Try again later."}`, with the rate-limit
//! headers and `Retry-After`.
//!
//! ```text
//! cargo run --example article_api
//! REDIS_URL=redis://127.0.0.1:6379 LISTEN=127.0.0.1:8080 cargo run --example article_api
//! ```
//!
//! - `LISTEN`: the address to listen on; default `127.0.0.1:3000`. Port 0
//!   picks a free port; the line printed at startup says which.
//! - `REDIS_URL`: keep the limits in Redis, shared by every instance;
//!   without it they are kept in this process's memory.

use std::net::SocketAddr;

use anyhow::Context;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Response, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sluice::store::StoreKind;
use sluice::{Limiter, Policy, Quota};
use sluice_tower::{KeyBy, RateLimitLayer};
use tokio::net::TcpListener;

/// Where the API listens unless `LISTEN` says otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("article-api: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // The article's limit: a bucket of 10 tokens, refilled at 10 per 60 s.
    let policy = Policy::new("api", Quota::per_minute(10)?)?;
    // One type for either store: no generics to pick one at run time.
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "memory".to_owned());
    let kind = StoreKind::of(&url)?;
    // The URL may hold a password: it is not printed.
    let store = sluice::store::open(&url)
        .await
        .context("cannot connect to REDIS_URL")?;
    let limiter = Limiter::new(store, [policy]);
    let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip())?.on_denied(|_| too_many());
    let app = Router::new()
        .route("/api/resource", get(resource))
        // Only the API's route is limited: a 404 spends nothing.
        .route_layer(layer);
    let store = if kind == StoreKind::Memory {
        "memory"
    } else {
        "redis"
    };
    println!("article-api listening on http://{addr}/api/resource (store: {store})");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .context("the server failed")
}

async fn resource() -> Json<serde_json::Value> {
    Json(json!({"message": "Resource accessed successfully!"}))
}

/// The article's 429, as the layer's `on_denied` hook builds it; the layer
/// adds `Retry-After` and the rate-limit headers.
fn too_many() -> Response<String> {
    let body = json!({"message": "Rate limit exceeded. Try again later."});
    let mut response = Response::new(body.to_string());
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
