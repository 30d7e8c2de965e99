//! `GET` and `DELETE /v1/limits/{policy}/{key}`: a key's standing, and
//! resetting it (admin only).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_tower::headers::Standing;

use crate::body::DecisionBody;
use crate::http::decision_response;
use crate::http::error::{ApiError, echo};
use crate::service::DecisionService;

type PolicyAndKey = Result<Path<(String, String)>, PathRejection>;

/// Handles `GET /v1/limits/{policy}/{key}`: exactly what a cost-1
/// `POST /v1/check` would answer now (its body, headers and status: 429
/// when the check would be denied), without charging anything.
pub async fn peek(
    State(service): State<DecisionService>,
    path: PolicyAndKey,
) -> Result<Response, ApiError> {
    let (policy, key) = policy_and_key(path)?;
    let snapshot = service.snapshot();
    let verdict = snapshot.peek(&policy, &key).await?;
    let body = DecisionBody::of(&verdict, &key, 1);
    Ok(decision_response(
        super::decision_status(verdict.decision.allowed),
        &[Standing::from(&verdict)],
        &body,
    ))
}

/// Handles `DELETE /v1/limits/{policy}/{key}`: forgets the key (204).
/// Needs `Authorization: Bearer <SLUICE_ADMIN_TOKEN>`: 401 without it,
/// 403 when no token is configured (the admin API is off).
pub async fn reset(
    State(service): State<DecisionService>,
    headers: HeaderMap,
    path: PolicyAndKey,
) -> Result<Response, ApiError> {
    let Some(token) = service.admin_token() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the admin API is off; set SLUICE_ADMIN_TOKEN to turn it on",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if !token.admits(given) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this needs \"Authorization: Bearer <admin token>\" with the right token",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(response);
    }
    let (policy, key) = policy_and_key(path)?;
    service.snapshot().reset(&policy, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn policy_and_key(path: PolicyAndKey) -> Result<(String, String), ApiError> {
    path.map(|Path(pk)| pk)
        .map_err(|e| ApiError::bad_request(echo(&e.body_text()).to_string()))
}
