//! `POST /v1/check`: decide a request, charging its cost. An adapter: it
//! reads the JSON, asks the [`DecisionService`], and renders its answer.

use std::borrow::Cow;

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Deserializer};
use sluice_tower::headers::Standing;

use crate::body::{DecisionBody, MultiBody};
use crate::http::bad_body;
use crate::http::decision_response;
use crate::http::error::ApiError;
use crate::http::intake::WholeBody;
use crate::service::DecisionService;

/// The most units one request may cost.
pub const MAX_COST: u64 = 1_000_000;
/// The most policies one request may name.
pub const MAX_POLICIES: usize = 16;

/// The body as JSON: `{"policy": "api", "key": "user-42", "cost": 1}`, or
/// `"policies": [...]` instead of `"policy"`. Only [`CheckRequest::decode`]
/// reads it, so every check of its fields is made in one place. A field
/// may be left out, but `null` is refused (`present`): the document has
/// no nullable field, and schemathesis found `"cost": null` read as 1.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    policy: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    policies: Option<Vec<Text<'a>>>,
    #[serde(borrow, default, deserialize_with = "present")]
    key: Option<Text<'a>>,
    #[serde(default, deserialize_with = "present")]
    cost: Option<u64>,
}

/// A JSON string, borrowed from the body unless escapes made it differ.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A field that is there: its value, never `null` (see [`Wire`]).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A `POST /v1/check` body, decoded and checked: what the handler asks
/// the [`DecisionService`]. Strings borrow from the body unless JSON
/// escapes made them differ.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckRequest<'a> {
    /// The policies to decide on: 1 to [`MAX_POLICIES`] names, none empty
    /// (names that no policy has are the service's to refuse).
    pub policies: Vec<Cow<'a, str>>,
    /// Whether the body listed them under `"policies"`: the answer then
    /// has every policy's decision under `results`.
    pub multi: bool,
    /// The key to charge, as sent (its length is the service's to check).
    pub key: Cow<'a, str>,
    /// The units to charge: 1 to [`MAX_COST`].
    pub cost: u64,
}

impl<'a> CheckRequest<'a> {
    /// Decodes a request body; every failure is a 400 whose message
    /// repeats at most a bounded prefix of the body (see [`echo`](crate::http::error::echo)).
    ///
    /// ```
    /// use sluice_server::http::check::CheckRequest;
    ///
    /// let request = CheckRequest::decode(br#"{"policy": "api", "key": "u\u0000"}"#).unwrap();
    /// assert_eq!((&*request.policies[0], &*request.key, request.cost), ("api", "u\0", 1));
    /// let error = CheckRequest::decode(br#"{"policy": "api"}"#).unwrap_err();
    /// assert_eq!(error.message(), "missing \"key\"");
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<CheckRequest<'a>, ApiError> {
        let wire: Wire<'a> =
            serde_json::from_slice(body).map_err(|e| bad_body::explain(body, &e))?;
        let key = (wire.key.map(|Text(key)| key))
            .ok_or_else(|| ApiError::bad_request("missing \"key\""))?;
        let cost = wire.cost.unwrap_or(1);
        if !(1..=MAX_COST).contains(&cost) {
            return Err(ApiError::bad_request(bad_body::cost_error(
                &cost.to_string(),
            )));
        }
        let (policies, multi) = match (wire.policy, wire.policies) {
            (Some(Text(policy)), None) => (vec![policy], false),
            (None, Some(policies)) if (1..=MAX_POLICIES).contains(&policies.len()) => {
                (policies.into_iter().map(|Text(name)| name).collect(), true)
            }
            (None, Some(policies)) => {
                return Err(ApiError::bad_request(format!(
                    "\"policies\" must name 1 to {MAX_POLICIES} policies, got {}",
                    policies.len()
                )));
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give \"policy\" or \"policies\", not both",
                ));
            }
            (None, None) => return Err(ApiError::bad_request("missing \"policy\"")),
        };
        if policies.iter().any(|name| name.is_empty()) {
            return Err(ApiError::bad_request("\"policy\" must not be empty"));
        }
        Ok(CheckRequest {
            policies,
            multi,
            key,
            cost,
        })
    }
}

/// Handles `POST /v1/check`.
pub async fn check(
    State(service): State<DecisionService>,
    WholeBody(body): WholeBody,
) -> Result<Response, ApiError> {
    let request = CheckRequest::decode(&body)?;
    let (key, cost) = (&*request.key, request.cost);
    tracing::debug!(policies = ?request.policies, key, cost, "deciding");
    let snapshot = service.snapshot();
    let answer = snapshot.check(&request.policies, key, cost).await?;
    let status = super::decision_status(answer.allowed);
    // One policy, the usual case, needs no vector of standings.
    let (one, many): ([Standing<'_>; 1], Vec<Standing<'_>>);
    let standings: &[Standing<'_>] = match &answer.verdicts[..] {
        [verdict] => {
            one = [Standing::from(verdict)];
            &one
        }
        verdicts => {
            many = verdicts.iter().map(Standing::from).collect();
            &many
        }
    };
    let top = DecisionBody::of(&answer.verdicts[answer.deciding()], key, cost);
    Ok(if request.multi {
        let results: Vec<DecisionBody<'_>> = (answer.verdicts.iter())
            .map(|v| DecisionBody::of(v, key, cost))
            .collect();
        decision_response(status, standings, &MultiBody { top, results })
    } else {
        decision_response(status, standings, &top)
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn refused(body: &str) -> String {
        match CheckRequest::decode(body.as_bytes()) {
            Ok(request) => panic!("{body} accepted as {request:?}"),
            Err(e) => {
                assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{body}");
                e.message().to_owned()
            }
        }
    }

    /// Issue 12 (found by schemathesis): `"cost": null` was read as a
    /// cost of 1, and a `null` name as no name; the document has no
    /// nullable field, so each is refused.
    #[test]
    fn issue_12_null_fields_are_refused() {
        for body in [
            r#"{"policy": "api", "key": "k", "cost": null}"#,
            r#"{"policy": null, "policies": ["api"], "key": "k"}"#,
            r#"{"policies": null, "policy": "api", "key": "k"}"#,
            r#"{"policy": "api", "key": null}"#,
        ] {
            let message = refused(body);
            assert!(message.contains("got null"), "{body}: {message}");
        }
        assert!(refused(r#"{"policies": ["api", null], "key": "k"}"#).contains("(strings)"));
    }

    #[test]
    fn names_and_keys_borrow_from_the_body_unless_escaped() {
        let plain = CheckRequest::decode(br#"{"policies": ["a", "b"], "key": "k"}"#).unwrap();
        assert!(matches!(plain.key, Cow::Borrowed("k")));
        assert!(matches!(plain.policies[1], Cow::Borrowed("b")));
        assert!(plain.multi);
        let escaped = CheckRequest::decode(br#"{"policy": "a", "key": "\u007b"}"#).unwrap();
        assert_eq!(escaped.key, "{");
        assert!(!escaped.multi);
    }
}
