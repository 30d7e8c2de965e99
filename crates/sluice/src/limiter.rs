//! The front door: named policies over one store.

use std::collections::HashMap;
use std::sync::Arc;

use crate::store::{Check, Store};
use crate::{Decision, Error, Policy};

/// The longest key a client may give, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Decides requests against named [`Policy`]s, keeping state in a [`Store`].
///
/// Cloning is cheap and every clone shares the same store and policies.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Limiter, MemoryStore, Policy, Quota};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
/// let limiter = Limiter::new(MemoryStore::new(), [Policy::new("api", quota).unwrap()]);
/// let decision = limiter.check("api", "user-42", 1).await.unwrap();
/// assert!(decision.allowed);
/// assert_eq!(decision.remaining, 9);
/// # });
/// ```
pub struct Limiter<S> {
    store: Arc<S>,
    /// Looked up on every check: foldhash, not SipHash (whose DoS
    /// resistance buys nothing for names the operator configured).
    policies: Arc<HashMap<String, Policy, foldhash::fast::RandomState>>,
}

impl<S> Clone for Limiter<S> {
    fn clone(&self) -> Self {
        Limiter {
            store: Arc::clone(&self.store),
            policies: Arc::clone(&self.policies),
        }
    }
}

impl<S: Store> Limiter<S> {
    /// A limiter deciding `policies` on `store`. A later policy of the same
    /// name replaces an earlier one.
    pub fn new(store: S, policies: impl IntoIterator<Item = Policy>) -> Limiter<S> {
        Limiter {
            store: Arc::new(store),
            policies: Arc::default(),
        }
        .with_policies(policies)
    }

    /// A limiter deciding `policies` on this limiter's store: how a running
    /// service swaps its policies without losing any key's state.
    pub fn with_policies(&self, policies: impl IntoIterator<Item = Policy>) -> Limiter<S> {
        Limiter {
            store: Arc::clone(&self.store),
            policies: Arc::new(
                policies
                    .into_iter()
                    .map(|p| (p.name().to_owned(), p))
                    .collect(),
            ),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    /// Every policy, in no particular order.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    /// Charges `cost` units to `key` under `policy`, if the policy admits it.
    pub async fn check(&self, policy: &str, key: &str, cost: u64) -> Result<Decision, Error> {
        let check = self.prepare(policy, key, cost)?;
        Ok(self.store.decide_one(&check).await?)
    }

    /// Charges `cost` to `key` under every one of `policies`, all or nothing:
    /// admitted only if every (non-shadow) policy admits it. Returns one
    /// decision per policy, in order.
    pub async fn check_all(
        &self,
        policies: &[&str],
        key: &str,
        cost: u64,
    ) -> Result<Vec<Decision>, Error> {
        for (i, name) in policies.iter().enumerate() {
            if policies[..i].contains(name) {
                return Err(Error::DuplicatePolicy((*name).to_owned()));
            }
        }
        let checks = policies
            .iter()
            .map(|name| self.prepare(name, key, cost))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.store.decide(&checks).await?)
    }

    /// What a check of cost 1 would be told, without charging anything.
    pub async fn peek(&self, policy: &str, key: &str) -> Result<Decision, Error> {
        let check = self.prepare(policy, key, 1)?;
        Ok(self.store.peek(&check).await?)
    }

    /// Forgets `key` under `policy`.
    pub async fn reset(&self, policy: &str, key: &str) -> Result<(), Error> {
        let check = self.prepare(policy, key, 1)?;
        Ok(self.store.reset(&check).await?)
    }

    fn prepare<'a>(&'a self, policy: &'a str, key: &'a str, cost: u64) -> Result<Check<'a>, Error> {
        let found = self
            .policies
            .get(policy)
            .ok_or_else(|| Error::UnknownPolicy(policy.to_owned()))?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(Error::InvalidKey { got: key.len() });
        }
        if cost == 0 {
            return Err(Error::InvalidCost);
        }
        Ok(Check {
            policy: found.name(),
            key,
            quota: found.quota_for(key),
            cost,
            shadow: found.shadow(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Algorithm, MemoryStore, Quota};

    fn policy(name: &str, limit: u64) -> Policy {
        let quota = Quota::new(Algorithm::FixedWindow, limit, Duration::from_secs(60), None);
        Policy::new(name, quota.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn swapped_policies_keep_the_keys_state() {
        let before = Limiter::new(MemoryStore::new(), [policy("api", 5)]);
        before.check("api", "k", 3).await.unwrap();
        let after = before.with_policies([policy("api", 5), policy("new", 1)]);
        assert_eq!(after.check("api", "k", 1).await.unwrap().remaining, 1);
        assert!(after.policy("new").is_some());
        assert!(
            before.policy("new").is_none(),
            "the old limiter is unchanged"
        );
    }
}
