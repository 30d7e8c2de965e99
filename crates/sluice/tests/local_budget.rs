//! Issue 15, local budgets, against a real redis-server on a fake clock:
//! one Redis call per slice, answers spent locally, slices returned when
//! idle, on a reload and at the end, the exact need near the limit, all or
//! nothing across checks, Redis down, and several instances within the
//! stated bound over every interval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sluice::Store;
use sluice::store::LocalBudgets;
use sluice::{
    Algorithm, Check, Clock, FakeClock, Limiter, LocalBudget, Policy, Quota, RedisStore, Source,
};
use sluice_testkit::RedisServer;

/// An epoch-like start, not aligned to any window used here.
const T0: u64 = 1_764_000_000_123_457;

/// How many calls clients made to the library.
fn redis_calls(server: &RedisServer) -> u64 {
    server.library_calls()
}

async fn budgets(server: &RedisServer, clock: &FakeClock) -> LocalBudgets {
    let redis = RedisStore::connect(&server.url()).await.unwrap();
    LocalBudgets::new(redis.with_clock(clock.clone()), clock.clone())
}

fn quota(algorithm: Algorithm, limit: u64, period: Duration) -> Quota {
    Quota::new(algorithm, limit, period, None).unwrap()
}

fn policy(name: &str, quota: Quota, budget: Option<LocalBudget>) -> Policy {
    Policy::new(name, quota).unwrap().with_local_budget(budget)
}

/// What Redis has charged `key` under `policy` (a fixed window's count).
async fn charged(limiter: &Limiter<LocalBudgets>, policy: &str, key: &str) -> u64 {
    let quota = limiter.policy(policy).unwrap().quota();
    let check = Check::new(policy, key, quota, 0);
    let decision = limiter.store().peek(&check).await.unwrap();
    decision.limit - decision.remaining
}

#[tokio::test]
async fn one_redis_call_per_slice_and_the_local_answers_tell_what_is_held() {
    let server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let store = budgets(&server, &clock).await;
    let stats = store.stats();
    let hour = quota(Algorithm::FixedWindow, 10_000, Duration::from_secs(3600));
    // 1% of 10,000 for one instance: slices of 100.
    let budget = LocalBudget::new(0.01, 1).unwrap();
    let limiter = Limiter::new(store.clone(), [policy("api", hour, Some(budget))]);
    server.cli(&["CONFIG", "RESETSTAT"]);
    for i in 0..1000u64 {
        let d = limiter.check("api", "hot", 1).await.unwrap();
        assert!(d.allowed);
        // Redis counts whole slices; the answer counts what was spent.
        assert_eq!(d.remaining, 10_000 - i - 1, "decision {i}");
        let local = i % 100 != 0;
        assert_eq!(d.source == Source::LocalBudget, local, "decision {i}");
    }
    assert_eq!(redis_calls(&server), 10, "one call per slice of 100");
    assert_eq!(
        (stats.decisions(), stats.local(), stats.slices_taken()),
        (1000, 990, 10)
    );
    assert_eq!(charged(&limiter, "api", "hot").await, 1000);

    // A cost above a slice is taken whole, at once.
    assert!(limiter.check("api", "hot", 250).await.unwrap().allowed);
    assert_eq!(charged(&limiter, "api", "hot").await, 1250);
    // A policy without a budget asks Redis every time.
    let plain = limiter.with_policies([policy("plain", hour, None)]);
    server.cli(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        assert!(plain.check("plain", "hot", 1).await.unwrap().allowed);
    }
    assert_eq!(redis_calls(&server), 5);
}

#[tokio::test]
async fn idle_slices_and_slices_of_a_changed_quota_go_back() {
    let server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let store = budgets(&server, &clock).await;
    let stats = store.stats();
    let hour = quota(Algorithm::FixedWindow, 10_000, Duration::from_secs(3600));
    let budget = Some(LocalBudget::new(0.01, 1).unwrap());
    let limiter = Limiter::new(store.clone(), [policy("api", hour, budget)]);
    for _ in 0..30 {
        limiter.check("api", "hot", 1).await.unwrap();
    }
    assert_eq!(charged(&limiter, "api", "hot").await, 100);
    // Used just now: kept.
    assert_eq!(store.return_idle().await, 0);
    clock.advance(Duration::from_millis(1001));
    assert_eq!(store.return_idle().await, 70, "the unspent rest");
    assert_eq!(charged(&limiter, "api", "hot").await, 30);
    assert_eq!((stats.slices_returned(), stats.units_returned()), (1, 70));
    assert_eq!(store.slots(), 0);

    // A reload changes the quota: the slice charged under the old one
    // goes back when the key is next decided.
    limiter.check("api", "hot", 1).await.unwrap();
    assert_eq!(charged(&limiter, "api", "hot").await, 130);
    let bigger = quota(Algorithm::FixedWindow, 20_000, Duration::from_secs(3600));
    let reloaded = limiter.with_policies([policy("api", bigger, budget)]);
    assert!(reloaded.check("api", "hot", 1).await.unwrap().allowed);
    // 99 back, a new slice of 200 taken, one spent of it.
    assert_eq!(charged(&reloaded, "api", "hot").await, 130 - 99 + 200);
    // And all of it at shutdown.
    assert_eq!(store.return_all().await, 199);
    assert_eq!(charged(&reloaded, "api", "hot").await, 32);
    assert_eq!(store.slots(), 0);
}

#[tokio::test]
async fn near_the_limit_a_take_asks_for_the_exact_need() {
    let server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let store = budgets(&server, &clock).await;
    let window = quota(Algorithm::FixedWindow, 1000, Duration::from_secs(60));
    // Slices of 30.
    let budget = Some(LocalBudget::new(0.03, 1).unwrap());
    let limiter = Limiter::new(store.clone(), [policy("api", window, budget)]);
    let mut admitted = 0;
    for _ in 0..1200 {
        if limiter.check("api", "hot", 1).await.unwrap().allowed {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 1000, "one instance admits the limit exactly");
    let denied = limiter.check("api", "hot", 1).await.unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.source, Source::Store);
    let window_end = 60_000_000 - T0 % 60_000_000;
    assert_eq!(denied.retry_after, Some(Duration::from_micros(window_end)));
    // The next window: slices again, the old one not carried over.
    clock.advance(Duration::from_micros(window_end));
    assert!(limiter.check("api", "hot", 1).await.unwrap().allowed);
    assert_eq!(charged(&limiter, "api", "hot").await, 30);
}

#[tokio::test]
async fn a_request_denied_by_another_check_spends_no_slice() {
    let server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let store = budgets(&server, &clock).await;
    let hour = quota(Algorithm::FixedWindow, 10_000, Duration::from_secs(3600));
    let one = quota(Algorithm::FixedWindow, 1, Duration::from_secs(3600));
    let budget = Some(LocalBudget::new(0.01, 1).unwrap());
    let limiter = Limiter::new(
        store.clone(),
        [policy("hot", hour, budget), policy("strict", one, None)],
    );
    let both = ["hot", "strict"];
    let first = limiter.check_all(&both, "k", 1).await.unwrap();
    assert!(first.iter().all(|d| d.allowed));
    assert_eq!(charged(&limiter, "hot", "k").await, 100);
    // Denied by `strict`: the slice of `hot` is not spent, and says so.
    let second = limiter.check_all(&both, "k", 1).await.unwrap();
    assert!(!second[1].allowed);
    assert!(second[0].allowed, "hot alone would have admitted");
    assert_eq!(second[0].remaining, 9_999, "nothing spent of it");
    // The 99 units held are all still there: 99 local answers, no call.
    server.cli(&["CONFIG", "RESETSTAT"]);
    for _ in 0..99 {
        let d = limiter.check("hot", "k", 1).await.unwrap();
        assert_eq!(d.source, Source::LocalBudget);
    }
    assert_eq!(redis_calls(&server), 0);
    assert_eq!(charged(&limiter, "hot", "k").await, 100);
}

#[tokio::test]
async fn a_shadow_policy_spends_slices_and_reports_what_it_would_deny() {
    let server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let store = budgets(&server, &clock).await;
    let window = quota(Algorithm::FixedWindow, 200, Duration::from_secs(3600));
    // Slices of 100.
    let budget = Some(LocalBudget::new(0.5, 1).unwrap());
    let limiter = Limiter::new(store, [policy("api", window, budget).with_shadow(true)]);
    server.cli(&["CONFIG", "RESETSTAT"]);
    for i in 0..250 {
        let d = limiter.check("api", "hot", 1).await.unwrap();
        assert!(d.allowed, "{i}");
        assert_eq!(d.shadow, i >= 200, "{i}");
    }
    assert_eq!(
        redis_calls(&server),
        2 + 50,
        "two slices, then one call a request"
    );
    assert_eq!(charged(&limiter, "api", "hot").await, 200);
}

#[tokio::test]
async fn when_redis_is_down_the_slices_held_are_still_spent() {
    let mut server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let store = budgets(&server, &clock).await;
    let hour = quota(Algorithm::TokenBucket, 10_000, Duration::from_secs(3600));
    let budget = Some(LocalBudget::new(0.01, 1).unwrap());
    let limiter = Limiter::new(store.clone(), [policy("api", hour, budget)]);
    assert!(limiter.check("api", "hot", 1).await.unwrap().allowed);
    server.kill();
    for _ in 0..99 {
        assert!(limiter.check("api", "hot", 1).await.unwrap().allowed);
    }
    assert!(
        limiter.check("api", "hot", 1).await.is_err(),
        "no slice left"
    );
    assert!(limiter.check("api", "hot", 1).await.is_err(), "still none");
}

/// Three instances on one key, each with its own connection, all driven on
/// one fake clock: requests arrive at random instances with random costs
/// while time moves on (the bucket refills, slices age and are returned).
/// In every interval, what they admitted together stays within what the
/// token bucket allows plus the stated bound.
#[tokio::test]
async fn three_instances_stay_within_the_bound_over_every_interval() {
    let server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let (rate, burst) = (1000u64, 3000u64);
    let bucket = Quota::new(
        Algorithm::TokenBucket,
        rate,
        Duration::from_secs(1),
        Some(burst),
    )
    .unwrap();
    let budget = LocalBudget::new(0.03, 3).unwrap();
    assert_eq!(budget.slice(&bucket), Some(30));
    let bound = budget.bound(&bucket);
    let mut limiters = Vec::new();
    for _ in 0..3 {
        let store = budgets(&server, &clock).await;
        limiters.push((
            store.clone(),
            Limiter::new(store, [policy("api", bucket, Some(budget))]),
        ));
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    // (time, units admitted)
    let mut admitted: Vec<(u64, u64)> = Vec::new();
    for step in 0..6000 {
        let (store, limiter) = &limiters[next(3) as usize];
        let cost = 1 + next(3);
        if limiter.check("api", "hot", cost).await.unwrap().allowed {
            admitted.push((clock.now_us(), cost));
        }
        clock.advance(Duration::from_micros(next(1500)));
        if step % 500 == 0 {
            store.return_idle().await;
        }
    }
    let total: u64 = admitted.iter().map(|a| a.1).sum();
    let span = admitted.last().unwrap().0 - admitted[0].0;
    assert!(
        total > burst + span * rate / 1_000_000 / 2,
        "the key was kept busy"
    );
    // Every interval between two admissions.
    let mut worst = 0i128;
    for (i, &(start, _)) in admitted.iter().enumerate() {
        let mut sum = 0u64;
        for &(t, units) in &admitted[i..] {
            sum += units;
            let allowed = burst + (t - start) * rate / 1_000_000;
            worst = worst.max(i128::from(sum) - i128::from(allowed));
        }
    }
    assert!(worst <= i128::from(bound), "over by {worst}, bound {bound}");
}

/// Concurrent decisions on a key without a slice wait for the one take in
/// flight instead of each taking a slice: a process never holds more than
/// one slice of a key, which the bound rests on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_share_one_take() {
    let server = RedisServer::start();
    let clock = FakeClock::new(T0);
    let store = budgets(&server, &clock).await;
    let stats = store.stats();
    let hour = quota(Algorithm::FixedWindow, 10_000, Duration::from_secs(3600));
    let budget = Some(LocalBudget::new(0.01, 1).unwrap());
    let limiter = Limiter::new(store, [policy("api", hour, budget)]);
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.check("api", "hot", 1).await.unwrap().allowed })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    assert_eq!(stats.slices_taken(), 3);
    assert_eq!(charged(&limiter, "api", "hot").await, 300);
}

#[tokio::test]
async fn on_a_cluster_slices_taken_together_go_back_to_their_slots() {
    let cluster = sluice_testkit::RedisCluster::start();
    let clock = FakeClock::new(T0);
    // Redis's clock: each slot's call decides at its own node's time, and
    // a log's entries are given back only by the exact time they were
    // charged at.
    let redis = RedisStore::connect(&cluster.url()).await.unwrap();
    let store = LocalBudgets::new(redis, clock.clone());
    let stats = store.stats();
    let hour = quota(
        Algorithm::SlidingWindowLog,
        1_000,
        Duration::from_secs(3600),
    );
    let budget = Some(LocalBudget::new(0.01, 1).unwrap());
    let limiter = Limiter::new(store.clone(), [policy("api", hour, budget)]);
    // One request over three clients' keys (three hash tags, so three
    // slots): one call per slot, each its own slice.
    let keys = ["k1", "k2", "k3"];
    let checks = keys.map(|key| Check::new("api", key, &hour, 1).with_local_budget(budget));
    let first = store.decide(&checks).await.unwrap();
    assert!(first.iter().all(|d| d.allowed));
    assert_eq!(stats.slices_taken(), 3);
    for key in keys {
        assert_eq!(charged(&limiter, "api", key).await, 10, "{key}");
    }
    // Each slice's rest goes back to its own key, by its own call's time.
    assert_eq!(store.return_all().await, 27);
    assert_eq!((stats.slices_returned(), stats.units_returned()), (3, 27));
    for key in keys {
        assert_eq!(charged(&limiter, "api", key).await, 1, "{key}");
    }
}
