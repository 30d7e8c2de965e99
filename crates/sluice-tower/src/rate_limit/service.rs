//! [`RateLimit`]: the service that decides, then calls the inner one.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use sluice::{OnStoreError, Store};
use tower_service::Service;

use super::error::Rejection;
use super::grpc;
use super::layer::{Config, Unkeyed};
use super::{ResponseBody, ResponseFuture};
use crate::headers::{self, Standing};

/// A tower service that rate-limits the requests to `T` with a
/// [`Limiter`](sluice::Limiter) over store `S`; made by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// Clones share the layer's configuration and the limiter's state.
pub struct RateLimit<T, S> {
    inner: T,
    config: Arc<Config<S>>,
}

impl<T, S> RateLimit<T, S> {
    pub(crate) fn from_config(inner: T, config: Arc<Config<S>>) -> Self {
        RateLimit { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The inner service, without the limit.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Clone, S> Clone for RateLimit<T, S> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<T: fmt::Debug, S> fmt::Debug for RateLimit<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<T, S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<T, S>
where
    T: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: 'static,
    S: Store,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = T::Error;
    type Future = ResponseFuture<ResponseBody<ResBody>, T::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // `self.inner` is the clone that `poll_ready` readied: the future
        // takes it and leaves a fresh clone, which the next `poll_ready`
        // readies (tower's `Service` docs, "Be careful when cloning inner
        // services").
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        let key = self.config.key_by.key(&parts);
        let answer = if grpc::is_grpc(&parts.headers) {
            Answer::Grpc
        } else {
            Answer::Http
        };
        let request = Request::from_parts(parts, body);
        let config = Arc::clone(&self.config);
        ResponseFuture::new(limit(config, inner, request, key, answer))
    }
}

/// How the layer answers a request by itself: as HTTP (JSON, or the
/// layer's hooks), or as gRPC (a `grpc-status`; the hooks are not used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Http,
    Grpc,
}

impl Answer {
    /// The response for `rejection`, without the rate-limit headers.
    fn render(self, rejection: &Rejection) -> Response<Full<Bytes>> {
        match self {
            Answer::Http => rejection.response(),
            Answer::Grpc => rejection.grpc_response(),
        }
    }
}

/// Decides `request` (keyed `key`), then waits out any leaky-bucket delay
/// and calls `inner`, or answers by itself.
async fn limit<T, S, ReqBody, ResBody>(
    config: Arc<Config<S>>,
    mut inner: T,
    request: Request<ReqBody>,
    key: Option<String>,
    answer: Answer,
) -> Result<Response<ResponseBody<ResBody>>, T::Error>
where
    T: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S: Store,
{
    let key = match (key, &config.unkeyed) {
        (Some(key), _) => key,
        (None, Unkeyed::SharedKey(shared)) => shared.clone(),
        (None, Unkeyed::Allow) => return Ok(inner.call(request).await?.map(Either::Left)),
        (None, Unkeyed::Reject) => {
            tracing::debug!(policy = %config.policy, "rejected: no rate-limit key in the request");
            return Ok(reject(answer, &Rejection::Unkeyed));
        }
    };
    // The policies in force for this request, even if a `Reloader` swaps
    // them meanwhile.
    let active = config.active.load_full();
    let limiter = &active.limiter;
    let verdict = match limiter.resolve(&config.policy, &key) {
        Ok(resolved) => limiter.decide_one(resolved, config.cost.get()).await,
        Err(error) => Err(error),
    };
    let on_store_error = active.on_store_error(&config.policy);
    let verdict = match verdict {
        Ok(verdict) => verdict,
        Err(sluice::Error::Store(error)) => {
            tracing::warn!(
                policy = %config.policy,
                error = %sluice::error::chain(&error),
                "the rate limit store failed"
            );
            // Reached only without a fallback in the store stack, or in
            // `deny` mode (see `RateLimitLayer::on_store_error`).
            return match (&config.on_unavailable, on_store_error) {
                (Some(respond), _) if answer == Answer::Http => {
                    Ok(respond(&error).map(Either::Right))
                }
                (_, OnStoreError::Allow) => Ok(inner.call(request).await?.map(Either::Left)),
                _ => Ok(reject(answer, &Rejection::Unavailable)),
            };
        }
        Err(error) => {
            let rejection = Rejection::from_error(&error);
            if rejection == Rejection::Misconfigured {
                tracing::error!(policy = %config.policy, error = %error, "rate limiter misconfigured");
            } else {
                tracing::debug!(policy = %config.policy, error = %error, "rejected");
            }
            return Ok(reject(answer, &rejection));
        }
    };
    let decision = verdict.decision;
    // An `allow` admission counted nothing: no numbers to show.
    if decision.degraded() && on_store_error == OnStoreError::Allow {
        tracing::debug!(policy = %config.policy, key, "admitted unlimited: the store failed");
        return Ok(inner.call(request).await?.map(Either::Left));
    }
    let standing = [Standing::from(&verdict)];
    if !decision.allowed {
        tracing::debug!(policy = %config.policy, key, "denied by the rate limit");
        let mut response = match &config.on_denied {
            Some(hook) if answer == Answer::Http => hook(&decision),
            _ => answer.render(&Rejection::Denied {
                policy: config.policy.clone(),
                retry_after: decision.retry_after,
                reason: decision.never_admitted(config.cost.get()),
            }),
        };
        headers::insert(response.headers_mut(), &standing);
        return Ok(response.map(Either::Right));
    }
    if !decision.delay.is_zero() {
        // The leaky bucket's queue: this request's turn comes after `delay`.
        tokio::time::sleep(decision.delay).await;
    }
    let mut response = inner.call(request).await?;
    headers::insert(response.headers_mut(), &standing);
    Ok(response.map(Either::Left))
}

fn reject<B>(answer: Answer, rejection: &Rejection) -> Response<Either<B, Full<Bytes>>> {
    answer.render(rejection).map(Either::Right)
}
