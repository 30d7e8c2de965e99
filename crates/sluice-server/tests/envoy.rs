//! Envoy's ShouldRateLimit on the decision service, in-process: every
//! example of envoyproxy/ratelimit's README on the memory store and on a
//! real Redis, then each rule of the answer (all or nothing, replaces,
//! overrides, hits_addend, shadow, store failures, headers, metadata,
//! statistics), on a fake clock so that every window is exact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::envoy_examples::{self, EXAMPLES, NOW_S, OK, OVER, Status, request};
use common::envoy_services::{self, load, redis};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::RateLimitOverride;
use envoy_types::pb::google::protobuf::UInt64Value;
use sluice::{FakeClock, OnStoreError};
use sluice_server::envoy::{EnvoyError, EnvoyOptions, RateLimitRequest, ResponseHeaders};
use sluice_server::service::DecisionService;
use sluice_testkit::{RedisCluster, RedisServer};

/// A service over a fresh memory store with the file `config`, and its
/// clock.
fn memory(config: &str) -> (DecisionService, FakeClock) {
    envoy_services::memory(load(config))
}

async fn ask(
    service: &DecisionService,
    request: RateLimitRequest,
) -> envoy_types::pb::envoy::service::ratelimit::v3::RateLimitResponse {
    service.should_rate_limit(&request).await.unwrap()
}

#[tokio::test]
async fn every_readme_example_on_the_memory_store() {
    for example in EXAMPLES {
        let (service, _) = memory(example.config);
        envoy_examples::run(example, |r| {
            let service = service.clone();
            async move { ask(&service, r).await }
        })
        .await;
    }
}

#[tokio::test]
async fn every_readme_example_on_redis() {
    let server = RedisServer::start();
    for example in EXAMPLES {
        server.cli(&["FLUSHALL"]);
        let service = redis(&server.url(), example.load()).await;
        envoy_examples::run(example, |r| {
            let service = service.clone();
            async move { ask(&service, r).await }
        })
        .await;
    }
}

/// On Redis Cluster the descriptors of one request count on keys of
/// different slots: each is decided on its own node, and a rejection
/// gives back what the others were charged (the examples' all-or-nothing
/// expectations hold there too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_example_on_redis_cluster() {
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    for example in EXAMPLES {
        for node in 0..cluster.ports().len() {
            cluster.cli(node, &["FLUSHALL"]);
        }
        let service = redis(&cluster.url(), example.load()).await;
        envoy_examples::run(example, |r| {
            let service = service.clone();
            async move { ask(&service, r).await }
        })
        .await;
    }
    spends_nothing_when_rejected(&redis(&cluster.url(), load(CONFIG)).await).await;
}

const CONFIG: &str = "domain: rl
descriptors:
  - key: user
    rate_limit:
      unit: minute
      requests_per_unit: 3
  - key: ip
    rate_limit:
      unit: second
      requests_per_unit: 2
  - key: quiet
    shadow_mode: true
    rate_limit:
      unit: minute
      requests_per_unit: 1
  - key: tagged
    value: x
    metadata:
      team: payments
      tier: 2
    rate_limit:
      name: tagged_limit
      unit: hour
      requests_per_unit: 1
";

fn remaining(
    response: &envoy_types::pb::envoy::service::ratelimit::v3::RateLimitResponse,
) -> Vec<(i32, u32)> {
    response
        .statuses
        .iter()
        .map(|s| (s.code, s.limit_remaining))
        .collect()
}

/// Issue 13: a request over one limit spends nothing on the others.
#[tokio::test]
async fn a_rejected_request_spends_nothing_on_its_other_descriptors() {
    let (service, _) = memory(CONFIG);
    spends_nothing_when_rejected(&service).await;
}

/// Two descriptors, the second over its limit: nothing is spent on the
/// first.
async fn spends_nothing_when_rejected(service: &DecisionService) {
    let service = service.clone();
    let both = request("rl", &[&[("user", "a")], &[("ip", "1")]]);
    assert_eq!(
        remaining(&ask(&service, both.clone()).await),
        [(OK, 2), (OK, 1)]
    );
    assert_eq!(
        remaining(&ask(&service, both.clone()).await),
        [(OK, 1), (OK, 0)]
    );
    let answer = ask(&service, both.clone()).await;
    assert_eq!(answer.overall_code, OVER);
    assert_eq!(remaining(&answer), [(OK, 1), (OVER, 0)]);
    let user = request("rl", &[&[("user", "a")]]);
    assert_eq!(
        remaining(&ask(&service, user).await),
        [(OK, 0)],
        "the user's limit kept its one"
    );
}

#[tokio::test]
async fn hits_addend_zero_peeks_and_huge_ones_are_over_without_overflow() {
    let (service, _) = memory(CONFIG);
    let mut peek = request("rl", &[&[("user", "a")]]);
    peek.descriptors[0].hits_addend = Some(UInt64Value { value: 0 });
    for _ in 0..3 {
        assert_eq!(remaining(&ask(&service, peek.clone()).await), [(OK, 3)]);
    }
    let mut two = request("rl", &[&[("user", "a")]]);
    two.hits_addend = 2;
    assert_eq!(remaining(&ask(&service, two).await), [(OK, 1)]);
    let mut huge = request("rl", &[&[("user", "a")]]);
    huge.descriptors[0].hits_addend = Some(UInt64Value { value: u64::MAX });
    assert_eq!(remaining(&ask(&service, huge).await), [(OVER, 0)]);
    let mut huge = request("rl", &[&[("user", "a")]]);
    huge.hits_addend = u32::MAX;
    assert_eq!(remaining(&ask(&service, huge).await), [(OVER, 0)]);
    assert_eq!(
        remaining(&ask(&service, peek).await),
        [(OK, 1)],
        "the huge ones spent nothing"
    );
    let text = service.render_metrics();
    assert!(
        text.contains(r#"sluice_envoy_within_limit_total{domain="rl",key="user"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_request_override_applies_without_a_rule_but_not_in_an_unknown_domain() {
    let (service, _) = memory(CONFIG);
    let mut own = request("rl", &[&[("nothing", "here")]]);
    own.descriptors[0].limit = Some(RateLimitOverride {
        requests_per_unit: 1,
        unit: envoy_examples::HOUR,
    });
    let answer = ask(&service, own.clone()).await;
    envoy_examples::check(
        &answer.statuses[0],
        &Status::Limit {
            code: OK,
            per_unit: 1,
            unit: envoy_examples::HOUR,
            remaining: 0,
            name: "",
        },
        "override",
    );
    assert_eq!(ask(&service, own.clone()).await.overall_code, OVER);
    let mut elsewhere = own.clone();
    elsewhere.domain = "unknown".into();
    assert_eq!(remaining(&ask(&service, elsewhere).await), [(OK, 0)]);
    assert_eq!(
        ask(&service, own.clone()).await.statuses[0]
            .current_limit
            .as_ref()
            .unwrap()
            .requests_per_unit,
        1
    );
    own.descriptors[0].limit.as_mut().unwrap().unit = 0;
    assert!(matches!(
        service.should_rate_limit(&own).await,
        Err(EnvoyError::Invalid(_))
    ));
}

#[tokio::test]
async fn malformed_requests_are_invalid() {
    let (service, _) = memory(CONFIG);
    let cases = [
        request("", &[&[("user", "a")]]),
        request("rl", &[]),
        request("rl", &[&[("user", "a")], &[]]),
        request("rl", &[&[("user", &"v".repeat(5000))]]),
    ];
    for case in cases {
        let got = service.should_rate_limit(&case).await;
        assert!(
            matches!(got, Err(EnvoyError::Invalid(_))),
            "{case:?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn shadow_mode_per_rule_and_global() {
    let (service, _) = memory(CONFIG);
    let quiet = request("rl", &[&[("quiet", "q")], &[("user", "a")]]);
    assert_eq!(
        remaining(&ask(&service, quiet.clone()).await),
        [(OK, 0), (OK, 2)]
    );
    let answer = ask(&service, quiet.clone()).await;
    assert_eq!(answer.overall_code, OK);
    assert_eq!(
        remaining(&answer),
        [(OK, 0), (OK, 1)],
        "the breach rejects nothing"
    );
    service.set_envoy_options(EnvoyOptions::default().with_shadow_mode(true));
    let ip = request("rl", &[&[("ip", "9")]]);
    for _ in 0..2 {
        ask(&service, ip.clone()).await;
    }
    let answer = ask(&service, ip).await;
    assert_eq!(answer.overall_code, OK, "the global switch answers OK");
    assert_eq!(
        remaining(&answer),
        [(OVER, 0)],
        "and keeps the status, as upstream"
    );
    let text = service.render_metrics();
    for line in [
        r#"sluice_envoy_shadow_mode_total{domain="rl",key="quiet"} 1"#,
        r#"sluice_envoy_shadow_mode_total{domain="rl",key="ip"} 1"#,
        r#"sluice_envoy_over_limit_total{domain="rl",key="ip"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in {text}");
    }
}

#[tokio::test]
async fn statistics_count_as_envoyproxy_ratelimit_counts_them() {
    // 10 a minute; near limit past floor(10 × 0.8) = 8.
    let (service, _) = memory(
        "domain: st
descriptors:
  - key: k
    rate_limit:
      unit: minute
      requests_per_unit: 10
",
    );
    let mut seven = request("st", &[&[("k", "v")]]);
    seven.hits_addend = 7;
    ask(&service, seven).await;
    let mut two = request("st", &[&[("k", "v")]]);
    two.hits_addend = 2; // 7 → 9: one hit past 8.
    ask(&service, two).await;
    let mut three = request("st", &[&[("k", "v")]]);
    three.hits_addend = 3; // 9 → 12: over by 2, one more near.
    assert_eq!(ask(&service, three.clone()).await.overall_code, OVER);
    ask(&service, three).await; // at 9 still: over by 2 again, near 1.
    let text = service.render_metrics();
    for line in [
        r#"sluice_envoy_total_hits_total{domain="st",key="k"} 15"#,
        r#"sluice_envoy_within_limit_total{domain="st",key="k"} 9"#,
        r#"sluice_envoy_near_limit_total{domain="st",key="k"} 3"#,
        r#"sluice_envoy_over_limit_total{domain="st",key="k"} 4"#,
        r#"sluice_envoy_shadow_mode_total{domain="st",key="k"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line} in {text}");
    }
}

#[tokio::test]
async fn headers_of_the_most_restrictive_limit_in_each_mode() {
    let (service, clock) = memory(CONFIG);
    clock.set((NOW_S * 1_000_000) + 250_000);
    let both = request("rl", &[&[("user", "a")], &[("ip", "1")]]);
    let answer = ask(&service, both.clone()).await;
    let headers: Vec<(String, String)> = answer
        .response_headers_to_add
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    // The ip's 1 remaining is fewer than the user's 2; its second ends in
    // 0.75 s, rounded up.
    let want = [
        ("RateLimit-Limit", "2"),
        ("RateLimit-Remaining", "1"),
        ("RateLimit-Reset", "1"),
    ];
    assert_eq!(headers, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let reset = answer.statuses[0].duration_until_reset.unwrap();
    assert_eq!(
        (reset.seconds, reset.nanos),
        (32, 750_000_000),
        "32.75 s left of the minute at :27.25"
    );
    service.set_envoy_options(EnvoyOptions::default().with_response_headers(ResponseHeaders::Ietf));
    let answer = ask(&service, both.clone()).await;
    let names: Vec<&str> = answer
        .response_headers_to_add
        .iter()
        .map(|h| h.key.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
            "RateLimit"
        ]
    );
    assert_eq!(
        answer.response_headers_to_add[3].value,
        r#""rl.user";q=3;w=60, "rl.ip";q=2;w=1"#
    );
    assert_eq!(
        answer.response_headers_to_add[4].value,
        r#""rl.ip";r=0;t=1"#
    );
    service.set_envoy_options(EnvoyOptions::default().with_response_headers(ResponseHeaders::Off));
    assert!(ask(&service, both).await.response_headers_to_add.is_empty());
    let free = request("rl", &[&[("none", "x")]]);
    service.set_envoy_options(EnvoyOptions::default());
    assert!(
        ask(&service, free).await.response_headers_to_add.is_empty(),
        "no limit, no headers"
    );
}

#[tokio::test]
async fn dynamic_metadata_names_the_rule_that_rejected() {
    let (service, _) = memory(CONFIG);
    let tagged = request("rl", &[&[("tagged", "x")]]);
    service.set_envoy_options(EnvoyOptions::default().with_dynamic_metadata(true));
    assert_eq!(
        ask(&service, tagged.clone()).await.dynamic_metadata,
        None,
        "admitted: none"
    );
    let answer = ask(&service, tagged).await;
    let meta = answer.dynamic_metadata.expect("metadata on a rejection");
    let json = format!("{meta:?}");
    for part in ["rl.tagged_x", "tagged_limit", "hour", "payments"] {
        assert!(json.contains(part), "{part} in {json}");
    }
    assert_eq!(meta.fields.len(), 6, "{json}");
}

#[tokio::test]
async fn replacing_the_config_keeps_every_counter() {
    let (service, _) = memory(CONFIG);
    let user = request("rl", &[&[("user", "a")]]);
    ask(&service, user.clone()).await;
    service.set_envoy_config(load(
        &CONFIG.replace("requests_per_unit: 3", "requests_per_unit: 5"),
    ));
    assert_eq!(remaining(&ask(&service, user).await), [(OK, 3)]);
}

/// Issue 13: with Redis gone, each `on_store_error` mode answers its way.
#[tokio::test]
async fn a_store_failure_answers_by_the_mode_in_force() {
    let mut server = RedisServer::start();
    let service = redis(&server.url(), load(CONFIG)).await;
    let user = request("rl", &[&[("user", "a")]]);
    assert_eq!(remaining(&ask(&service, user.clone()).await), [(OK, 2)]);
    server.kill();
    let got = service.should_rate_limit(&user).await;
    assert!(
        matches!(got, Err(EnvoyError::Unavailable(_))),
        "deny: {got:?}"
    );
    service.set_envoy_options(EnvoyOptions::default().with_on_store_error(OnStoreError::Allow));
    for _ in 0..5 {
        assert_eq!(ask(&service, user.clone()).await.overall_code, OK, "allow");
    }
    service.set_envoy_options(EnvoyOptions::default().with_on_store_error(OnStoreError::Local));
    let answers: Vec<i32> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(ask(&service, user.clone()).await.overall_code);
        }
        v
    };
    assert_eq!(
        answers,
        [OK, OK, OK, OVER],
        "local: the process's memory counts 3 a minute"
    );
}

/// envoyproxy/ratelimit's `/json`: 200 when OK, 429 when over, 400 for
/// what is not a request, on the HTTP API in-process.
#[tokio::test]
async fn json_answers_200_429_and_400() {
    use tower::ServiceExt;
    let (service, _) = memory(CONFIG);
    let router = sluice_server::http::router(service);
    let post = |body: &str| {
        axum::http::Request::post("/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    let send = |body: &'static str| {
        let router = router.clone();
        async move {
            let response = router.oneshot(post(body)).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            )
        }
    };
    let tagged =
        r#"{"domain": "rl", "descriptors": [{"entries": [{"key": "tagged", "value": "x"}]}]}"#;
    let (status, body) = send(tagged).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({
            "overallCode": "OK",
            "statuses": [{
                "code": "OK",
                "currentLimit": {"name": "tagged_limit", "requestsPerUnit": 1, "unit": "HOUR"},
                "durationUntilReset": "2793s"
            }],
            "responseHeadersToAdd": [
                {"key": "RateLimit-Limit", "value": "1"},
                {"key": "RateLimit-Remaining", "value": "0"},
                {"key": "RateLimit-Reset", "value": "2793"}
            ]
        })
    );
    let (status, body) = send(tagged).await;
    assert_eq!(
        (status, &body["overallCode"]),
        (429, &serde_json::json!("OVER_LIMIT")),
        "{body}"
    );
    let proto_names = r#"{"domain": "rl", "descriptors": [{"entries": [{"key": "user", "value": "a"}], "hits_addend": "2"}]}"#;
    let (status, body) = send(proto_names).await;
    assert_eq!(
        (status, &body["statuses"][0]["limitRemaining"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    for bad in [
        "{",
        r#"{"domain": "rl", "descriptors": []}"#,
        r#"{"domain": "rl", "nope": 1}"#,
    ] {
        let (status, body) = send(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
}

/// Two descriptors of one request on one counter are decided together,
/// their hits added; their statistics never underflow.
#[tokio::test]
async fn descriptors_sharing_a_counter_are_decided_together() {
    let (service, _) = memory(CONFIG);
    let mut twice = request("rl", &[&[("ip", "1")], &[("ip", "1")]]);
    twice.descriptors[0].hits_addend = Some(UInt64Value { value: 2 });
    let answer = ask(&service, twice.clone()).await;
    assert_eq!(answer.overall_code, OVER, "3 hits on a limit of 2");
    assert_eq!(remaining(&answer), [(OVER, 0), (OVER, 0)]);
    twice.descriptors[0].hits_addend = Some(UInt64Value { value: 1 });
    assert_eq!(remaining(&ask(&service, twice).await), [(OK, 0), (OK, 0)]);
    let text = service.render_metrics();
    for line in [
        r#"sluice_envoy_total_hits_total{domain="rl",key="ip"} 5"#,
        // Each rule counts its own hits: neither went past the limit alone.
        r#"sluice_envoy_over_limit_total{domain="rl",key="ip"} 0"#,
        r#"sluice_envoy_within_limit_total{domain="rl",key="ip"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in {text}");
    }
}

/// The statistics keys of the README's examples 8 to 11, as
/// envoyproxy/ratelimit names them (its tests' keys where the README's
/// prose differs: `share_threshold` shows the pattern, `route_api/*`).
#[tokio::test]
async fn statistics_keys_follow_detailed_metric_and_value_to_metric() {
    let wanted: &[(&str, &[&str])] = &[
        (
            "Example 8",
            &[
                "key1_unspecified_value",
                "key1_unspecified_value2",
                "key1_value1",
            ],
        ),
        ("Example 9 (trailing wildcard)", &["key1_value*"]),
        (
            "Example 10",
            &[
                "route_api.http_method_GET.subject_id",
                "route_web.http_method_POST.subject_id",
            ],
        ),
        (
            "Example 10 (wildcard)",
            &["user_alice.action_readfile.resource"],
        ),
        ("Example 11 (with value_to_metric)", &["route_api/*.method"]),
    ];
    for (name, keys) in wanted {
        let example = EXAMPLES.iter().find(|e| e.name == *name).unwrap();
        let (service, _) = memory(example.config);
        envoy_examples::run(example, |r| {
            let service = service.clone();
            async move { ask(&service, r).await }
        })
        .await;
        let text = service.render_metrics();
        for key in *keys {
            let found = text.lines().any(|l| {
                l.starts_with("sluice_envoy_total_hits_total{domain=")
                    && l.contains(&format!("key=\"{key}\""))
            });
            assert!(found, "{name}: no statistics under {key} in {text}");
        }
    }
}

/// Issue 14: metrics from the start. Each rule's statistics are there at
/// zero once its file is loaded, as envoyproxy/ratelimit creates them; a
/// rule whose key carries the request's values has none to create, and
/// an unlimited rule is never counted.
#[tokio::test]
async fn every_rule_is_counted_from_zero_before_its_first_hit() {
    let (service, _) = memory(
        "domain: rl
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: route
    value: api
    descriptors:
      - key: method
        rate_limit: {unit: second, requests_per_unit: 5}
  - key: tenant
    detailed_metric: true
    rate_limit: {unit: hour, requests_per_unit: 9}
  - key: internal
    rate_limit: {unlimited: true}
",
    );
    let text = service.render_metrics();
    for stat in [
        "total_hits",
        "over_limit",
        "near_limit",
        "within_limit",
        "shadow_mode",
    ] {
        for key in ["user", "route_api.method"] {
            let series = format!(r#"sluice_envoy_{stat}_total{{domain="rl",key="{key}"}} 0"#);
            assert!(text.contains(&series), "no {series} in\n{text}");
        }
    }
    for absent in ["key=\"tenant", "key=\"internal"] {
        assert!(!text.contains(absent), "{absent} in\n{text}");
    }
}
