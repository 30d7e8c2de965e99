//! The HTTP API in-process: the router over a [`DecisionService`], driven
//! with `tower::ServiceExt::oneshot`, on a store whose clock the test moves.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;
use sluice::{
    Algorithm, BoxStore, FakeClock, Limiter, MemoryStore, Policy, Quota, RedisOptions, RedisStore,
    Store,
};
use sluice_server::service::DecisionService;
use tower::ServiceExt;

use super::Answer;

/// Where every fake clock starts: a whole number of hours (and days) since
/// the epoch, so fixed windows of a second, a minute or an hour all start
/// at this instant.
pub const START_US: u64 = 1_700_006_400 * 1_000_000;

/// The quota of `limit` per `period` under `algorithm`, with `burst`.
pub fn quota(algorithm: Algorithm, limit: u64, period: Duration, burst: Option<u64>) -> Quota {
    Quota::new(algorithm, limit, period, burst).unwrap()
}

/// The router over a decision service, and the clock its store reads.
pub struct App {
    /// The store's clock: the test moves time with it.
    pub clock: FakeClock,
    /// The service the router adapts, to inspect directly when needed.
    pub service: DecisionService,
    router: Router,
}

impl App {
    /// The API over a memory store on a fresh [`FakeClock`] at
    /// [`START_US`], deciding `policies`; the admin API is on when
    /// `admin_token` is given.
    pub fn memory(policies: Vec<Policy>, admin_token: Option<&str>) -> App {
        let clock = FakeClock::new(START_US);
        let store = MemoryStore::with_clock(clock.clone());
        App::over(store, "memory", clock, policies, admin_token)
    }

    /// The API over the Redis (or Cluster) at `url`, of kind `kind`, on a
    /// fresh [`FakeClock`] at [`START_US`], deciding `policies`, with the
    /// admin token `t`; a call may take up to 5 s (a busy CI machine).
    pub async fn redis(url: &str, kind: &'static str, policies: Vec<Policy>) -> App {
        let options = RedisOptions::default().with_timeout(Duration::from_secs(5));
        let clock = FakeClock::new(START_US);
        let store = RedisStore::connect_with(url, options).await.unwrap();
        App::over(
            store.with_clock(clock.clone()),
            kind,
            clock,
            policies,
            Some("t"),
        )
    }

    /// The API over `store` (of kind `kind`, the metrics label), whose
    /// clock is `clock`.
    pub fn over(
        store: impl Store + 'static,
        kind: &'static str,
        clock: FakeClock,
        policies: Vec<Policy>,
        admin_token: Option<&str>,
    ) -> App {
        let limiter = Limiter::new(BoxStore::new(store), policies);
        let service = DecisionService::new(limiter, kind, admin_token.map(str::to_owned));
        App {
            clock,
            router: sluice_server::http::router(service.clone()),
            service,
        }
    }

    /// Sends `request` through the router and reads the answer: the body
    /// as text, and as JSON when it is JSON (`Null` when empty).
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/json");
        let json = if text.is_empty() {
            Value::Null
        } else if is_json {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        } else {
            Value::Null
        };
        Answer {
            status,
            headers,
            json,
            text,
        }
    }

    /// `method path` with `body` (none when empty) and, when given, a
    /// bearer `token`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: impl Into<Body>,
        token: Option<&str>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(body.into()).unwrap()).await
    }

    /// `POST /v1/check` with the JSON `body`.
    pub async fn check(&self, body: Value) -> Answer {
        let request = Request::post("/v1/check")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, Body::empty(), None).await
    }

    /// `DELETE path`, with a bearer `token` when given.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::DELETE, path, Body::empty(), token)
            .await
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let a = self.get("/metrics").await;
        assert_eq!(a.status, 200);
        a.text
    }

    /// Moves the store's clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// Asserts that the metrics `text` holds every one of `lines`.
pub fn assert_metrics(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
