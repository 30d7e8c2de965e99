//! Every failure the HTTP API reports, as one JSON shape: `{"error": "…"}`.
//!
//! A message never repeats more than [`MAX_ECHO`] bytes of anything the
//! client sent (a policy name, a path, a JSON parser's complaint about the
//! body): every such piece goes through [`echo`], so a 60 KB name costs a
//! 60 KB request but never a 60 KB answer.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An HTTP error: a status and a message that says what was wrong, and
/// never anything internal (addresses, credentials).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<sluice::Error> for ApiError {
    fn from(error: sluice::Error) -> ApiError {
        use sluice::Error;
        match error {
            Error::UnknownPolicy(name) => ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown policy {:?}", echo(&name)),
            ),
            Error::InvalidKey { got: 0 } => ApiError::bad_request("\"key\" must not be empty"),
            Error::InvalidKey { got } => ApiError::bad_request(format!(
                "\"key\" is {got} bytes long; the most is {}",
                sluice::MAX_KEY_LEN
            )),
            Error::InvalidCost => ApiError::bad_request("\"cost\" must be at least 1"),
            Error::DuplicatePolicy(name) => ApiError::bad_request(format!(
                "policy {:?} is named twice in \"policies\"",
                echo(&name)
            )),
            Error::Store(e) => ApiError::store(&e),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                echo(&other.to_string()).to_string(),
            ),
        }
    }
}

impl ApiError {
    /// 503: the store failed. The cause is logged whole (it may name
    /// hosts); the client learns only whether it may pass.
    pub fn store(e: &sluice::StoreError) -> ApiError {
        tracing::warn!(error = %sluice::error::chain(e), "the store failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            if e.is_transient() {
                "the rate limit store is unavailable"
            } else {
                "the rate limit store gave an unexpected answer"
            },
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: &self.message,
        })
        .unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// The most bytes of one piece of client input that an error message
/// repeats; longer input is cut there (at a character boundary) and
/// marked with `…`. Enough to recognise a name, too little to amplify.
pub const MAX_ECHO: usize = 64;

/// Client input as an error message may repeat it: at most [`MAX_ECHO`]
/// bytes of it, then `…` when it was longer. `{}` shows it as is, `{:?}`
/// quoted and escaped (the `…` inside the quotes).
///
/// ```
/// use sluice_server::http::error::echo;
///
/// assert_eq!(format!("{:?}", echo("nope")), r#""nope""#);
/// let long = "x".repeat(60_000);
/// assert_eq!(format!("{}", echo(&long)), format!("{}…", "x".repeat(64)));
/// ```
pub fn echo(input: &str) -> Echo<'_> {
    let mut end = input.len().min(MAX_ECHO);
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    Echo {
        prefix: &input[..end],
        cut: end < input.len(),
    }
}

/// A bounded prefix of client input: see [`echo`].
#[derive(Clone, Copy)]
pub struct Echo<'a> {
    prefix: &'a str,
    cut: bool,
}

impl Echo<'_> {
    fn ellipsis(&self) -> &'static str {
        if self.cut { "…" } else { "" }
    }
}

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix, self.ellipsis())
    }
}

impl fmt::Debug for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}{}\"", self.prefix.escape_debug(), self.ellipsis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_repeated_whole() {
        assert_eq!(echo("api").to_string(), "api");
        assert_eq!(format!("{:?}", echo("a\"b")), r#""a\"b""#);
        let exact = "y".repeat(MAX_ECHO);
        assert_eq!(echo(&exact).to_string(), exact);
    }

    #[test]
    fn issue_12_long_input_is_cut_at_a_character_boundary() {
        let long = "z".repeat(60 * 1024);
        assert_eq!(
            echo(&long).to_string(),
            format!("{}…", "z".repeat(MAX_ECHO))
        );
        // 'é' is two bytes: 63 of 'a', then 'é' would end at byte 65.
        let accents = format!("{}{}", "a".repeat(MAX_ECHO - 1), "é".repeat(10));
        assert_eq!(
            echo(&accents).to_string(),
            format!("{}…", "a".repeat(MAX_ECHO - 1))
        );
        assert_eq!(
            format!("{:?}", echo(&long)),
            format!("\"{}…\"", "z".repeat(MAX_ECHO))
        );
    }
}
