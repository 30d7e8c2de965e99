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

use std::time::Duration;

use bytes::Bytes;
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
    pick(standings, |s| !s.shadow).or_else(|| pick(standings, |_| true))
}

/// The index in `standings` of the most restrictive of those that `keep`
/// holds for; `None` when it holds for none. Allocates nothing: it runs
/// for every answer.
fn pick<'s>(standings: &[Standing<'s>], keep: impl Fn(&Standing<'s>) -> bool) -> Option<usize> {
    let kept = || (standings.iter().enumerate()).filter(|(_, s)| keep(s));
    let at = sluice::most_restrictive(kept().map(|(_, s)| s.decision))?;
    kept().nth(at).map(|(i, _)| i)
}

/// Sets the rate-limit headers for a request decided by `standings`, of
/// those that [count](Standing::counts): the counts and `RateLimit`
/// describe the most restrictive one, `RateLimit-Policy` lists them all,
/// and `Retry-After` is set when that one denied and a wait can admit the
/// request. Does nothing when none counts.
///
/// It runs for every answer, so it is written for that: every value goes
/// into one buffer, each header holds a slice of it (one allocation per
/// answer where a value each cost one or two), and numbers are written by
/// `itoa`, not through `core::fmt`.
pub fn insert(headers: &mut HeaderMap, standings: &[Standing<'_>]) {
    let Some(chosen) = pick(standings, Standing::counts).map(|i| standings[i]) else {
        return;
    };
    let d = chosen.decision;
    let reset = ceil_secs(d.reset_after);
    let mut out = Values::new();
    out.number(d.limit);
    out.end(RATELIMIT_LIMIT);
    out.number(d.remaining);
    out.end(RATELIMIT_REMAINING);
    out.number(reset);
    out.end(RATELIMIT_RESET);
    for (i, s) in standings.iter().filter(|s| s.counts()).enumerate() {
        if i > 0 {
            out.text(", ");
        }
        let (q, w) = policy_rate(s.quota);
        out.sf_string(s.policy);
        out.text(";q=");
        out.number(q);
        out.text(";w=");
        out.number(w);
    }
    out.end(RATELIMIT_POLICY);
    out.sf_string(chosen.policy);
    out.text(";r=");
    out.number(d.remaining);
    out.text(";t=");
    out.number(reset);
    out.end(RATELIMIT);
    if let Some(secs) = retry_after_secs(d) {
        out.number(secs);
        out.end(RETRY_AFTER);
    }
    out.insert_into(headers);
}

/// Header values written one after the other into one buffer.
struct Values {
    buf: Vec<u8>,
    /// Each header's name and where its value ends in `buf`, in order.
    ends: [Option<(HeaderName, usize)>; 6],
    /// The values ended so far.
    count: usize,
}

impl Values {
    fn new() -> Values {
        Values {
            // Room for the usual values: no growing on the way.
            buf: Vec::with_capacity(128),
            ends: [const { None }; 6],
            count: 0,
        }
    }

    fn text(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    fn number(&mut self, n: u64) {
        self.text(itoa::Buffer::new().format(n));
    }

    /// `name` as a structured-field string (RFC 8941 §3.3.3): quoted, with
    /// `"` and `\` escaped; policy names are ASCII, so nothing else needs
    /// care.
    fn sf_string(&mut self, name: &str) {
        self.buf.push(b'"');
        for b in name.bytes() {
            if b == b'"' || b == b'\\' {
                self.buf.push(b'\\');
            }
            self.buf.push(b);
        }
        self.buf.push(b'"');
    }

    /// Ends the value of header `name`.
    fn end(&mut self, name: HeaderName) {
        if let Some(end) = self.ends.get_mut(self.count) {
            *end = Some((name, self.buf.len()));
            self.count += 1;
        }
    }

    /// Sets every header to its value: slices of one shared buffer.
    fn insert_into(self, headers: &mut HeaderMap) {
        let all = Bytes::from(self.buf);
        let mut start = 0;
        for (name, end) in self.ends.into_iter().flatten() {
            // Digits, names of a safe alphabet and punctuation: valid.
            if let Ok(value) = HeaderValue::from_maybe_shared(all.slice(start..end)) {
                headers.insert(name, value);
            }
            start = end;
        }
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

    /// Issue 15: the headers are built without a vector of the standings
    /// that count; the one they describe is still found among all of them,
    /// past a shadow policy and a key an override decided.
    #[test]
    fn issue_15_the_headers_describe_the_right_standing_among_those_that_do_not_count() {
        let (q, h) = (quota(2, 1), quota(100, 3600));
        let would_deny = Decision::denied(2, 0, 1_000_000, Some(400_000)).shadowed();
        let unlimited = Decision::unlimited();
        let roomy = Decision::allowed(100, 90, 2_000_000_000);
        let tight = Decision::denied(2, 0, 3_000_000, Some(2_500_000));
        let standings = [
            standing("dry", &q, &would_deny, true),
            standing("roomy", &h, &roomy, false),
            standing("vip", &h, &unlimited, false),
            standing("tight", &q, &tight, false),
        ];
        assert_eq!(most_restrictive(&standings), Some(3));
        let mut headers = HeaderMap::new();
        insert(&mut headers, &standings);
        assert_eq!(header(&headers, "ratelimit-limit"), "2");
        assert_eq!(header(&headers, "ratelimit-remaining"), "0");
        assert_eq!(header(&headers, "ratelimit-reset"), "3");
        assert_eq!(
            header(&headers, "ratelimit-policy"),
            r#""roomy";q=100;w=3600, "tight";q=2;w=1"#
        );
        assert_eq!(header(&headers, "ratelimit"), r#""tight";r=0;t=3"#);
        assert_eq!(header(&headers, "retry-after"), "3", "2.5 s rounds up");
        assert_eq!(headers.len(), 6);
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
