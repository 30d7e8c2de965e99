//! Every route of the HTTP API in-process: the router over a memory store
//! on a fake clock, driven with `oneshot`. Every status code, header and
//! body; time moves only when a test moves it, so waits are exact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use common::app::{App, assert_metrics, quota};
use common::scenarios::{the_hour_spends_nothing_when_the_second_denies, two_limits};
use serde_json::{Value, json};
use sluice::{Algorithm, Policy};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const TOKEN: &str = "correct-horse";

/// The policies the tests decide, one per behaviour:
///
/// - `api`: token bucket, 3 per minute, `vip` 100 per minute;
/// - `per-minute`: fixed window, 2 per hour;
/// - `per-hour`: sliding log, 100 per hour;
/// - `queue`: leaky bucket, 1 per 10 s, burst 5;
/// - `watch`: GCRA, 1 per hour, in shadow mode;
/// - `two`: 2 per second (token bucket) and 5 per hour (fixed window).
fn policies() -> Vec<Policy> {
    use Algorithm::*;
    vec![
        Policy::new("api", quota(TokenBucket, 3, MINUTE, None))
            .unwrap()
            .with_override("vip", quota(TokenBucket, 100, MINUTE, None)),
        Policy::new("per-minute", quota(FixedWindow, 2, HOUR, None)).unwrap(),
        Policy::new("per-hour", quota(SlidingWindowLog, 100, HOUR, None)).unwrap(),
        Policy::new("queue", quota(LeakyBucket, 1, 10 * SECOND, Some(5))).unwrap(),
        Policy::new("watch", quota(Gcra, 1, HOUR, None))
            .unwrap()
            .with_shadow(true),
        two_limits(),
    ]
}

fn app() -> App {
    App::memory(policies(), None)
}

fn admin_app() -> App {
    App::memory(policies(), Some(TOKEN))
}

#[tokio::test]
async fn a_check_answers_200_then_429_with_the_rate_limit_headers() {
    let app = app();
    for remaining in [2, 1, 0] {
        let a = app.check(json!({"policy": "api", "key": "user-42"})).await;
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
    let a = app
        .check(json!({"policy": "api", "key": "user-42", "cost": 1}))
        .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json["allowed"], false);
    assert_eq!(a.json["policy"], "api");
    assert_eq!(a.json["key"], "user-42");
    assert_eq!(a.json["burst"], 3);
    assert_eq!(a.json["retry_after_ms"], 20_000);
    assert_eq!(a.header("retry-after"), "20");
    assert_eq!(a.header("ratelimit-remaining"), "0");

    // Another key has its own limit; an override gives a key its own quota.
    let a = app.check(json!({"policy": "api", "key": "user-43"})).await;
    assert_eq!((a.status, a.json["remaining"].as_u64()), (200, Some(2)));
    let a = app
        .check(json!({"policy": "api", "key": "vip", "cost": 50}))
        .await;
    assert_eq!((a.status, a.json["burst"].as_u64()), (200, Some(100)));
}

#[tokio::test]
async fn waiting_out_retry_after_is_enough_and_a_moment_less_is_not() {
    let app = app();
    let once = json!({"policy": "api", "key": "k"});
    app.check(json!({"policy": "api", "key": "k", "cost": 3}))
        .await;
    let a = app.check(once.clone()).await;
    assert_eq!((a.status, a.header("retry-after")), (429, "20"));

    app.advance(Duration::from_millis(19_999));
    let a = app.check(once.clone()).await;
    assert_eq!((a.status, &a.json["retry_after_ms"]), (429, &json!(1)));
    assert_eq!(a.header("retry-after"), "1", "a part of a second rounds up");

    app.advance(Duration::from_millis(1));
    let a = app.check(once.clone()).await;
    assert_eq!((a.status, &a.json["remaining"]), (200, &json!(0)));
    assert_eq!(app.check(once).await.status, 429, "one token came back");
}

#[tokio::test]
async fn a_fixed_window_starts_again_when_it_ends() {
    let app = app();
    let body = json!({"policy": "per-minute", "key": "k"});
    app.advance(10 * MINUTE);
    for _ in 0..2 {
        assert_eq!(app.check(body.clone()).await.status, 200);
    }
    let a = app.check(body.clone()).await;
    assert_eq!(a.status, 429);
    // The hour's window began 10 minutes ago: 50 minutes are left.
    assert_eq!(a.header("retry-after"), "3000");
    assert_eq!(a.header("ratelimit-reset"), "3000");
    assert_eq!(a.json["retry_after_ms"], 3_000_000);

    app.advance(50 * MINUTE - Duration::from_micros(1));
    assert_eq!(app.check(body.clone()).await.status, 429);
    app.advance(Duration::from_micros(1));
    let a = app.check(body).await;
    assert_eq!((a.status, &a.json["remaining"]), (200, &json!(1)));
    assert_eq!(a.header("ratelimit-reset"), "3600", "a whole new window");
}

#[tokio::test]
async fn several_policies_are_checked_all_or_nothing() {
    let app = app();
    let both = json!({"policies": ["per-hour", "per-minute"], "key": "k"});
    for left in [1, 0] {
        let a = app.check(both.clone()).await;
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
    let a = app.check(both.clone()).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json["allowed"], false);
    assert_eq!(a.json["policy"], "per-minute");
    assert!(a.header("ratelimit").starts_with(r#""per-minute";r=0;t="#));
    assert_eq!(a.header("retry-after"), "3600");
    // The denial charged nothing to per-hour: it still has 98.
    assert_eq!(a.json["results"][0]["allowed"], true);
    assert_eq!(a.json["results"][0]["remaining"], 98);
    assert_eq!(a.json["results"][1]["allowed"], false);
    let peek = app.get("/v1/limits/per-hour/k").await;
    assert_eq!(peek.json["remaining"], 97, "what a check would leave");
}

#[tokio::test]
async fn the_top_of_a_multi_policy_answer_is_the_policy_that_denied() {
    // The denying policy named last, then first: the top-level body and
    // the headers follow it, not the order of the request.
    for names in [["per-hour", "per-minute"], ["per-minute", "per-hour"]] {
        let app = app();
        app.check(json!({"policy": "per-minute", "key": "k", "cost": 2}))
            .await;
        let a = app.check(json!({"policies": names, "key": "k"})).await;
        assert_eq!(a.status, 429, "{names:?}");
        assert_eq!(
            (&a.json["policy"], &a.json["allowed"], &a.json["burst"]),
            (&json!("per-minute"), &json!(false), &json!(2)),
            "{names:?}: {}",
            a.json
        );
        assert_eq!(a.header("ratelimit-limit"), "2", "{names:?}");
        assert!(
            a.header("ratelimit").starts_with(r#""per-minute";"#),
            "{names:?}"
        );
    }
}

#[tokio::test]
async fn leaky_bucket_delay_shadow_and_never_admissible_requests() {
    let app = app();
    let a = app.check(json!({"policy": "queue", "key": "k"})).await;
    assert_eq!((a.status, &a.json["delay_ms"]), (200, &json!(0)));
    let a = app.check(json!({"policy": "queue", "key": "k"})).await;
    assert_eq!((a.status, &a.json["delay_ms"]), (200, &json!(10_000)));
    assert!(a.json.get("shadow").is_none());
    let a = app.check(json!({"policy": "queue", "key": "k"})).await;
    assert_eq!(a.json["delay_ms"], 20_000, "one more in the queue");
    // Time drains the queue: 10 s later the next waits one place less.
    app.advance(10 * SECOND);
    let a = app.check(json!({"policy": "queue", "key": "k"})).await;
    assert_eq!(a.json["delay_ms"], 20_000);

    let a = app.check(json!({"policy": "watch", "key": "k"})).await;
    assert!(a.json.get("shadow").is_none());
    let a = app.check(json!({"policy": "watch", "key": "k"})).await;
    assert_eq!(a.status, 200, "a shadow policy admits");
    assert_eq!(a.json["shadow"], true);
    assert_eq!(a.json["allowed"], true);
    assert!(a.json.get("delay_ms").is_none());
    // Issue 14: a shadow policy never tells the client to back off: no
    // rate-limit header at all (it said `RateLimit-Remaining: 0`).
    for name in [
        "retry-after",
        "ratelimit-remaining",
        "ratelimit",
        "ratelimit-policy",
    ] {
        assert!(a.headers.get(name).is_none(), "{name}: {:?}", a.headers);
    }

    let a = app
        .check(json!({"policy": "api", "key": "big", "cost": 4}))
        .await;
    assert_eq!(a.status, 429);
    assert!(a.json["retry_after_ms"].is_null(), "4 > the burst of 3");
    // Issue 14: no Retry-After (it said 1, and a client retried for
    // ever), and the body says why.
    assert!(a.headers.get("retry-after").is_none(), "{:?}", a.headers);
    assert_eq!(
        a.json["reason"],
        "cost 4 exceeds the burst 3: it can never be admitted"
    );
}

/// Issue 14: the top level of a multi-policy answer is the longest wait,
/// a leaky bucket's delay included (another policy with fewer left hid
/// it), and a shadow policy is not the one a client heeds.
#[tokio::test]
async fn issue_14_the_top_of_a_multi_policy_answer_carries_the_longest_wait() {
    let app = app();
    app.check(json!({"policy": "queue", "key": "k"})).await;
    app.check(json!({"policy": "per-minute", "key": "k"})).await;
    let a = app
        .check(json!({"policies": ["per-minute", "queue"], "key": "k"}))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (&a.json["policy"], &a.json["delay_ms"]),
        (&json!("queue"), &json!(10_000)),
        "{}",
        a.json
    );
    // A shadow policy that would deny is reported, not heeded.
    let both = json!({"policies": ["watch", "per-hour"], "key": "w"});
    app.check(both.clone()).await;
    let a = app.check(both).await;
    assert_eq!(a.json["results"][0]["shadow"], true);
    assert_eq!(a.json["policy"], "per-hour", "{}", a.json);
    assert!(a.header("ratelimit-policy").starts_with(r#""per-hour";"#));
    assert!(!a.header("ratelimit-policy").contains("watch"));
}

/// Issue 14: a peek answers exactly what the cost-1 check it previews
/// answers (body, headers and status), on a shadow policy too (it said
/// `allowed: false` with a retry time where the check admitted).
#[tokio::test]
async fn issue_14_a_peek_is_the_check_it_previews() {
    let app = app();
    for policy in ["api", "watch", "queue", "per-minute", "two"] {
        for step in 0..6 {
            let path = format!("/v1/limits/{policy}/k");
            let peek = app.get(&path).await;
            let check = app.check(json!({"policy": policy, "key": "k"})).await;
            assert_eq!(
                (peek.status, &peek.json),
                (check.status, &check.json),
                "{policy} step {step}"
            );
            let headers = |a: &common::Answer| {
                let mut h: Vec<(String, String)> = (a.headers.iter())
                    .filter(|(n, _)| n.as_str() != "content-length")
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                h.sort();
                h
            };
            assert_eq!(headers(&peek), headers(&check), "{policy} step {step}");
            app.advance(SECOND / 3);
        }
    }
}

#[tokio::test]
async fn a_shadow_denial_in_a_multi_policy_check_admits() {
    let app = app();
    let both = json!({"policies": ["watch", "per-hour"], "key": "k"});
    assert_eq!(app.check(both.clone()).await.status, 200);
    let a = app.check(both).await;
    assert_eq!(a.status, 200, "only the shadow policy would have denied");
    assert_eq!(a.json["allowed"], true);
    assert_eq!(a.json["results"][0]["shadow"], true);
    assert_eq!(
        a.json["results"][1]["remaining"], 98,
        "per-hour was charged"
    );
}

#[tokio::test]
async fn bad_requests_get_a_json_error_that_says_what_was_wrong() {
    let app = app();
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
            "\"cost\" must be a whole number from 1 to 1000000, got -1",
        ),
        (
            json!({"policy": "api", "key": "k", "cost": 1.5}),
            400,
            "\"cost\" must be a whole number from 1 to 1000000, got 1.5",
        ),
        (
            json!({"policy": "api", "key": 7}),
            400,
            "\"key\" must be a string, got the number 7",
        ),
        (
            json!({"policy": "api", "key": "k", "colour": 1}),
            400,
            "unknown field \"colour\"; the fields are policy, policies, key and cost",
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
            json!({"policies": vec!["api"; 17], "key": "k"}),
            400,
            "1 to 16 policies, got 17",
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
        let a = app.check(body.clone()).await;
        assert_eq!(a.status, status, "{body}: {}", a.json);
        assert_eq!(a.header("content-type"), "application/json");
        let error = a.json["error"].as_str().unwrap();
        assert!(
            error.contains(message),
            "{body}: {error:?} lacks {message:?}"
        );
    }
    // None of them charged anything.
    assert_eq!(app.get("/v1/limits/api/k").await.json["remaining"], 2);
    let a = app
        .check(json!({"policy": "api", "key": "k".repeat(1024)}))
        .await;
    assert_eq!(a.status, 200, "1024 bytes is the most, and allowed");

    let a = app
        .request(Method::POST, "/v1/check", "{\"policy\": ", None)
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body: EOF"),
        "{}",
        a.json
    );

    let huge = format!(r#"{{"policy": "api", "key": "{}"}}"#, "k".repeat(64 * 1024));
    let a = app.request(Method::POST, "/v1/check", huge, None).await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (413, Some("the body is over 64 KiB"))
    );
    assert_eq!(a.header("content-type"), "application/json");
}

#[tokio::test]
async fn unknown_routes_answer_404_and_wrong_methods_405() {
    let app = app();
    let cases = [
        (
            Method::GET,
            "/v2/nothing",
            404,
            "no such route: GET /v2/nothing",
        ),
        (Method::GET, "/", 404, "no such route: GET /"),
        (
            Method::GET,
            "/v1/limits/api",
            404,
            "no such route: GET /v1/limits/api",
        ),
        (
            Method::PUT,
            "/v1/check",
            405,
            "PUT is not allowed on /v1/check",
        ),
        (
            Method::GET,
            "/v1/check",
            405,
            "GET is not allowed on /v1/check",
        ),
        (
            Method::POST,
            "/v1/limits/api/k",
            405,
            "POST is not allowed on /v1/limits/api/k",
        ),
        (
            Method::DELETE,
            "/v1/policies",
            405,
            "DELETE is not allowed on /v1/policies",
        ),
        (
            Method::PUT,
            "/healthz",
            405,
            "PUT is not allowed on /healthz",
        ),
        (
            Method::POST,
            "/metrics",
            405,
            "POST is not allowed on /metrics",
        ),
    ];
    for (method, path, status, message) in cases {
        let a = app.request(method.clone(), path, Body::empty(), None).await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (status, Some(message)),
            "{method} {path}"
        );
        assert_eq!(a.header("content-type"), "application/json");
    }
}

#[tokio::test]
async fn peeking_consumes_nothing_and_answers_as_the_check_would() {
    let app = app();
    let path = "/v1/limits/api/team%2Fa/b";
    let a = app.get(path).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json["key"], "team/a/b",
        "the key is the rest of the path, decoded"
    );
    assert_eq!(
        (a.json["allowed"].as_bool(), a.json["remaining"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(a.header("ratelimit-remaining"), "2");
    assert_eq!(
        app.get(path).await.json["remaining"],
        2,
        "peeking twice takes nothing"
    );
    app.check(json!({"policy": "api", "key": "team/a/b", "cost": 3}))
        .await;
    let a = app.get(path).await;
    assert_eq!(a.status, 429, "a peek is 429 when a check would be denied");
    assert_eq!(
        (a.json["allowed"].as_bool(), a.json["remaining"].as_u64()),
        (Some(false), Some(0))
    );
    assert_eq!(a.json["retry_after_ms"], 20_000);
    assert!(a.headers.get("retry-after").is_some());

    // A token is back 20 s later.
    app.advance(20 * SECOND);
    let a = app.get(path).await;
    assert_eq!(
        (a.json["allowed"].as_bool(), a.json["remaining"].as_u64()),
        (Some(true), Some(0))
    );

    let a = app.get("/v1/limits/nope/k").await;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (404, Some("unknown policy \"nope\""))
    );
    let long = format!("/v1/limits/api/{}", "k".repeat(1025));
    let a = app.get(&long).await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .contains("1025 bytes long"),
        "{}",
        a.json
    );
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_token_and_needs_the_right_one() {
    let off = app();
    let a = off.delete("/v1/limits/api/k", Some("guess")).await;
    assert_eq!(a.status, 403);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .contains("SLUICE_ADMIN_TOKEN")
    );

    let on = admin_app();
    on.check(json!({"policy": "api", "key": "k", "cost": 3}))
        .await;
    let wrong = [
        None,
        Some("Bearer correct-hors"),
        Some("Bearer correct-horsey"),
        // What reqwest's basic_auth("correct-horse", None) sends.
        Some("Basic Y29ycmVjdC1ob3JzZTo="),
    ];
    for authorization in wrong {
        let mut request = axum::http::Request::delete("/v1/limits/api/k");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let a = on.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, 401, "{authorization:?}");
        assert_eq!(a.header("www-authenticate"), "Bearer");
    }
    assert_eq!(
        on.check(json!({"policy": "api", "key": "k"})).await.status,
        429
    );
    let a = on.delete("/v1/limits/api/k", Some(TOKEN)).await;
    assert_eq!((a.status, a.json.is_null()), (204, true));
    assert!(a.text.is_empty());
    assert_eq!(
        on.check(json!({"policy": "api", "key": "k"})).await.status,
        200
    );
    let a = on.delete("/v1/limits/nope/k", Some(TOKEN)).await;
    assert_eq!(a.status, 404);
    let long = format!("/v1/limits/api/{}", "k".repeat(1025));
    assert_eq!(on.delete(&long, Some(TOKEN)).await.status, 400);
}

#[tokio::test]
async fn a_reset_forgets_every_limit_of_a_policy() {
    let app = admin_app();
    for _ in 0..2 {
        app.check(json!({"policy": "two", "key": "k"})).await;
    }
    app.advance(SECOND);
    for _ in 0..2 {
        app.check(json!({"policy": "two", "key": "k"})).await;
    }
    // The hour has 1 left and the second none.
    assert_eq!(app.get("/v1/limits/two/k").await.json["remaining"], 0);
    let a = app.delete("/v1/limits/two/k", Some(TOKEN)).await;
    assert_eq!(a.status, 204);
    let a = app.get("/v1/limits/two/k").await;
    assert_eq!(
        (&a.json["burst"], &a.json["remaining"]),
        (&json!(2), &json!(1)),
        "both limits untouched: a check would leave the second the tighter"
    );
    // The hour admits 5 again: 2 now, 2 a second later, 1 after that.
    let two = json!({"policy": "two", "key": "k"});
    for step in [2, 2, 1] {
        for _ in 0..step {
            assert_eq!(app.check(two.clone()).await.status, 200);
        }
        app.advance(SECOND);
    }
    let a = app.check(two).await;
    assert_eq!((a.status, &a.json["burst"]), (429, &json!(5)));
}

#[tokio::test]
async fn policies_health_and_readiness() {
    let app = app();
    let a = app.get("/v1/policies").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "application/json");
    let names: Vec<&str> = a.json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["api", "per-hour", "per-minute", "queue", "two", "watch"]
    );
    assert_eq!(
        a.json["policies"][0],
        json!({"name": "api", "algorithm": "token_bucket", "limit": 3, "period_ms": 60000,
            "burst": 3, "shadow": false,
            "overrides": [{"key": "vip", "limit": 100, "period_ms": 60000, "burst": 100}],
            "limits": [{"algorithm": "token_bucket", "limit": 3, "period_ms": 60000, "burst": 3,
                "overrides": [{"key": "vip", "limit": 100, "period_ms": 60000, "burst": 100}]}]})
    );
    assert_eq!(a.json["policies"][3]["burst"], 5);
    assert_eq!(a.json["policies"][5]["shadow"], true);
    // A policy of several limits: the first at the top, all under limits.
    assert_eq!(
        a.json["policies"][4],
        json!({"name": "two", "algorithm": "token_bucket", "limit": 2, "period_ms": 1000,
            "burst": 2, "shadow": false, "overrides": [],
            "limits": [
                {"algorithm": "token_bucket", "limit": 2, "period_ms": 1000, "burst": 2,
                    "overrides": []},
                {"algorithm": "fixed_window", "limit": 5, "period_ms": 3600000, "burst": 5,
                    "overrides": []}]})
    );

    let a = app.get("/healthz").await;
    assert_eq!((a.status, a.json.clone()), (200, json!({"status": "ok"})));
    let a = app.get("/readyz").await;
    assert_eq!(
        (a.status, a.json.clone()),
        (
            200,
            json!({"status": "ready", "store": "memory", "on_store_error": ["deny"], "breaker": null})
        )
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_as_json() {
    let a = app().get("/openapi.json").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "application/json");
    assert_eq!(a.text, sluice_server::http::OPENAPI);
    assert_eq!(a.json["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    assert!(a.json["paths"]["/v1/check"]["post"].is_object());
}

#[tokio::test]
async fn metrics_count_decisions_by_policy_and_outcome() {
    let app = app();
    for _ in 0..4 {
        app.check(json!({"policy": "api", "key": "k"})).await;
    }
    for _ in 0..2 {
        app.check(json!({"policy": "watch", "key": "k"})).await;
    }
    app.check(json!({"policy": "nope", "key": "k"})).await;
    let a = app.get("/metrics").await;
    assert_eq!(a.status, 200);
    assert!(
        a.header("content-type")
            .starts_with("application/openmetrics-text"),
    );
    assert_metrics(
        &a.text,
        &[
            r#"sluice_decisions_total{policy="api",outcome="allowed"} 3"#,
            r#"sluice_decisions_total{policy="api",outcome="denied"} 1"#,
            r#"sluice_decisions_total{policy="watch",outcome="allowed"} 1"#,
            r#"sluice_decisions_total{policy="watch",outcome="shadow_denied"} 1"#,
            r#"sluice_decision_duration_seconds_count{policy="api",store="memory"} 4"#,
            r#"sluice_decision_sources_total{policy="api",source="store"} 4"#,
            r#"sluice_decision_sources_total{policy="api",source="fallback"} 0"#,
        ],
    );
    assert!(
        !a.text.contains("nope"),
        "an unknown policy makes no series"
    );
}

#[tokio::test]
async fn a_policy_that_another_denied_counts_no_admission() {
    let app = app();
    let both = json!({"policies": ["per-hour", "per-minute"], "key": "k"});
    for status in [200, 200, 429, 429] {
        assert_eq!(app.check(both.clone()).await.status, status);
    }
    // per-hour admitted all four by itself, but was charged for two.
    assert_eq!(app.get("/v1/limits/per-hour/k").await.json["remaining"], 97);
    let text = app.metrics().await;
    assert_metrics(
        &text,
        &[
            r#"sluice_decisions_total{policy="per-hour",outcome="allowed"} 2"#,
            r#"sluice_decisions_total{policy="per-hour",outcome="denied"} 0"#,
            r#"sluice_decisions_total{policy="per-minute",outcome="allowed"} 2"#,
            r#"sluice_decisions_total{policy="per-minute",outcome="denied"} 2"#,
            // Every decision is timed, counted or not.
            r#"sluice_decision_duration_seconds_count{policy="per-hour",store="memory"} 4"#,
            r#"sluice_decision_duration_seconds_count{policy="per-minute",store="memory"} 4"#,
        ],
    );
}

#[tokio::test]
async fn on_memory_the_hour_spends_nothing_when_the_second_denies() {
    the_hour_spends_nothing_when_the_second_denies(&app()).await;
}

/// What `api` (3 per minute, a token every 20 s) answers once its 3 tokens
/// were spent at the start and `elapsed` has passed: the status, then
/// `Retry-After`, `retry_after_ms`, `RateLimit-Reset`, `reset_after_ms` and
/// `RateLimit`.
async fn spent_api_after(elapsed: Duration) -> (u16, String, Value, String, Value, String) {
    let app = app();
    let spend = app
        .check(json!({"policy": "api", "key": "k", "cost": 3}))
        .await;
    assert_eq!(spend.status, 200);
    app.advance(elapsed);
    let a = app.check(json!({"policy": "api", "key": "k"})).await;
    (
        a.status,
        a.header("retry-after").to_owned(),
        a.json["retry_after_ms"].clone(),
        a.header("ratelimit-reset").to_owned(),
        a.json["reset_after_ms"].clone(),
        a.header("ratelimit").to_owned(),
    )
}

/// Issue 10: every duration a client reads is rounded up, to the whole
/// second in the headers and to the millisecond in the body, so a client
/// that waits what it was told is never turned away for the fraction that
/// rounding dropped; a whole second stays what it is.
#[tokio::test]
async fn issue_10_waits_round_up_to_the_second_and_the_millisecond() {
    let us = Duration::from_micros;
    // (elapsed since the 3 were spent, Retry-After, retry_after_ms,
    //  RateLimit-Reset, reset_after_ms): the next token is 20 s after the
    // spend, the bucket is full 60 s after it.
    let cases = [
        // 19.5 s to wait: 20; the bucket is full in 59.5 s: 60.
        (us(500_000), "20", 19_500, "60", 59_500),
        // Exactly 19 s and 59 s: nothing to round.
        (us(1_000_000), "19", 19_000, "59", 59_000),
        // 1 µs above a whole second rounds up, in seconds and in ms.
        (us(999_999), "20", 19_001, "60", 59_001),
        // 19.99975 s: 20 s and 20,000 ms.
        (us(250), "20", 20_000, "60", 60_000),
        // 18.0005 s: 19 s and 18,001 ms.
        (us(1_999_500), "19", 18_001, "59", 58_001),
        // 1 µs to wait: 1 s and 1 ms.
        (us(19_999_999), "1", 1, "41", 40_001),
    ];
    for (elapsed, retry_after, retry_ms, reset, reset_ms) in cases {
        let (status, h_retry, b_retry, h_reset, b_reset, current) = spent_api_after(elapsed).await;
        let at = format!("{elapsed:?} after the spend");
        assert_eq!(status, 429, "{at}");
        assert_eq!(h_retry, retry_after, "{at}: Retry-After");
        assert_eq!(b_retry, json!(retry_ms), "{at}: retry_after_ms");
        assert_eq!(h_reset, reset, "{at}: RateLimit-Reset");
        assert_eq!(b_reset, json!(reset_ms), "{at}: reset_after_ms");
        assert_eq!(current, format!(r#""api";r=0;t={reset}"#), "{at}");
    }
}

/// Issue 10: waiting what `Retry-After` says is enough, and what
/// `retry_after_ms` says too, even when the wait is not whole: 19.5 s
/// answers 20, and 20 s later the request goes through; 19,500 ms later
/// it goes through too, and 1 µs less is still too early.
#[tokio::test]
async fn issue_10_waiting_out_a_rounded_wait_is_enough() {
    let app = app();
    let once = json!({"policy": "api", "key": "k"});
    app.check(json!({"policy": "api", "key": "k", "cost": 3}))
        .await;
    app.advance(Duration::from_millis(500));
    let a = app.check(once.clone()).await;
    assert_eq!((a.status, a.header("retry-after")), (429, "20"));
    assert_eq!(a.json["retry_after_ms"], 19_500);
    app.advance(Duration::from_micros(19_499_999));
    assert_eq!(app.check(once.clone()).await.status, 429, "1 µs early");
    app.advance(Duration::from_micros(1));
    assert_eq!(app.check(once).await.status, 200);
}

/// Issue 10: a peek rounds up as a check does, and a period that is not a
/// whole number of seconds is described by the seconds that cover it.
#[tokio::test]
async fn issue_10_peeks_and_policy_windows_round_up_too() {
    let app = App::memory(
        vec![
            Policy::new(
                "odd",
                quota(
                    Algorithm::TokenBucket,
                    2,
                    Duration::from_millis(1_500),
                    None,
                ),
            )
            .unwrap(),
        ],
        None,
    );
    let a = app
        .check(json!({"policy": "odd", "key": "k", "cost": 2}))
        .await;
    // A token every 750 ms: full again 1.5 s after the spend.
    assert_eq!(a.header("ratelimit-policy"), r#""odd";q=2;w=2"#);
    assert_eq!(a.header("ratelimit-reset"), "2");
    assert_eq!(a.json["reset_after_ms"], 1_500);
    app.advance(Duration::from_micros(200_001));
    // 549,999 µs to the next token, 1,299,999 µs to full.
    let a = app.get("/v1/limits/odd/k").await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json["allowed"], false);
    assert_eq!(a.json["retry_after_ms"], 550);
    assert_eq!(a.header("retry-after"), "1");
    assert_eq!(a.json["reset_after_ms"], 1_300);
    assert_eq!(a.header("ratelimit-reset"), "2");
    assert_eq!(a.header("ratelimit"), r#""odd";r=0;t=2"#);
}

/// Issue 12: every answer that repeats what the client sent repeats at
/// most a bounded prefix of it. A 60 KB name on every route that echoes:
/// the answer stays small, and still shows the name's first 64 bytes
/// followed by `…`. (A policy named twice in `policies` is echoed the same
/// way, but must exist, and policy names are short.)
#[tokio::test]
async fn issue_12_error_bodies_echo_a_bounded_prefix_of_60_kb_names() {
    const LONG: usize = 60 * 1024;
    // Letters that change every byte, so a prefix of the wrong length or
    // from the wrong place shows.
    let name = |n: usize| -> String { (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect() };
    let long = name(LONG);
    let shown = format!("{}…", &long[..64]);
    let app = admin_app();
    let mut answers = vec![
        (
            "check: unknown policy",
            app.check(json!({"policy": long, "key": "k"})).await,
            404,
            true,
        ),
        (
            "check: unknown policy in policies",
            app.check(json!({"policies": ["api", long], "key": "k"}))
                .await,
            404,
            true,
        ),
        (
            "check: an unknown field",
            app.check(json!({"policy": "api", "key": "k", long.clone(): 1}))
                .await,
            400,
            false,
        ),
        (
            "check: a string for the cost",
            app.check(json!({"policy": "api", "key": "k", "cost": long}))
                .await,
            400,
            false,
        ),
    ];
    let path = format!("/v1/limits/{long}/k");
    answers.push(("peek: unknown policy", app.get(&path).await, 404, true));
    let reset = app.delete(&path, Some(TOKEN)).await;
    answers.push(("reset: unknown policy", reset, 404, true));
    let route = app.get(&format!("/{long}")).await;
    answers.push(("an unknown route", route, 404, false));
    let method = app
        .request(
            Method::PUT,
            &format!("/v1/limits/api/{long}"),
            Body::empty(),
            None,
        )
        .await;
    answers.push(("a wrong method", method, 405, false));
    // `exact`: the name is echoed as such; else within a path or serde_json's
    // message, which is cut as a whole.
    for (what, a, status, exact) in answers {
        assert_eq!(a.status, status, "{what}: {}", a.text);
        assert!(
            a.text.len() < 300,
            "{what}: {} bytes: {}",
            a.text.len(),
            a.text
        );
        let error = a.json["error"].as_str().unwrap();
        assert!(error.contains(&long[..24]), "{what}: {error:?}");
        assert!(error.contains('…'), "{what}: {error:?}");
        assert!(
            !exact || error.contains(&shown),
            "{what}: {error:?} lacks the first 64 bytes and …"
        );
    }
}

/// Issue 14: overrides by pattern, `unlimited` (an allowlist: admitted,
/// no counts, no rate-limit headers) and `block` (a blocklist: 429 with
/// no retry time), shown by `/v1/policies`.
#[tokio::test]
async fn issue_14_overrides_describe_tiers() {
    use Algorithm::*;
    let tiers = Policy::new("tiers", quota(FixedWindow, 2, MINUTE, None))
        .unwrap()
        .with_override("*.premium", quota(FixedWindow, 50, MINUTE, None))
        .with_override("internal-*", sluice::Override::unlimited())
        .with_override("abuser-*", sluice::Override::blocked());
    let app = App::memory(vec![tiers], None);
    let a = app
        .check(json!({"policy": "tiers", "key": "acme.premium"}))
        .await;
    assert_eq!((a.status, &a.json["burst"]), (200, &json!(50)));
    for _ in 0..5 {
        let a = app
            .check(json!({"policy": "tiers", "key": "internal-batch"}))
            .await;
        assert_eq!(
            (a.status, &a.json["unlimited"]),
            (200, &json!(true)),
            "{}",
            a.json
        );
        assert!(a.json.get("remaining").is_none(), "{}", a.json);
        assert!(
            a.headers.get("ratelimit-limit").is_none(),
            "{:?}",
            a.headers
        );
    }
    let a = app
        .check(json!({"policy": "tiers", "key": "abuser-9"}))
        .await;
    assert_eq!(
        (a.status, &a.json["blocked"]),
        (429, &json!(true)),
        "{}",
        a.json
    );
    assert!(a.json["retry_after_ms"].is_null());
    assert_eq!(a.json["reason"], "the key is blocked");
    assert!(a.headers.get("retry-after").is_none(), "{:?}", a.headers);
    let peek = app.get("/v1/limits/tiers/abuser-9").await;
    assert_eq!((peek.status, &peek.json), (429, &a.json));
    let a = app.get("/v1/policies").await;
    assert_eq!(
        a.json["policies"][0]["overrides"],
        json!([
            {"key": "*.premium", "pattern": true, "limit": 50, "period_ms": 60000, "burst": 50},
            {"key": "abuser-*", "pattern": true, "block": true},
            {"key": "internal-*", "pattern": true, "unlimited": true},
        ])
    );
}
