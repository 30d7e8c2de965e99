//! Why a `POST /v1/check` body was refused, in the API's terms: the field
//! and what it must hold (`"cost" must be a whole number from 1 to
//! 1000000, got 1.5`), never serde's ("invalid type: floating point
//! `1.5`, expected u64").
//!
//! The typed decoder stays the fast path; only a body it refused is read
//! again, as a plain JSON value, to say which field is wrong.

use serde_json::Value;

use crate::http::check::{MAX_COST, MAX_POLICIES};
use crate::http::error::{ApiError, echo};

/// The fields a check body may have, for errors.
const FIELDS: &str = "policy, policies, key and cost";

/// The 400 for `body`, which the typed decoder refused with `error`.
pub fn explain(body: &[u8], error: &serde_json::Error) -> ApiError {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(syntax) => return ApiError::bad_request(syntax_error(&syntax)),
    };
    let Value::Object(fields) = value else {
        return ApiError::bad_request(format!(
            "the body must be a JSON object such as {{\"policy\": \"api\", \"key\": \"user-42\"}}, \
             got {}",
            kind(&value)
        ));
    };
    for (name, value) in &fields {
        let problem = match name.as_str() {
            "policy" | "key" if !value.is_string() => {
                Some(format!("\"{name}\" must be a string, got {}", kind(value)))
            }
            "policies" => match value {
                Value::Array(names) if names.iter().all(Value::is_string) => None,
                Value::Array(_) => Some(format!(
                    "\"policies\" must be a list of 1 to {MAX_POLICIES} policy names (strings)"
                )),
                other => Some(format!(
                    "\"policies\" must be a list of 1 to {MAX_POLICIES} policy names, got {}",
                    kind(other)
                )),
            },
            "cost" if !value.as_u64().is_some_and(|c| (1..=MAX_COST).contains(&c)) => {
                Some(cost_error(&echo(&value.to_string()).to_string()))
            }
            "policy" | "key" | "cost" => None,
            unknown => Some(format!(
                "unknown field {:?}; the fields are {FIELDS}",
                echo(unknown)
            )),
        };
        if let Some(problem) = problem {
            return ApiError::bad_request(problem);
        }
    }
    // Valid JSON, every field of the right type: a field named twice.
    ApiError::bad_request(syntax_error(error))
}

/// The message for a cost out of range, `got` as the client wrote it.
pub fn cost_error(got: &str) -> String {
    format!("\"cost\" must be a whole number from 1 to {MAX_COST}, got {got}")
}

/// What a JSON value is, as the API's errors name it.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {}", echo(&n.to_string())),
        Value::String(s) => format!("the string {:?}", echo(s)),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A body that is not JSON (or names a field twice): serde_json's words
/// for the syntax, bounded, and the position kept whole. serde_json
/// quotes field names between backticks; the API quotes them as JSON.
fn syntax_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let (message, position) = match message.strip_suffix(&position) {
        Some(message) => (message, position.as_str()),
        None => (message.as_str(), ""),
    };
    let message = message.replace('`', "\"");
    format!("invalid JSON body: {}{position}", echo(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        let typed = serde_json::from_str::<serde::de::IgnoredAny>("x").unwrap_err();
        explain(body.as_bytes(), &typed).message().to_owned()
    }

    #[test]
    fn issue_14_errors_name_the_field_in_the_apis_terms() {
        let cases = [
            (
                r#"{"policy": "a", "key": "k", "cost": 1.5}"#,
                "\"cost\" must be a whole number from 1 to 1000000, got 1.5",
            ),
            (
                r#"{"policy": "a", "key": "k", "cost": -1}"#,
                "\"cost\" must be a whole number from 1 to 1000000, got -1",
            ),
            (
                r#"{"policy": "a", "key": "k", "cost": "2"}"#,
                "\"cost\" must be a whole number from 1 to 1000000, got \"2\"",
            ),
            (
                r#"{"policy": "a", "key": "k", "cost": null}"#,
                "\"cost\" must be a whole number from 1 to 1000000, got null",
            ),
            (
                r#"{"policy": "a", "key": 7}"#,
                "\"key\" must be a string, got the number 7",
            ),
            (
                r#"{"policy": null, "key": "k"}"#,
                "\"policy\" must be a string, got null",
            ),
            (
                r#"{"policies": "a", "key": "k"}"#,
                "\"policies\" must be a list of 1 to 16 policy names, got the string \"a\"",
            ),
            (
                r#"{"policies": ["a", 1], "key": "k"}"#,
                "\"policies\" must be a list of 1 to 16 policy names (strings)",
            ),
            (
                r#"{"policy": "a", "key": "k", "colour": 1}"#,
                "unknown field \"colour\"; the fields are policy, policies, key and cost",
            ),
            (
                r#"["a"]"#,
                "the body must be a JSON object such as {\"policy\": \"api\", \"key\": \"user-42\"}, got a list",
            ),
            (
                r#"{"policy": "a""#,
                "invalid JSON body: EOF while parsing an object at line 1 column 14",
            ),
        ];
        for (body, message) in cases {
            let got = refused(body);
            assert_eq!(got, message, "{body}");
            assert!(
                !got.contains("u64") && !got.contains("invalid type"),
                "{got}"
            );
        }
    }
}
