//! The rate-limit response headers: the widely deployed
//! `RateLimit-Limit`/`-Remaining`/`-Reset` trio, and `RateLimit-Policy` and
//! `RateLimit` as structured fields in the form of the IETF httpapi draft
//! (draft-ietf-httpapi-ratelimit-headers-10):
//!
//! ```text
//! RateLimit-Limit: 10
//! RateLimit-Remaining: 9
//! RateLimit-Reset: 6
//! RateLimit-Policy: "api";q=10;w=60
//! RateLimit: "api";r=9;t=6
//! Retry-After: 6                      (denials only)
//! ```
//!
//! Seconds are whole and rounded up, so a client that waits them out is not
//! turned away for a fraction of a second; `Retry-After` is at least 1.

use std::fmt::Write;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use sluice::{Decision, Quota, Verdict};

/// `RateLimit-Limit`: the most units the key can be granted at once.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: units that could be taken now.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the key is back to its untouched state.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`: every policy that applied, as `"name";q=<limit>;w=<period s>`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: the most restrictive policy's standing, as `"name";r=<remaining>;t=<reset s>`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// One policy's decision for a request, as the headers describe it.
#[derive(Clone, Copy, Debug)]
pub struct Standing<'a> {
    /// The policy's name.
    pub policy: &'a str,
    /// The quota that applied to the key.
    pub quota: &'a Quota,
    /// What the policy decided.
    pub decision: &'a Decision,
}

impl<'v> From<&'v Verdict<'_>> for Standing<'v> {
    fn from(verdict: &'v Verdict<'_>) -> Standing<'v> {
        Standing {
            policy: verdict.policy().name(),
            quota: verdict.quota(),
            decision: &verdict.decision,
        }
    }
}

/// The index of the most restrictive of `standings` (see
/// [`sluice::most_restrictive`]); `None` only when `standings` is empty.
pub fn most_restrictive(standings: &[Standing<'_>]) -> Option<usize> {
    sluice::most_restrictive(standings.iter().map(|s| s.decision))
}

/// Sets the rate-limit headers for a request decided by `standings`: the
/// counts and `RateLimit` describe the most restrictive one,
/// `RateLimit-Policy` lists them all, and `Retry-After` is set when that one
/// denied. Does nothing when `standings` is empty.
pub fn insert(headers: &mut HeaderMap, standings: &[Standing<'_>]) {
    let Some(chosen) = most_restrictive(standings).map(|i| standings[i]) else {
        return;
    };
    let d = chosen.decision;
    let reset = ceil_secs(d.reset_after);
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(d.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(d.remaining));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(reset));
    let mut policy = String::new();
    for (i, s) in standings.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let (q, w) = (s.quota.limit(), ceil_secs(s.quota.period()));
        let _ = write!(policy, "{sep}{};q={q};w={w}", sf_string(s.policy));
    }
    let current = format!("{};r={};t={reset}", sf_string(chosen.policy), d.remaining);
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, current)] {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
    if !d.allowed {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(d)));
    }
}

/// The whole seconds a denied client should wait: its `retry_after` rounded
/// up, at least 1; a request that can never be admitted is told to come back
/// when the key is untouched.
pub fn retry_after_secs(decision: &Decision) -> u64 {
    ceil_secs(decision.retry_after.unwrap_or(decision.reset_after)).max(1)
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `name` as a structured-field string (RFC 8941 §3.3.3): quoted, with `"`
/// and `\` escaped; policy names are ASCII, so nothing else needs care.
fn sf_string(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use sluice::Algorithm;

    use super::*;

    fn quota(limit: u64, secs: u64) -> Quota {
        Quota::new(
            Algorithm::TokenBucket,
            limit,
            Duration::from_secs(secs),
            None,
        )
        .unwrap()
    }

    fn header(headers: &HeaderMap, name: &str) -> String {
        headers[name].to_str().unwrap().to_owned()
    }

    #[test]
    fn an_admission_sets_the_counts_and_the_structured_fields() {
        let q = quota(10, 60);
        let d = Decision::allowed(10, 9, 5_000_001);
        let mut headers = HeaderMap::new();
        insert(
            &mut headers,
            &[Standing {
                policy: "api",
                quota: &q,
                decision: &d,
            }],
        );
        assert_eq!(header(&headers, "ratelimit-limit"), "10");
        assert_eq!(header(&headers, "ratelimit-remaining"), "9");
        assert_eq!(header(&headers, "ratelimit-reset"), "6");
        assert_eq!(header(&headers, "ratelimit-policy"), r#""api";q=10;w=60"#);
        assert_eq!(header(&headers, "ratelimit"), r#""api";r=9;t=6"#);
        assert!(headers.get("retry-after").is_none());
    }

    #[test]
    fn a_denial_by_one_of_two_policies_is_described_by_that_policy() {
        let (qs, qh) = (quota(2, 1), quota(100, 3600));
        let denied = Decision::denied(2, 0, 1_000_000, Some(400_000));
        let allowed = Decision::allowed(100, 40, 2_000_000_000);
        let standings = [
            Standing {
                policy: "per-hour",
                quota: &qh,
                decision: &allowed,
            },
            Standing {
                policy: "per-second",
                quota: &qs,
                decision: &denied,
            },
        ];
        assert_eq!(most_restrictive(&standings), Some(1));
        let mut headers = HeaderMap::new();
        insert(&mut headers, &standings);
        assert_eq!(header(&headers, "ratelimit-remaining"), "0");
        assert_eq!(
            header(&headers, "ratelimit-policy"),
            r#""per-hour";q=100;w=3600, "per-second";q=2;w=1"#
        );
        assert_eq!(header(&headers, "ratelimit"), r#""per-second";r=0;t=1"#);
        assert_eq!(header(&headers, "retry-after"), "1", "0.4 s rounds up to 1");
    }

    #[test]
    fn retry_after_is_at_least_one_second_and_never_admissible_waits_for_reset() {
        let soon = Decision::denied(1, 0, 10, Some(1));
        assert_eq!(retry_after_secs(&soon), 1);
        let never = Decision::denied(5, 5, 7_500_000, None);
        assert_eq!(retry_after_secs(&never), 8);
    }

    #[test]
    fn among_admissions_the_fewest_remaining_is_most_restrictive() {
        let q = quota(10, 60);
        let (a, b) = (Decision::allowed(10, 3, 1), Decision::allowed(10, 7, 1));
        let s = |d| Standing {
            policy: "p",
            quota: &q,
            decision: d,
        };
        assert_eq!(most_restrictive(&[s(&b), s(&a)]), Some(1));
        assert_eq!(most_restrictive(&[]), None);
    }
}
