//! Request bodies, bounded before any handler sees them: a
//! `Content-Length` above [`MAX_BODY`] is refused at once with 413, before
//! a byte of the body is read, and a body must arrive whole within the
//! body timeout (408 beyond it). Both answers close the connection: the
//! rest of the body is never read, so the connection cannot carry another
//! request.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;

use crate::http::MAX_BODY;
use crate::http::error::ApiError;

/// Reads the body of `request` whole, within `timeout` and [`MAX_BODY`],
/// then hands it to `next`; answers 413, 408 or 400 when it cannot.
pub async fn bounded_body(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) if e.source_is::<LengthLimitError>() => too_large(),
        Ok(Err(_)) => closing(ApiError::bad_request("the request body could not be read")),
        Err(_) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {}",
                sluice::duration::display(timeout)
            ),
        )),
    }
}

/// Whether an [`axum::Error`]'s cause is a `T`.
trait SourceIs {
    fn source_is<T: std::error::Error + 'static>(&self) -> bool;
}

impl SourceIs for axum::Error {
    fn source_is<T: std::error::Error + 'static>(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if e.is::<T>() {
                return true;
            }
            cause = e.source();
        }
        false
    }
}

fn too_large() -> Response {
    closing(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is over {} KiB", MAX_BODY / 1024),
    ))
}

/// `error`'s answer, telling hyper to close the connection after it.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
