//! Request bodies, bounded before any handler sees them: a
//! `Content-Length` above [`MAX_BODY`] is refused at once with 413, before
//! a byte of the body is read, and a body must arrive whole within the
//! body timeout (408 beyond it). Both answers close the connection: the
//! rest of the body is never read, so the connection cannot carry another
//! request.
//!
//! It runs for every request, so it is a [`Layer`] whose future is a
//! concrete state machine, not `axum::middleware::from_fn` (which boxes
//! its future and clones the boxed route for each request): it reads the
//! body, then calls the route. Its timer is armed only when the body has
//! not all arrived at the first read, so a body that came with its head
//! costs no timer.
//!
//! The body read is handed to the route as a [`WholeBody`] in the
//! request's extensions, the request's own body left empty: a route takes
//! it with that extractor, not `Bytes` (which would find nothing), and
//! the body is not collected a second time (about 2,000 instructions per
//! request, under callgrind).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::HttpBody;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::Limited;
use tokio::time::Sleep;
use tower::{Layer, Service};

use crate::http::MAX_BODY;
use crate::http::error::ApiError;

/// Reads each request's body whole, within a timeout and [`MAX_BODY`],
/// before the route sees the request; answers 413, 408 or 400 when it
/// cannot.
#[derive(Clone, Copy, Debug)]
pub struct BoundedBodyLayer {
    timeout: Duration,
}

impl BoundedBodyLayer {
    /// Bodies must arrive whole within `timeout`.
    pub fn new(timeout: Duration) -> BoundedBodyLayer {
        BoundedBodyLayer { timeout }
    }
}

impl<S> Layer<S> for BoundedBodyLayer {
    type Service = BoundedBody<S>;

    fn layer(&self, inner: S) -> BoundedBody<S> {
        BoundedBody {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service of [`BoundedBodyLayer`] in front of the route `S`.
#[derive(Clone, Debug)]
pub struct BoundedBody<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<Request> for BoundedBody<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Unpin,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoundedBodyFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> BoundedBodyFuture<S> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return BoundedBodyFuture {
                state: State::Answered(Some(too_large())),
            };
        }
        // The route is called once the body is in: the clone that was
        // made ready goes with the request (tower's `Service` contract).
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let (parts, body) = request.into_parts();
        BoundedBodyFuture {
            state: State::Reading(Reading {
                parts: Some(parts),
                body: Gather::new(body),
                deadline: None,
                timeout: self.timeout,
                inner,
            }),
        }
    }
}

/// The future of [`BoundedBody`]: the body read, then the route's answer.
pub struct BoundedBodyFuture<S: Service<Request>> {
    state: State<S>,
}

// Not boxed: the router boxes this future whole already, and the large
// variant, first, gives way to the small ones; a box would cost each
// request one more allocation.
#[allow(clippy::large_enum_variant)]
enum State<S: Service<Request>> {
    /// Reading the body.
    Reading(Reading<S>),
    /// The route answering.
    Calling(S::Future),
    /// Answered without the route (taken once).
    Answered(Option<Response>),
}

struct Reading<S> {
    parts: Option<axum::http::request::Parts>,
    body: Gather,
    /// Armed when the body first has to be waited for.
    deadline: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    inner: S,
}

impl<S> Future for BoundedBodyFuture<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Unpin,
    S::Future: Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match &mut self.state {
                State::Calling(future) => return Pin::new(future).poll(cx),
                State::Answered(response) => {
                    return Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                        // Polled again after its answer: a caller's bug.
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    })));
                }
                State::Reading(reading) => {
                    let next = match ready!(reading.poll_body(cx)) {
                        Ok(request) => State::Calling(reading.inner.call(request)),
                        Err(response) => State::Answered(Some(response)),
                    };
                    self.state = next;
                }
            }
        }
    }
}

impl<S> Reading<S> {
    /// The request with its body whole, or the answer that refuses it.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Result<Request, Response>> {
        let gathered = match self.body.poll(cx) {
            Poll::Ready(gathered) => gathered,
            Poll::Pending => {
                let timeout = self.timeout;
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(deadline.as_mut().poll(cx));
                return Poll::Ready(Err(closing(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {}",
                        sluice::duration::display(timeout)
                    ),
                ))));
            }
        };
        Poll::Ready(match (gathered, self.parts.take()) {
            (Gathered::Whole(body), Some(mut parts)) => {
                parts.extensions.insert(WholeBody(body));
                Ok(Request::from_parts(parts, Body::empty()))
            }
            (Gathered::TooLarge, _) => Err(too_large()),
            _ => Err(closing(ApiError::bad_request(
                "the request body could not be read",
            ))),
        })
    }
}

/// A body read frame by frame into one buffer, refused past [`MAX_BODY`].
/// Not `Collect<Limited<Body>>`: a body that comes in one frame, the usual
/// case, is kept as that frame (no list of buffers, no copy), and the
/// read ends as soon as the body says it has ended, without one more poll.
struct Gather {
    body: Body,
    /// The data so far, while it is one frame's.
    first: Bytes,
    /// The data so far, once more than one frame brought some.
    more: Option<BytesMut>,
}

/// What [`Gather`] read.
enum Gathered {
    /// The body, whole.
    Whole(Bytes),
    /// Over [`MAX_BODY`].
    TooLarge,
    /// The body failed (the connection broke, a bad chunk).
    Broken,
}

impl Gather {
    fn new(body: Body) -> Gather {
        Gather {
            body,
            first: Bytes::new(),
            more: None,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Gathered> {
        loop {
            if self.body.is_end_stream() {
                return Poll::Ready(Gathered::Whole(self.take()));
            }
            let data = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => return Poll::Ready(Gathered::Whole(self.take())),
                Some(Err(_)) => return Poll::Ready(Gathered::Broken),
                // Trailers carry no data.
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            let had = self.more.as_ref().map_or(self.first.len(), BytesMut::len);
            if had + data.len() > MAX_BODY {
                return Poll::Ready(Gathered::TooLarge);
            }
            match &mut self.more {
                Some(more) => more.extend_from_slice(&data),
                None if self.first.is_empty() => self.first = data,
                None => {
                    let mut more = BytesMut::with_capacity(had + data.len());
                    more.extend_from_slice(&self.first);
                    more.extend_from_slice(&data);
                    self.more = Some(more);
                }
            }
        }
    }

    /// The data read, whole.
    fn take(&mut self) -> Bytes {
        match self.more.take() {
            Some(more) => more.freeze(),
            None => std::mem::take(&mut self.first),
        }
    }
}

/// A request's body, whole: what [`BoundedBodyLayer`] read, taken from the
/// request's extensions. Behind no such layer, it reads the body itself,
/// within [`MAX_BODY`].
#[derive(Clone, Debug)]
pub struct WholeBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for WholeBody {
    type Rejection = ApiError;

    async fn from_request(mut request: Request, state: &S) -> Result<WholeBody, ApiError> {
        if let Some(body) = request.extensions_mut().remove::<WholeBody>() {
            return Ok(body);
        }
        let request = request.map(|body| Body::new(Limited::new(body, MAX_BODY)));
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(WholeBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large_error())
            }
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

fn too_large() -> Response {
    closing(too_large_error())
}

fn too_large_error() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is over {} KiB", MAX_BODY / 1024),
    )
}

/// `error`'s answer, telling hyper to close the connection after it.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::Router;
    use axum::routing::post;
    use tokio::sync::mpsc;
    use tower::ServiceExt;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// A route that echoes the body it was given, behind the layer.
    fn app() -> Router {
        Router::new()
            .route("/", post(|WholeBody(body): WholeBody| async move { body }))
            .layer(BoundedBodyLayer::new(TIMEOUT))
    }

    /// A request whose body is what is sent on the channel, as it is sent.
    fn streamed() -> (mpsc::Sender<Result<Bytes, Infallible>>, Request) {
        let (send, receive) = mpsc::channel(4);
        let stream = tokio_stream::wrappers::ReceiverStream::new(receive);
        let request = Request::post("/").body(Body::from_stream(stream)).unwrap();
        (send, request)
    }

    async fn text(response: Response) -> String {
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_arrives_within_the_timeout_reaches_the_route_whole() {
        let (send, request) = streamed();
        let sender = tokio::spawn(async move {
            for part in ["{\"a\":", "1}"] {
                tokio::time::sleep(TIMEOUT / 3).await;
                send.send(Ok(Bytes::from(part))).await.unwrap();
            }
        });
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "{\"a\":1}");
        sender.await.unwrap();
    }

    /// Behind no layer, the extractor reads the body itself, within
    /// MAX_BODY.
    #[tokio::test]
    async fn without_the_layer_the_extractor_reads_the_body_itself() {
        let bare = Router::new().route("/", post(|WholeBody(body): WholeBody| async move { body }));
        let request = Request::post("/").body(Body::from("{\"a\":1}")).unwrap();
        let response = bare.clone().oneshot(request).await.unwrap();
        assert_eq!(text(response).await, "{\"a\":1}");
        let request = Request::post("/")
            .body(Body::from(vec![b' '; MAX_BODY + 1]))
            .unwrap();
        let response = bare.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(text(response).await.contains("the body is over 64 KiB"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_gets_408_at_the_timeout_and_closes() {
        let (send, request) = streamed();
        send.send(Ok(Bytes::from("{\"a\""))).await.unwrap();
        let started = tokio::time::Instant::now();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(started.elapsed(), TIMEOUT);
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        drop(send);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_gets_413_and_a_declared_one_is_not_read() {
        let (send, request) = streamed();
        let chunk = Bytes::from(vec![b' '; 1024]);
        let sender = tokio::spawn(async move {
            // Sent until the layer stops reading: past MAX_BODY.
            while send.send(Ok(chunk.clone())).await.is_ok() {}
        });
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        sender.await.unwrap();

        // Announced too large: refused before the body is polled at all.
        let (send, mut request) = streamed();
        let declared = HeaderValue::from(MAX_BODY + 1);
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, declared);
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        drop(send);
    }
}
