//! The answer: the statuses, the rate-limit headers of the most
//! restrictive one, and (opt-in) the dynamic metadata naming the rule that
//! rejected the request.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind};

use super::decide::Outcome;
use super::{EnvoyOptions, RateLimitRequest, RateLimitResponse, ResponseHeaders};

/// The response to `request` of overall code `overall` with one status per
/// outcome, in order.
pub(super) fn response(
    request: &RateLimitRequest,
    overall: Code,
    outcomes: Vec<Outcome<'_>>,
    options: &EnvoyOptions,
) -> RateLimitResponse {
    let chosen = most_restrictive(&outcomes);
    let mut response = RateLimitResponse {
        overall_code: overall.into(),
        ..RateLimitResponse::default()
    };
    if let Some(i) = chosen {
        response.response_headers_to_add = headers(&outcomes, i, options.response_headers);
        if options.dynamic_metadata && overall == Code::OverLimit {
            response.dynamic_metadata = Some(metadata(&request.domain, &outcomes[i]));
        }
    }
    response.statuses = outcomes.into_iter().map(|o| o.status).collect();
    response
}

/// The status whose headers the answer carries, as envoyproxy/ratelimit
/// chooses it: the last one over its limit, else among those with a
/// limit the first with the fewest remaining. `None` when no limit applied.
fn most_restrictive(outcomes: &[Outcome<'_>]) -> Option<usize> {
    let over = |o: &Outcome<'_>| o.status.code == i32::from(Code::OverLimit);
    if let Some(i) = outcomes.iter().rposition(over) {
        return Some(i);
    }
    let limited = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status.current_limit.is_some());
    let mut best: Option<(usize, u32)> = None;
    for (i, o) in limited {
        if best.is_none_or(|(_, r)| o.status.limit_remaining < r) {
            best = Some((i, o.status.limit_remaining));
        }
    }
    best.map(|(i, _)| i)
}

/// The rate-limit headers of `outcomes[chosen]` in `mode`.
fn headers(outcomes: &[Outcome<'_>], chosen: usize, mode: ResponseHeaders) -> Vec<HeaderValue> {
    let header = |key: &str, value: String| HeaderValue {
        key: key.to_owned(),
        value,
        ..HeaderValue::default()
    };
    if mode == ResponseHeaders::Off {
        return Vec::new();
    }
    let status = &outcomes[chosen].status;
    let limit = status
        .current_limit
        .as_ref()
        .map_or(0, |l| l.requests_per_unit);
    let reset = reset_secs(status);
    let mut headers = vec![
        header("RateLimit-Limit", limit.to_string()),
        header("RateLimit-Remaining", status.limit_remaining.to_string()),
        header("RateLimit-Reset", reset.to_string()),
    ];
    if mode == ResponseHeaders::Ietf {
        let mut policies = Vec::new();
        for o in outcomes {
            if let (Some(limit), Some(rule)) = (&o.status.current_limit, o.rule) {
                let window = rule.unit.seconds();
                let name = sf_string(policy_name(o));
                policies.push(format!("{name};q={};w={window}", limit.requests_per_unit));
            }
        }
        headers.push(header("RateLimit-Policy", policies.join(", ")));
        let name = sf_string(policy_name(&outcomes[chosen]));
        let current = format!("{name};r={};t={reset}", status.limit_remaining);
        headers.push(header("RateLimit", current));
    }
    headers
}

/// The name a structured field gives a rule: its limit's name, else its
/// statistics key.
fn policy_name<'a>(outcome: &'a Outcome<'_>) -> &'a str {
    match outcome.rule {
        Some(rule) if !rule.name.is_empty() => rule.name,
        Some(rule) => &rule.stat_key,
        None => "",
    }
}

/// Whole seconds until the status's window ends, rounded up.
fn reset_secs(status: &DescriptorStatus) -> i64 {
    status
        .duration_until_reset
        .as_ref()
        .map_or(0, |d| d.seconds.saturating_add(i64::from(d.nanos > 0)))
}

/// `text` as a structured-field string (RFC 8941 §3.3.3): quoted, `"` and
/// `\` escaped, and any character outside printable ASCII (which a
/// structured string cannot hold) replaced by `?`.
fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// The dynamic metadata of a rejection: the rule that rejected it
/// (`domain`, `descriptor` (its full key), `name`, `unit`,
/// `requests_per_unit`) and the rule's `metadata`, if any.
fn metadata(domain: &str, outcome: &Outcome<'_>) -> Struct {
    let text = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    let mut fields = HashMap::new();
    fields.insert("domain".to_owned(), text(domain));
    if let Some(rule) = outcome.rule {
        fields.insert("descriptor".to_owned(), text(&rule.stat_key));
        fields.insert("name".to_owned(), text(rule.name));
        fields.insert("unit".to_owned(), text(rule.unit.name()));
        fields.insert(
            "requests_per_unit".to_owned(),
            Value {
                kind: Some(Kind::NumberValue(f64::from(rule.requests_per_unit))),
            },
        );
        if let Some(meta) = rule.descriptor.and_then(|d| d.metadata.as_ref()) {
            fields.insert("metadata".to_owned(), value(meta));
        }
    }
    Struct { fields }
}

/// A JSON value as a `google.protobuf.Value`.
fn value(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    let kind = match json {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(value).collect(),
        }),
        J::Object(map) => Kind::StructValue(Struct {
            fields: map.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}
