//! Named policies: one or more limits, a shadow switch, and per-key
//! overrides (tiers).

use crate::overrides::Overrides;
use crate::{LocalBudget, LocalShare, OnStoreError, Override, Quota};

/// The longest policy name, in bytes.
pub const MAX_POLICY_NAME_LEN: usize = 64;

/// The most limits one policy may hold.
pub const MAX_LIMITS: usize = 8;

/// One limit of a policy: the quota every key gets unless an override
/// names the key, by exact key or by pattern (see [`crate::overrides`] for
/// the patterns and which override applies).
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Limit, Override, Quota};
///
/// let free = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
/// let premium = Quota::new(Algorithm::TokenBucket, 1000, Duration::from_secs(60), None).unwrap();
/// let limit = Limit::new(free)
///     .with_override("*.premium", premium)
///     .with_override("internal-*", Override::unlimited())
///     .with_override("abuser-9", Override::blocked());
/// assert_eq!(limit.quota_for("acme.premium").limit(), 1000);
/// assert_eq!(limit.quota_for("anyone-else").limit(), 10);
/// assert_eq!(limit.override_for("internal-batch"), Some(&Override::Unlimited));
/// assert_eq!(limit.override_for("abuser-9"), Some(&Override::Blocked));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    quota: Quota,
    overrides: Overrides,
    /// Under which name the stores keep this limit's state: the policy's
    /// name for its first limit, `name#i` for limit `i` (set by the policy).
    state_name: String,
}

impl Limit {
    /// A limit of `quota` for every key.
    pub fn new(quota: Quota) -> Limit {
        Limit {
            quota,
            overrides: Overrides::default(),
            state_name: String::new(),
        }
    }

    /// Gives the keys that `key` names (an exact key, or a pattern with
    /// `*`) their own rule under this limit: a quota (a tier such as
    /// premium), [`Override::unlimited`] or [`Override::blocked`]. A later
    /// override of the same key replaces an earlier one.
    pub fn with_override(mut self, key: impl Into<String>, rule: impl Into<Override>) -> Limit {
        self.overrides.insert(key.into(), rule.into());
        self
    }

    /// The quota of keys without an override.
    #[inline]
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The overrides, exact keys and patterns, sorted by key.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, &Override)> {
        self.overrides.iter()
    }

    /// The override that applies to `key`, if any: its exact key's, else
    /// the most specific matching pattern's.
    #[inline(always)]
    pub fn override_for(&self, key: &str) -> Option<&Override> {
        self.overrides.get(key)
    }

    /// The quota that applies to `key`: its override's when that gives a
    /// quota, else the limit's own (also for an `unlimited` or `block`
    /// override, which the [`Limiter`](crate::Limiter) decides without one).
    pub fn quota_for(&self, key: &str) -> &Quota {
        self.override_for(key)
            .and_then(Override::quota)
            .unwrap_or(&self.quota)
    }

    /// The name under which stores keep this limit's state (the
    /// [`Check::policy`](crate::Check::policy) of its checks): the policy's
    /// name for its first limit, `name#i` for limit `i`. Policy names
    /// cannot hold `#`, so no two limits share one.
    #[inline]
    pub fn state_name(&self) -> &str {
        &self.state_name
    }
}

/// A named set of limits, decided all or nothing: a request is admitted
/// only if every limit admits it, and a request that one limit denies
/// spends nothing on the others. In shadow mode the policy decides and
/// reports, but never denies.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Limit, Policy, Quota};
///
/// let per_second = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(1), None).unwrap();
/// let per_hour = Quota::new(Algorithm::FixedWindow, 1000, Duration::from_secs(3600), None).unwrap();
/// let policy = Policy::with_limits("api", [Limit::new(per_second), Limit::new(per_hour)]).unwrap();
/// assert_eq!(policy.limits().len(), 2);
/// assert_eq!(policy.limits()[1].state_name(), "api#1");
///
/// // The single-limit form, with a tier:
/// let premium = Quota::new(Algorithm::TokenBucket, 100, Duration::from_secs(1), None).unwrap();
/// let policy = Policy::new("api", per_second).unwrap().with_override("customer-7", premium);
/// assert_eq!(policy.quota_for("customer-7").limit(), 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    name: String,
    limits: Vec<Limit>,
    shadow: bool,
    on_store_error: OnStoreError,
    local_share: LocalShare,
    deny_cache: bool,
    local_budget: Option<LocalBudget>,
}

/// Why a policy could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The name is empty, too long, or holds other characters than ASCII
    /// letters, digits, `_`, `-` and `.`.
    #[error(
        "policy name {0:?} must be 1 to 64 characters of ASCII letters, digits, '_', '-' and '.'"
    )]
    Name(String),
    /// No limit, or more than [`MAX_LIMITS`].
    #[error("a policy holds 1 to {MAX_LIMITS} limits, got {0}")]
    Limits(usize),
}

impl Policy {
    /// A policy named `name` with one limit, `quota` for every key.
    pub fn new(name: impl Into<String>, quota: Quota) -> Result<Policy, PolicyError> {
        Policy::with_limits(name, [Limit::new(quota)])
    }

    /// A policy named `name` with every one of `limits` (1 to [`MAX_LIMITS`]).
    pub fn with_limits(
        name: impl Into<String>,
        limits: impl IntoIterator<Item = Limit>,
    ) -> Result<Policy, PolicyError> {
        let name = name.into();
        if !is_valid_name(&name) {
            return Err(PolicyError::Name(name));
        }
        let mut limits: Vec<Limit> = limits.into_iter().collect();
        if limits.is_empty() || limits.len() > MAX_LIMITS {
            return Err(PolicyError::Limits(limits.len()));
        }
        for (i, limit) in limits.iter_mut().enumerate() {
            limit.state_name = match i {
                0 => name.clone(),
                i => format!("{name}#{i}"),
            };
        }
        Ok(Policy {
            name,
            limits,
            shadow: false,
            on_store_error: OnStoreError::default(),
            local_share: LocalShare::FULL,
            deny_cache: false,
            local_budget: None,
        })
    }

    /// In shadow mode the policy decides and reports, but never denies.
    pub fn with_shadow(mut self, shadow: bool) -> Policy {
        self.shadow = shadow;
        self
    }

    /// What the policy answers when the store cannot decide; default
    /// [`OnStoreError::Deny`]. It takes effect through a
    /// [`Fallback`](crate::store::Fallback) in the store stack.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sluice::{Algorithm, LocalShare, OnStoreError, Policy, Quota};
    ///
    /// let quota = Quota::new(Algorithm::TokenBucket, 100, Duration::from_secs(1), None).unwrap();
    /// // Four instances: each grants a quarter of the limit while Redis is away.
    /// let policy = Policy::new("api", quota)
    ///     .unwrap()
    ///     .with_on_store_error(OnStoreError::Local)
    ///     .with_local_share(LocalShare::new(0.25).unwrap())
    ///     .with_deny_cache(true);
    /// assert_eq!(policy.on_store_error(), OnStoreError::Local);
    /// ```
    pub fn with_on_store_error(mut self, mode: OnStoreError) -> Policy {
        self.on_store_error = mode;
        self
    }

    /// The share of the limit this process grants alone in
    /// [`OnStoreError::Local`] mode; default the whole limit.
    pub fn with_local_share(mut self, share: LocalShare) -> Policy {
        self.local_share = share;
        self
    }

    /// Whether this process remembers the store's denials of a key until
    /// they lapse, and denies that key's same-or-larger requests without
    /// asking the store (see [`DenyCache`](crate::store::DenyCache));
    /// default off.
    pub fn with_deny_cache(mut self, on: bool) -> Policy {
        self.deny_cache = on;
        self
    }

    /// Spends slices of each key's allowance in this process instead of
    /// asking the store for every decision, within `budget`'s stated
    /// over-admission (see [`LocalBudgets`](crate::store::LocalBudgets));
    /// `None` (the default) asks the store every time.
    pub fn with_local_budget(mut self, budget: Option<LocalBudget>) -> Policy {
        self.local_budget = budget;
        self
    }

    /// The policy's local budget, if it has one.
    #[inline]
    pub fn local_budget(&self) -> Option<LocalBudget> {
        self.local_budget
    }

    /// What the policy answers when the store cannot decide.
    #[inline]
    pub fn on_store_error(&self) -> OnStoreError {
        self.on_store_error
    }

    /// The share of the limit granted alone in `local` mode.
    #[inline]
    pub fn local_share(&self) -> LocalShare {
        self.local_share
    }

    /// Whether the store's denials are cached in this process.
    #[inline]
    pub fn deny_cache(&self) -> bool {
        self.deny_cache
    }

    /// Gives the keys `key` names (an exact key or a pattern) their own
    /// rule under the policy's first limit (the only one of a policy made
    /// by [`Policy::new`]); see [`Limit::with_override`], and for policies
    /// of several limits.
    pub fn with_override(mut self, key: impl Into<String>, rule: impl Into<Override>) -> Policy {
        self.limits[0].overrides.insert(key.into(), rule.into());
        self
    }

    /// The policy's name.
    #[inline]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy's limits, at least one.
    #[inline]
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// The quota of keys without an override, under the first limit.
    pub fn quota(&self) -> &Quota {
        self.limits[0].quota()
    }

    /// Whether the policy is in shadow mode.
    #[inline]
    pub fn shadow(&self) -> bool {
        self.shadow
    }

    /// The overrides of the first limit, sorted by key.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, &Override)> {
        self.limits[0].overrides()
    }

    /// The quota that applies to `key` under the first limit.
    pub fn quota_for(&self, key: &str) -> &Quota {
        self.limits[0].quota_for(key)
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_POLICY_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;
    use std::time::Duration;

    #[test]
    fn names_are_restricted_to_a_safe_alphabet() {
        let q = Quota::new(Algorithm::Gcra, 1, Duration::from_secs(1), None).unwrap();
        for good in ["api", "per-second", "v1.login_attempts", &"x".repeat(64)] {
            assert!(Policy::new(good, q).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a:b", "a#1", "{tag}", "é", &"x".repeat(65)] {
            assert_eq!(Policy::new(bad, q), Err(PolicyError::Name(bad.to_owned())));
        }
    }

    #[test]
    fn a_policy_holds_one_to_eight_limits_each_with_its_own_state_name() {
        let q = Quota::new(Algorithm::Gcra, 1, Duration::from_secs(1), None).unwrap();
        assert_eq!(Policy::with_limits("p", []), Err(PolicyError::Limits(0)));
        let nine = (0..9).map(|_| Limit::new(q));
        assert_eq!(Policy::with_limits("p", nine), Err(PolicyError::Limits(9)));
        let three = Policy::with_limits("p", (0..3).map(|_| Limit::new(q))).unwrap();
        let names: Vec<&str> = three.limits().iter().map(Limit::state_name).collect();
        assert_eq!(names, ["p", "p#1", "p#2"]);
    }
}
