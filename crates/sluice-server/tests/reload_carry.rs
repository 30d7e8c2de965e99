//! Issue 11: a reload that changes a policy's numbers keeps what each key
//! has spent, through the decision service's own reload
//! (`DecisionService::replace_policies`, what SIGHUP calls) and the HTTP
//! API, on memory and on a real Redis. The case: a daily limit of
//! 100, spent, lowered to 50 to stop an abuser (it had admitted 50 more),
//! then raised back to 100 (it had admitted 100 more on memory and none on
//! Redis).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::app::{App, START_US, quota};
use serde_json::json;
use sluice::{Algorithm, FakeClock, Policy, RedisStore};
use sluice_testkit::RedisServer;

const DAY: Duration = Duration::from_secs(86_400);

/// The policy `daily` of `limit` a day under `algorithm`.
fn daily(algorithm: Algorithm, limit: u64) -> Vec<Policy> {
    vec![Policy::new("daily", quota(algorithm, limit, DAY, None)).unwrap()]
}

/// How many of `n` checks of `key` the API admits.
async fn admitted(app: &App, key: &str, n: usize) -> usize {
    let mut admitted = 0;
    for _ in 0..n {
        let answer = app.check(json!({"policy": "daily", "key": key})).await;
        assert!(matches!(answer.status, 200 | 429), "{}", answer.text);
        admitted += usize::from(answer.status == 200);
    }
    admitted
}

/// What `key` would have left under `daily` after a cost-1 check, as the
/// API's peek reports it.
async fn remaining(app: &App, key: &str) -> u64 {
    let answer = app.get(&format!("/v1/limits/daily/{key}")).await;
    answer.json["remaining"].as_u64().unwrap()
}

/// For every algorithm, on `app` (built with the 100-a-day policy): 100
/// spent, lowered to 50 then raised back to 100 with checks in between,
/// admits nothing more that day; and a limit raised to 150 on another key
/// that spent 60 shows 90 left at once, then admits exactly 90.
async fn a_reload_keeps_what_each_key_spent(app: &App, target: &str) {
    for algorithm in Algorithm::ALL {
        app.service.replace_policies(daily(algorithm, 100));
        let key = format!("abuser-{algorithm}");
        assert_eq!(admitted(app, &key, 100).await, 100, "{target}: {algorithm}");
        let mut after = 0;
        for limit in [50, 100, 50, 100] {
            app.service.replace_policies(daily(algorithm, limit));
            after += admitted(app, &key, 20).await;
            app.advance(Duration::from_secs(60));
        }
        assert_eq!(
            after, 0,
            "{target}: {algorithm} admitted {after} more after its 100 of the day"
        );

        let key = format!("raised-{algorithm}");
        app.service.replace_policies(daily(algorithm, 100));
        assert_eq!(admitted(app, &key, 60).await, 60, "{target}: {algorithm}");
        app.service.replace_policies(daily(algorithm, 150));
        // 90 left: a peek answers what a check would leave, 89.
        assert_eq!(
            remaining(app, &key).await,
            89,
            "{target}: {algorithm}: raised to 150"
        );
        assert_eq!(admitted(app, &key, 100).await, 90, "{target}: {algorithm}");
    }
}

#[tokio::test]
async fn a_reload_keeps_what_each_key_spent_on_memory() {
    let app = App::memory(daily(Algorithm::TokenBucket, 100), None);
    a_reload_keeps_what_each_key_spent(&app, "memory").await;
}

#[tokio::test]
async fn a_reload_keeps_what_each_key_spent_on_redis() {
    let server = RedisServer::start();
    let clock = FakeClock::new(START_US);
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let app = App::over(
        store,
        "redis",
        clock,
        daily(Algorithm::TokenBucket, 100),
        None,
    );
    a_reload_keeps_what_each_key_spent(&app, "redis").await;
}
