//! The front door: named policies over one store.
//!
//! A request is decided in two steps: [`Limiter::resolve`] finds the policy
//! and checks the key once, giving a [`Resolved`]; [`Limiter::decide`]
//! decides a list of them, all or nothing, and answers one [`Verdict`] per
//! policy. [`Limiter::check`] and [`Limiter::check_all`] do both at once.

use std::collections::HashMap;
use std::sync::Arc;

use crate::decision::most_restrictive;
use crate::store::{Check, Store, admitted_together};
use crate::{Decision, Error, Limit, Override, Policy, Quota};

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
    policies: Arc<Policies>,
}

/// The policies in a fixed order, and where each name is.
#[derive(Default)]
struct Policies {
    list: Vec<Policy>,
    /// Looked up on every request when there are more than [`SCAN_MAX`]
    /// policies: foldhash, not SipHash (whose DoS resistance buys nothing
    /// for names the operator configured).
    by_name: HashMap<String, usize, foldhash::fast::RandomState>,
}

/// Up to this many policies, a name is found by comparing it with each
/// policy's in turn: a length comparison rules most out, and a few
/// comparisons cost less than hashing the name and probing a table (about
/// a hundred instructions per request with one policy).
const SCAN_MAX: usize = 8;

impl Policies {
    /// The position of the policy named `name`.
    #[inline]
    fn find(&self, name: &str) -> Option<usize> {
        if self.list.len() <= SCAN_MAX {
            (self.list.iter()).position(|p| same_name(p.name().as_bytes(), name.as_bytes()))
        } else {
            self.by_name.get(name).copied()
        }
    }
}

/// Whether `a` and `b` are the same bytes. A policy name is at most
/// [`MAX_POLICY_NAME_LEN`](crate::policy::MAX_POLICY_NAME_LEN) bytes and
/// usually a few: up to 16 bytes, two overlapping loads of each compare
/// them in registers instead of a call to `memcmp`.
#[inline(always)]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    /// The little-endian word of `N` bytes at `at` of `s`.
    fn word<const N: usize>(s: &[u8], at: usize) -> u64 {
        let mut w = [0; 8];
        w[..N].copy_from_slice(&s[at..at + N]);
        u64::from_le_bytes(w)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        // The first, middle and last bytes are all of them.
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        _ => a == b,
    }
}

impl<S> Clone for Limiter<S> {
    fn clone(&self) -> Self {
        Limiter {
            store: Arc::clone(&self.store),
            policies: Arc::clone(&self.policies),
        }
    }
}

/// A policy found by name for a key that was checked: what
/// [`Limiter::decide`] takes. Made once per request by [`Limiter::resolve`].
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'a> {
    index: usize,
    policy: &'a Policy,
    key: &'a str,
}

impl<'a> Resolved<'a> {
    /// The policy's position in [`Limiter::policies`]: where callers keep
    /// data of their own about each policy (metric handles, say).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The policy.
    pub fn policy(&self) -> &'a Policy {
        self.policy
    }

    /// The key.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The check of `limit` (one of the policy's), charging `cost`.
    fn check(&self, limit: &'a Limit, cost: u64) -> Check<'a> {
        self.check_under(limit, limit.quota_for(self.key), cost)
    }

    /// The check of `limit` under `quota` (the limit's own or the key's
    /// override's), charging `cost`.
    fn check_under(&self, limit: &'a Limit, quota: &'a Quota, cost: u64) -> Check<'a> {
        Check::new(limit.state_name(), self.key, quota, cost)
            .with_shadow(self.policy.shadow())
            .with_on_store_error(self.policy.on_store_error())
            .with_local_share(self.policy.local_share())
            .with_deny_cache(self.policy.deny_cache())
            .with_local_budget(self.policy.local_budget())
    }

    /// One check per limit of the policy, charging `cost`.
    fn checks(&self, cost: u64) -> impl Iterator<Item = Check<'a>> + '_ {
        (self.policy.limits().iter()).map(move |limit| self.check(limit, cost))
    }

    /// How `limit` decides this key: by the key's `unlimited` or `block`
    /// override alone (shadow mode applied), else by the store.
    ///
    /// The key's override is looked up once, here: it gives the quota of
    /// the check too (a lookup per request is all the overrides cost).
    fn part(&self, limit: &'a Limit, cost: u64) -> Part<'a> {
        match self.quota_of(limit) {
            Ok(quota) => Part::Store(self.check_under(limit, quota, cost)),
            Err(alone) => Part::Alone(alone),
        }
    }

    /// The quota `limit` decides this key under (its own or the key's
    /// override's), or the decision of an `unlimited` or `block` override
    /// alone, in shadow mode if the policy is.
    ///
    /// Inlined for a limit without overrides (most): its quota is returned
    /// in a register, not a `Result` holding a `Decision` written to memory.
    #[inline(always)]
    fn quota_of(&self, limit: &'a Limit) -> Result<&'a Quota, Decision> {
        match limit.override_for(self.key) {
            None => Ok(limit.quota()),
            Some(rule) => self.overridden(rule),
        }
    }

    /// [`Resolved::quota_of`] for a key with an override `rule`.
    #[cold]
    #[inline(never)]
    fn overridden(&self, rule: &'a Override) -> Result<&'a Quota, Decision> {
        let alone = match rule {
            Override::Quota(quota) => return Ok(quota),
            Override::Unlimited => Decision::unlimited(),
            Override::Blocked => Decision::blocked(),
        };
        Err(if self.policy.shadow() {
            alone.shadowed()
        } else {
            alone
        })
    }

    /// One part per limit of the policy, charging `cost`.
    fn parts(&self, cost: u64) -> impl Iterator<Item = Part<'a>> + '_ {
        (self.policy.limits().iter()).map(move |limit| self.part(limit, cost))
    }

    /// The verdict of this policy from its limits' `decisions`.
    fn verdict(self, decisions: &[Decision]) -> Verdict<'a> {
        // A policy has at least one limit, so there is a most restrictive.
        let limit = most_restrictive(decisions).unwrap_or(0);
        Verdict {
            resolved: self,
            limit,
            decision: decisions[limit],
        }
    }
}

/// How one limit of a request is decided.
#[derive(Clone, Copy, Debug)]
enum Part<'a> {
    /// By the store.
    Store(Check<'a>),
    /// By the key's override alone: `unlimited` or `block`.
    Alone(Decision),
}

impl<'a> Part<'a> {
    fn check(&self) -> Option<Check<'a>> {
        match self {
            Part::Store(check) => Some(*check),
            Part::Alone(_) => None,
        }
    }

    /// Whether this part denies the request without the store: a block
    /// (not in shadow mode).
    fn denies(&self) -> bool {
        matches!(self, Part::Alone(d) if !d.allowed)
    }
}

/// What one policy decided for a request: the decision of its most
/// restrictive limit (the one that denied, or the one with the least left),
/// and which limit that was.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Verdict<'a> {
    /// The policy and key decided.
    pub resolved: Resolved<'a>,
    /// The index of the limit that decided, in [`Policy::limits`].
    pub limit: usize,
    /// That limit's decision.
    pub decision: Decision,
}

impl<'a> Verdict<'a> {
    /// The policy.
    pub fn policy(&self) -> &'a Policy {
        self.resolved.policy
    }

    /// The quota of the limit that decided, for the key.
    pub fn quota(&self) -> &'a Quota {
        self.resolved.policy.limits()[self.limit].quota_for(self.resolved.key)
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
        let mut set = Policies::default();
        for policy in policies {
            match set.by_name.get(policy.name()) {
                Some(&at) => set.list[at] = policy,
                None => {
                    set.by_name.insert(policy.name().to_owned(), set.list.len());
                    set.list.push(policy);
                }
            }
        }
        Limiter {
            store: Arc::clone(&self.store),
            policies: Arc::new(set),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        let at = self.policies.find(name)?;
        Some(&self.policies.list[at])
    }

    /// Every policy, in the order given (a replaced policy keeps the place
    /// of the first of its name).
    pub fn policies(&self) -> &[Policy] {
        &self.policies.list
    }

    /// Finds `policy` and checks `key` (1 to [`MAX_KEY_LEN`] bytes): the
    /// one lookup a request needs.
    #[inline]
    pub fn resolve<'a>(&'a self, policy: &str, key: &'a str) -> Result<Resolved<'a>, Error> {
        let index =
            (self.policies.find(policy)).ok_or_else(|| Error::UnknownPolicy(policy.to_owned()))?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(Error::InvalidKey { got: key.len() });
        }
        Ok(Resolved {
            index,
            policy: &self.policies.list[index],
            key,
        })
    }

    /// Charges `cost` (at least 1) under every one of `resolved`, all or
    /// nothing: admitted only if every limit of every (non-shadow) policy
    /// admits it; otherwise nothing is charged anywhere. Returns one
    /// verdict per policy, in order; the request was admitted when every
    /// verdict's decision is `allowed`.
    ///
    /// The same policy and key may not appear twice.
    pub async fn decide<'a>(
        &self,
        resolved: &[Resolved<'a>],
        cost: u64,
    ) -> Result<Vec<Verdict<'a>>, Error> {
        if cost == 0 {
            return Err(Error::InvalidCost);
        }
        for (i, r) in resolved.iter().enumerate() {
            if resolved[..i]
                .iter()
                .any(|o| o.index == r.index && o.key == r.key)
            {
                return Err(Error::DuplicatePolicy(r.policy.name().to_owned()));
            }
        }
        if let [one] = resolved {
            return Ok(vec![self.decide_one(*one, cost).await?]);
        }
        let parts: Vec<Part<'a>> = resolved.iter().flat_map(|r| r.parts(cost)).collect();
        let decisions = self.decide_parts(&parts).await?;
        let mut rest = &decisions[..];
        let mut verdicts = Vec::with_capacity(resolved.len());
        for r in resolved {
            let (mine, after) = rest.split_at(r.policy.limits().len());
            verdicts.push(r.verdict(mine));
            rest = after;
        }
        Ok(verdicts)
    }

    /// [`Limiter::decide`] for one policy: its verdict.
    pub async fn decide_one<'a>(
        &self,
        resolved: Resolved<'a>,
        cost: u64,
    ) -> Result<Verdict<'a>, Error> {
        if cost == 0 {
            return Err(Error::InvalidCost);
        }
        match resolved.policy.limits() {
            // The common case: one check, no vectors to build.
            [limit] => {
                // The check is made where the store reads it (not moved
                // out of a `Part`): a copy of a struct just written field
                // by field stalls on the writes.
                let decision = match resolved.quota_of(limit) {
                    Ok(quota) => {
                        (self.store)
                            .decide_one(&resolved.check_under(limit, quota, cost))
                            .await?
                    }
                    Err(alone) => alone,
                };
                // One limit: it decided, nothing to compare.
                Ok(Verdict {
                    resolved,
                    limit: 0,
                    decision,
                })
            }
            // Boxed, so that the common case's future stays small.
            _ => Box::pin(self.decide_limits(resolved, cost)).await,
        }
    }

    /// [`Limiter::decide_one`] for a policy of several limits.
    async fn decide_limits<'a>(
        &self,
        resolved: Resolved<'a>,
        cost: u64,
    ) -> Result<Verdict<'a>, Error> {
        let parts: Vec<Part<'a>> = resolved.parts(cost).collect();
        let decisions = self.decide_parts(&parts).await?;
        Ok(resolved.verdict(&decisions))
    }

    /// Decides `parts` all or nothing: the store decides its checks in one
    /// call, unless a block denies the request anyway (then the store only
    /// previews them, and nothing is charged). One decision per part.
    async fn decide_parts(&self, parts: &[Part<'_>]) -> Result<Vec<Decision>, Error> {
        let checks: Vec<Check<'_>> = parts.iter().filter_map(Part::check).collect();
        let blocked = parts.iter().any(Part::denies);
        let decided = if checks.is_empty() {
            Vec::new()
        } else if blocked {
            self.preview(&checks, true).await?
        } else {
            let decisions = self.store.decide(&checks).await?;
            if decisions.len() != checks.len() {
                return Err(answered_wrong(decisions.len(), checks.len()));
            }
            decisions
        };
        Ok(merge(parts, decided))
    }

    /// What the store would answer to `checks` decided together now,
    /// charging nothing: each check's decision at its cost, the shadow
    /// checks' denials admitted, and, when the request is denied (by a
    /// check, or anyway when `denied`), the checks that admitted report
    /// the key as it stands, as [`Store::decide`] does.
    async fn preview(&self, checks: &[Check<'_>], denied: bool) -> Result<Vec<Decision>, Error> {
        let mut decisions = Vec::with_capacity(checks.len());
        for check in checks {
            decisions.push(self.store.peek(check).await?);
        }
        if !admitted_together(checks, &mut decisions) || denied {
            for (check, decision) in checks.iter().zip(decisions.iter_mut()) {
                if decision.allowed && !decision.shadow {
                    *decision = self.store.peek(&check.with_cost(0)).await?;
                }
            }
        }
        Ok(decisions)
    }

    /// Exactly what a check of cost 1 under `resolved` would be told now
    /// (every field), without charging anything: the check's answer,
    /// previewed.
    pub async fn peek_resolved<'a>(&self, resolved: Resolved<'a>) -> Result<Verdict<'a>, Error> {
        let parts: Vec<Part<'a>> = resolved.parts(1).collect();
        let checks: Vec<Check<'a>> = parts.iter().filter_map(Part::check).collect();
        let blocked = parts.iter().any(Part::denies);
        let decided = self.preview(&checks, blocked).await?;
        Ok(resolved.verdict(&merge(&parts, decided)))
    }

    /// Charges `cost` to `key` under `policy`, if the policy admits it:
    /// the decision of its most restrictive limit.
    pub async fn check(&self, policy: &str, key: &str, cost: u64) -> Result<Decision, Error> {
        let resolved = self.resolve(policy, key)?;
        Ok(self.decide_one(resolved, cost).await?.decision)
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
        let resolved = policies
            .iter()
            .map(|name| self.resolve(name, key))
            .collect::<Result<Vec<_>, _>>()?;
        let verdicts = self.decide(&resolved, cost).await?;
        Ok(verdicts.into_iter().map(|v| v.decision).collect())
    }

    /// Exactly what a check of cost 1 would be told now, without charging
    /// anything.
    pub async fn peek(&self, policy: &str, key: &str) -> Result<Decision, Error> {
        let resolved = self.resolve(policy, key)?;
        Ok(self.peek_resolved(resolved).await?.decision)
    }

    /// The state `key` has under each limit of `policy` that the store
    /// decides (an `unlimited` or `block` override has none), with that
    /// limit's quota for `key`: see [`Store::inspect`]. For people and
    /// tools; [`summary::Summary`](crate::summary::Summary) reads one.
    pub async fn inspect(
        &self,
        policy: &str,
        key: &str,
    ) -> Result<Vec<(Quota, Option<crate::algorithm::State>)>, Error> {
        let resolved = self.resolve(policy, key)?;
        let mut out = Vec::new();
        for check in resolved.checks(1) {
            out.push((*check.quota, self.store.inspect(&check).await?));
        }
        Ok(out)
    }

    /// Forgets `key` under `policy`, in every one of its limits.
    pub async fn reset(&self, policy: &str, key: &str) -> Result<(), Error> {
        let resolved = self.resolve(policy, key)?;
        for check in resolved.checks(1) {
            self.store.reset(&check).await?;
        }
        Ok(())
    }
}

/// Each part's decision: its own when decided alone, else the next of
/// `decided` (the store's, in the order of the parts' checks).
fn merge(parts: &[Part<'_>], decided: Vec<Decision>) -> Vec<Decision> {
    let mut decided = decided.into_iter();
    parts
        .iter()
        .map(|part| match part {
            Part::Alone(decision) => *decision,
            // As many decisions as checks (checked by the callers).
            Part::Store(_) => decided.next().unwrap_or_else(Decision::blocked),
        })
        .collect()
}

/// The error for a store that answered `got` decisions for `want` checks.
fn answered_wrong(got: usize, want: usize) -> Error {
    Error::Store(crate::StoreError::Protocol(format!(
        "the store answered {got} decisions for {want} checks"
    )))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Algorithm, FakeClock, Limit, MemoryStore, Quota};

    fn quota(limit: u64, period: Duration) -> Quota {
        Quota::new(Algorithm::FixedWindow, limit, period, None).unwrap()
    }

    fn policy(name: &str, limit: u64) -> Policy {
        Policy::new(name, quota(limit, Duration::from_secs(60))).unwrap()
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

    #[tokio::test]
    async fn a_later_policy_of_the_same_name_takes_the_first_ones_place() {
        let limiter = Limiter::new(
            MemoryStore::new(),
            [policy("a", 1), policy("b", 2), policy("a", 3)],
        );
        let names: Vec<&str> = limiter.policies().iter().map(Policy::name).collect();
        assert_eq!(names, ["a", "b"]);
        let resolved = limiter.resolve("a", "k").unwrap();
        assert_eq!(resolved.index(), 0);
        assert_eq!(resolved.policy().quota().limit(), 3);
    }

    /// Names of every length a short comparison handles, that differ from
    /// each other at one byte only (first, middle or last) or in length.
    fn close_names() -> Vec<String> {
        let mut names = Vec::new();
        for len in 1..=20 {
            let base: String = (0..len).map(|i| (b'a' + i as u8) as char).collect();
            for at in [0, len / 2, len - 1] {
                let mut other = base.clone().into_bytes();
                other[at] = b'z';
                names.push(String::from_utf8(other).unwrap());
            }
            names.push(base);
        }
        names.sort();
        names.dedup();
        names
    }

    /// Each policy is found by its own name whatever their number (a scan
    /// up to `SCAN_MAX`, a hash map beyond), and a name that differs by one
    /// byte or in length is no policy's.
    #[test]
    fn each_policy_is_found_by_its_name_alone() {
        let names = close_names();
        let sets = (names.chunks(1))
            .chain(names.chunks(SCAN_MAX))
            .chain([&names[..SCAN_MAX + 1], &names[..]]);
        for set in sets {
            let limiter = Limiter::new(MemoryStore::new(), set.iter().map(|n| policy(n, 1)));
            for name in &names {
                let found = limiter.resolve(name, "k").map(|r| r.index());
                match set.iter().position(|n| n == name) {
                    Some(i) => {
                        assert_eq!(found.ok(), Some(i), "{name} among {set:?}");
                        let named = limiter.policy(name).map(Policy::name);
                        assert_eq!(named, Some(name.as_str()));
                    }
                    None => {
                        assert!(
                            matches!(found, Err(Error::UnknownPolicy(_))),
                            "{name} found among {set:?}"
                        );
                        assert!(limiter.policy(name).is_none());
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// The short comparison of names is byte equality: on a name and
        /// the same name with one byte changed, or one byte longer.
        #[test]
        fn same_name_is_equality(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            at in proptest::num::usize::ANY,
            to in proptest::num::u8::ANY,
            longer in proptest::bool::ANY,
        ) {
            let mut b = a.clone();
            if longer {
                b.push(to);
            } else if !b.is_empty() {
                let at = at % b.len();
                b[at] = to;
            }
            proptest::prop_assert_eq!(same_name(&a, &b), a == b);
            proptest::prop_assert_eq!(same_name(&b, &a), a == b);
            proptest::prop_assert!(same_name(&a, &a));
        }
    }

    #[tokio::test]
    async fn a_denial_by_one_limit_spends_nothing_on_the_others() {
        let clock = FakeClock::new(1_000_000_000);
        let two_limits = Policy::with_limits(
            "api",
            [
                Limit::new(quota(2, Duration::from_secs(1))),
                Limit::new(quota(5, Duration::from_secs(3600))),
            ],
        )
        .unwrap();
        let limiter = Limiter::new(MemoryStore::with_clock(clock.clone()), [two_limits]);
        let resolved = limiter.resolve("api", "k").unwrap();
        for left in [1, 0] {
            let verdict = limiter.decide(&[resolved], 1).await.unwrap()[0];
            assert!(verdict.decision.allowed);
            assert_eq!((verdict.limit, verdict.decision.remaining), (0, left));
        }
        for _ in 0..3 {
            let verdict = limiter.decide(&[resolved], 1).await.unwrap()[0];
            assert!(!verdict.decision.allowed);
            assert_eq!(verdict.limit, 0, "the per-second limit denied");
            assert_eq!(verdict.quota().period(), Duration::from_secs(1));
        }
        // The hour spent 2, not 5: three more fit, one second after another.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(1));
            assert!(
                limiter.decide(&[resolved], 1).await.unwrap()[0]
                    .decision
                    .allowed
            );
        }
        clock.advance(Duration::from_secs(1));
        let verdict = limiter.decide(&[resolved], 1).await.unwrap()[0];
        assert!(!verdict.decision.allowed);
        assert_eq!(verdict.limit, 1, "the hour denied");
        assert_eq!(verdict.quota().period(), Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn decide_refuses_a_policy_named_twice_and_a_zero_cost() {
        let limiter = Limiter::new(MemoryStore::new(), [policy("a", 1)]);
        let a = limiter.resolve("a", "k").unwrap();
        assert!(matches!(
            limiter.decide(&[a, a], 1).await,
            Err(Error::DuplicatePolicy(name)) if name == "a"
        ));
        assert!(matches!(
            limiter.decide(&[a], 0).await,
            Err(Error::InvalidCost)
        ));
        assert!(matches!(
            limiter.resolve("a", ""),
            Err(Error::InvalidKey { got: 0 })
        ));
        assert!(matches!(
            limiter.resolve("b", "k"),
            Err(Error::UnknownPolicy(_))
        ));
    }
}
