//! Helpers shared by the integration tests: a limiter on a fake clock, an
//! axum app that counts its calls, a server on `127.0.0.1:0`, and an HTTP
//! client.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sluice::{Algorithm, FakeClock, Limiter, MemoryStore, Policy, Quota, RedisStore, Store};
use sluice_testkit::RedisServer;
use sluice_tower::RateLimitLayer;
use tokio::net::TcpListener;

/// A fixed instant: the limiter's time never moves unless a test moves it,
/// so every count and duration in a response is exact.
pub const START_US: u64 = 1_700_000_000_000_000;

/// A policy named `name`: `limit` requests per 60 s, as a token bucket.
pub fn policy(name: &str, limit: u64) -> Policy {
    let quota = Quota::new(Algorithm::TokenBucket, limit, Duration::from_secs(60), None);
    Policy::new(name, quota.unwrap()).unwrap()
}

/// A memory limiter with policy `api` (`limit` per 60 s) on a fake clock.
pub fn limiter(limit: u64) -> Limiter<MemoryStore<FakeClock>> {
    let store = MemoryStore::with_clock(FakeClock::new(START_US));
    Limiter::new(store, [policy("api", limit)])
}

/// A limiter with policy `api` (1 per 60 s) on a Redis that has answered
/// once and is then killed: every later decision fails, as "Connection
/// refused".
pub async fn limiter_on_a_dead_redis(redis: &mut RedisServer) -> Limiter<RedisStore> {
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let limiter = Limiter::new(store, [policy("api", 1)]);
    let first = limiter.check("api", "warm-up", 1).await;
    assert!(first.is_ok(), "{first:?}; Redis log:\n{}", redis.log());
    redis.kill();
    // The open connection may first be found broken ("broken pipe"); every
    // call after that tries to connect again and is refused.
    let mut seen = Vec::new();
    for _ in 0..5 {
        match limiter.check("api", "warm-up", 1).await {
            Ok(decision) => panic!("decided on a killed Redis: {decision:?}"),
            Err(error) => seen.push(sluice::error::chain(&error).to_string()),
        }
        if seen
            .last()
            .is_some_and(|e| e.contains("Connection refused"))
        {
            return limiter;
        }
    }
    panic!("never refused: {seen:#?}");
}

/// How many times the inner service of [`counted_app`] has run.
#[derive(Clone, Debug, Default)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    /// The calls so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An app whose `/` answers 200 "ok" and counts its calls, behind `layer`.
pub fn counted_app<S: Store>(layer: RateLimitLayer<S>) -> (Router, Calls) {
    let calls = Calls::default();
    let counter = calls.clone();
    let router = Router::new()
        .route(
            "/",
            get(move || async move {
                counter.0.fetch_add(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .layer(layer);
    (router, calls)
}

/// Serves `app` on a free loopback port, with the peer address as
/// `ConnectInfo<SocketAddr>`, until the test's runtime stops.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An HTTP/1.1 client.
#[derive(Clone)]
pub struct Http(Client<HttpConnector, Empty<Bytes>>);

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// Header `name` as text; panics when it is missing.
    pub fn header(&self, name: &str) -> &str {
        match self.headers.get(name) {
            Some(value) => value.to_str().unwrap(),
            None => panic!("no {name} header in {self:#?}"),
        }
    }
}

impl Http {
    pub fn new() -> Http {
        Http(Client::builder(TokioExecutor::new()).build_http())
    }

    /// `GET http://{addr}{path}` with `headers`.
    pub async fn get(&self, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::get(format!("http://{addr}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .0
            .request(request.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}
