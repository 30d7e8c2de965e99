//! `/v1/forward-auth` (any method): a gateway asks whether the request it
//! holds may go through, before proxying it: nginx's `auth_request`,
//! Caddy's `forward_auth`, Traefik's `ForwardAuth`. An adapter: it reads
//! the policy and the key from the gateway's request, asks the
//! [`DecisionService`], and answers 200 to admit or the denial status.
//!
//! - The policy: `?policy=`, else the first of `forward_auth.routes` that
//!   the original request's path and method match (as a trusted proxy
//!   gives them), else `forward_auth.policy` (`default`).
//! - The key: the value of the header named by `?key_header=` (an API
//!   key, say) when the request has it; else the client's address: the
//!   peer's own, or, when the peer is one of `trusted_proxies`, the one
//!   its `forward_auth.client_header` names (never another header).
//! - The denial: `?deny_status=`, else `forward_auth.deny_status` (429).
//!   nginx's `auth_request` passes on only 401 and 403, so give it 403.
//!
//! Both answers carry the rate-limit headers (`RateLimit-Limit`,
//! `RateLimit-Remaining`, the IETF fields) and a denial `Retry-After`, for
//! the gateway to copy to the client, as `/v1/check` does: none for a
//! shadow policy, no `Retry-After` when no wait admits the request. The
//! body is the decision as `/v1/check` gives it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use sluice_tower::KeyBy;
use sluice_tower::headers::Standing;
use sluice_tower::key::peer_ip;

use crate::body::DecisionBody;
use crate::config::{DENY_STATUS_EXPECTED, ForwardAuthSettings, deny_status};
use crate::http::decision_response;
use crate::http::error::{ApiError, echo};
use crate::service::DecisionService;

/// What the gateway's configuration may say in the query string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthQuery {
    policy: Option<String>,
    key_header: Option<String>,
    deny_status: Option<String>,
}

/// The policy of the request the gateway holds: its route's, matched on
/// the path and method the gateway passes on (`X-Forwarded-Uri` or
/// `X-Original-URI`, `X-Forwarded-Method`), believed only from a trusted
/// proxy, as the client's address is; else `forward_auth.policy`.
fn route_policy<'s>(settings: &'s ForwardAuthSettings, parts: &Parts) -> &'s str {
    let trusted = peer_ip(parts)
        .is_some_and(|ip| settings.trusted_proxies.iter().any(|net| net.contains(&ip)));
    if !trusted {
        return &settings.policy;
    }
    let header = |name: &str| {
        (parts.headers.get(name))
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
    };
    let uri = header("x-forwarded-uri").or_else(|| header("x-original-uri"));
    settings.policy_for(uri, header("x-forwarded-method"))
}

/// Handles `/v1/forward-auth`.
pub async fn forward_auth(
    State(service): State<DecisionService>,
    query: Result<Query<ForwardAuthQuery>, QueryRejection>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(echo(&e.body_text()).to_string()))?;
    let settings = service.forward_auth();
    let deny = match &query.deny_status {
        None => settings.deny_status,
        Some(text) => deny_status(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "deny_status {DENY_STATUS_EXPECTED}, got {:?}",
                echo(text)
            ))
        })?,
    };
    let policy = match &query.policy {
        Some(policy) => policy.as_str(),
        None => route_policy(&settings, &parts),
    };
    let named = (query.key_header.as_deref())
        .and_then(|name| parts.headers.get(name))
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty());
    let key = match named {
        Some(value) => value.to_owned(),
        None => KeyBy::forwarded(
            settings.client_header,
            settings.trusted_proxies.iter().copied(),
        )
        .key(&parts)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the peer's address is unknown",
            )
        })?,
    };
    tracing::debug!(policy, key, "forward-auth");
    let snapshot = service.snapshot();
    let answer = snapshot.check(&[policy], &key, 1).await?;
    let status = if answer.allowed { StatusCode::OK } else { deny };
    let verdict = &answer.verdicts[answer.deciding()];
    let standings: Vec<Standing<'_>> = answer.verdicts.iter().map(Standing::from).collect();
    Ok(decision_response(
        status,
        &standings,
        &DecisionBody::of(verdict, &key, 1),
    ))
}
