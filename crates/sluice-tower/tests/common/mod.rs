//! Helpers shared by the integration tests: a limiter on a fake clock, an
//! axum server on `127.0.0.1:0`, and an HTTP client.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sluice::{Algorithm, FakeClock, Limiter, MemoryStore, Policy, Quota};
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
