//! The gRPC adapter: Envoy's rate limit service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`) over the
//! [`DecisionService`], with `grpc.health.v1` health checking and server
//! reflection so that standard gRPC tools (grpcurl, grpc_health_probe,
//! Kubernetes' gRPC probes) can call it. The types and the server stub
//! come from `envoy-types` (Envoy's API as maintained generated code), not
//! from copied `.proto` files.
//!
//! This module builds the services; [`crate::server`] serves them on its
//! listener, with the same connection bound, send timeout and drain as the
//! HTTP API.
//!
//! # Layout
//!
//! - [`rate_limit`]: `ShouldRateLimit`: the request to the service, its
//!   answer or error to a gRPC status.
//! - [`health`]: `grpc.health.v1`: SERVING while the server runs,
//!   NOT_SERVING once it drains.
//! - [`reflection`]: server reflection (v1 and v1alpha) from the committed
//!   descriptors of Envoy's rate limit API.

pub mod health;
pub mod rate_limit;
pub mod reflection;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use tonic::service::Routes;

use crate::config::GrpcSettings;
use crate::service::DecisionService;
pub use health::Health;
pub use rate_limit::RateLimit;

/// Every gRPC service Sluice answers, routed by path, and the handle that
/// turns their health to NOT_SERVING when the server drains.
pub async fn routes(service: DecisionService, settings: &GrpcSettings) -> (Routes, Health) {
    let limit = settings.max_message_bytes;
    let rate_limit = RateLimitServiceServer::new(RateLimit::new(service, settings.request_timeout))
        .max_decoding_message_size(limit);
    let (health, health_server) = Health::new().await;
    let mut routes = Routes::new(rate_limit)
        .add_service(health_server.max_decoding_message_size(limit))
        .add_service(reflection::v1().max_decoding_message_size(limit))
        .add_service(reflection::v1alpha().max_decoding_message_size(limit));
    // An unknown path answers UNIMPLEMENTED (tonic's fallback), as gRPC says.
    routes = routes.prepare();
    (routes, health)
}
