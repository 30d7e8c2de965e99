//! The README's "As tower or axum middleware" example, verbatim below this
//! comment (`tests/readme.rs` checks that they are the same): an axum app
//! that lets each client address make 10 requests per second and 1000 per
//! hour. `cargo run --example tower_middleware`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::{Router, routing::get};
use sluice::{Algorithm, Limit, Limiter, MemoryStore, Policy, Quota};
use sluice_tower::{KeyBy, RateLimitLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One policy of two limits, decided all or nothing.
    let (second, hour) = (Duration::from_secs(1), Duration::from_secs(3600));
    let per_second = Quota::new(Algorithm::TokenBucket, 10, second, None)?;
    let per_hour = Quota::new(Algorithm::TokenBucket, 1000, hour, None)?;
    let policy = Policy::with_limits("api", [Limit::new(per_second), Limit::new(per_hour)])?;
    let limiter = Limiter::new(MemoryStore::new(), [policy]);

    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(RateLimitLayer::new(limiter, "api", KeyBy::peer_ip())?);
    // LISTEN sets the address (port 0 picks a free one); default 127.0.0.1:3000.
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // The layer reads the client's address from `ConnectInfo<SocketAddr>`.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
