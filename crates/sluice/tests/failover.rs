//! Fault tests (issue 11): a Redis master fails over, under a steady load
//! from several concurrent clients, behind Sentinel and in a Cluster with
//! replicas, all real processes. What must hold:
//!
//! - no panic, and no answer slower than the store's timeout plus a margin;
//! - errors only from the moment the master dies until shortly after the
//!   failover completes, and every one transient
//!   ([`StoreError::is_transient`]), so the caller's `on_store_error` mode
//!   decides;
//! - exact limits again once the new master serves;
//! - no admission beyond the limit while the master is up.
//!
//! A failover can lose writes the old master acknowledged but had not yet
//! replicated (Redis replication is asynchronous): a key then admits again
//! what those writes had spent. The tests measure it (`excess`) and print
//! it with the worst latency and the error window, for docs/RELIABILITY.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice::{Algorithm, Check, FakeClock, Quota, RedisOptions, RedisStore, Store, StoreError};
use sluice_testkit::{RedisCluster, RedisSentinel};

/// The store's call timeout in these tests.
const TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a busy two-core test machine, on top of the
/// timeout; a decision slower than `TIMEOUT + MARGIN` fails the test.
const MARGIN: Duration = Duration::from_millis(250);
/// Concurrent clients.
const CLIENTS: usize = 8;
/// Keys the load spreads over, and each one's limit.
const KEYS: usize = 32;
const LIMIT: u64 = 40;
/// How long each client waits between its requests: 8 clients make about
/// 800 decisions a second.
const PACE: Duration = Duration::from_millis(10);
/// Load before the master is killed.
const BEFORE: Duration = Duration::from_millis(1500);
/// How soon after the failover completes (as the Sentinels or the cluster
/// nodes report it) the store must answer again.
const RECOVERY: Duration = Duration::from_secs(5);
/// Errorless load the test waits for after the failover before it stops.
const QUIET: Duration = Duration::from_secs(1);

const START_US: u64 = 1_764_000_000_000_000;

/// One decision of the load.
#[derive(Debug)]
struct Sample {
    key: usize,
    /// When it was asked, since the load started.
    at: Duration,
    latency: Duration,
    /// Whether it was admitted, or the error.
    outcome: Result<bool, StoreError>,
}

fn quota() -> Quota {
    // A fixed window of an hour on a clock that never moves: every
    // admission of a key counts against one budget for the whole test.
    Quota::new(
        Algorithm::FixedWindow,
        LIMIT,
        Duration::from_secs(3600),
        None,
    )
    .unwrap()
}

fn options() -> RedisOptions {
    RedisOptions::default().with_timeout(TIMEOUT)
}

/// Runs `CLIENTS` clients against `store` until `stop`, each deciding on
/// the keys in turn every `PACE`.
fn start_load(
    store: &RedisStore,
    started: Instant,
    samples: &Arc<Mutex<Vec<Sample>>>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|client| {
            let (store, samples, stop) = (store.clone(), samples.clone(), stop.clone());
            tokio::spawn(async move {
                let quota = quota();
                let mut n = client;
                let mut pace = tokio::time::interval(PACE);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    pace.tick().await;
                    let key = n % KEYS;
                    n += CLIENTS + 1;
                    let name = format!("load-{key}");
                    let check = Check::new("failover", &name, &quota, 1);
                    let asked = Instant::now();
                    let outcome = store
                        .decide(std::slice::from_ref(&check))
                        .await
                        .map(|d| d[0].allowed);
                    let sample = Sample {
                        key,
                        at: asked - started,
                        latency: asked.elapsed(),
                        outcome,
                    };
                    samples.lock().unwrap().push(sample);
                }
            })
        })
        .collect()
}

/// What a failover under load did; printed (through `Debug`) for the
/// reliability table.
#[derive(Debug)]
#[allow(dead_code)]
struct Report {
    decisions: usize,
    errors: usize,
    worst_latency: Duration,
    /// From the kill to the failover's completion, as the deployment says.
    failover: Duration,
    /// From the first error to the last.
    error_window: Duration,
    /// From the failover's completion to the last error (zero if none after).
    errors_after_failover: Duration,
    /// Admissions beyond the limit, over all keys.
    excess: u64,
}

/// Runs the load on `store`, calls `fail` (which kills the master and
/// waits for the failover, returning how long that took) after
/// [`BEFORE`], and checks everything the module doc promises.
async fn fail_over_under_load(
    store: RedisStore,
    fail: impl FnOnce() -> Duration + Send + 'static,
) -> Report {
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = start_load(&store, started, &samples, &stop);

    tokio::time::sleep(BEFORE).await;
    let killed_at = started.elapsed();
    let failover = tokio::task::spawn_blocking(fail).await.unwrap();
    let failed_over_at = killed_at + failover;

    // Let the load run until it has gone `QUIET` without an error, or
    // until `RECOVERY + QUIET` after the failover.
    let deadline = Instant::now() + RECOVERY + QUIET;
    loop {
        let now = started.elapsed();
        let last_error = samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.outcome.is_err())
            .map(|s| s.at)
            .max();
        let quiet = last_error.is_none_or(|e| now.saturating_sub(e) >= QUIET + TIMEOUT);
        if quiet || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in load {
        client.await.unwrap();
    }
    let samples = std::mem::take(&mut *samples.lock().unwrap());

    let errors: Vec<&Sample> = samples.iter().filter(|s| s.outcome.is_err()).collect();
    let worst = samples.iter().map(|s| s.latency).max().unwrap();
    let first_error = errors.iter().map(|s| s.at).min();
    let last_error = errors.iter().map(|s| s.at).max();
    let mut admitted: HashMap<usize, u64> = HashMap::new();
    let mut admitted_before_kill: HashMap<usize, u64> = HashMap::new();
    for sample in &samples {
        if let Ok(true) = sample.outcome {
            *admitted.entry(sample.key).or_default() += 1;
            if sample.at + sample.latency < killed_at {
                *admitted_before_kill.entry(sample.key).or_default() += 1;
            }
        }
    }
    let report = Report {
        decisions: samples.len(),
        errors: errors.len(),
        worst_latency: worst,
        failover,
        error_window: match (first_error, last_error) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        },
        errors_after_failover: last_error
            .map_or(Duration::ZERO, |e| e.saturating_sub(failed_over_at)),
        excess: admitted.values().map(|a| a.saturating_sub(LIMIT)).sum(),
    };
    eprintln!("{report:#?}");

    // Every error is transient and came after the kill.
    for error in &errors {
        let Err(e) = &error.outcome else {
            unreachable!()
        };
        assert!(
            e.is_transient(),
            "a non-transient error in a failover: {e:?} ({e})"
        );
        assert!(
            error.at + error.latency >= killed_at,
            "an error before the kill: {error:?}"
        );
    }
    // The store follows the new master soon after the failover.
    assert!(
        report.errors_after_failover <= RECOVERY,
        "errors went on {:?} after the failover completed",
        report.errors_after_failover
    );
    // No answer slower than the timeout plus a margin.
    let bound = TIMEOUT + MARGIN;
    let slow: Vec<&Sample> = samples.iter().filter(|s| s.latency > bound).collect();
    assert!(
        slow.is_empty(),
        "{} of {} decisions took over {bound:?}, the slowest {worst:?}; e.g. {:?}",
        slow.len(),
        samples.len(),
        slow.first()
    );
    // While the master was up, no key went beyond its limit.
    for (key, count) in &admitted_before_kill {
        assert!(
            *count <= LIMIT,
            "key {key}: {count} admitted of {LIMIT} before the kill"
        );
    }
    // The load did reach the store on both sides of the failover.
    assert!(
        samples
            .iter()
            .any(|s| s.at < killed_at && s.outcome.is_ok())
    );
    assert!(
        samples
            .iter()
            .any(|s| s.at > failed_over_at && s.outcome.is_ok())
    );

    // Exact limits again: fresh keys admit exactly their limit.
    let quota = quota();
    for key in 0..8 {
        let name = format!("after-{key}");
        let check = Check::new("failover", &name, &quota, 1);
        let mut allowed = 0;
        for _ in 0..LIMIT + 3 {
            let decision = store.decide(std::slice::from_ref(&check)).await.unwrap();
            allowed += u64::from(decision[0].allowed);
        }
        assert_eq!(allowed, LIMIT, "key {name} after the failover");
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_a_sentinel_failover_under_load() {
    let redis = Arc::new(Mutex::new(RedisSentinel::start(3)));
    let url = redis.lock().unwrap().url();
    let store = RedisStore::connect_with(&url, options())
        .await
        .unwrap()
        .with_clock(FakeClock::new(START_US));
    let deployment = redis.clone();
    let report = fail_over_under_load(store, move || {
        let mut redis = deployment.lock().unwrap();
        let old = redis.kill_master();
        redis.wait_for_failover(old)
    })
    .await;
    eprintln!("sentinel, three Sentinels: {report:?}");
}

/// A master that hangs (SIGSTOP) rather than dies: calls time out instead
/// of being refused, and the store must still leave it for the new master.
///
/// Ignored until the batcher bounds a check's wait from the moment it is
/// queued (issue 11, item 2): today a check queued behind the calls in
/// flight waits for them to time out and then for its own call, about
/// twice the timeout (measured: 7 of 4,112 decisions over 550 ms, the
/// slowest 605 ms), and fails the bound below. Everything else holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_a_sentinel_failover_of_a_hung_master_under_load() {
    let redis = Arc::new(Mutex::new(RedisSentinel::start(3)));
    let url = redis.lock().unwrap().url();
    let store = RedisStore::connect_with(&url, options())
        .await
        .unwrap()
        .with_clock(FakeClock::new(START_US));
    let deployment = redis.clone();
    let report = fail_over_under_load(store, move || {
        let mut redis = deployment.lock().unwrap();
        let old = redis.pause_master();
        redis.wait_for_failover(old)
    })
    .await;
    eprintln!("sentinel, three Sentinels, hung master: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_a_cluster_master_failover_under_load() {
    let cluster = Arc::new(Mutex::new(RedisCluster::with_replicas()));
    let url = cluster.lock().unwrap().url();
    let store = RedisStore::connect_with(&url, options())
        .await
        .unwrap()
        .with_clock(FakeClock::new(START_US));
    let deployment = cluster.clone();
    let report = fail_over_under_load(store, move || {
        let mut cluster = deployment.lock().unwrap();
        let replica = cluster.kill_master(0);
        cluster.wait_for_failover(replica)
    })
    .await;
    eprintln!("cluster, 3 masters + 3 replicas: {report:?}");
}
