//! A store failure is logged at `warn` with the policy and the failure's
//! whole cause, whatever [`OnStoreError`] says to answer.
//!
//! Alone in its test binary: `tracing` caches per call site whether anyone
//! listens, and a test on another thread reaching the same call site with
//! no subscriber could race this test's scoped subscriber and hide the line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use sluice_testkit::RedisServer;
use sluice_tower::{KeyBy, OnStoreError, RateLimitLayer};
use tower::{Layer, ServiceExt, service_fn};
use tracing::instrument::WithSubscriber;

use common::limiter_on_a_dead_redis;

/// A writer that `tracing-subscriber` formats into, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far.
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_store_failure_is_logged_at_warn_with_the_policy_and_its_cause() {
    let mut redis = RedisServer::start();
    let limiter = limiter_on_a_dead_redis(&mut redis).await;
    // (mode, a response of the caller's own, what the client gets)
    let later = || Response::new(Full::new(Bytes::from_static(b"later")));
    let choices = [
        (
            OnStoreError::Deny,
            false,
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"rate limiter unavailable"}"#,
        ),
        (OnStoreError::Allow, false, StatusCode::OK, "inner"),
        (OnStoreError::Deny, true, StatusCode::OK, "later"),
    ];
    for (mode, own, status, body) in choices {
        let choice = (mode, own);
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let mut layer = RateLimitLayer::new(limiter.clone(), "api", KeyBy::peer_ip())
            .unwrap()
            .on_store_error(mode);
        if own {
            layer = layer.on_unavailable(move |_| later());
        }
        let service = layer.layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
        }));
        let mut request = Request::new(());
        let peer: SocketAddr = "192.0.2.7:50000".parse().unwrap();
        request.extensions_mut().insert(peer);
        let response = service
            .oneshot(request)
            .with_subscriber(subscriber)
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{choice:?}");
        let got = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, body.as_bytes(), "{choice:?}");

        let text = log.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{choice:?}: one line per failure:\n{text}");
        let line = lines[0];
        assert!(line.contains("WARN"), "{choice:?}: {line}");
        assert!(line.contains("the rate limit store failed"), "{line}");
        assert!(line.contains("policy=api"), "{choice:?}: {line}");
        // The whole cause: the store's error and the connection's under it.
        assert!(
            line.contains("error=the store is unavailable: ")
                && line.contains("Connection refused"),
            "{choice:?}: {line}\nRedis log:\n{}",
            redis.log()
        );
    }
}
