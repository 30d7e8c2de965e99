//! Envoy's rate limit service (`envoy.service.ratelimit.v3.RateLimitService`,
//! `ShouldRateLimit`) decided on the [`DecisionService`]'s store, with the
//! configuration files of envoyproxy/ratelimit read unchanged
//! ([`EnvoyConfig`]). Transport-free: the gRPC server and the HTTP `/json`
//! endpoint parse their request, call
//! [`DecisionService::should_rate_limit`], and render its answer.
//!
//! It answers as envoyproxy/ratelimit does (its `src/service/ratelimit.go`
//! and `src/limiter/base_limiter.go` are the reference), with one
//! deliberate difference: a request is decided **all or nothing**. Every
//! counted descriptor is decided in one store call; when one is over its
//! limit, nothing is spent on the others (envoyproxy/ratelimit increments
//! every counter, so a rejected request eats into limits it was never
//! granted). A descriptor that alone would have passed answers `OK` with
//! its standing remaining.
//!
//! # Layout
//!
//! - `plan`: a request's descriptors → the rule each meets (or none, or
//!   unlimited), its counter key and cost.
//! - `decide`: the plan → one store call → a status per descriptor, and the
//!   statistics of each.
//! - `answer`: the response headers and the dynamic metadata.
//! - `options`: [`EnvoyOptions`], the `envoy:` block of the configuration.
//! - [`json`]: the request and the response in the proto3 JSON mapping
//!   (HTTP `/json`).

mod answer;
mod decide;
pub mod json;
mod options;
mod plan;

use std::sync::Arc;

use crate::config::envoy::EnvoyConfig;
use crate::service::DecisionService;

pub use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
pub use options::{EnvoyOptions, ResponseHeaders};
pub use plan::counter_key;

/// Why a ShouldRateLimit request got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvoyError {
    /// The request is malformed (no domain, an empty descriptor, ...): gRPC INVALID_ARGUMENT, HTTP 400.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The store failed and the mode in force says to fail (Envoy's `failure_mode_deny` then applies): gRPC UNAVAILABLE, HTTP 503.
    #[error("the store cannot decide: {0}")]
    Unavailable(String),
}

/// The envoyproxy/ratelimit configuration and the options in force: one
/// version, swapped whole, so that a request sees one throughout.
#[derive(Debug, Default)]
pub struct EnvoyState {
    /// The domains and their descriptors.
    pub config: EnvoyConfig,
    /// The `envoy:` options.
    pub options: EnvoyOptions,
}

impl DecisionService {
    /// Envoy's ShouldRateLimit, decided on this service's store with the envoyproxy/ratelimit config in force.
    pub async fn should_rate_limit(
        &self,
        request: &RateLimitRequest,
    ) -> Result<RateLimitResponse, EnvoyError> {
        let state = self.envoy();
        decide::should_rate_limit(self, &state, request).await
    }

    /// Installs (or replaces, keeping every counter) the envoyproxy/ratelimit config.
    pub fn set_envoy_config(&self, config: EnvoyConfig) {
        let options = self.envoy().options.clone();
        self.set_envoy(EnvoyState { config, options });
    }

    /// Puts the `envoy:` options in force, keeping the config.
    pub fn set_envoy_options(&self, options: EnvoyOptions) {
        let config = self.envoy().config.clone();
        self.set_envoy(EnvoyState { config, options });
    }

    /// The envoyproxy/ratelimit config and options in force now.
    pub fn envoy(&self) -> Arc<EnvoyState> {
        self.envoy_state().load_full()
    }

    /// Installs `state` whole: config and options at once (a reload), each
    /// rule's statistics at zero until its first hit.
    pub fn set_envoy(&self, state: EnvoyState) {
        for (domain, key) in state.config.counted_rules() {
            self.metrics().envoy(domain, key);
        }
        self.envoy_state().store(Arc::new(state));
    }
}

#[cfg(test)]
mod tests;
