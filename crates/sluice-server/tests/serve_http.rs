//! `sluice serve` on the memory store, driven over HTTP: every status code,
//! header and body of the decision API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Serve, check, client, send, write};
use serde_json::json;

const POLICIES: &str = "
policies:
  api:
    algorithm: token_bucket
    limit: 3
    period: 60s
    overrides:
      vip:
        limit: 100
  per-minute:
    algorithm: fixed_window
    limit: 2
    period: 1h
  per-hour:
    algorithm: sliding_window_log
    limit: 100
    period: 1h
  queue:
    algorithm: leaky_bucket
    limit: 1
    period: 10s
    burst: 5
  watch:
    algorithm: gcra
    limit: 1
    period: 1h
    shadow: true
";

fn start(env: &[(&str, &str)]) -> (Serve, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sluice.yaml", POLICIES);
    let serve = Serve::start(&["--config", file.to_str().unwrap()], env);
    (serve, dir)
}

#[tokio::test]
async fn a_check_answers_200_then_429_with_the_rate_limit_headers() {
    let (serve, _dir) = start(&[]);
    for remaining in [2, 1, 0] {
        let a = check(&serve, json!({"policy": "api", "key": "user-42"})).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), "application/json");
        assert_eq!(a.json["allowed"], true);
        assert_eq!(a.json["remaining"], remaining);
        assert_eq!(a.json["retry_after_ms"], 0);
        assert_eq!(a.header("ratelimit-limit"), "3");
        assert_eq!(a.header("ratelimit-remaining"), remaining.to_string());
        assert_eq!(a.header("ratelimit-policy"), r#""api";q=3;w=60"#);
        // A token comes back every 20 s: full after 20 s per missing token.
        let reset = 20 * (3 - remaining);
        assert_eq!(a.header("ratelimit-reset"), reset.to_string());
        assert_eq!(
            a.header("ratelimit"),
            format!(r#""api";r={remaining};t={reset}"#)
        );
        assert!(a.headers.get("retry-after").is_none());
    }
    let a = check(
        &serve,
        json!({"policy": "api", "key": "user-42", "cost": 1}),
    )
    .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json["allowed"], false);
    assert_eq!(a.json["policy"], "api");
    assert_eq!(a.json["key"], "user-42");
    assert_eq!(a.json["limit"], 3);
    let retry_ms = a.json["retry_after_ms"].as_u64().unwrap();
    assert!((19_000..=20_000).contains(&retry_ms), "{retry_ms}");
    assert_eq!(a.header("retry-after"), "20");
    assert_eq!(a.header("ratelimit-remaining"), "0");

    // Another key has its own limit; an override gives a key its own quota.
    let a = check(&serve, json!({"policy": "api", "key": "user-43"})).await;
    assert_eq!((a.status, a.json["remaining"].as_u64()), (200, Some(2)));
    let a = check(&serve, json!({"policy": "api", "key": "vip", "cost": 50})).await;
    assert_eq!((a.status, a.json["limit"].as_u64()), (200, Some(100)));
}

#[tokio::test]
async fn several_policies_are_checked_all_or_nothing() {
    let (serve, _dir) = start(&[]);
    let both = json!({"policies": ["per-hour", "per-minute"], "key": "k"});
    for left in [1, 0] {
        let a = check(&serve, both.clone()).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json["policy"], "per-minute", "the most restrictive");
        assert_eq!(a.json["remaining"], left);
        let results = a.json["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["policy"], "per-hour");
        assert_eq!(results[1]["policy"], "per-minute");
        assert_eq!(
            a.header("ratelimit-policy"),
            r#""per-hour";q=100;w=3600, "per-minute";q=2;w=3600"#
        );
    }
    let a = check(&serve, both.clone()).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json["allowed"], false);
    assert_eq!(a.json["policy"], "per-minute");
    assert!(a.header("ratelimit").starts_with(r#""per-minute";r=0;t="#));
    assert!(a.headers.get("retry-after").is_some());
    // The denial charged nothing to per-hour: it still has 98.
    assert_eq!(a.json["results"][0]["allowed"], true);
    assert_eq!(a.json["results"][0]["remaining"], 98);
    let peek = send(client().get(serve.url("/v1/limits/per-hour/k"))).await;
    assert_eq!(peek.json["remaining"], 98);
}

#[tokio::test]
async fn leaky_bucket_delay_shadow_and_never_admissible_requests() {
    let (serve, _dir) = start(&[]);
    let a = check(&serve, json!({"policy": "queue", "key": "k"})).await;
    assert_eq!((a.status, &a.json["delay_ms"]), (200, &json!(0)));
    let a = check(&serve, json!({"policy": "queue", "key": "k"})).await;
    let delay = a.json["delay_ms"].as_u64().unwrap();
    assert!((9_000..=10_000).contains(&delay), "{delay}");
    assert!(a.json.get("shadow").is_none());

    let a = check(&serve, json!({"policy": "watch", "key": "k"})).await;
    assert!(a.json.get("shadow").is_none());
    let a = check(&serve, json!({"policy": "watch", "key": "k"})).await;
    assert_eq!(a.status, 200, "a shadow policy admits");
    assert_eq!(a.json["shadow"], true);
    assert!(a.json.get("delay_ms").is_none());

    let a = check(&serve, json!({"policy": "api", "key": "big", "cost": 4})).await;
    assert_eq!(a.status, 429);
    assert!(a.json["retry_after_ms"].is_null(), "4 > the burst of 3");
    assert_eq!(
        a.header("retry-after"),
        "1",
        "an untouched key: come back at once"
    );
}

#[tokio::test]
async fn bad_requests_get_a_json_error_that_says_what_was_wrong() {
    let (serve, _dir) = start(&[]);
    let long_key = "k".repeat(1025);
    let cases = [
        (json!({"key": "k"}), 400, "missing \"policy\""),
        (json!({"policy": "api"}), 400, "missing \"key\""),
        (
            json!({"policy": "", "key": "k"}),
            400,
            "\"policy\" must not be empty",
        ),
        (
            json!({"policy": "api", "key": ""}),
            400,
            "\"key\" must not be empty",
        ),
        (
            json!({"policy": "api", "key": long_key}),
            400,
            "1025 bytes long; the most is 1024",
        ),
        (
            json!({"policy": "api", "key": "k", "cost": 0}),
            400,
            "from 1 to 1000000, got 0",
        ),
        (
            json!({"policy": "api", "key": "k", "cost": 1_000_001}),
            400,
            "got 1000001",
        ),
        (
            json!({"policy": "api", "key": "k", "cost": -1}),
            400,
            "invalid value: integer `-1`",
        ),
        (
            json!({"policy": "api", "key": "k", "cost": 1.5}),
            400,
            "invalid type: floating point",
        ),
        (
            json!({"policy": "api", "key": 7}),
            400,
            "invalid type: integer `7`",
        ),
        (
            json!({"policy": "api", "key": "k", "colour": 1}),
            400,
            "unknown field `colour`",
        ),
        (
            json!({"policy": "api", "policies": ["api"], "key": "k"}),
            400,
            "not both",
        ),
        (
            json!({"policies": [], "key": "k"}),
            400,
            "1 to 16 policies, got 0",
        ),
        (
            json!({"policies": ["api", "api"], "key": "k"}),
            400,
            "\"api\" is named twice",
        ),
        (
            json!({"policy": "nope", "key": "k"}),
            404,
            "unknown policy \"nope\"",
        ),
        (
            json!({"policies": ["api", "nope"], "key": "k"}),
            404,
            "unknown policy \"nope\"",
        ),
    ];
    for (body, status, message) in cases {
        let a = check(&serve, body.clone()).await;
        assert_eq!(a.status, status, "{body}: {}", a.json);
        assert_eq!(a.header("content-type"), "application/json");
        let error = a.json["error"].as_str().unwrap();
        assert!(
            error.contains(message),
            "{body}: {error:?} lacks {message:?}"
        );
    }
    let a = check(&serve, json!({"policy": "api", "key": "k".repeat(1024)})).await;
    assert_eq!(a.status, 200, "1024 bytes is the most, and allowed");

    let malformed = client().post(serve.url("/v1/check")).body("{\"policy\": ");
    let a = send(malformed).await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body: EOF")
    );

    let huge = format!(r#"{{"policy": "api", "key": "{}"}}"#, "k".repeat(64 * 1024));
    let a = send(client().post(serve.url("/v1/check")).body(huge)).await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (413, Some("the body is over 64 KiB"))
    );

    let a = send(client().get(serve.url("/v2/nothing"))).await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (404, Some("no such route: GET /v2/nothing"))
    );
    let a = send(client().put(serve.url("/v1/check"))).await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (405, Some("PUT is not allowed on /v1/check"))
    );
}

#[tokio::test]
async fn peeking_consumes_nothing_and_counts_what_is_available_now() {
    let (serve, _dir) = start(&[]);
    let peek = || send(client().get(serve.url("/v1/limits/api/team%2Fa/b")));
    let a = peek().await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json["key"], "team/a/b",
        "the key is the rest of the path, decoded"
    );
    assert_eq!(
        (a.json["allowed"].as_bool(), a.json["remaining"].as_u64()),
        (Some(true), Some(3))
    );
    assert_eq!(a.header("ratelimit-remaining"), "3");
    assert_eq!(
        peek().await.json["remaining"],
        3,
        "peeking twice takes nothing"
    );
    check(
        &serve,
        json!({"policy": "api", "key": "team/a/b", "cost": 3}),
    )
    .await;
    let a = peek().await;
    assert_eq!(
        a.status, 200,
        "a peek is 200 even when a check would be denied"
    );
    assert_eq!(
        (a.json["allowed"].as_bool(), a.json["remaining"].as_u64()),
        (Some(false), Some(0))
    );
    assert!(a.json["retry_after_ms"].as_u64().unwrap() > 0);

    let a = send(client().get(serve.url("/v1/limits/nope/k"))).await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (404, Some("unknown policy \"nope\""))
    );
    let long = format!("/v1/limits/api/{}", "k".repeat(1025));
    assert_eq!(send(client().get(serve.url(&long))).await.status, 400);
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_token_and_needs_the_right_one() {
    let (off, _dir) = start(&[]);
    let a = send(
        client()
            .delete(off.url("/v1/limits/api/k"))
            .bearer_auth("guess"),
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .contains("SLUICE_ADMIN_TOKEN")
    );

    let (on, _dir) = start(&[("SLUICE_ADMIN_TOKEN", "correct-horse")]);
    check(&on, json!({"policy": "api", "key": "k", "cost": 3})).await;
    for request in [
        client().delete(on.url("/v1/limits/api/k")),
        client()
            .delete(on.url("/v1/limits/api/k"))
            .bearer_auth("correct-hors"),
        client()
            .delete(on.url("/v1/limits/api/k"))
            .bearer_auth("correct-horsey"),
        client()
            .delete(on.url("/v1/limits/api/k"))
            .basic_auth("correct-horse", None::<&str>),
    ] {
        let a = send(request).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.header("www-authenticate"), "Bearer");
    }
    assert_eq!(
        check(&on, json!({"policy": "api", "key": "k"}))
            .await
            .status,
        429
    );
    let a = send(
        client()
            .delete(on.url("/v1/limits/api/k"))
            .bearer_auth("correct-horse"),
    )
    .await;
    assert_eq!((a.status, a.json.is_null()), (204, true));
    assert_eq!(
        check(&on, json!({"policy": "api", "key": "k"}))
            .await
            .status,
        200
    );
    let a = send(
        client()
            .delete(on.url("/v1/limits/nope/k"))
            .bearer_auth("correct-horse"),
    )
    .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn policies_health_and_readiness() {
    let (serve, _dir) = start(&[]);
    let a = send(client().get(serve.url("/v1/policies"))).await;
    assert_eq!(a.status, 200);
    let names: Vec<&str> = a.json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "per-hour", "per-minute", "queue", "watch"]);
    assert_eq!(
        a.json["policies"][0],
        json!({"name": "api", "algorithm": "token_bucket", "limit": 3, "period_ms": 60000,
            "burst": 3, "shadow": false,
            "overrides": [{"key": "vip", "limit": 100, "period_ms": 60000, "burst": 100}],
            "limits": [{"algorithm": "token_bucket", "limit": 3, "period_ms": 60000, "burst": 3,
                "overrides": [{"key": "vip", "limit": 100, "period_ms": 60000, "burst": 100}]}]})
    );
    assert_eq!(a.json["policies"][4]["shadow"], true);

    let a = send(client().get(serve.url("/healthz"))).await;
    assert_eq!((a.status, a.json.clone()), (200, json!({"status": "ok"})));
    let a = send(client().get(serve.url("/readyz"))).await;
    assert_eq!(
        (a.status, a.json.clone()),
        (200, json!({"status": "ready", "store": "memory"}))
    );
}

#[tokio::test]
async fn metrics_count_decisions_by_policy_and_outcome() {
    let (serve, _dir) = start(&[]);
    for _ in 0..4 {
        check(&serve, json!({"policy": "api", "key": "k"})).await;
    }
    for _ in 0..2 {
        check(&serve, json!({"policy": "watch", "key": "k"})).await;
    }
    check(&serve, json!({"policy": "nope", "key": "k"})).await;
    let response = client().get(serve.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for line in [
        r#"sluice_decisions_total{policy="api",outcome="allowed"} 3"#,
        r#"sluice_decisions_total{policy="api",outcome="denied"} 1"#,
        r#"sluice_decisions_total{policy="watch",outcome="allowed"} 1"#,
        r#"sluice_decisions_total{policy="watch",outcome="shadow_denied"} 1"#,
        r#"sluice_decision_duration_seconds_count{policy="api",store="memory"} 4"#,
        "sluice_store_errors_total 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("nope"), "an unknown policy makes no series");
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    use std::io::{Read, Write};
    let (serve, _dir) = start(&[]);
    let address = serve.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut batch = String::new();
    for i in 0..16 {
        let body = format!(r#"{{"policy": "per-hour", "key": "pipe-{}"}}"#, i % 2);
        batch.push_str(&format!(
            "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    tcp.write_all(batch.as_bytes()).unwrap();
    let mut seen = String::new();
    let mut buf = vec![0u8; 65536];
    while seen.matches("HTTP/1.1 200 OK").count() < 16 {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed after:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // Each key's answers count down in the order the requests were sent.
    let remaining: Vec<&str> = seen
        .match_indices("\"remaining\":")
        .map(|(i, _)| seen[i + 12..].split(',').next().unwrap())
        .collect();
    let expected: Vec<String> = (0..16).map(|i| (99 - i / 2).to_string()).collect();
    assert_eq!(remaining, expected);
}
