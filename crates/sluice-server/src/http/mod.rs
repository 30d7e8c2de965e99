//! The HTTP API of `sluice serve`, described in `openapi.json` (served at
//! `/openapi.json`).

pub mod bad_body;
pub mod check;
pub mod envoy_json;
pub mod error;
pub mod forward_auth;
pub mod health;
pub mod intake;
pub mod limits;
pub mod policies;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use sluice_tower::headers::{self, Standing};

use crate::body::WriteJson;
use crate::config::ServerSettings;
use crate::service::DecisionService;
use error::{ApiError, echo};

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// The path of the forward-auth route: the only one that reads the
/// peer's address (the server stamps it on these requests alone).
pub const FORWARD_AUTH_PATH: &str = "/v1/forward-auth";

/// The OpenAPI 3 description of this API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The most headers a decision's answer sets: the content type, the three
/// counts, `RateLimit-Policy`, `RateLimit` and `Retry-After`.
const RESPONSE_HEADERS: usize = 7;

/// Every route of the API over `service`, with the default body timeout.
pub fn router(service: DecisionService) -> Router {
    router_with(service, ServerSettings::default().body_timeout)
}

/// Every route of the API over `service`; a request body must arrive
/// within `body_timeout`.
pub fn router_with(service: DecisionService, body_timeout: Duration) -> Router {
    Router::new()
        .route("/v1/check", post(check::check))
        .route(
            "/v1/limits/{policy}/{*key}",
            get(limits::peek).delete(limits::reset),
        )
        .route("/v1/policies", get(policies::list))
        .route(FORWARD_AUTH_PATH, any(forward_auth::forward_auth))
        .route("/json", post(envoy_json::should_rate_limit))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Every body is read whole, within MAX_BODY, before a route sees
        // it: the extractors' own limit (2 MiB) is never reached, so no
        // `DefaultBodyLimit` (an extension stored in every request).
        .layer(intake::BoundedBodyLayer::new(body_timeout))
        .with_state(service)
}

/// The status of a decision's answer: 200 when admitted, else 429.
pub fn decision_status(allowed: bool) -> StatusCode {
    if allowed {
        StatusCode::OK
    } else {
        StatusCode::TOO_MANY_REQUESTS
    }
}

/// The room a decision's JSON body is written into: one policy's answer
/// fits, with a long key (a multi-policy answer grows it).
const BODY_CAPACITY: usize = 256;

/// A decision's answer: `status`, the rate-limit headers for `standings`,
/// and `body` as JSON.
pub fn decision_response(
    status: StatusCode,
    standings: &[Standing<'_>],
    body: &impl WriteJson,
) -> Response {
    let mut json = Vec::with_capacity(BODY_CAPACITY);
    body.write_json(&mut json);
    let mut response = Response::new(Body::from(json));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    // Room for the content type and the six rate-limit headers at once,
    // rather than growing the map on the way.
    headers.reserve(RESPONSE_HEADERS);
    headers.insert(header::CONTENT_TYPE, JSON);
    headers::insert(headers, standings);
    response
}

async fn metrics(State(service): State<DecisionService>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        service.render_metrics(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, JSON)], OPENAPI).into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such route: {method} {}", echo(uri.path())),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", echo(uri.path())),
    )
}
