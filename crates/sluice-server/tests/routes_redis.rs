//! The HTTP API in-process over Redis and Redis Cluster (real
//! `redis-server` processes from `sluice-testkit`), on a fake clock: the
//! same scenarios as on memory, and what the API and the metrics say when
//! Redis dies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::app::{App, assert_metrics, quota};
use common::scenarios::{the_hour_spends_nothing_when_the_second_denies, two_limits};
use serde_json::json;
use sluice::{Algorithm, Policy};
use sluice_testkit::{RedisCluster, RedisServer};

#[tokio::test]
async fn on_redis_the_hour_spends_nothing_when_the_second_denies() {
    let redis = RedisServer::start();
    let app = App::redis(&redis.url(), "redis", vec![two_limits()]).await;
    the_hour_spends_nothing_when_the_second_denies(&app).await;
}

#[tokio::test]
async fn on_a_redis_cluster_the_hour_spends_nothing_when_the_second_denies() {
    let cluster = RedisCluster::start();
    let app = App::redis(&cluster.url(), "redis_cluster", vec![two_limits()]).await;
    the_hour_spends_nothing_when_the_second_denies(&app).await;
    assert_eq!(app.get("/readyz").await.json["store"], "redis_cluster");
}

#[tokio::test]
async fn a_failing_store_answers_503_and_is_counted() {
    let mut redis = RedisServer::start();
    let policies = vec![
        Policy::new(
            "api",
            quota(Algorithm::FixedWindow, 5, Duration::from_secs(60), None),
        )
        .unwrap(),
        Policy::new(
            "other",
            quota(Algorithm::Gcra, 5, Duration::from_secs(60), None),
        )
        .unwrap(),
    ];
    let app = App::redis(&redis.url(), "redis", policies).await;
    let a = app.get("/readyz").await;
    assert_eq!(
        (a.status, a.json.clone()),
        (
            200,
            json!({"status": "ready", "store": "redis", "on_store_error": ["deny"], "breaker": null})
        )
    );
    let one = json!({"policy": "api", "key": "k"});
    assert_eq!(app.check(one.clone()).await.status, 200);

    redis.kill();
    let unavailable = json!({"error": "the rate limit store is unavailable"});
    let a = app.check(one).await;
    assert_eq!((a.status, &a.json), (503, &unavailable));
    assert!(a.headers.get("ratelimit").is_none());
    let a = app
        .check(json!({"policies": ["api", "other"], "key": "k"}))
        .await;
    assert_eq!((a.status, &a.json), (503, &unavailable));
    let a = app.get("/v1/limits/api/k").await;
    assert_eq!((a.status, &a.json), (503, &unavailable));
    let a = app.delete("/v1/limits/api/k", Some("t")).await;
    assert_eq!((a.status, &a.json), (503, &unavailable));
    let a = app.get("/readyz").await;
    assert_eq!(
        (a.status, a.json.clone()),
        (
            503,
            json!({"status": "unavailable", "store": "redis",
                "error": "the store does not answer", "on_store_error": ["deny"], "breaker": null})
        )
    );
    // An unknown policy is the caller's mistake, not the store's.
    assert_eq!(
        app.check(json!({"policy": "nope", "key": "k"}))
            .await
            .status,
        404
    );

    let text = app.metrics().await;
    assert_metrics(
        &text,
        &[
            // Two checks, a peek and a reset failed.
            r#"sluice_store_errors_total{kind="unavailable"} 4"#,
            r#"sluice_decisions_total{policy="api",outcome="allowed"} 1"#,
            r#"sluice_decisions_total{policy="api",outcome="error"} 2"#,
            r#"sluice_decisions_total{policy="other",outcome="error"} 1"#,
            r#"sluice_decisions_total{policy="other",outcome="allowed"} 0"#,
            r#"sluice_decision_duration_seconds_count{policy="api",store="redis"} 3"#,
            r#"sluice_decision_duration_seconds_count{policy="other",store="redis"} 1"#,
        ],
    );
}
