//! `POST /v1/check`: decide a request, charging its cost.

use std::borrow::Cow;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sluice::Decision;
use sluice_tower::headers::{Standing, most_restrictive};

use crate::body::DecisionBody;
use crate::http::decision_response;
use crate::http::error::ApiError;
use crate::metrics::Outcome;
use crate::server::state::{Active, AppState};

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
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {} KiB", super::MAX_BODY / 1024),
        ),
        status => ApiError::new(status, rejection.body_text()),
    })?;
    let request: CheckRequest<'_> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let key = match request.key.as_deref() {
        None => return Err(ApiError::bad_request("missing \"key\"")),
        Some(key) => key,
    };
    let cost = request.cost.unwrap_or(1);
    if !(1..=MAX_COST).contains(&cost) {
        return Err(ApiError::bad_request(format!(
            "\"cost\" must be an integer from 1 to {MAX_COST}, got {cost}"
        )));
    }
    tracing::debug!(policy = ?request.policy, policies = ?request.policies, key, cost, "deciding");
    let active = state.active();
    match (request.policy.as_deref(), request.policies.as_deref()) {
        (Some(policy), None) => check_one(&state, &active, policy, key, cost).await,
        (None, Some(policies)) => {
            let names: Vec<&str> = policies.iter().map(|p| p.as_ref()).collect();
            check_many(&state, &active, &names, key, cost).await
        }
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give \"policy\" or \"policies\", not both",
        )),
        (None, None) => Err(ApiError::bad_request("missing \"policy\"")),
    }
}

async fn check_one(
    state: &AppState,
    active: &Active,
    policy: &str,
    key: &str,
    cost: u64,
) -> Result<Response, ApiError> {
    let found = known_policy(active, policy)?;
    let started = Instant::now();
    let result = active.limiter.check(policy, key, cost).await;
    let elapsed = started.elapsed();
    let handles = active.metrics.get(policy);
    let decision = result.inspect_err(|e| {
        if let (true, Some(h)) = (state.count_store_error(e), handles) {
            h.record(Outcome::Error, elapsed);
        }
    })?;
    if let Some(h) = handles {
        h.record(Outcome::of(&decision), elapsed);
    }
    let quota = found.quota_for(key);
    let body = DecisionBody::new(policy, key, quota, &decision);
    let standing = Standing {
        policy,
        quota,
        decision: &decision,
    };
    Ok(decision_response(status_of(&decision), &[standing], &body))
}

async fn check_many(
    state: &AppState,
    active: &Active,
    policies: &[&str],
    key: &str,
    cost: u64,
) -> Result<Response, ApiError> {
    if policies.is_empty() || policies.len() > MAX_POLICIES {
        return Err(ApiError::bad_request(format!(
            "\"policies\" must name 1 to {MAX_POLICIES} policies, got {}",
            policies.len()
        )));
    }
    let mut quotas = Vec::with_capacity(policies.len());
    for name in policies {
        quotas.push(*known_policy(active, name)?.quota_for(key));
    }
    let started = Instant::now();
    let result = active.limiter.check_all(policies, key, cost).await;
    let elapsed = started.elapsed();
    let record = |outcome: &dyn Fn(usize) -> Outcome| {
        for (i, name) in policies.iter().enumerate() {
            if let Some(h) = active.metrics.get(*name) {
                h.record(outcome(i), elapsed);
            }
        }
    };
    let decisions = result.inspect_err(|e| {
        if state.count_store_error(e) {
            record(&|_| Outcome::Error);
        }
    })?;
    record(&|i| Outcome::of(&decisions[i]));
    let standings: Vec<Standing<'_>> = policies
        .iter()
        .zip(&quotas)
        .zip(&decisions)
        .map(|((policy, quota), decision)| Standing {
            policy,
            quota,
            decision,
        })
        .collect();
    let results: Vec<DecisionBody<'_>> = standings
        .iter()
        .map(|s| DecisionBody::new(s.policy, key, s.quota, s.decision))
        .collect();
    // Not empty: `policies` was checked to name at least one.
    let top = most_restrictive(&standings).unwrap_or(0);
    let status = status_of(&decisions[top]);
    let body = MultiBody {
        top: results[top],
        results,
    };
    Ok(decision_response(status, &standings, &body))
}

fn known_policy<'a>(active: &'a Active, name: &str) -> Result<&'a sluice::Policy, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request("\"policy\" must not be empty"));
    }
    active
        .limiter
        .policy(name)
        .ok_or_else(|| sluice::Error::UnknownPolicy(name.to_owned()).into())
}

fn status_of(decision: &Decision) -> StatusCode {
    if decision.allowed {
        StatusCode::OK
    } else {
        StatusCode::TOO_MANY_REQUESTS
    }
}
