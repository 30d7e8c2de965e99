//! Rate limiting for tower services (axum, tonic, hyper) with
//! [Sluice](sluice).
//!
//! [`RateLimitLayer`] applies one policy of a [`Limiter`](sluice::Limiter),
//! over any store, to every request: it keys the request (by peer address,
//! a header, the client behind trusted proxies, or any function; see
//! [`KeyBy`]), lets it through with the IETF rate-limit headers or answers
//! 429 with `Retry-After`, and waits out leaky-bucket delays.
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::{Router, routing::get};
//! use sluice::{Limiter, MemoryStore, Policy, Quota};
//! use sluice_tower::{KeyBy, RateLimitLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let quota = Quota::per_minute(10)?.allow_burst(20)?;
//! let limiter = Limiter::new(MemoryStore::new(), [Policy::new("api", quota)?]);
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     // `route_layer`: a request that matches no route (404) spends nothing.
//!     .route_layer(RateLimitLayer::new(limiter, "api", KeyBy::peer_ip())?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // The peer address reaches the layer as `ConnectInfo<SocketAddr>`.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! - **Keys**: [`KeyBy::header`]`("x-api-key")?` (an invalid name is an
//!   error, never a panic), [`KeyBy::peer_ip`], [`KeyBy::forwarded`],
//!   [`KeyBy::custom`].
//! - **Custom answers**: [`RateLimitLayer::on_denied`] takes a closure
//!   returning an `http::Response` of a `String`, a `&'static str` or
//!   [`Bytes`]; [`Bytes`], [`Full`], [`Either`] and [`http`] are
//!   re-exported, so no dependency on `bytes` or `http-body-util` is needed.
//! - **tonic**: gRPC requests are answered in gRPC's terms, a denial as
//!   `RESOURCE_EXHAUSTED`, a store failure as `UNAVAILABLE` (see
//!   [`rate_limit`]).
//! - **Changing limits while serving**: [`RateLimitLayer::reloader`].
//! - **A store chosen at run time**: build the limiter on a
//!   [`BoxStore`](sluice::BoxStore) (`sluice::store::open("redis://…")`), so
//!   the layer's type is the same for every store.
//!
//! # Features
//!
//! - `axum` (default): [`KeyBy`] reads axum's `ConnectInfo<SocketAddr>`;
//!   without it, only a plain `SocketAddr` request extension.
//!
//! # Layout
//!
//! - [`rate_limit`]: [`RateLimitLayer`], its [`RateLimit`] service and response future, its
//!   [`Reloader`], and the answers of its own (JSON, or a gRPC status to a gRPC request).
//! - [`key`]: [`KeyBy`], the key extractors, and `Forwarded`/`X-Forwarded-For` parsing.
//! - [`headers`]: the rate-limit response headers, shared with `sluice serve`.
//! - `fuzzing` (hidden): the property the `forwarded` fuzz target in `fuzz/`
//!   checks, shared with the test that replays its corpus.

#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod key;
pub mod rate_limit;

/// The byte buffer of the layer's own response bodies (`bytes`'), so that
/// [`RateLimitLayer::on_denied`] needs no dependency on `bytes`.
pub use bytes::Bytes;
/// `http`, whose `Response` and `StatusCode` the hooks of [`RateLimitLayer`]
/// build with (axum re-exports the same crate as `axum::http`).
pub use http;
/// The body types of [`ResponseBody`] (`http-body-util`'s), so that naming
/// the layer's response type needs no dependency on `http-body-util`.
pub use http_body_util::{Either, Full};
pub use key::{InvalidHeaderName, KeyBy, ProxyHeader};
pub use rate_limit::{
    OnStoreError, RateLimit, RateLimitLayer, Reloader, ResponseBody, ResponseFuture, Unkeyed,
};
