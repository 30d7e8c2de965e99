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
//!
//! What the headers count:
//!
//! - `RateLimit-Limit` is the policy's *burst*: the most units a key can
//!   spend at once (the bucket's capacity; a window's `limit`), so
//!   `RateLimit-Remaining` never exceeds it.
//! - `RateLimit-Policy` states the *rate*, `limit` per `period`, as the
//!   draft's whole-second window `w` and quota `q`, never overstated (see
//!   [`policy_rate`]): `3 per 700ms` is `q=4;w=1`.
//! - Shadow policies never count: they decide and report in the body, but
//!   a client is never told to back off because of a dry run. Nor do keys
//!   decided by an `unlimited` or `block` override. When no policy counts,
//!   no rate-limit header is set.
//! - `Retry-After` is set only for a denial that a wait can turn into an
//!   admission: never for a request whose cost exceeds the burst, nor for
//!   a blocked key.

use std::fmt::Write;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use sluice::{Decision, Quota, Source, Verdict};

/// `RateLimit-Limit`: the burst, the most units the key can be granted at once.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: units that could be taken now.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the key is back to its untouched state.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`: every policy that counted, as `"name";q=<quota>;w=<window s>` (see [`policy_rate`]).
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
    /// Whether the policy is in shadow mode: its standing is reported in
    /// the body, never in the headers.
    pub shadow: bool,
}

impl<'v> From<&'v Verdict<'_>> for Standing<'v> {
    fn from(verdict: &'v Verdict<'_>) -> Standing<'v> {
        Standing {
            policy: verdict.policy().name(),
            quota: verdict.quota(),
            decision: &verdict.decision,
            shadow: verdict.policy().shadow(),
        }
    }
}

impl Standing<'_> {
    /// Whether this standing counts in the headers: not a shadow policy's,
    /// and not decided by an `unlimited` or `block` override.
    pub fn counts(&self) -> bool {
        !self.shadow && self.decision.source != Source::Override
    }
}

/// The index of the standing a client must heed: the most restrictive (see
/// [`sluice::most_restrictive`]) of those of policies not in shadow mode,
/// or of all when every one is in shadow mode; `None` only when
/// `standings` is empty.
pub fn most_restrictive(standings: &[Standing<'_>]) -> Option<usize> {
    let enforced = |s: &Standing<'_>| !s.shadow;
    let pick = |keep: &dyn Fn(&Standing<'_>) -> bool| {
        let kept: Vec<usize> = (0..standings.len())
            .filter(|&i| keep(&standings[i]))
            .collect();
        sluice::most_restrictive(kept.iter().map(|&i| standings[i].decision)).map(|at| kept[at])
    };
    pick(&enforced).or_else(|| pick(&|_| true))
}

/// Sets the rate-limit headers for a request decided by `standings`, of
/// those that [count](Standing::counts): the counts and `RateLimit`
/// describe the most restrictive one, `RateLimit-Policy` lists them all,
/// and `Retry-After` is set when that one denied and a wait can admit the
/// request. Does nothing when none counts.
pub fn insert(headers: &mut HeaderMap, standings: &[Standing<'_>]) {
    let counted: Vec<Standing<'_>> = standings.iter().copied().filter(Standing::counts).collect();
    let Some(chosen) = most_restrictive(&counted).map(|i| counted[i]) else {
        return;
    };
    let d = chosen.decision;
    let reset = ceil_secs(d.reset_after);
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(d.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(d.remaining));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(reset));
    let mut policy = String::new();
    for (i, s) in counted.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let (q, w) = policy_rate(s.quota);
        let _ = write!(policy, "{sep}{};q={q};w={w}", sf_string(s.policy));
    }
    let current = format!("{};r={};t={reset}", sf_string(chosen.policy), d.remaining);
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, current)] {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
    if let Some(secs) = retry_after_secs(d) {
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// The whole seconds a denied client should wait: its `retry_after` rounded
/// up, at least 1. `None` for an admission, and for a denial that no wait
/// turns into an admission (a cost above the burst, a blocked key): a
/// client told to retry would be denied for ever.
pub fn retry_after_secs(decision: &Decision) -> Option<u64> {
    if decision.allowed {
        return None;
    }
    decision.retry_after.map(|wait| ceil_secs(wait).max(1))
}

/// A quota's rate as the draft's `RateLimit-Policy` gives it: `(q, w)`,
/// `q` units per window of `w` whole seconds. `w` is the period rounded
/// up to whole seconds (the draft's `w` is whole seconds) and `q` the
/// units that fit in `w` at the quota's rate, rounded down, so the rate
/// stated is never above the true one: `10 per 60s` is `(10, 60)`,
/// `3 per 700ms` is `(4, 1)` (the true rate is 4.29 per second),
/// `2 per 1500ms` is `(2, 2)`.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Quota};
/// use sluice_tower::headers::policy_rate;
///
/// let q = |limit, ms| Quota::new(Algorithm::Gcra, limit, Duration::from_millis(ms), None).unwrap();
/// assert_eq!(policy_rate(&q(10, 60_000)), (10, 60));
/// assert_eq!(policy_rate(&q(3, 700)), (4, 1));
/// assert_eq!(policy_rate(&q(2, 1_500)), (2, 2));
/// ```
pub fn policy_rate(quota: &Quota) -> (u64, u64) {
    let period_us = u128::from(quota.period_us().max(1));
    let window = period_us.div_ceil(1_000_000);
    let q = u128::from(quota.limit()) * window * 1_000_000 / period_us;
    let clamp = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
    (clamp(q), clamp(window))
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
                shadow: false,
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
                shadow: false,
            },
            Standing {
                policy: "per-second",
                quota: &qs,
                decision: &denied,
                shadow: false,
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
    fn retry_after_is_at_least_one_second_and_never_set_when_no_wait_admits() {
        let soon = Decision::denied(1, 0, 10, Some(1));
        assert_eq!(retry_after_secs(&soon), Some(1));
        let never = Decision::denied(5, 5, 7_500_000, None);
        assert_eq!(retry_after_secs(&never), None);
        assert_eq!(retry_after_secs(&Decision::allowed(5, 4, 1)), None);
    }

    /// Issue 14: a request whose cost exceeds the burst is told no
    /// `Retry-After` (it used to be told 1 s, and retried for ever).
    #[test]
    fn issue_14_a_request_that_never_fits_gets_no_retry_after() {
        let q = quota(10, 60);
        let never = Decision::denied(10, 10, 0, None);
        let mut headers = HeaderMap::new();
        insert(&mut headers, &[standing("api", &q, &never, false)]);
        assert!(headers.get("retry-after").is_none());
        assert_eq!(header(&headers, "ratelimit-remaining"), "10");
        let blocked = Decision::blocked();
        let mut headers = HeaderMap::new();
        insert(&mut headers, &[standing("api", &q, &blocked, false)]);
        assert!(headers.is_empty(), "a blocked key: {headers:?}");
    }

    /// Issue 14: shadow policies never count in the headers; with only
    /// shadow policies there are none.
    #[test]
    fn issue_14_shadow_policies_never_tell_a_client_to_back_off() {
        let (q, h) = (quota(2, 1), quota(100, 3600));
        let would_deny = Decision::denied(2, 0, 1_000_000, Some(400_000)).shadowed();
        let allowed = Decision::allowed(100, 40, 2_000_000_000);
        let mut headers = HeaderMap::new();
        insert(&mut headers, &[standing("dry", &q, &would_deny, true)]);
        assert!(headers.is_empty(), "{headers:?}");
        let both = [
            standing("dry", &q, &would_deny, true),
            standing("per-hour", &h, &allowed, false),
        ];
        assert_eq!(most_restrictive(&both), Some(1), "the enforced one");
        let mut headers = HeaderMap::new();
        insert(&mut headers, &both);
        assert_eq!(header(&headers, "ratelimit-remaining"), "40");
        assert_eq!(
            header(&headers, "ratelimit-policy"),
            r#""per-hour";q=100;w=3600"#
        );
        assert_eq!(header(&headers, "ratelimit"), r#""per-hour";r=40;t=2000"#);
        let unlimited = Decision::unlimited();
        let mut headers = HeaderMap::new();
        insert(&mut headers, &[standing("api", &h, &unlimited, false)]);
        assert!(headers.is_empty(), "an unlimited key: {headers:?}");
    }

    /// Issue 14: `3 per 700ms` was stated `q=3;w=1`, a lower rate than
    /// the true one; the rate stated is never above the true one either.
    #[test]
    fn issue_14_policy_states_the_true_rate_below_a_second() {
        let q = Quota::new(Algorithm::Gcra, 3, Duration::from_millis(700), None).unwrap();
        let d = Decision::allowed(3, 2, 1);
        let mut headers = HeaderMap::new();
        insert(&mut headers, &[standing("fast", &q, &d, false)]);
        assert_eq!(header(&headers, "ratelimit-policy"), r#""fast";q=4;w=1"#);
        for (limit, ms) in [
            (1, 1),
            (3, 700),
            (7, 1_500),
            (1_000, 999),
            (5, 60_000),
            (9, 2_001),
        ] {
            let q = Quota::new(Algorithm::Gcra, limit, Duration::from_millis(ms), None).unwrap();
            let (quota_q, w) = policy_rate(&q);
            // q / w <= limit / period, and one more unit would overstate it.
            let (period, stated) = (u128::from(ms), u128::from(quota_q));
            assert!(
                stated * period <= u128::from(limit) * u128::from(w) * 1000,
                "{limit}/{ms}ms"
            );
            assert!(
                (stated + 1) * period > u128::from(limit) * u128::from(w) * 1000,
                "{limit}/{ms}ms"
            );
            assert!(
                w * 1000 >= ms && (w - 1) * 1000 < ms,
                "{limit}/{ms}ms: w={w}"
            );
        }
    }

    fn standing<'a>(
        policy: &'a str,
        quota: &'a Quota,
        decision: &'a Decision,
        shadow: bool,
    ) -> Standing<'a> {
        Standing {
            policy,
            quota,
            decision,
            shadow,
        }
    }

    #[test]
    fn among_admissions_the_fewest_remaining_is_most_restrictive() {
        let q = quota(10, 60);
        let (a, b) = (Decision::allowed(10, 3, 1), Decision::allowed(10, 7, 1));
        let s = |d| Standing {
            policy: "p",
            quota: &q,
            decision: d,
            shadow: false,
        };
        assert_eq!(most_restrictive(&[s(&b), s(&a)]), Some(1));
        assert_eq!(most_restrictive(&[]), None);
    }
}
