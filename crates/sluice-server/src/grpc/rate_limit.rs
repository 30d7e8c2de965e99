//! `ShouldRateLimit`: parses nothing itself (the request is already a
//! message), asks the [`DecisionService`], and maps its error to the gRPC
//! status Envoy acts on.

use std::time::Duration;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use tonic::{Request, Response, Status};

use crate::envoy::{EnvoyError, RateLimitRequest, RateLimitResponse};
use crate::service::DecisionService;

/// Envoy's rate limit service over a [`DecisionService`].
#[derive(Clone)]
pub struct RateLimit {
    service: DecisionService,
    timeout: Duration,
}

impl RateLimit {
    /// Answers with `service`, giving each decision at most `timeout`.
    pub fn new(service: DecisionService, timeout: Duration) -> RateLimit {
        RateLimit { service, timeout }
    }
}

#[tonic::async_trait]
impl RateLimitService for RateLimit {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let request = request.into_inner();
        let decided = tokio::time::timeout(self.timeout, self.service.should_rate_limit(&request));
        match decided.await {
            Ok(Ok(answer)) => Ok(Response::new(answer)),
            Ok(Err(e)) => Err(status(e)),
            // The store's own timeout (redis.timeout) normally answers
            // first; this bounds whatever else could hold a decision.
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no decision within {:?}",
                self.timeout
            ))),
        }
    }
}

/// The status for `error`: UNAVAILABLE for a store that cannot decide, so
/// that Envoy's `failure_mode_deny` decides whether the request passes.
pub fn status(error: EnvoyError) -> Status {
    match error {
        EnvoyError::Invalid(message) => Status::invalid_argument(message),
        EnvoyError::Unavailable(message) => Status::unavailable(message),
    }
}
