//! The layer's answers to gRPC requests (`content-type: application/grpc`,
//! `application/grpc+proto`, …): a gRPC client reads only `grpc-status`,
//! so an HTTP 429 or 503 would reach it as `UNAVAILABLE` or `UNKNOWN`
//! whatever happened.
//!
//! Each answer is a *Trailers-Only* response (the gRPC over HTTP/2 spec):
//! HTTP 200, no body, and `grpc-status` and `grpc-message` in the one
//! header block, which a client reads as the call's trailers. The
//! rate-limit headers and `Retry-After` go in the same block, so a tonic
//! client finds them in the `Status`'s metadata.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Response};
use http_body_util::Full;

/// gRPC status codes the layer answers with (grpc/grpc `doc/statuscodes.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// 3: the request carries no usable key.
    InvalidArgument = 3,
    /// 8: denied by the rate limit; the client may retry after
    /// `Retry-After` (Envoy's and grpc-go's limiters answer the same).
    ResourceExhausted = 8,
    /// 13: the layer is misconfigured.
    Internal = 13,
    /// 14: the store could not decide; retrying is safe.
    Unavailable = 14,
}

/// Whether `headers` are those of a gRPC request.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// The Trailers-Only response of status `code` with `message` (printable
/// ASCII with no `%`, so that it needs no percent-encoding).
pub(crate) fn response(code: Code, message: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(code as u16));
    headers.insert("grpc-message", HeaderValue::from_static(message));
    response
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn grpc_requests_are_told_by_their_content_type() {
        let mut headers = HeaderMap::new();
        assert!(!is_grpc(&headers));
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc-web", true),
            ("application/json", false),
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_grpc(&headers), grpc, "{value}");
        }
    }

    #[test]
    fn a_trailers_only_answer_carries_the_status_in_its_headers() {
        let response = response(Code::ResourceExhausted, "rate limit exceeded");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "8");
        assert_eq!(response.headers()["grpc-message"], "rate limit exceeded");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
    }
}
