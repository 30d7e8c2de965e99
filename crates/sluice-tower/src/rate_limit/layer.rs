//! [`RateLimitLayer`]: the configuration, shared by every service it makes.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use sluice::{Decision, Limiter, OnStoreError, Store, StoreError};
use tower_layer::Layer;

use super::RateLimit;
use super::reload::{Active, Reloader, Shared};
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

/// Builds the response to a request that could not be decided; see
/// [`RateLimitLayer::on_unavailable`].
pub(crate) type StoreErrorHook = Arc<dyn Fn(&StoreError) -> Response<Full<Bytes>> + Send + Sync>;

/// What every [`RateLimit`] made by one layer shares.
pub(crate) struct Config<S> {
    /// The limiter in force, which a [`Reloader`] swaps.
    pub(crate) active: Shared<S>,
    pub(crate) policy: String,
    pub(crate) key_by: KeyBy,
    pub(crate) unkeyed: Unkeyed,
    pub(crate) cost: NonZeroU64,
    pub(crate) on_denied: Option<DeniedHook>,
    pub(crate) on_unavailable: Option<StoreErrorHook>,
}

impl<S> Clone for Config<S> {
    fn clone(&self) -> Self {
        Config {
            active: Arc::clone(&self.active),
            policy: self.policy.clone(),
            key_by: self.key_by.clone(),
            unkeyed: self.unkeyed.clone(),
            cost: self.cost,
            on_denied: self.on_denied.clone(),
            on_unavailable: self.on_unavailable.clone(),
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
    /// Limits requests by `policy` of `limiter` (all of its limits), each
    /// keyed by `key_by`, costing 1, rejecting unkeyed requests and
    /// answering 503 when the store fails.
    ///
    /// A `policy` that `limiter` does not have is an error here, so that a
    /// misspelt name is found when the service is built.
    pub fn new(
        limiter: Limiter<S>,
        policy: impl Into<String>,
        key_by: KeyBy,
    ) -> Result<Self, sluice::Error> {
        let policy = policy.into();
        let active = Active::new(limiter, &policy, None)?;
        Ok(RateLimitLayer {
            config: Arc::new(Config {
                active: Arc::new(ArcSwap::from_pointee(active)),
                policy,
                key_by,
                unkeyed: Unkeyed::default(),
                cost: NonZeroU64::MIN,
                on_denied: None,
                on_unavailable: None,
            }),
        })
    }

    /// A handle that swaps this layer's policies while it runs (see
    /// [`Reloader`]), shared with the layer's clones and every service
    /// they made. Take it once the layer is configured: a later
    /// [`on_store_error`](Self::on_store_error) gives the layer a limiter
    /// of its own, which an earlier handle does not reach.
    pub fn reloader(&self) -> Reloader<S> {
        Reloader::new(Arc::clone(&self.config.active), self.config.policy.clone())
    }

    /// What the layer's policy answers when the store cannot decide: the
    /// core's [`OnStoreError`], set on the policy (in this layer's limiter
    /// only; the limiter's other clones keep theirs). Default: the
    /// policy's own, [`OnStoreError::Deny`] unless it was given one.
    ///
    /// The modes are decided by a [`Fallback`](sluice::store::Fallback) in
    /// the store stack: build the limiter on a
    /// [`Resilient`](sluice::store::Resilient) store for `local`, the deny
    /// cache and the circuit breaker. Without one, the layer still honours
    /// `allow` (it lets the request through) and answers 503 for `deny`
    /// and `local`.
    ///
    /// An admission by `allow` carries no rate-limit headers: nothing was
    /// counted. `local` decisions carry the headers of the local share.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use sluice::{Algorithm, FakeClock, Limiter, MemoryStore, Policy, Quota};
    /// use sluice::store::Resilient;
    /// use sluice_tower::{KeyBy, OnStoreError, RateLimitLayer};
    ///
    /// # let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
    /// # let clock = FakeClock::new(0);
    /// let store = Resilient::new(MemoryStore::with_clock(clock.clone()), clock);
    /// let limiter = Limiter::new(store, [Policy::new("api", quota).unwrap()]);
    /// // Fail open: an outage of the store does not take the API down.
    /// let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip())
    ///     .unwrap()
    ///     .on_store_error(OnStoreError::Allow);
    /// ```
    pub fn on_store_error(mut self, mode: OnStoreError) -> Self {
        let config = Arc::make_mut(&mut self.config);
        let limiter = config.active.load().limiter.clone();
        // The policy is there: every limiter in force was checked for it.
        if let Ok(active) = Active::new(limiter, &config.policy, Some(mode)) {
            // A limiter of this layer's own, as a builder's copy-on-write
            // promises: clones made before keep theirs.
            config.active = Arc::new(ArcSwap::from_pointee(active));
        }
        self
    }

    /// Answers what `f` builds from the store's error when a request is
    /// not decided (in `deny` mode, or `local` without a fallback), instead
    /// of 503 `{"error": "rate limiter unavailable"}`.
    ///
    /// `f` returns a response with any body that converts into the layer's
    /// ([`Full<Bytes>`](crate::Full)): a `&'static str`, a `String`, a
    /// `Vec<u8>` or [`Bytes`](crate::Bytes).
    ///
    /// ```
    /// use sluice_tower::http::{Response, StatusCode};
    /// # use std::time::Duration;
    /// # use sluice::{Algorithm, Limiter, MemoryStore, Policy, Quota};
    /// use sluice_tower::{KeyBy, RateLimitLayer};
    ///
    /// # let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
    /// # let limiter = Limiter::new(MemoryStore::new(), [Policy::new("api", quota).unwrap()]);
    /// let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip()).unwrap().on_unavailable(|_error| {
    ///     let mut response = Response::new("try again soon\n");
    ///     *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    ///     response
    /// });
    /// ```
    pub fn on_unavailable<F, B>(mut self, f: F) -> Self
    where
        F: Fn(&StoreError) -> Response<B> + Send + Sync + 'static,
        B: Into<Full<Bytes>>,
    {
        let hook: StoreErrorHook = Arc::new(move |error| f(error).map(Into::into));
        Arc::make_mut(&mut self.config).on_unavailable = Some(hook);
        self
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
    /// whatever `f` returns (replacing any of the same name). `f` returns a
    /// response with any body that converts into the layer's
    /// ([`Full<Bytes>`](crate::Full)): a `&'static str`, a `String`, a
    /// `Vec<u8>` or [`Bytes`](crate::Bytes), so axum's `http` (or
    /// [`sluice_tower::http`](crate::http)) is all it takes.
    ///
    /// ```
    /// use axum::http::{Response, StatusCode};
    /// # use std::time::Duration;
    /// # use sluice::{Algorithm, Limiter, MemoryStore, Policy, Quota};
    /// use sluice_tower::{KeyBy, RateLimitLayer};
    ///
    /// # let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
    /// # let limiter = Limiter::new(MemoryStore::new(), [Policy::new("api", quota).unwrap()]);
    /// let layer = RateLimitLayer::new(limiter, "api", KeyBy::peer_ip()).unwrap().on_denied(|decision| {
    ///     let mut response = Response::new(format!("slow down: {} left\n", decision.remaining));
    ///     *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    ///     response
    /// });
    /// ```
    pub fn on_denied<F, B>(mut self, f: F) -> Self
    where
        F: Fn(&Decision) -> Response<B> + Send + Sync + 'static,
        B: Into<Full<Bytes>>,
    {
        let hook: DeniedHook = Arc::new(move |decision| f(decision).map(Into::into));
        Arc::make_mut(&mut self.config).on_denied = Some(hook);
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
            .field(
                "on_unavailable",
                &self.on_unavailable.as_ref().map(|_| ".."),
            )
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for RateLimitLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RateLimitLayer").field(&self.config).finish()
    }
}
