//! The JSON body that describes one decision, as `sluice check` prints it
//! and the HTTP API answers it.

use serde::Serialize;
use sluice::{Algorithm, Decision, Quota, Verdict};

/// One decision as JSON:
/// `{"allowed": true, "policy": "api", "key": "user-42", "limit": 10,
/// "remaining": 9, "reset_after_ms": 6000, "retry_after_ms": 0}`.
///
/// Durations are whole milliseconds rounded up, so a client that waits
/// `retry_after_ms` is not turned away for a fraction of a millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionBody<'a> {
    /// Whether the request may go through.
    pub allowed: bool,
    /// The policy that decided.
    pub policy: &'a str,
    /// The key that was charged.
    pub key: &'a str,
    /// The most units the key can be granted at once.
    pub limit: u64,
    /// Units that could be taken now.
    pub remaining: u64,
    /// Milliseconds until the key is back to its untouched state.
    pub reset_after_ms: u64,
    /// Milliseconds until this request would be admitted; 0 when allowed,
    /// `null` when it never can be.
    pub retry_after_ms: Option<u64>,
    /// Leaky bucket only: milliseconds to wait before going through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Present (true) when a shadow policy would have denied the request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// Present (true) when the store could not decide and the policy's
    /// `on_store_error` did (`allow` or `local`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
}

impl<'a> DecisionBody<'a> {
    /// The body for `decision`, made by `policy` under `quota` for `key`.
    pub fn new(
        policy: &'a str,
        key: &'a str,
        quota: &Quota,
        decision: &Decision,
    ) -> DecisionBody<'a> {
        DecisionBody {
            allowed: decision.allowed,
            policy,
            key,
            limit: decision.limit,
            remaining: decision.remaining,
            reset_after_ms: ceil_ms(decision.reset_after),
            retry_after_ms: decision.retry_after.map(ceil_ms),
            delay_ms: (quota.algorithm() == Algorithm::LeakyBucket)
                .then(|| ceil_ms(decision.delay)),
            shadow: decision.shadow,
            degraded: decision.degraded(),
        }
    }
}

impl<'a> DecisionBody<'a> {
    /// The body for a policy's `verdict` on `key`.
    pub fn of(verdict: &Verdict<'a>, key: &'a str) -> DecisionBody<'a> {
        DecisionBody::new(
            verdict.policy().name(),
            key,
            verdict.quota(),
            &verdict.decision,
        )
    }
}

/// The answer to a check of several policies, all or nothing: the most
/// restrictive policy's decision at the top, and every policy's under
/// `results`, in the order asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MultiBody<'a> {
    /// The deciding policy's decision.
    #[serde(flatten)]
    pub top: DecisionBody<'a>,
    /// Every policy's decision.
    pub results: Vec<DecisionBody<'a>>,
}

fn ceil_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn matches_the_documented_shape() {
        let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
        let decision = Decision::allowed(10, 9, 6_000_000);
        let body = DecisionBody::new("api", "user-42", &quota, &decision);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"allowed":true,"policy":"api","key":"user-42","limit":10,"remaining":9,"reset_after_ms":6000,"retry_after_ms":0}"#
        );
    }

    #[test]
    fn rounds_up_and_adds_leaky_and_shadow_fields() {
        let quota = Quota::new(Algorithm::LeakyBucket, 10, Duration::from_secs(1), None).unwrap();
        let mut decision = Decision::denied(10, 0, 1_001, None).shadowed();
        decision.delay = Duration::from_micros(1);
        let json = serde_json::to_value(DecisionBody::new("p", "k", &quota, &decision)).unwrap();
        assert_eq!(json["reset_after_ms"], 2);
        assert_eq!(json["delay_ms"], 1);
        assert_eq!(json["shadow"], true);
        let never = Decision::denied(10, 0, 0, None);
        let json = serde_json::to_value(DecisionBody::new("p", "k", &quota, &never)).unwrap();
        assert!(json["retry_after_ms"].is_null());
        assert!(json.get("shadow").is_none());
    }
}
