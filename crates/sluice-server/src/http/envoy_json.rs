//! `POST /json`: Envoy's ShouldRateLimit over HTTP, as envoyproxy/ratelimit
//! serves it: the request and the response in the proto3 JSON mapping
//! ([`crate::envoy::json`]), 200 when the answer is OK and 429 when it is
//! OVER_LIMIT; 400 for a body that is not such a request, 503 when the
//! store cannot decide.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;

use crate::envoy::EnvoyError;
use crate::envoy::json::{request_from_json, response_to_json};
use crate::http::error::{ApiError, echo};
use crate::http::intake::WholeBody;
use crate::service::DecisionService;

/// Handles `POST /json`.
pub async fn should_rate_limit(
    State(service): State<DecisionService>,
    WholeBody(body): WholeBody,
) -> Result<Response, ApiError> {
    let request = request_from_json(&body)
        .map_err(|e| ApiError::bad_request(format!("not a RateLimitRequest: {}", echo(&e))))?;
    let response = service
        .should_rate_limit(&request)
        .await
        .map_err(|e| match e {
            EnvoyError::Invalid(m) => ApiError::bad_request(m),
            EnvoyError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store cannot decide now",
            ),
        })?;
    let status = if response.overall_code == i32::from(Code::OverLimit) {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    let json = serde_json::to_vec(&response_to_json(&response)).unwrap_or_default();
    Ok((status, [(header::CONTENT_TYPE, "application/json")], json).into_response())
}
