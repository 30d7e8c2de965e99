//! `POST /v1/check`: decide a request, charging its cost. An adapter: it
//! reads the JSON, asks the [`DecisionService`], and renders its answer.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sluice_tower::headers::Standing;

use crate::body::DecisionBody;
use crate::http::decision_response;
use crate::http::error::{ApiError, echo};
use crate::service::DecisionService;

/// The most units one request may cost.
pub const MAX_COST: u64 = 1_000_000;
/// The most policies one request may name.
pub const MAX_POLICIES: usize = 16;

/// The request: `{"policy": "api", "key": "user-42", "cost": 1}`, or
/// `"policies": [...]` instead of `"policy"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest<'a> {
    #[serde(borrow, default)]
    policy: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    policies: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(default)]
    cost: Option<u64>,
}

/// The answer to a multi-policy check: the most restrictive policy's
/// decision, and every policy's under `results`.
#[derive(Serialize)]
struct MultiBody<'a> {
    #[serde(flatten)]
    top: DecisionBody<'a>,
    results: Vec<DecisionBody<'a>>,
}

/// Handles `POST /v1/check`.
pub async fn check(
    State(service): State<DecisionService>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {} KiB", super::MAX_BODY / 1024),
        ),
        status => ApiError::new(status, rejection.body_text()),
    })?;
    let request: CheckRequest<'_> = serde_json::from_slice(&body).map_err(json_error)?;
    let key = request
        .key
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("missing \"key\""))?;
    let cost = request.cost.unwrap_or(1);
    if !(1..=MAX_COST).contains(&cost) {
        return Err(ApiError::bad_request(format!(
            "\"cost\" must be an integer from 1 to {MAX_COST}, got {cost}"
        )));
    }
    let names: Vec<&str> = match (request.policy.as_deref(), request.policies.as_deref()) {
        (Some(policy), None) => vec![policy],
        (None, Some(policies)) if (1..=MAX_POLICIES).contains(&policies.len()) => {
            policies.iter().map(AsRef::as_ref).collect()
        }
        (None, Some(policies)) => {
            return Err(ApiError::bad_request(format!(
                "\"policies\" must name 1 to {MAX_POLICIES} policies, got {}",
                policies.len()
            )));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give \"policy\" or \"policies\", not both",
            ));
        }
        (None, None) => return Err(ApiError::bad_request("missing \"policy\"")),
    };
    if names.contains(&"") {
        return Err(ApiError::bad_request("\"policy\" must not be empty"));
    }
    tracing::debug!(policies = ?names, key, cost, "deciding");
    let snapshot = service.snapshot();
    let answer = snapshot.check(&names, key, cost).await?;
    let status = if answer.allowed {
        StatusCode::OK
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    let standings: Vec<Standing<'_>> = answer.verdicts.iter().map(Standing::from).collect();
    let results: Vec<DecisionBody<'_>> = (answer.verdicts.iter())
        .map(|v| DecisionBody::of(v, key))
        .collect();
    let top = results[answer.deciding()];
    Ok(match request.policies {
        None => decision_response(status, &standings, &top),
        Some(_) => decision_response(status, &standings, &MultiBody { top, results }),
    })
}

/// A body that is not a valid request. serde_json's message may quote the
/// body (an unknown field's name, a string where a number belongs), so
/// the message is echoed bounded, and the position it names kept whole.
fn json_error(e: serde_json::Error) -> ApiError {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let (message, position) = match message.strip_suffix(&position) {
        Some(message) => (message, position.as_str()),
        None => (message.as_str(), ""),
    };
    ApiError::bad_request(format!("invalid JSON body: {}{position}", echo(message)))
}
