//! Per-key overrides of a limit (tiers): by exact key or by pattern, each
//! giving the key its own quota, no limit at all (`unlimited`, an
//! allowlist), or no admission at all (`block`, a blocklist).
//!
//! # Patterns
//!
//! A key without `*` is an exact key. A key with `*` is a pattern: `*`
//! matches any run of characters, none included; every other character
//! matches itself (there is no other wildcard, and no escape).
//! `tenant-7:*` is a prefix, `*.premium` a suffix, `eu-*-gold` both.
//!
//! # Which override applies
//!
//! An exact key first. Else, of the patterns that match, the most specific:
//! the one with the most literal (non-`*`) characters; on a tie, the one
//! with the longer literal prefix (the text before its first `*`); on a
//! tie again, the pattern that sorts first by bytes. The order in which
//! overrides were given never matters.
//!
//! An exact key is one hash lookup; patterns are tried most specific first
//! until one matches, so a key costs at most one match per pattern, and a
//! limit without patterns pays nothing for them.

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::Quota;

/// What an override gives the keys it names.
///
/// ```
/// use std::time::Duration;
/// use sluice::{Algorithm, Override, Quota};
///
/// let premium = Quota::new(Algorithm::TokenBucket, 1000, Duration::from_secs(60), None).unwrap();
/// assert_eq!(Override::from(premium).quota(), Some(&premium));
/// assert_eq!(Override::unlimited().quota(), None);
/// assert_ne!(Override::unlimited(), Override::blocked());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Override {
    /// The key's own quota (a tier such as premium).
    Quota(Quota),
    /// The limit does not apply to the key: every request is admitted
    /// without asking the store (an allowlist).
    Unlimited,
    /// Every request of the key is denied, without asking the store and
    /// with no retry time (a blocklist).
    Blocked,
}

impl Override {
    /// An override that gives the key `quota`.
    pub fn quota_of(quota: Quota) -> Override {
        Override::Quota(quota)
    }

    /// An override that admits every request of the key, uncounted.
    pub fn unlimited() -> Override {
        Override::Unlimited
    }

    /// An override that denies every request of the key, for good.
    pub fn blocked() -> Override {
        Override::Blocked
    }

    /// The quota this override gives, if it gives one.
    pub fn quota(&self) -> Option<&Quota> {
        match self {
            Override::Quota(quota) => Some(quota),
            Override::Unlimited | Override::Blocked => None,
        }
    }
}

impl From<Quota> for Override {
    fn from(quota: Quota) -> Override {
        Override::Quota(quota)
    }
}

/// A limit's overrides: exact keys in a hash map, patterns in the order
/// they are tried (most specific first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    exact: HashMap<String, Override>,
    patterns: Vec<(String, Override)>,
}

impl Overrides {
    /// Adds (or replaces) the override of `key`, a key or a pattern.
    pub(crate) fn insert(&mut self, key: String, rule: Override) {
        if !is_pattern(&key) {
            self.exact.insert(key, rule);
            return;
        }
        match self.patterns.iter_mut().find(|(p, _)| *p == key) {
            Some((_, old)) => *old = rule,
            None => {
                self.patterns.push((key, rule));
                self.patterns.sort_by(|(a, _), (b, _)| {
                    specificity(a).cmp(&specificity(b)).then_with(|| a.cmp(b))
                });
            }
        }
    }

    /// The override that applies to `key`, if any (see the module's docs).
    #[inline(always)]
    pub(crate) fn get(&self, key: &str) -> Option<&Override> {
        // Most limits have no override: no hashing, no call.
        if self.exact.is_empty() && self.patterns.is_empty() {
            return None;
        }
        self.lookup(key)
    }

    /// [`Overrides::get`] when there are overrides: out of line, so that a
    /// check without any inlines the two length tests alone.
    #[inline(never)]
    fn lookup(&self, key: &str) -> Option<&Override> {
        if let Some(rule) = self.exact.get(key) {
            return Some(rule);
        }
        (self.patterns.iter())
            .find(|(pattern, _)| matches(pattern, key))
            .map(|(_, rule)| rule)
    }

    /// Every override, exact keys and patterns, sorted by key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Override)> {
        let mut all: Vec<(&str, &Override)> = (self.exact.iter())
            .map(|(k, r)| (k.as_str(), r))
            .chain(self.patterns.iter().map(|(k, r)| (k.as_str(), r)))
            .collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all.into_iter()
    }
}

/// Whether an override key is a pattern: it holds a `*`.
pub fn is_pattern(key: &str) -> bool {
    key.contains('*')
}

/// How a pattern sorts among patterns: the most literal characters first,
/// then the longest literal prefix.
fn specificity(pattern: &str) -> (Reverse<usize>, Reverse<usize>) {
    let literal = pattern.len() - pattern.matches('*').count();
    let prefix = pattern.find('*').unwrap_or(pattern.len());
    (Reverse(literal), Reverse(prefix))
}

/// Whether `key` matches `pattern`, where `*` matches any run of
/// characters. The literal pieces between stars are found left to right,
/// each at its first place after the previous one: for `*` alone as the
/// wildcard, the leftmost match is always right, so this never backtracks
/// (linear in the key's length per piece).
///
/// ```
/// use sluice::overrides::matches;
///
/// assert!(matches("tenant-7:*", "tenant-7:alice"));
/// assert!(matches("*.premium", "acme.premium"));
/// assert!(matches("eu-*-gold", "eu-west-gold"));
/// assert!(!matches("eu-*-gold", "eu-gold"));
/// assert!(matches("a*a*a", "aaa"));
/// assert!(!matches("*.premium", "acme.premium.fake"));
/// ```
pub fn matches(pattern: &str, key: &str) -> bool {
    let Some((first, tail)) = pattern.split_once('*') else {
        // No star: the pattern is the key.
        return pattern == key;
    };
    let Some(mut rest) = key.strip_prefix(first) else {
        return false;
    };
    let (middle, last) = tail.rsplit_once('*').unwrap_or(("", tail));
    for piece in middle.split('*') {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Algorithm;

    fn quota(limit: u64) -> Override {
        Quota::new(Algorithm::FixedWindow, limit, Duration::from_secs(1), None)
            .unwrap()
            .into()
    }

    fn limit_of(rule: Option<&Override>) -> Option<u64> {
        rule.and_then(Override::quota).map(Quota::limit)
    }

    /// Issue 15: a lookup returns at once when a limit has no override;
    /// a limit with patterns only (no exact key) is not taken for one.
    #[test]
    fn issue_15_patterns_alone_are_found() {
        let mut overrides = Overrides::default();
        assert_eq!(overrides.get("a.premium"), None);
        overrides.insert("*.premium".to_owned(), quota(5));
        assert_eq!(limit_of(overrides.get("a.premium")), Some(5));
        assert_eq!(overrides.get("a.free"), None);
    }

    #[test]
    fn an_exact_key_wins_then_the_most_literal_characters_then_the_longest_prefix() {
        let mut overrides = Overrides::default();
        for (key, n) in [
            ("*", 1),
            ("tenant-7:*", 2),
            ("*.premium", 3),
            ("tenant-7:*.premium", 4),
            ("tenant-7:bob.premium", 5),
            // Ties on literal characters: the longer prefix wins.
            ("ab*", 6),
            ("*ab", 7),
            // A full tie: the first by bytes.
            ("*ba*", 8),
            ("*ab*", 9),
        ] {
            overrides.insert(key.to_owned(), quota(n));
        }
        let applies = |key| limit_of(overrides.get(key));
        assert_eq!(applies("tenant-7:bob.premium"), Some(5), "exact first");
        assert_eq!(applies("tenant-7:al.premium"), Some(4));
        assert_eq!(applies("tenant-7:al"), Some(2));
        assert_eq!(applies("acme.premium"), Some(3));
        assert_eq!(applies("anyone"), Some(1));
        assert_eq!(applies("abab"), Some(6), "ab* and *ab: the longer prefix");
        assert_eq!(
            applies("xabax"),
            Some(9),
            "*ab* and *ba* tie: the first by bytes"
        );
    }

    #[test]
    fn the_order_overrides_are_given_in_does_not_matter() {
        let keys = ["*.premium", "acme.*", "*", "acme.premium"];
        let mut forward = Overrides::default();
        let mut backward = Overrides::default();
        for (n, key) in keys.iter().enumerate() {
            forward.insert((*key).to_owned(), quota(n as u64 + 1));
        }
        for (n, key) in keys.iter().enumerate().rev() {
            backward.insert((*key).to_owned(), quota(n as u64 + 1));
        }
        assert_eq!(forward, backward);
        for key in ["acme.premium", "acme.free", "bob.premium", "zed"] {
            assert_eq!(forward.get(key), backward.get(key), "{key}");
        }
    }

    #[test]
    fn a_star_is_a_wildcard_and_nothing_else_is() {
        assert!(matches("*", ""));
        assert!(matches("a?c", "a?c"));
        assert!(!matches("a?c", "abc"));
        assert!(matches("**", "anything"));
        assert!(!matches("ab*ba", "aba"), "the pieces may not overlap");
        assert!(matches("ab*ba", "abba"));
        assert!(matches("é*", "été"));
    }
}
