//! The JSON body that describes one decision, as `sluice check` prints it
//! and the HTTP API answers it.
//!
//! # Layout
//!
//! - `write`: [`WriteJson`], the bodies written as JSON by hand for the
//!   HTTP answers, byte for byte what `serde_json` writes for them.

mod write;

use serde::Serialize;
use sluice::{Algorithm, Decision, Quota, Verdict};

pub use write::WriteJson;

/// One decision as JSON:
/// `{"allowed": true, "policy": "api", "key": "user-42", "burst": 10,
/// "remaining": 9, "reset_after_ms": 6000, "retry_after_ms": 0}`.
///
/// `burst` is the most units the key can spend at once (the bucket's
/// capacity; a window's `limit`) and `remaining` counts the units that
/// could be taken now out of it: never the configuration's `limit`, which
/// is a rate (`limit` per `period`, as `/v1/policies` shows it).
///
/// Durations are whole milliseconds rounded up, so a client that waits
/// `retry_after_ms` is not turned away for a fraction of a millisecond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionBody<'a> {
    /// Whether the request may go through.
    pub allowed: bool,
    /// The policy that decided.
    pub policy: &'a str,
    /// The key that was charged.
    pub key: &'a str,
    /// The most units the key can be granted at once; absent for a key
    /// whose override is `unlimited`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Units that could be taken now; absent when `unlimited`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Milliseconds until the key is back to its untouched state.
    pub reset_after_ms: u64,
    /// Milliseconds until this request would be admitted; 0 when allowed,
    /// `null` when no wait admits it (then `reason` says why).
    pub retry_after_ms: Option<u64>,
    /// Why no wait admits this request: its cost exceeds the burst, or the
    /// key is blocked. Present only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Leaky bucket only: milliseconds to wait before going through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Present (true) when a shadow policy would have denied the request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// Present (true) when the key's override is `unlimited`: the policy
    /// does not apply to it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unlimited: bool,
    /// Present (true) when the key's override is `block`: always denied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
    /// Present (true) when the store could not decide and the policy's
    /// `on_store_error` did (`allow` or `local`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
}

impl<'a> DecisionBody<'a> {
    /// The body for `decision` on a request of `cost`, made by `policy`
    /// under `quota` for `key`.
    pub fn new(
        policy: &'a str,
        key: &'a str,
        quota: &Quota,
        decision: &Decision,
        cost: u64,
    ) -> DecisionBody<'a> {
        let unlimited = decision.is_unlimited();
        let counted = |n: u64| (!unlimited).then_some(n);
        DecisionBody {
            allowed: decision.allowed,
            policy,
            key,
            burst: counted(decision.limit),
            remaining: counted(decision.remaining),
            reset_after_ms: ceil_ms(decision.reset_after),
            retry_after_ms: decision.retry_after.map(ceil_ms),
            reason: decision.never_admitted(cost),
            delay_ms: (quota.algorithm() == Algorithm::LeakyBucket && !unlimited)
                .then(|| ceil_ms(decision.delay)),
            shadow: decision.shadow,
            unlimited,
            blocked: decision.is_blocked(),
            degraded: decision.degraded(),
        }
    }

    /// The body for a policy's `verdict` on `key`, for a request of `cost`.
    pub fn of(verdict: &Verdict<'a>, key: &'a str, cost: u64) -> DecisionBody<'a> {
        DecisionBody::new(
            verdict.policy().name(),
            key,
            verdict.quota(),
            &verdict.decision,
            cost,
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
        let body = DecisionBody::new("api", "user-42", &quota, &decision, 1);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"allowed":true,"policy":"api","key":"user-42","burst":10,"remaining":9,"reset_after_ms":6000,"retry_after_ms":0}"#
        );
    }

    #[test]
    fn rounds_up_and_adds_leaky_and_shadow_fields() {
        let quota = Quota::new(Algorithm::LeakyBucket, 10, Duration::from_secs(1), None).unwrap();
        let mut decision = Decision::denied(10, 0, 1_001, None).shadowed();
        decision.delay = Duration::from_micros(1);
        let json = serde_json::to_value(DecisionBody::new("p", "k", &quota, &decision, 1)).unwrap();
        assert_eq!(json["reset_after_ms"], 2);
        assert_eq!(json["delay_ms"], 1);
        assert_eq!(json["shadow"], true);
        let never = Decision::denied(10, 0, 0, None);
        let json = serde_json::to_value(DecisionBody::new("p", "k", &quota, &never, 50)).unwrap();
        assert!(json["retry_after_ms"].is_null());
        assert!(json.get("shadow").is_none());
        assert_eq!(
            json["reason"],
            "cost 50 exceeds the burst 10: it can never be admitted"
        );
    }

    #[test]
    fn an_unlimited_key_has_no_counts_and_a_blocked_one_says_so() {
        let quota = Quota::new(Algorithm::FixedWindow, 10, Duration::from_secs(1), None).unwrap();
        let unlimited = Decision::unlimited();
        let json =
            serde_json::to_value(DecisionBody::new("p", "k", &quota, &unlimited, 1)).unwrap();
        assert_eq!(json["unlimited"], true);
        assert!(
            json.get("burst").is_none() && json.get("remaining").is_none(),
            "{json}"
        );
        let blocked = Decision::blocked();
        let json = serde_json::to_value(DecisionBody::new("p", "k", &quota, &blocked, 1)).unwrap();
        assert_eq!(
            (&json["blocked"], &json["allowed"]),
            (&true.into(), &false.into())
        );
        assert_eq!(json["reason"], "the key is blocked");
        assert!(json["retry_after_ms"].is_null());
    }
}
