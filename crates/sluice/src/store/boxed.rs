//! [`BoxStore`]: any [`Store`] behind one type, chosen at run time.

use std::future::Future;
use std::pin::Pin;

use super::{Check, Store};
use crate::algorithm::State;
use crate::{Decision, StoreError};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any store, or any stack of store decorators, behind one type: what a
/// program that picks its store at start-up holds (as tower's `BoxService`
/// holds any service), so that `Limiter<BoxStore>` (and a tower layer over
/// it) is one type whether the store is memory or Redis. Each call costs
/// one allocation for its future.
///
/// [`store::open`](crate::store::open()) gives the store a URL names
/// (`memory`, `redis://…`) as a `BoxStore`.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, BoxStore, Check, MemoryStore, Quota, Store};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = BoxStore::new(MemoryStore::new());
/// let quota = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(60), None).unwrap();
/// assert!(store.decide_one(&Check::new("api", "k", &quota, 1)).await.unwrap().allowed);
/// assert!(!store.decide_one(&Check::new("api", "k", &quota, 1)).await.unwrap().allowed);
/// # });
/// ```
pub struct BoxStore {
    inner: Box<dyn DynStore>,
}

impl BoxStore {
    /// `store` behind the common type.
    pub fn new(store: impl Store) -> BoxStore {
        BoxStore {
            inner: Box::new(store),
        }
    }
}

impl std::fmt::Debug for BoxStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxStore")
    }
}

/// [`Store`] with boxed futures, so that it can be a trait object.
trait DynStore: Send + Sync + 'static {
    fn decide<'a, 'c>(
        &'a self,
        checks: &'a [Check<'c>],
    ) -> BoxFuture<'a, Result<Vec<Decision>, StoreError>>;
    fn decide_one<'a, 'c>(
        &'a self,
        check: &'a Check<'c>,
    ) -> BoxFuture<'a, Result<Decision, StoreError>>;
    fn peek<'a, 'c>(&'a self, check: &'a Check<'c>) -> BoxFuture<'a, Result<Decision, StoreError>>;
    fn reset<'a, 'c>(&'a self, check: &'a Check<'c>) -> BoxFuture<'a, Result<(), StoreError>>;
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn inspect<'a, 'c>(
        &'a self,
        check: &'a Check<'c>,
    ) -> BoxFuture<'a, Result<Option<State>, StoreError>>;
}

impl<S: Store> DynStore for S {
    fn decide<'a, 'c>(
        &'a self,
        checks: &'a [Check<'c>],
    ) -> BoxFuture<'a, Result<Vec<Decision>, StoreError>> {
        Box::pin(Store::decide(self, checks))
    }

    fn decide_one<'a, 'c>(
        &'a self,
        check: &'a Check<'c>,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(Store::decide_one(self, check))
    }

    fn peek<'a, 'c>(&'a self, check: &'a Check<'c>) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(Store::peek(self, check))
    }

    fn reset<'a, 'c>(&'a self, check: &'a Check<'c>) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(Store::reset(self, check))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(Store::ping(self))
    }

    fn inspect<'a, 'c>(
        &'a self,
        check: &'a Check<'c>,
    ) -> BoxFuture<'a, Result<Option<State>, StoreError>> {
        Box::pin(Store::inspect(self, check))
    }
}

impl Store for BoxStore {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        self.inner.decide(checks).await
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        self.inner.decide_one(check).await
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        self.inner.peek(check).await
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        self.inner.reset(check).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn inspect(&self, check: &Check<'_>) -> Result<Option<State>, StoreError> {
        self.inner.inspect(check).await
    }
}
