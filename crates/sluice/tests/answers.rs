//! Issue 14: answers that mean one thing, and overrides that describe
//! tiers, held on the memory store and on a real Redis (started by
//! `sluice-testkit`) alike, through the [`Limiter`].
//!
//! - A peek is the answer the check it previews would get, every field
//!   alike, for every algorithm, shadow or not, one limit or two.
//! - Override keys by exact key or pattern; `unlimited` and `block`
//!   decide without the store and charge nothing anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sluice::{
    Algorithm, Check, FakeClock, Limit, Limiter, MemoryStore, Override, Policy, Quota, RedisStore,
    Source, Store,
};
use sluice_testkit::RedisServer;

const START_US: u64 = 1_700_000_000_000_000;

/// A small xorshift: the same costs and waits on every store and run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn quota(algorithm: Algorithm, limit: u64, period_ms: u64, burst: Option<u64>) -> Quota {
    let burst = burst.filter(|_| algorithm.has_burst());
    Quota::new(algorithm, limit, Duration::from_millis(period_ms), burst).unwrap()
}

/// Every algorithm, in shadow mode and not, with one limit and with two:
/// the policies the peek is held to.
fn policies(prefix: &str) -> Vec<Policy> {
    let mut policies = Vec::new();
    for algorithm in Algorithm::ALL {
        for shadow in [false, true] {
            let name = format!("{prefix}-{}-{shadow}", algorithm.name());
            let one = Policy::new(&name, quota(algorithm, 4, 1_000, Some(6))).unwrap();
            policies.push(one.with_shadow(shadow));
            let two = Policy::with_limits(
                format!("{name}-two"),
                [
                    Limit::new(quota(algorithm, 3, 500, Some(5))),
                    Limit::new(quota(Algorithm::FixedWindow, 7, 4_000, None)),
                ],
            )
            .unwrap();
            policies.push(two.with_shadow(shadow));
        }
    }
    policies
}

/// Issue 14: at every step of a seeded walk of charges and waits, a
/// peek answers what the cost-1 check it previews then answers (the same
/// decision, every field, and the same limit deciding).
async fn peek_is_the_check_previewed<S: Store>(store: S, clock: &FakeClock, target: &str) {
    clock.set(START_US);
    let limiter = Limiter::new(store, policies(target));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for policy in limiter.policies() {
        let name = policy.name();
        let key = format!("{target}-key");
        for step in 0..60 {
            clock.advance(Duration::from_micros(rng.below(400_000)));
            // Charge something first, up to more than the burst.
            let cost = 1 + rng.below(8);
            let resolved = limiter.resolve(name, &key).unwrap();
            limiter.decide_one(resolved, cost).await.unwrap();
            let peeked = limiter.peek_resolved(resolved).await.unwrap();
            let again = limiter.peek_resolved(resolved).await.unwrap();
            assert_eq!(
                peeked.decision, again.decision,
                "{name} step {step}: the peek charged"
            );
            let checked = limiter.decide_one(resolved, 1).await.unwrap();
            assert_eq!(
                (peeked.decision, peeked.limit),
                (checked.decision, checked.limit),
                "{target}: {name} step {step}: the peek is not the check's answer"
            );
        }
    }
}

/// Issue 14: overrides by exact key and pattern; `unlimited` and `block`
/// answer without the store and charge nothing, on any policy of the
/// request.
async fn overrides_describe_tiers<S: Store>(store: S, clock: &FakeClock, target: &str) {
    clock.set(START_US);
    let base = quota(Algorithm::FixedWindow, 2, 60_000, None);
    let api = format!("{target}-api");
    let other = format!("{target}-other");
    let shadowed = format!("{target}-shadow");
    let tiers = |name: &str| {
        Policy::new(name, base)
            .unwrap()
            .with_override("*.premium", quota(Algorithm::FixedWindow, 5, 60_000, None))
            .with_override(
                "acme.premium",
                quota(Algorithm::FixedWindow, 7, 60_000, None),
            )
            .with_override("internal-*", Override::unlimited())
            .with_override("abuser-*", Override::blocked())
    };
    let limiter = Limiter::new(
        store,
        [
            tiers(&api),
            Policy::new(&other, base).unwrap(),
            tiers(&shadowed).with_shadow(true),
        ],
    );
    // Exact first, then the pattern, then the policy's own quota.
    for (key, burst) in [("acme.premium", 7), ("bob.premium", 5), ("carol", 2)] {
        let d = limiter.check(&api, key, 1).await.unwrap();
        assert_eq!((d.allowed, d.limit), (true, burst), "{target}: {key}");
    }
    // Unlimited: admitted far beyond the limit, uncounted.
    for _ in 0..10 {
        let d = limiter.check(&api, "internal-batch", 1).await.unwrap();
        assert!(d.allowed && d.is_unlimited(), "{target}: {d:?}");
        assert_eq!(d.source, Source::Override);
    }
    let standing = |name: String, key: &'static str| {
        let limiter = limiter.clone();
        async move {
            let check = Check::new(&name, key, &base, 0);
            limiter.store().peek(&check).await.unwrap().remaining
        }
    };
    assert_eq!(
        standing(api.clone(), "internal-batch").await,
        2,
        "{target}: charged"
    );
    // Blocked: denied for good, with no retry time, and nothing charged on
    // the other policy of the request.
    let d = limiter.check(&api, "abuser-1", 1).await.unwrap();
    assert!(!d.allowed && d.is_blocked(), "{target}: {d:?}");
    assert_eq!(d.retry_after, None);
    assert_eq!(d.never_admitted(1).as_deref(), Some("the key is blocked"));
    let both = limiter
        .check_all(&[&other, &api], "abuser-1", 1)
        .await
        .unwrap();
    assert!(both[0].allowed && !both[1].allowed, "{target}: {both:?}");
    assert_eq!(
        both[0].remaining, 2,
        "{target}: reports the key as it stands"
    );
    assert_eq!(
        standing(other.clone(), "abuser-1").await,
        2,
        "{target}: charged"
    );
    // Its peek says the same, charging nothing.
    assert_eq!(limiter.peek(&api, "abuser-1").await.unwrap(), d);
    // In shadow mode a block is a shadow denial: admitted, and reported.
    let d = limiter.check(&shadowed, "abuser-1", 1).await.unwrap();
    assert!(d.allowed && d.shadow && d.is_blocked(), "{target}: {d:?}");
}

#[tokio::test]
async fn the_memory_store_answers_as_it_peeks() {
    let clock = FakeClock::new(START_US);
    let store = MemoryStore::with_clock(clock.clone());
    peek_is_the_check_previewed(store, &clock, "memory").await;
}

#[tokio::test]
async fn the_memory_store_keeps_overrides() {
    let clock = FakeClock::new(START_US);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    overrides_describe_tiers(Arc::clone(&store), &clock, "memory").await;
    assert!(
        store.len() <= 6,
        "only the charged keys are kept: {}",
        store.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_answers_as_it_peeks_and_keeps_overrides() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&server.url()).await.unwrap();
    peek_is_the_check_previewed(store.with_clock(clock.clone()), &clock, "redis").await;
    let store = RedisStore::connect(&server.url()).await.unwrap();
    overrides_describe_tiers(store.with_clock(clock.clone()), &clock, "redis").await;
    // Neither the unlimited key nor the blocked one was ever written.
    let written = server.cli(&["KEYS", "*internal*"]) + &server.cli(&["KEYS", "*abuser*"]);
    assert_eq!(written, "", "the store was touched");
}
