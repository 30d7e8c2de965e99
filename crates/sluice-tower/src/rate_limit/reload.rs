//! [`Reloader`]: swaps the policies of a running layer, the way
//! `sluice serve` reloads its configuration: [`Limiter::with_policies`]
//! makes a limiter of the new policies over the same store (so every key
//! keeps its state), and an [`ArcSwap`] puts it in force for the next
//! request, without a lock on the request path.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sluice::{Limiter, OnStoreError, Policy, Store};

/// The limiter in force, and the mode the layer set on its policy (kept
/// across swaps).
pub(crate) struct Active<S> {
    pub(crate) limiter: Limiter<S>,
    on_store_error: Option<OnStoreError>,
}

/// What a layer, its clones, its services and its [`Reloader`]s share.
pub(crate) type Shared<S> = Arc<ArcSwap<Active<S>>>;

impl<S: Store> Active<S> {
    /// `limiter`, which must have `policy`, with `on_store_error` (when
    /// given) set on that policy.
    pub(crate) fn new(
        limiter: Limiter<S>,
        policy: &str,
        on_store_error: Option<OnStoreError>,
    ) -> Result<Active<S>, sluice::Error> {
        if limiter.policy(policy).is_none() {
            return Err(sluice::Error::UnknownPolicy(policy.to_owned()));
        }
        let limiter = match on_store_error {
            None => limiter,
            Some(mode) => {
                let policies = (limiter.policies().iter().cloned())
                    .map(|p| {
                        if p.name() == policy {
                            p.with_on_store_error(mode)
                        } else {
                            p
                        }
                    })
                    .collect::<Vec<_>>();
                limiter.with_policies(policies)
            }
        };
        Ok(Active {
            limiter,
            on_store_error,
        })
    }

    /// What `policy` answers when the store fails.
    pub(crate) fn on_store_error(&self, policy: &str) -> OnStoreError {
        (self.limiter.policy(policy)).map_or_else(OnStoreError::default, Policy::on_store_error)
    }

    /// The mode the layer set, if any.
    pub(crate) fn layer_mode(&self) -> Option<OnStoreError> {
        self.on_store_error
    }
}

/// Swaps the policies of a running [`RateLimitLayer`](super::RateLimitLayer)
/// (and of every service it made): from
/// [`RateLimitLayer::reloader`](super::RateLimitLayer::reloader).
///
/// The next request is decided by the new policies; requests already being
/// decided finish under the old ones. Keys keep their state in the store: a
/// policy that is unchanged counts on from where it was, and a changed one
/// reads the state its limits left (as `sluice serve` does on a reload).
///
/// With a [`Resilient`](sluice::store::Resilient) store, also call its
/// [`Health::clear_deny_cache`](sluice::store::Health::clear_deny_cache):
/// the cached denials were made under the old numbers.
///
/// ```
/// use sluice::{Limiter, MemoryStore, Policy, Quota};
/// use sluice_tower::{KeyBy, RateLimitLayer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let api = |per_minute| Ok::<_, Box<dyn std::error::Error>>(Policy::new("api", Quota::per_minute(per_minute)?)?);
/// let limiter = Limiter::new(MemoryStore::new(), [api(10)?]);
/// let layer = RateLimitLayer::new(limiter, "api", KeyBy::header("x-api-key")?)?;
/// let reloader = layer.reloader();
/// // ... `layer` serves requests; later, from an admin task:
/// reloader.replace_policies([api(100)?])?;
/// assert_eq!(reloader.limiter().policy("api").map(|p| p.limits()[0].quota().limit()), Some(100));
/// // The layer's policy must stay: nothing changes.
/// assert!(reloader.replace_policies([]).is_err());
/// # Ok(()) }
/// ```
pub struct Reloader<S> {
    active: Shared<S>,
    policy: String,
}

impl<S> Reloader<S> {
    pub(crate) fn new(active: Shared<S>, policy: String) -> Self {
        Reloader { active, policy }
    }
}

impl<S: Store> Reloader<S> {
    /// Puts `policies` in force for the layer's next request, on the same
    /// store. The layer's policy must be among them; otherwise
    /// [`sluice::Error::UnknownPolicy`] and nothing changes. A mode set
    /// with [`RateLimitLayer::on_store_error`](super::RateLimitLayer::on_store_error)
    /// is set on the new policy too.
    pub fn replace_policies(
        &self,
        policies: impl IntoIterator<Item = Policy>,
    ) -> Result<(), sluice::Error> {
        let current = self.active.load();
        let limiter = current.limiter.with_policies(policies);
        let next = Active::new(limiter, &self.policy, current.layer_mode())?;
        self.active.store(Arc::new(next));
        Ok(())
    }

    /// The limiter in force now (a cheap clone).
    pub fn limiter(&self) -> Limiter<S> {
        self.active.load().limiter.clone()
    }
}

impl<S> Clone for Reloader<S> {
    fn clone(&self) -> Self {
        Reloader {
            active: Arc::clone(&self.active),
            policy: self.policy.clone(),
        }
    }
}

impl<S> fmt::Debug for Reloader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
