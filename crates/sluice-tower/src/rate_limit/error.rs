//! Every response the layer gives instead of the inner service's: one JSON
//! shape, `{"error": "..."}`, that names no internals; to a gRPC request,
//! the gRPC status that means the same.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::grpc::{self, Code};

/// Why a request was answered by the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The policy denied the request: 429.
    Denied {
        policy: String,
        /// `None` when the request can never fit.
        retry_after: Option<Duration>,
        /// Why no wait admits the request, when none does (see
        /// [`sluice::Decision::never_admitted`]).
        reason: Option<String>,
    },
    /// No key could be found and [`Unkeyed::Reject`](crate::Unkeyed) applies: 400.
    Unkeyed,
    /// The key is longer than [`sluice::MAX_KEY_LEN`] bytes: 400.
    InvalidKey,
    /// Any other error of the limiter (none is expected: the policy was
    /// checked when the layer was built, and the cost is positive): 500.
    Misconfigured,
    /// The store could not decide: 503.
    Unavailable,
}

impl Rejection {
    /// What a failed check means for the client.
    pub(crate) fn from_error(error: &sluice::Error) -> Rejection {
        match error {
            sluice::Error::Store(_) => Rejection::Unavailable,
            sluice::Error::InvalidKey { .. } => Rejection::InvalidKey,
            // The layer's own policy and cost: a misconfiguration, not the
            // client's fault.
            _ => Rejection::Misconfigured,
        }
    }

    /// The status code.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Rejection::Denied { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejection::Unkeyed | Rejection::InvalidKey => StatusCode::BAD_REQUEST,
            Rejection::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The answer to a gRPC request: the gRPC status that means the same
    /// (see [`grpc`]), without the rate-limit headers.
    pub(crate) fn grpc_response(&self) -> Response<Full<Bytes>> {
        let (code, message) = match self {
            Rejection::Denied { .. } => (Code::ResourceExhausted, "rate limit exceeded"),
            Rejection::Unkeyed => (
                Code::InvalidArgument,
                "no rate-limit key found in the request",
            ),
            Rejection::InvalidKey => (Code::InvalidArgument, "rate-limit key too long"),
            Rejection::Misconfigured => (Code::Internal, "rate limiter misconfigured"),
            Rejection::Unavailable => (Code::Unavailable, "rate limiter unavailable"),
        };
        grpc::response(code, message)
    }

    /// The JSON response, without the rate-limit headers.
    pub(crate) fn response(&self) -> Response<Full<Bytes>> {
        let body = match self {
            Rejection::Denied {
                policy,
                retry_after,
                reason,
            } => {
                let mut body = json!({
                    "error": "rate limit exceeded",
                    "policy": policy,
                    "retry_after_ms": retry_after.map(ceil_millis),
                });
                if let Some(reason) = reason {
                    body["reason"] = json!(reason);
                }
                body
            }
            Rejection::Unkeyed => json!({"error": "no rate-limit key found in the request"}),
            Rejection::InvalidKey => json!({
                "error": format!("rate-limit key longer than {} bytes", sluice::MAX_KEY_LEN),
            }),
            Rejection::Misconfigured => json!({"error": "rate limiter misconfigured"}),
            Rejection::Unavailable => json!({"error": "rate limiter unavailable"}),
        };
        json_response(self.status(), &body)
    }
}

/// A response with status `status` and `body` as JSON.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Whole milliseconds, rounded up, so that waiting them out is enough.
fn ceil_millis(d: Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(rejection: Rejection) -> (StatusCode, String) {
        let response = rejection.response();
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_rejection_is_json_without_internals() {
        let denied = Rejection::Denied {
            policy: "api".into(),
            retry_after: Some(Duration::from_micros(1_500_001)),
            reason: None,
        };
        assert_eq!(
            body(denied).await,
            (
                StatusCode::TOO_MANY_REQUESTS,
                r#"{"error":"rate limit exceeded","policy":"api","retry_after_ms":1501}"#.into()
            )
        );
        let never = Rejection::Denied {
            policy: "api".into(),
            retry_after: None,
            reason: Some("cost 50 exceeds the burst 10: it can never be admitted".into()),
        };
        let json: serde_json::Value = serde_json::from_str(&body(never).await.1).unwrap();
        assert!(json["retry_after_ms"].is_null(), "{json}");
        assert_eq!(
            json["reason"],
            "cost 50 exceeds the burst 10: it can never be admitted"
        );
        for (rejection, status, text) in [
            (
                Rejection::Unkeyed,
                400,
                r#"{"error":"no rate-limit key found in the request"}"#,
            ),
            (
                Rejection::InvalidKey,
                400,
                r#"{"error":"rate-limit key longer than 1024 bytes"}"#,
            ),
            (
                Rejection::Misconfigured,
                500,
                r#"{"error":"rate limiter misconfigured"}"#,
            ),
            (
                Rejection::Unavailable,
                503,
                r#"{"error":"rate limiter unavailable"}"#,
            ),
        ] {
            assert_eq!(
                body(rejection).await,
                (StatusCode::from_u16(status).unwrap(), text.into())
            );
        }
    }

    #[test]
    fn grpc_answers_carry_the_matching_status() {
        for (rejection, status) in [
            (
                Rejection::Denied {
                    policy: "api".into(),
                    retry_after: None,
                    reason: None,
                },
                "8",
            ),
            (Rejection::Unkeyed, "3"),
            (Rejection::InvalidKey, "3"),
            (Rejection::Misconfigured, "13"),
            (Rejection::Unavailable, "14"),
        ] {
            let response = rejection.grpc_response();
            assert_eq!(response.status(), StatusCode::OK, "{rejection:?}");
            assert_eq!(response.headers()["grpc-status"], status, "{rejection:?}");
        }
    }

    #[test]
    fn errors_map_to_rejections() {
        let store = sluice::Error::Store(sluice::StoreError::Protocol("secret detail".into()));
        assert_eq!(Rejection::from_error(&store), Rejection::Unavailable);
        let key = sluice::Error::InvalidKey { got: 2000 };
        assert_eq!(Rejection::from_error(&key), Rejection::InvalidKey);
        let policy = sluice::Error::UnknownPolicy("nope".into());
        assert_eq!(Rejection::from_error(&policy), Rejection::Misconfigured);
    }
}
