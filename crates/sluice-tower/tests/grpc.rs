//! The layer in front of a real tonic server, called by a real tonic
//! client: a denial reaches the client as `RESOURCE_EXHAUSTED` with the
//! rate-limit headers and `Retry-After` in the status's metadata, a store
//! failure as `UNAVAILABLE`, an unkeyed call as `INVALID_ARGUMENT`. The
//! inner service is tonic-health's `Health`, so no proto is compiled.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use sluice::Store;
use sluice_testkit::RedisServer;
use sluice_tower::{KeyBy, RateLimitLayer};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use common::{limiter, limiter_on_a_dead_redis};

/// Serves the Health service behind `layer` on a free loopback port until
/// the test's runtime stops.
async fn serve<S: Store>(layer: RateLimitLayer<S>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = Server::builder().layer(layer).add_service(health);
    tokio::spawn(async move {
        server
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap()
    });
    addr
}

/// One `Health/Check` call, with `x-api-key: key` unless `key` is `None`.
async fn check(addr: SocketAddr, key: Option<&str>) -> Result<tonic::Response<()>, Status> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    let mut client = HealthClient::new(channel.connect().await.unwrap());
    let mut request = Request::new(HealthCheckRequest::default());
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("x-api-key", key.parse().unwrap());
    }
    let response = client.check(request).await?;
    let (metadata, body, extensions) = response.into_parts();
    assert_eq!(body.status(), ServingStatus::Serving);
    Ok(tonic::Response::from_parts(metadata, (), extensions))
}

fn api_key() -> KeyBy {
    KeyBy::header("x-api-key").unwrap()
}

#[tokio::test]
async fn a_denial_is_resource_exhausted_with_the_retry_time_in_the_metadata() {
    let addr = serve(RateLimitLayer::new(limiter(2), "api", api_key()).unwrap()).await;
    for remaining in ["1", "0"] {
        let admitted = check(addr, Some("k")).await.unwrap();
        let metadata = admitted.metadata();
        assert_eq!(metadata.get("ratelimit-remaining").unwrap(), remaining);
    }
    let denied = check(addr, Some("k")).await.unwrap_err();
    assert_eq!(denied.code(), Code::ResourceExhausted, "{denied:?}");
    assert_eq!(denied.message(), "rate limit exceeded");
    // 2 per 60 s: the next token comes in 30 s.
    let metadata = denied.metadata();
    assert_eq!(metadata.get("retry-after").unwrap(), "30");
    assert_eq!(metadata.get("ratelimit-remaining").unwrap(), "0");
    let ratelimit = metadata.get("ratelimit").unwrap().to_str().unwrap();
    assert!(ratelimit.starts_with(r#""api";r=0;"#), "{ratelimit}");
    // Another key has its own quota.
    assert!(check(addr, Some("other")).await.is_ok());
}

#[tokio::test]
async fn a_call_without_a_key_is_invalid_argument() {
    let addr = serve(RateLimitLayer::new(limiter(2), "api", api_key()).unwrap()).await;
    let unkeyed = check(addr, None).await.unwrap_err();
    assert_eq!(unkeyed.code(), Code::InvalidArgument, "{unkeyed:?}");
}

#[tokio::test]
async fn a_store_failure_is_unavailable() {
    let mut redis = RedisServer::start();
    let limiter = limiter_on_a_dead_redis(&mut redis).await;
    let addr = serve(RateLimitLayer::new(limiter, "api", api_key()).unwrap()).await;
    let failed = check(addr, Some("k")).await.unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    assert_eq!(failed.message(), "rate limiter unavailable");
}

#[tokio::test]
async fn the_http_hooks_do_not_replace_a_grpc_answer() {
    let layer = RateLimitLayer::new(limiter(1), "api", api_key())
        .unwrap()
        .on_denied(|_| sluice_tower::http::Response::new("slow down"));
    let addr = serve(layer).await;
    assert!(check(addr, Some("k")).await.is_ok());
    let denied = check(addr, Some("k")).await.unwrap_err();
    assert_eq!(denied.code(), Code::ResourceExhausted, "{denied:?}");
}
