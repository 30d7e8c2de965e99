//! `GET /v1/policies`: the policies in force.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use sluice::{Limit, Override, Policy, Quota};

use crate::service::DecisionService;

#[derive(Serialize)]
struct PolicyList<'a> {
    policies: Vec<PolicyBody<'a>>,
}

/// A policy: its first limit's fields at the top (as before policies had
/// several limits), then every limit under `limits`.
#[derive(Serialize)]
struct PolicyBody<'a> {
    name: &'a str,
    #[serde(flatten)]
    first: LimitBody<'a>,
    shadow: bool,
    limits: Vec<LimitBody<'a>>,
}

#[derive(Clone, Serialize)]
struct LimitBody<'a> {
    algorithm: &'static str,
    #[serde(flatten)]
    quota: QuotaBody,
    overrides: Vec<OverrideBody<'a>>,
}

/// An override: its key (an exact key, or a pattern with `*`) and what it
/// gives: a quota, `"unlimited": true` or `"block": true`.
#[derive(Clone, Serialize)]
struct OverrideBody<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pattern: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaBody>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unlimited: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    block: bool,
}

/// A quota: `limit` units per `period_ms` (the rate), and `burst`, the
/// most units at once (the bucket's capacity; a window's `limit`).
#[derive(Clone, Serialize)]
struct QuotaBody {
    limit: u64,
    period_ms: u64,
    burst: u64,
}

impl From<&Quota> for QuotaBody {
    fn from(quota: &Quota) -> QuotaBody {
        QuotaBody {
            limit: quota.limit(),
            period_ms: quota.period_us().div_ceil(1000),
            burst: quota.capacity(),
        }
    }
}

/// The body of `GET /v1/policies` for `policies`, sorted by name (and
/// each policy's overrides by key).
pub fn policies_json<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Bytes {
    let mut list: Vec<PolicyBody<'_>> = policies
        .into_iter()
        .map(|p| {
            let limits: Vec<LimitBody<'_>> = p.limits().iter().map(LimitBody::of).collect();
            PolicyBody {
                name: p.name(),
                first: limits[0].clone(),
                shadow: p.shadow(),
                limits,
            }
        })
        .collect();
    list.sort_unstable_by_key(|p| p.name);
    // Serialising plain structs of strings and integers cannot fail.
    Bytes::from(serde_json::to_vec(&PolicyList { policies: list }).unwrap_or_default())
}

impl<'a> LimitBody<'a> {
    fn of(limit: &'a Limit) -> LimitBody<'a> {
        // Sorted by key already.
        let overrides: Vec<OverrideBody<'_>> = limit
            .overrides()
            .map(|(key, rule)| OverrideBody {
                key,
                pattern: sluice::overrides::is_pattern(key),
                quota: rule.quota().map(QuotaBody::from),
                unlimited: *rule == Override::Unlimited,
                block: *rule == Override::Blocked,
            })
            .collect();
        LimitBody {
            algorithm: limit.quota().algorithm().name(),
            quota: limit.quota().into(),
            overrides,
        }
    }
}

/// Handles `GET /v1/policies`.
pub async fn list(State(service): State<DecisionService>) -> Response {
    let body = policies_json(service.snapshot().policies());
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
