//! `sluice serve` on Redis and Redis Cluster: processes that share one
//! limit, and what clients see while Redis is down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Serve, check, client, metrics, send, write};
use serde_json::json;
use sluice_testkit::{RedisCluster, RedisServer};

/// One policy per algorithm, each admitting 20 per hour at most.
const EVERY_ALGORITHM: &str = "
redis:
  timeout: 5s
policies:
  token_bucket: {algorithm: token_bucket, limit: 20, period: 1h}
  leaky_bucket: {algorithm: leaky_bucket, limit: 20, period: 1h}
  fixed_window: {algorithm: fixed_window, limit: 20, period: 1h}
  sliding_window_log: {algorithm: sliding_window_log, limit: 20, period: 1h}
  sliding_window_counter: {algorithm: sliding_window_counter, limit: 20, period: 1h}
  gcra: {algorithm: gcra, limit: 20, period: 1h}
";

/// Two `sluice serve` processes on `store`, hammered at once: together they
/// admit exactly what one would, for every algorithm.
async fn two_processes_share_each_limit_exactly(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sluice.yaml", EVERY_ALGORITHM);
    let args = ["--config", file.to_str().unwrap(), "--store", store];
    let servers = [Serve::start(&args, &[]), Serve::start(&args, &[])];
    for algorithm in [
        "token_bucket",
        "leaky_bucket",
        "fixed_window",
        "sliding_window_log",
        "sliding_window_counter",
        "gcra",
    ] {
        let requests = (0..60).map(|i| {
            let url = servers[i % 2].url("/v1/check");
            let body = json!({"policy": algorithm, "key": "shared"});
            async move {
                client()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        });
        let statuses = join_all(requests).await;
        let admitted = statuses.iter().filter(|&&s| s == 200).count();
        let denied = statuses.iter().filter(|&&s| s == 429).count();
        assert_eq!((admitted, denied), (20, 40), "{algorithm} on {store}");
    }
}

/// Runs every future at once on the test's runtime.
async fn join_all<F: std::future::Future<Output = u16> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_redis_share_each_limit_exactly() {
    let redis = RedisServer::start();
    two_processes_share_each_limit_exactly(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_a_redis_cluster_share_each_limit_exactly() {
    let cluster = RedisCluster::start();
    two_processes_share_each_limit_exactly(&cluster.url()).await;
}

#[tokio::test]
async fn while_redis_is_down_checks_and_readiness_answer_503() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sluice.yaml",
        "redis:\n  timeout: 500ms\npolicies:\n  api: {limit: 5, period: 1m}\n",
    );
    let serve = Serve::start(
        &["--config", file.to_str().unwrap(), "--store", &redis.url()],
        &[("SLUICE_ADMIN_TOKEN", "t")],
    );
    let a = send(client().get(serve.url("/readyz"))).await;
    assert_eq!(
        (a.status, a.json.clone()),
        (
            200,
            json!({"status": "ready", "store": "redis", "on_store_error": ["deny"], "breaker": "closed"})
        )
    );
    assert_eq!(
        check(&serve, json!({"policy": "api", "key": "k"}))
            .await
            .status,
        200
    );

    redis.kill();
    let a = send(client().get(serve.url("/readyz"))).await;
    assert_eq!(a.status, 503);
    assert_eq!(
        (a.json["status"].as_str(), a.json["store"].as_str()),
        (Some("unavailable"), Some("redis"))
    );
    let a = check(&serve, json!({"policy": "api", "key": "k"})).await;
    assert_eq!(
        (a.status, a.json.clone()),
        (503, json!({"error": "the rate limit store is unavailable"}))
    );
    let a = send(client().get(serve.url("/v1/limits/api/k"))).await;
    assert_eq!(a.status, 503);
    let a = send(
        client()
            .delete(serve.url("/v1/limits/api/k"))
            .bearer_auth("t"),
    )
    .await;
    assert_eq!(a.status, 503);
    let metrics = metrics(&serve).await;
    assert!(
        metrics.contains(r#"sluice_decisions_total{policy="api",outcome="error"} 1"#),
        "{metrics}"
    );
    // The readiness probe, the check, the peek and the reset: the store
    // failed four times (one short of opening the breaker).
    assert!(
        metrics.contains(r#"sluice_store_errors_total{kind="unavailable"} 4"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sluice_store_breaker_state{state="closed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sluice_decision_duration_seconds_count{policy="api",store="redis"} 2"#),
        "{metrics}"
    );

    redis.restart();
    // The connection comes back on its own; the key's state lived in Redis.
    let mut status = 0;
    for _ in 0..100 {
        status = send(client().get(serve.url("/readyz"))).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "Redis is back: {}", serve.log());
    let a = check(&serve, json!({"policy": "api", "key": "k"})).await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn peek_and_reset_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let serve = Serve::start(&["--store", &cluster.url()], &[("SLUICE_ADMIN_TOKEN", "t")]);
    let a = send(client().get(serve.url("/readyz"))).await;
    assert_eq!(a.json["store"], "redis_cluster");
    for key in ["a", "b", "c", "{d}"] {
        check(&serve, json!({"policy": "default", "key": key, "cost": 4})).await;
        let peek = send(client().get(serve.url(&format!("/v1/limits/default/{key}")))).await;
        // 6 left: a peek answers what a cost-1 check would leave.
        assert_eq!(peek.json["remaining"], 5, "{key}");
        let reset = send(
            client()
                .delete(serve.url(&format!("/v1/limits/default/{key}")))
                .bearer_auth("t"),
        )
        .await;
        assert_eq!(reset.status, 204);
        let peek = send(client().get(serve.url(&format!("/v1/limits/default/{key}")))).await;
        assert_eq!(peek.json["remaining"], 9, "{key}");
    }
}

/// Issue 11: where Redis comes up second, `sluice serve` starts unready
/// instead of exiting, and decides as soon as Redis is up.
#[tokio::test]
async fn i11_serve_starts_before_redis_and_decides_once_it_is_up() {
    let mut redis = RedisServer::start();
    redis.kill();
    let serve = Serve::start(&["--store", &redis.url()], &[]);
    let a = send(client().get(serve.url("/readyz"))).await;
    assert_eq!(a.status, 503, "unready while Redis is down");
    let a = check(&serve, json!({"policy": "default", "key": "k"})).await;
    assert_eq!(a.status, 503);

    redis.restart();
    // Polled: the connection is made in the background, with backoff.
    let mut ready = 0;
    for _ in 0..100 {
        ready = send(client().get(serve.url("/readyz"))).await.status;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready, 200, "Redis is up: {}", serve.log());
    let a = check(&serve, json!({"policy": "default", "key": "k"})).await;
    assert_eq!((a.status, a.json["remaining"].clone()), (200, json!(9)));
    assert_eq!(redis.cli(&["dbsize"]), "1", "decided in Redis");
}

/// Issue 11: with `on_store_error` chosen per policy, a dead Redis is
/// answered by each policy's mode: `allow` admits marked degraded (never a
/// 429), `local` decides a share of the limit in the process, `deny`
/// answers 503. `/readyz` is 503 and names the modes; the breaker opens,
/// and the metrics say where the decisions came from.
#[tokio::test]
async fn i11_while_redis_is_down_each_policy_answers_by_its_mode() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sluice.yaml",
        "redis:\n  timeout: 300ms\non_store_error: allow\nlocal_share: 0.5\npolicies:\n  \
open: {limit: 1, period: 1h}\n  \
shared: {limit: 4, period: 1h, on_store_error: local}\n  \
login: {limit: 5, period: 1h, on_store_error: deny}\n",
    );
    let serve = Serve::start(
        &["--config", file.to_str().unwrap(), "--store", &redis.url()],
        &[],
    );
    redis.kill();
    for n in 0..6 {
        let a = check(&serve, json!({"policy": "open", "key": "k"})).await;
        assert_eq!(a.status, 200, "{n}: {:?}", a.json);
        assert_eq!(a.json["degraded"], true);
        let a = check(&serve, json!({"policy": "shared", "key": "k"})).await;
        // Half of 4: two admitted in this process, then denied locally.
        assert_eq!(
            (a.status, &a.json["degraded"]),
            (if n < 2 { 200 } else { 429 }, &json!(true))
        );
        let a = check(&serve, json!({"policy": "login", "key": "k"})).await;
        assert_eq!(a.status, 503, "{:?}", a.json);
    }
    let a = send(client().get(serve.url("/readyz"))).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json["on_store_error"], json!(["allow", "deny", "local"]));
    assert_eq!(a.json["breaker"], "open", "{:?}", a.json);
    let metrics = metrics(&serve).await;
    for line in [
        r#"sluice_decision_sources_total{policy="open",source="fallback"} 6"#,
        r#"sluice_decision_sources_total{policy="shared",source="fallback"} 6"#,
        r#"sluice_decisions_total{policy="login",outcome="error"} 6"#,
        r#"sluice_store_breaker_state{state="open"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in {metrics}");
    }
}
