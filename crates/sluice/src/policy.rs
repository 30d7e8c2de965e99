//! Named policies: a quota, a shadow switch, and per-key overrides (tiers).

use std::collections::HashMap;

use crate::Quota;

/// The longest policy name, in bytes.
pub const MAX_POLICY_NAME_LEN: usize = 64;

/// A named limit: the quota every key gets unless an override names the
/// key, and whether the policy only reports (shadow mode) instead of denying.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Policy, Quota};
///
/// let free = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(60), None).unwrap();
/// let premium = Quota::new(Algorithm::TokenBucket, 1000, Duration::from_secs(60), None).unwrap();
/// let policy = Policy::new("api", free).unwrap().with_override("customer-7", premium);
/// assert_eq!(policy.quota_for("customer-7").limit(), 1000);
/// assert_eq!(policy.quota_for("anyone-else").limit(), 10);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    name: String,
    quota: Quota,
    shadow: bool,
    overrides: HashMap<String, Quota>,
}

/// A policy name that is empty, too long, or holds other characters than
/// ASCII letters, digits, `_`, `-` and `.`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy name {0:?} must be 1 to 64 characters of ASCII letters, digits, '_', '-' and '.'")]
pub struct InvalidPolicyName(pub String);

impl Policy {
    /// A policy named `name` with `quota` for every key.
    pub fn new(name: impl Into<String>, quota: Quota) -> Result<Policy, InvalidPolicyName> {
        let name = name.into();
        if !is_valid_name(&name) {
            return Err(InvalidPolicyName(name));
        }
        Ok(Policy {
            name,
            quota,
            shadow: false,
            overrides: HashMap::new(),
        })
    }

    /// In shadow mode the policy decides and reports, but never denies.
    pub fn with_shadow(mut self, shadow: bool) -> Policy {
        self.shadow = shadow;
        self
    }

    /// Gives `key` its own quota (a tier such as premium).
    pub fn with_override(mut self, key: impl Into<String>, quota: Quota) -> Policy {
        self.overrides.insert(key.into(), quota);
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quota of keys without an override.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Whether the policy is in shadow mode.
    pub fn shadow(&self) -> bool {
        self.shadow
    }

    /// The per-key overrides.
    pub fn overrides(&self) -> &HashMap<String, Quota> {
        &self.overrides
    }

    /// The quota that applies to `key`.
    pub fn quota_for(&self, key: &str) -> &Quota {
        self.overrides.get(key).unwrap_or(&self.quota)
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
        for bad in ["", "a b", "a:b", "{tag}", "é", &"x".repeat(65)] {
            assert_eq!(Policy::new(bad, q), Err(InvalidPolicyName(bad.to_owned())));
        }
    }
}
