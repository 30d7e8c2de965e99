//! `grpc.health.v1.Health` (tonic-health): the server (`""`) and the rate
//! limit service are SERVING while the server runs and NOT_SERVING once it
//! drains, so a load balancer stops sending before the listener closes; a
//! service it does not know answers NOT_FOUND, as the health protocol says.

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::SERVICE_NAME;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health as HealthService, HealthServer};
use tonic_health::server::HealthReporter;

/// The services whose health is reported: the server as a whole (`""`)
/// and Envoy's rate limit service.
pub const SERVICES: [&str; 2] = ["", SERVICE_NAME];

/// Turns the reported health of [`SERVICES`] when the server drains.
#[derive(Clone, Debug)]
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// The handle and the service answering `grpc.health.v1`, with every
    /// one of [`SERVICES`] SERVING.
    pub async fn new() -> (Health, HealthServer<impl HealthService>) {
        let (reporter, server) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(SERVICE_NAME, ServingStatus::Serving)
            .await;
        (Health { reporter }, server)
    }

    /// Every one of [`SERVICES`] NOT_SERVING: the server has begun to drain.
    pub async fn draining(&self) {
        for service in SERVICES {
            self.reporter
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
    }
}
