//! [`RateLimitLayer`]: the configuration, shared by every service it makes.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use sluice::{Decision, Limiter, Store};
use tower_layer::Layer;

use super::RateLimit;
use crate::KeyBy;

/// What to do with a request that has no key (see [`KeyBy`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Unkeyed {
    /// Answer 400 `{"error": "no rate-limit key found in the request"}`.
    #[default]
    Reject,
    /// Let it through unlimited, without rate-limit headers.
    Allow,
    /// Count it against this one key (1 to 1024 bytes), shared by every
    /// unkeyed request. A client that sends this key itself shares it too.
    SharedKey(String),
}

/// Builds the response to a denied request from its decision; see
/// [`RateLimitLayer::on_denied`].
pub(crate) type DeniedHook = Arc<dyn Fn(&Decision) -> Response<Full<Bytes>> + Send + Sync>;

/// What every [`RateLimit`] made by one layer shares.
pub(crate) struct Config<S> {
    pub(crate) limiter: Limiter<S>,
    pub(crate) policy: String,
    pub(crate) key_by: KeyBy,
    pub(crate) unkeyed: Unkeyed,
    pub(crate) cost: NonZeroU64,
    pub(crate) on_denied: Option<DeniedHook>,
}

impl<S> Clone for Config<S> {
    fn clone(&self) -> Self {
        Config {
            limiter: self.limiter.clone(),
            policy: self.policy.clone(),
            key_by: self.key_by.clone(),
            unkeyed: self.unkeyed.clone(),
            cost: self.cost,
            on_denied: self.on_denied.clone(),
        }
    }
}

/// Applies a [`Limiter`] policy to every request of a tower service: see
/// [the module docs](super) for the responses.
///
/// The layer and every service it makes share one configuration behind an
/// [`Arc`], and the limiter's state lives in its store, which clones share
/// too: axum, which clones the service for every request, enforces one
/// limit, not one per clone.
pub struct RateLimitLayer<S> {
    config: Arc<Config<S>>,
}

impl<S> Clone for RateLimitLayer<S> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: Store> RateLimitLayer<S> {
    /// Limits requests by `policy` of `limiter`, each keyed by `key_by`,
    /// costing 1, rejecting unkeyed requests.
    ///
    /// A `policy` that `limiter` does not have is a misconfiguration that
    /// every request reports as 500.
    pub fn new(limiter: Limiter<S>, policy: impl Into<String>, key_by: KeyBy) -> Self {
        RateLimitLayer {
            config: Arc::new(Config {
                limiter,
                policy: policy.into(),
                key_by,
                unkeyed: Unkeyed::default(),
                cost: NonZeroU64::MIN,
                on_denied: None,
            }),
        }
    }

    /// What to do with requests that have no key; default [`Unkeyed::Reject`].
    pub fn on_unkeyed(mut self, unkeyed: Unkeyed) -> Self {
        Arc::make_mut(&mut self.config).unkeyed = unkeyed;
        self
    }

    /// The units each request costs; default 1.
    pub fn cost(mut self, cost: NonZeroU64) -> Self {
        Arc::make_mut(&mut self.config).cost = cost;
        self
    }

    /// Builds the response to a denied request with `f` instead of the
    /// JSON default. The rate-limit headers and `Retry-After` are added to
    /// whatever `f` returns (replacing any of the same name).
    ///
    /// ```
    /// use http::{Response, StatusCode};
    /// use http_body_util::Full;
    /// # use std::time::Duration;
    /// # use sluice::{Algorithm, Limiter, MemoryStore, Policy, Quota};
    /// use sluice_tower::{KeyBy, RateLimitLayer};
    ///
    /// # let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
    /// # let limiter = Limiter::new(MemoryStore::new(), [Policy::new("api", quota).unwrap()]);
    /// let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip()).on_denied(|_decision| {
    ///     let mut response = Response::new(Full::from("slow down\n"));
    ///     *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    ///     response
    /// });
    /// ```
    pub fn on_denied<F>(mut self, f: F) -> Self
    where
        F: Fn(&Decision) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).on_denied = Some(Arc::new(f));
        self
    }
}

impl<S, T> Layer<T> for RateLimitLayer<S> {
    type Service = RateLimit<T, S>;

    fn layer(&self, inner: T) -> Self::Service {
        RateLimit::from_config(inner, Arc::clone(&self.config))
    }
}

impl<S> fmt::Debug for Config<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("policy", &self.policy)
            .field("key_by", &self.key_by)
            .field("unkeyed", &self.unkeyed)
            .field("cost", &self.cost)
            .field("on_denied", &self.on_denied.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for RateLimitLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RateLimitLayer").field(&self.config).finish()
    }
}
