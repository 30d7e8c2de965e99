//! Every failure the HTTP API reports, as one JSON shape: `{"error": "…"}`.

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
            Error::UnknownPolicy(name) => {
                ApiError::new(StatusCode::NOT_FOUND, format!("unknown policy {name:?}"))
            }
            Error::InvalidKey { got: 0 } => ApiError::bad_request("\"key\" must not be empty"),
            Error::InvalidKey { got } => ApiError::bad_request(format!(
                "\"key\" is {got} bytes long; the most is {}",
                sluice::MAX_KEY_LEN
            )),
            Error::InvalidCost => ApiError::bad_request("\"cost\" must be at least 1"),
            Error::DuplicatePolicy(name) => {
                ApiError::bad_request(format!("policy {name:?} is named twice in \"policies\""))
            }
            Error::Store(e) => ApiError::store(&e),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
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
