//! The rate-limit layer: [`RateLimitLayer`] makes [`RateLimit`] services.
//!
//! For every request the service takes a key from the request's head (a
//! [`KeyBy`](crate::KeyBy)), asks the limiter's policy whether that key may
//! spend the request's cost, and then:
//!
//! | outcome | response |
//! | --- | --- |
//! | admitted | the inner service's response, untouched but for the rate-limit [`headers`](crate::headers) |
//! | admitted after a leaky-bucket `delay` | the same, once `delay` has passed (the inner service is called only then) |
//! | denied | 429 `{"error": "rate limit exceeded", "policy": "api", "retry_after_ms": 1500}` with `Retry-After` and the rate-limit headers; when the request can never fit (its cost exceeds the burst, or the key is blocked) `retry_after_ms` is `null`, a `"reason"` says why, and no `Retry-After` is sent. A shadow policy sets no rate-limit headers. The inner service is not called. [`RateLimitLayer::on_denied`] replaces the body. A gRPC request gets `RESOURCE_EXHAUSTED` (see below). |
//! | no key | per [`Unkeyed`]: 400 `{"error": "no rate-limit key found in the request"}` by default |
//! | key over 1024 bytes | 400 `{"error": "rate-limit key longer than 1024 bytes"}` |
//! | the store failed | per the policy's [`OnStoreError`] (the core's, set with [`RateLimitLayer::on_store_error`]): `deny` (the default) 503 `{"error": "rate limiter unavailable"}` or your [`RateLimitLayer::on_unavailable`] response, logged with its cause at `warn`; `allow` lets it through without rate-limit headers; `local` decides against this process's share of the limit (with a [`Resilient`](sluice::store::Resilient) store) |
//!
//! A policy of several limits (per second and per hour, say) is decided all
//! or nothing: a request denied by one limit spends nothing on the others,
//! and the headers describe the limit that decided. The policy's name is
//! checked when the layer is built: [`RateLimitLayer::new`] refuses a name
//! the limiter does not have.
//!
//! Every answer of the layer's own is JSON and names no internals. Requests
//! that the inner service answers are never changed otherwise: their body
//! passes through as the left side of [`ResponseBody`].
//!
//! The layer works wherever tower services do: axum, hyper (through
//! `hyper_util::service::TowerToHyperService`) and tonic
//! (`Server::builder().layer(..)`).
//!
//! - **axum**: attach it with `Router::route_layer`, not `Router::layer`:
//!   `route_layer` runs it only for requests that match a route, so a
//!   client probing unknown paths (404) spends nothing. `layer` also runs
//!   it for the 404s, which then count against the client.
//! - **gRPC** (a request whose `content-type` starts with
//!   `application/grpc`, as every tonic client's does): the layer answers
//!   in gRPC's terms, a Trailers-Only response carrying `grpc-status`. A
//!   denial is `RESOURCE_EXHAUSTED` (8) with `Retry-After` and the
//!   rate-limit headers in the status's metadata; a store failure
//!   `UNAVAILABLE` (14); no key or a key too long `INVALID_ARGUMENT` (3).
//!   The HTTP hooks ([`RateLimitLayer::on_denied`],
//!   [`RateLimitLayer::on_unavailable`]) are not used for gRPC requests.
//!   tonic puts the peer address in its own `TcpConnectInfo`, which
//!   [`KeyBy::peer_ip`](crate::KeyBy::peer_ip) does not read: key gRPC
//!   calls by a metadata entry ([`KeyBy::header`](crate::KeyBy::header))
//!   or with [`KeyBy::custom`](crate::KeyBy::custom).
//! - **Changing limits while serving**: [`RateLimitLayer::reloader`] gives
//!   a [`Reloader`] that swaps the layer's policies for the next request,
//!   without rebuilding the router, and keeps every key's state.
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//! use std::time::Duration;
//!
//! use http::{Request, Response, StatusCode};
//! use sluice::{Algorithm, Limiter, MemoryStore, Policy, Quota};
//! use sluice_tower::{KeyBy, RateLimitLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let quota = Quota::new(Algorithm::TokenBucket, 1, Duration::from_secs(60), None).unwrap();
//! let limiter = Limiter::new(MemoryStore::new(), [Policy::new("api", quota).unwrap()]);
//! let service = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(limiter, "api", KeyBy::peer_ip()).unwrap())
//!     .service(service_fn(|_: Request<()>| async {
//!         Ok::<_, Infallible>(Response::new(String::from("hello")))
//!     }));
//!
//! // What a hyper server would insert for the connection.
//! let peer: SocketAddr = "192.0.2.7:50000".parse().unwrap();
//! let request = || {
//!     let mut request = Request::new(());
//!     request.extensions_mut().insert(peer);
//!     request
//! };
//! let first = service.clone().oneshot(request()).await.unwrap();
//! assert_eq!(first.status(), StatusCode::OK);
//! assert_eq!(first.headers()["ratelimit-remaining"], "0");
//! let second = service.oneshot(request()).await.unwrap();
//! assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(second.headers()["retry-after"], "60");
//! # });
//! ```

mod error;
mod future;
mod grpc;
mod layer;
mod reload;
mod service;

use bytes::Bytes;
use http_body_util::{Either, Full};

pub use self::future::ResponseFuture;
pub use self::layer::{RateLimitLayer, Unkeyed};
pub use self::reload::Reloader;
pub use self::service::RateLimit;
/// The core's choice of what to answer when the store fails: one
/// definition for the library, this layer and the server.
pub use sluice::OnStoreError;

/// The body of a [`RateLimit`] response: the inner service's body `B`
/// (left), or the layer's own JSON (right).
pub type ResponseBody<B> = Either<B, Full<Bytes>>;
