//! Issue 15, local budgets: three `sluice serve` processes on one Redis,
//! hammered on one hot key, admit within the stated bound in every run,
//! and Redis sees at most 0.1 calls per decision (`INFO commandstats`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::{Serve, client, metrics, write};
use serde_json::json;
use sluice::{Algorithm, LocalBudget, Quota};
use sluice_testkit::RedisServer;

/// The hot policy: a token bucket of 3000 an hour (burst 3000), slices of
/// 1% of it over 3 instances. The deny cache keeps the denials of an
/// exhausted key off Redis, as a hot key over its limit needs.
const CONFIG: &str = "
redis:
  timeout: 5s
policies:
  hot:
    algorithm: token_bucket
    limit: 3000
    period: 1h
    deny_cache: true
    local_budget: {max_overshoot: 0.01, instances: 3}
";

/// Requests per run: twice the burst, so that the key runs out.
const REQUESTS: usize = 6000;
/// Requests in flight at once, spread over the three processes.
const WORKERS: usize = 24;

/// How many calls clients made to the library.
fn redis_calls(server: &RedisServer) -> u64 {
    server.library_calls()
}

/// Sends [`REQUESTS`] checks of `key` round the `servers`; how many were admitted.
async fn hammer(servers: &[Serve], key: &str) -> u64 {
    let urls: Vec<String> = servers.iter().map(|s| s.url("/v1/check")).collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let url = urls[w % urls.len()].clone();
            let body = json!({"policy": "hot", "key": key});
            tokio::spawn(async move {
                let client = client();
                let mut admitted = 0u64;
                for _ in (w..REQUESTS).step_by(WORKERS) {
                    let response = client.post(&url).json(&body).send().await.unwrap();
                    match response.status().as_u16() {
                        200 => admitted += 1,
                        429 => {}
                        other => panic!("status {other}: {}", response.text().await.unwrap()),
                    }
                }
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for worker in workers {
        admitted += worker.await.unwrap();
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_hot_key_stay_within_the_bound() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sluice.yaml", CONFIG);
    let url = redis.url();
    let args = ["--config", file.to_str().unwrap(), "--store", &url];
    let servers = [
        Serve::start(&args, &[]),
        Serve::start(&args, &[]),
        Serve::start(&args, &[]),
    ];
    let quota = Quota::new(
        Algorithm::TokenBucket,
        3000,
        std::time::Duration::from_secs(3600),
        None,
    )
    .unwrap();
    let budget = LocalBudget::new(0.01, 3).unwrap();
    let bound = budget.bound(&quota);
    assert_eq!((budget.slice(&quota), bound), (Some(10), 27));
    for run in 0..3 {
        redis.cli(&["CONFIG", "RESETSTAT"]);
        let start = Instant::now();
        let admitted = hammer(&servers, &format!("everyone-{run}")).await;
        // The bucket refills 3000 an hour while the run lasts.
        let refilled = (start.elapsed().as_secs_f64() * 3000.0 / 3600.0).ceil() as u64;
        let calls = redis_calls(&redis);
        eprintln!("run {run}: admitted {admitted} of {REQUESTS}, {calls} Redis calls");
        assert!(
            admitted <= 3000 + refilled + bound,
            "run {run}: admitted {admitted}, bound {}",
            3000 + refilled + bound
        );
        assert!(
            admitted + bound >= 3000,
            "run {run}: admitted only {admitted}"
        );
        assert!(
            calls * 10 <= REQUESTS as u64,
            "run {run}: {calls} Redis calls for {REQUESTS} decisions"
        );
    }
    let text = metrics(&servers[0]).await;
    let value = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(name));
        let line = line.unwrap_or_else(|| panic!("no {name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let local = value(r#"sluice_local_budget_decisions_total{answered="local"}"#);
    assert!(value("sluice_local_budget_slices_taken_total") > 0);
    assert!(local * 2 > value(r#"sluice_local_budget_decisions_total{answered="store"}"#));
    assert!(text.contains(r#"sluice_decision_sources_total{policy="hot",source="local_budget"}"#));
}
