//! The README's "As tower or axum middleware" example, verbatim below this
//! comment (`tests/readme.rs` checks that they are the same): an axum app
//! that lets each client address make 10 requests per second (bursts of 20)
//! and 1000 per hour, in memory or (`STORE=redis://…`) in Redis.
//! `cargo run --example tower_middleware`.

use std::net::SocketAddr;

use axum::http::{Response, StatusCode};
use axum::{Router, routing::get};
use sluice::{Limit, Limiter, Policy, Quota};
use sluice_tower::{KeyBy, RateLimitLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One policy of two limits, decided all or nothing: 10 per second
    // (bursts of 20) and 1000 per hour.
    let per_second = Quota::per_second(10)?.allow_burst(20)?;
    let per_hour = Quota::per_hour(1000)?;
    let policy = Policy::with_limits("api", [Limit::new(per_second), Limit::new(per_hour)])?;
    // The store a URL names, chosen at run time: `memory` (this process),
    // or `redis://host:6379` to share the limits between instances.
    let url = std::env::var("STORE").unwrap_or_else(|_| "memory".to_owned());
    let limiter = Limiter::new(sluice::store::open(&url).await?, [policy]);

    let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip())?.on_denied(|_decision| {
        // The layer adds `Retry-After` and the rate-limit headers.
        let mut response = Response::new("slow down\n");
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response
    });
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        // `route_layer`, not `layer`: a request for no route (404) spends nothing.
        .route_layer(layer);
    // LISTEN sets the address (port 0 picks a free one); default 127.0.0.1:3000.
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // The layer reads the client's address from `ConnectInfo<SocketAddr>`.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
