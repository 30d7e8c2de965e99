//! The decision bodies written as JSON by hand, for the HTTP answers: byte
//! for byte what `serde_json` writes for them (the tests hold the two
//! together), without escaping each field's name on every answer.
//! Profiled with callgrind, `serde_json` spent about 2,600 instructions
//! per `/v1/check` answer, half of it in escaping strings.

use super::{DecisionBody, MultiBody};

/// A body the HTTP API answers with, written as compact JSON.
pub trait WriteJson {
    /// Appends the body to `out` as JSON: exactly what
    /// `serde_json::to_vec` writes for it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sluice::{Algorithm, Decision, Quota};
    /// use sluice_server::body::{DecisionBody, WriteJson};
    ///
    /// let quota = Quota::new(Algorithm::Gcra, 10, Duration::from_secs(60), None).unwrap();
    /// let decision = Decision::allowed(10, 9, 6_000_000);
    /// let body = DecisionBody::new("api", "user-\"42\"", &quota, &decision, 1);
    /// let mut out = Vec::new();
    /// body.write_json(&mut out);
    /// assert_eq!(out, serde_json::to_vec(&body).unwrap());
    /// ```
    fn write_json(&self, out: &mut Vec<u8>);
}

impl WriteJson for DecisionBody<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        self.write_fields(out);
        out.push(b'}');
    }
}

impl WriteJson for MultiBody<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        self.top.write_fields(out);
        out.extend_from_slice(b",\"results\":[");
        for (i, result) in self.results.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            result.write_json(out);
        }
        out.extend_from_slice(b"]}");
    }
}

impl DecisionBody<'_> {
    /// The fields, in the order of the struct (serde's), without braces.
    fn write_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.allowed {
            b"\"allowed\":true,\"policy\":"
        } else {
            b"\"allowed\":false,\"policy\":"
        });
        string(out, self.policy);
        out.extend_from_slice(b",\"key\":");
        string(out, self.key);
        if let Some(burst) = self.burst {
            out.extend_from_slice(b",\"burst\":");
            number(out, burst);
        }
        if let Some(remaining) = self.remaining {
            out.extend_from_slice(b",\"remaining\":");
            number(out, remaining);
        }
        out.extend_from_slice(b",\"reset_after_ms\":");
        number(out, self.reset_after_ms);
        out.extend_from_slice(b",\"retry_after_ms\":");
        match self.retry_after_ms {
            Some(ms) => number(out, ms),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(reason) = &self.reason {
            out.extend_from_slice(b",\"reason\":");
            string(out, reason);
        }
        if let Some(delay) = self.delay_ms {
            out.extend_from_slice(b",\"delay_ms\":");
            number(out, delay);
        }
        for (set, field) in [
            (self.shadow, &b",\"shadow\":true"[..]),
            (self.unlimited, b",\"unlimited\":true"),
            (self.blocked, b",\"blocked\":true"),
            (self.degraded, b",\"degraded\":true"),
        ] {
            if set {
                out.extend_from_slice(field);
            }
        }
    }
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `text` as a JSON string, escaped as `serde_json` escapes it: `"` and
/// `\` with a backslash, the control characters below 0x20 as `\b`,
/// `\t`, `\n`, `\f`, `\r` or `\u00xx` (lower-case hex), everything else
/// (DEL and non-ASCII included) as it is.
fn string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0A => b'n',
            0x0C => b'f',
            0x0D => b'r',
            0x00..=0x1F => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == b'u' {
            let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]);
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use sluice::{Algorithm, Decision, Quota};

    use super::*;

    fn written(body: &impl WriteJson) -> String {
        let mut out = Vec::new();
        body.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// Every kind of decision the bodies describe: admitted, denied with
    /// and without a wait, shadowed, leaky, unlimited, blocked, degraded.
    fn decisions() -> Vec<(Algorithm, Decision, u64)> {
        let mut leaky = Decision::allowed(10, 3, 1_500);
        leaky.delay = Duration::from_micros(2_001);
        let mut degraded = Decision::allowed(5, 4, 1_000_000);
        degraded.source = sluice::Source::Fallback;
        vec![
            (Algorithm::Gcra, Decision::allowed(10, 9, 6_000_000), 1),
            (
                Algorithm::TokenBucket,
                Decision::denied(10, 0, 1_001, Some(999)),
                1,
            ),
            (Algorithm::FixedWindow, Decision::denied(10, 0, 0, None), 50),
            (
                Algorithm::Gcra,
                Decision::denied(2, 0, 1_000_000, Some(400_000)).shadowed(),
                1,
            ),
            (Algorithm::LeakyBucket, leaky, 1),
            (Algorithm::Gcra, Decision::unlimited(), 1),
            (Algorithm::LeakyBucket, Decision::unlimited(), 1),
            (Algorithm::SlidingWindowCounter, Decision::blocked(), 1),
            (Algorithm::Gcra, degraded, 1),
            (Algorithm::Gcra, Decision::allowed(u64::MAX, u64::MAX, 0), 1),
        ]
    }

    fn quota(algorithm: Algorithm) -> Quota {
        Quota::new(algorithm, 10, Duration::from_secs(60), None).unwrap()
    }

    #[test]
    fn every_kind_of_decision_is_written_as_serde_json_writes_it() {
        for (algorithm, decision, cost) in decisions() {
            let q = quota(algorithm);
            let body = DecisionBody::new("per-second", "user-42", &q, &decision, cost);
            assert_eq!(
                written(&body),
                serde_json::to_string(&body).unwrap(),
                "{decision:?}"
            );
        }
    }

    #[test]
    fn a_multi_body_is_written_as_serde_json_writes_it() {
        let all = decisions();
        let quotas: Vec<Quota> = all.iter().map(|(a, _, _)| quota(*a)).collect();
        let bodies: Vec<DecisionBody<'_>> = (all.iter().zip(&quotas))
            .map(|((_, d, cost), q)| DecisionBody::new("p", "k\n", q, d, *cost))
            .collect();
        for n in [1, 2, bodies.len()] {
            let multi = MultiBody {
                top: bodies[n - 1].clone(),
                results: bodies[..n].to_vec(),
            };
            assert_eq!(written(&multi), serde_json::to_string(&multi).unwrap());
        }
    }

    #[test]
    fn every_byte_that_needs_escaping_is_escaped_as_serde_json_escapes_it() {
        let key: String = (0u8..=0x7F).map(char::from).chain("é€😀".chars()).collect();
        let q = quota(Algorithm::Gcra);
        let decision = Decision::allowed(10, 9, 1);
        let body = DecisionBody::new("api", &key, &q, &decision, 1);
        assert_eq!(written(&body), serde_json::to_string(&body).unwrap());
    }

    proptest! {
        #[test]
        fn any_key_is_written_as_serde_json_writes_it(key in any::<String>(), remaining in any::<u64>()) {
            let q = quota(Algorithm::TokenBucket);
            let decision = Decision::allowed(10, remaining, 1);
            let body = DecisionBody::new("api", &key, &q, &decision, 1);
            prop_assert_eq!(written(&body), serde_json::to_string(&body).unwrap());
        }
    }
}
