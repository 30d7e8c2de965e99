//! `RateLimitRequest` and `RateLimitResponse` in the proto3 JSON mapping,
//! written by hand for these messages only: envoy-types has no serde
//! support, and the crates that give proto3 JSON (pbjson, prost-reflect)
//! need the types generated or described for them.
//!
//! As protojson reads it, a request's fields are accepted under their JSON
//! names (`hitsAddend`) and their proto names (`hits_addend`), integers as
//! numbers or strings, enums as names or numbers, and `null` as the
//! default; unknown fields are refused. A response is written as protojson
//! writes it: JSON names, enums by name, durations as `"1.5s"`, and
//! fields at their default left out.

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::{
    Entry, RateLimitOverride,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::google::protobuf::{UInt64Value, Value, value::Kind};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{RateLimitRequest, RateLimitResponse};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRequest {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    descriptors: Option<Vec<WireDescriptor>>,
    #[serde(default, alias = "hits_addend", rename = "hitsAddend")]
    hits_addend: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDescriptor {
    #[serde(default)]
    entries: Option<Vec<WireEntry>>,
    #[serde(default)]
    limit: Option<WireOverride>,
    #[serde(default, alias = "hits_addend", rename = "hitsAddend")]
    hits_addend: Option<Int>,
    #[serde(default, alias = "is_negative_hits", rename = "isNegativeHits")]
    is_negative_hits: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOverride {
    #[serde(default, alias = "requests_per_unit", rename = "requestsPerUnit")]
    requests_per_unit: Option<Int>,
    #[serde(default)]
    unit: Option<WireUnit>,
}

/// An integer as proto3 JSON writes it: a number, or a string of one.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Number(u64),
    Text(String),
}

impl Int {
    fn get(&self, field: &str, max: u64) -> Result<u64, String> {
        let n = match self {
            Int::Number(n) => Some(*n),
            // Digits only: Rust's parse would take a leading `+` too.
            Int::Text(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                t.parse().ok()
            }
            Int::Text(_) => None,
        };
        n.filter(|n| *n <= max)
            .ok_or_else(|| format!("\"{field}\" must be an integer from 0 to {max}"))
    }
}

/// An enum as proto3 JSON writes it: its name, or its number.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireUnit {
    Number(i32),
    Name(String),
}

/// Reads a request from its proto3 JSON; the error says what is wrong.
pub fn request_from_json(body: &[u8]) -> Result<RateLimitRequest, String> {
    let json: Json = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    messages_are_objects(&json)?;
    let wire: WireRequest = serde_json::from_value(json).map_err(|e| e.to_string())?;
    let hits_addend = match &wire.hits_addend {
        Some(n) => u32::try_from(n.get("hitsAddend", u64::from(u32::MAX))?).unwrap_or(u32::MAX),
        None => 0,
    };
    let mut descriptors = Vec::new();
    for d in wire.descriptors.unwrap_or_default() {
        let entries = (d.entries.unwrap_or_default().into_iter())
            .map(|e| Entry {
                key: e.key.unwrap_or_default(),
                value: e.value.unwrap_or_default(),
            })
            .collect();
        let limit = match d.limit {
            None => None,
            Some(l) => Some(RateLimitOverride {
                requests_per_unit: match &l.requests_per_unit {
                    Some(n) => u32::try_from(n.get("requestsPerUnit", u64::from(u32::MAX))?)
                        .unwrap_or(u32::MAX),
                    None => 0,
                },
                unit: match l.unit {
                    None => 0,
                    // A number Envoy's API does not define is refused here,
                    // whatever the domain, as a name it does not define is.
                    Some(WireUnit::Number(n)) => Unit::try_from(n)
                        .map_err(|_| format!("unknown unit {n}"))?
                        .into(),
                    Some(WireUnit::Name(name)) => Unit::from_str_name(&name)
                        .ok_or_else(|| format!("unknown unit {name:?}"))?
                        .into(),
                },
            }),
        };
        let hits_addend = match &d.hits_addend {
            Some(n) => Some(UInt64Value {
                value: n.get("hitsAddend", u64::MAX)?,
            }),
            None => None,
        };
        descriptors.push(RateLimitDescriptor {
            entries,
            limit,
            hits_addend,
            is_negative_hits: d.is_negative_hits.unwrap_or(false),
        });
    }
    Ok(RateLimitRequest {
        domain: wire.domain.unwrap_or_default(),
        descriptors,
        hits_addend,
    })
}

/// Refuses a message written as an array: serde reads a struct from a
/// sequence of its fields, which proto3 JSON does not allow.
fn messages_are_objects(request: &Json) -> Result<(), String> {
    let object = |v: &Json, what: &str| match v {
        Json::Object(_) | Json::Null => Ok(()),
        _ => Err(format!("{what} must be a JSON object")),
    };
    object(request, "the request")?;
    for d in request
        .get("descriptors")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        object(d, "a descriptor")?;
        for e in d
            .get("entries")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            object(e, "an entry")?;
        }
        if let Some(limit) = d.get("limit") {
            object(limit, "a limit")?;
        }
    }
    Ok(())
}

/// A response as protojson writes it.
pub fn response_to_json(response: &RateLimitResponse) -> Json {
    let mut out = Map::new();
    out.insert("overallCode".into(), code(response.overall_code));
    let statuses: Vec<Json> = (response.statuses.iter())
        .map(|s| {
            let mut status = Map::new();
            status.insert("code".into(), code(s.code));
            if let Some(limit) = &s.current_limit {
                let mut l = Map::new();
                if !limit.name.is_empty() {
                    l.insert("name".into(), json!(limit.name));
                }
                if limit.requests_per_unit != 0 {
                    l.insert("requestsPerUnit".into(), json!(limit.requests_per_unit));
                }
                let unit = Unit::try_from(limit.unit)
                    .map_or(json!(limit.unit), |u| json!(u.as_str_name()));
                l.insert("unit".into(), unit);
                status.insert("currentLimit".into(), Json::Object(l));
            }
            if s.limit_remaining != 0 {
                status.insert("limitRemaining".into(), json!(s.limit_remaining));
            }
            if let Some(d) = &s.duration_until_reset {
                status.insert(
                    "durationUntilReset".into(),
                    json!(duration(d.seconds, d.nanos)),
                );
            }
            Json::Object(status)
        })
        .collect();
    if !statuses.is_empty() {
        out.insert("statuses".into(), Json::Array(statuses));
    }
    if !response.response_headers_to_add.is_empty() {
        let headers = (response.response_headers_to_add.iter())
            .map(|h| json!({"key": h.key, "value": h.value}))
            .collect();
        out.insert("responseHeadersToAdd".into(), Json::Array(headers));
    }
    if let Some(meta) = &response.dynamic_metadata {
        let fields = meta
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect();
        out.insert("dynamicMetadata".into(), Json::Object(fields));
    }
    Json::Object(out)
}

fn code(code: i32) -> Json {
    Code::try_from(code).map_or(json!(code), |c| json!(c.as_str_name()))
}

/// A duration as protojson writes it: seconds, with 3, 6 or 9 fractional
/// digits when there is a fraction.
fn duration(seconds: i64, nanos: i32) -> String {
    match nanos {
        0 => format!("{seconds}s"),
        n if n % 1_000_000 == 0 => format!("{seconds}.{:03}s", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{seconds}.{:06}s", n / 1_000),
        n => format!("{seconds}.{n:09}s"),
    }
}

fn value(v: &Value) -> Json {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => Json::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), value(v)))
                .collect(),
        ),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(value).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_names_and_proto_names() {
        let a = request_from_json(
            br#"{"domain": "d", "descriptors": [{"entries": [{"key": "k", "value": "v"}], "hitsAddend": "3", "limit": {"requestsPerUnit": 5, "unit": "MINUTE"}}], "hitsAddend": 2}"#,
        )
        .unwrap();
        let b = request_from_json(
            br#"{"domain": "d", "descriptors": [{"entries": [{"key": "k", "value": "v"}], "hits_addend": 3, "limit": {"requests_per_unit": "5", "unit": 2}}], "hits_addend": "2"}"#,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hits_addend, 2);
        assert_eq!(a.descriptors[0].hits_addend, Some(UInt64Value { value: 3 }));
        let limit = a.descriptors[0].limit.unwrap();
        assert_eq!(
            (limit.requests_per_unit, limit.unit),
            (5, Unit::Minute as i32)
        );
    }

    #[test]
    fn refuses_what_protojson_refuses() {
        for body in [
            &b"{"[..],
            br#"{"domain": "d", "extra": 1}"#,
            br#"{"hitsAddend": 4294967296}"#,
            br#"{"hitsAddend": -1}"#,
            br#"{"hitsAddend": "+1"}"#,
            br#"{"descriptors": [{"limit": {"unit": -58800}}]}"#,
            br#"{"descriptors": [{"limit": {"unit": "FORTNIGHT"}}]}"#,
            br#"[]"#,
            br#"{"descriptors": [[]]}"#,
            br#"{"descriptors": [{"entries": [["k", "v"]]}]}"#,
            br#"{"descriptors": [{"limit": [1, 2]}]}"#,
        ] {
            assert!(
                request_from_json(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn durations_as_protojson_writes_them() {
        assert_eq!(duration(33, 0), "33s");
        assert_eq!(duration(32, 750_000_000), "32.750s");
        assert_eq!(duration(0, 1_000), "0.000001s");
        assert_eq!(duration(1, 5), "1.000000005s");
    }
}
