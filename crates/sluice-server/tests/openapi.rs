//! `openapi.json` says what every route answers; this drives every
//! documented operation to every documented status on a real `sluice serve`
//! and checks each answer's body against the documented schema and its
//! headers against the documented headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{Serve, client, write};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use sluice_testkit::RedisServer;

const DOC: &str = include_str!("../openapi.json");

const POLICIES: &str = "
envoy_config: envoy.yaml
redis:
  timeout: 300ms
policies:
  api: {limit: 2, period: 1h}
  per-second: {limit: 5, period: 1s}
  per-hour: {limit: 100, period: 1h}
  two:
    limits:
      - {limit: 2, period: 1s}
      - {limit: 5, period: 1h, algorithm: fixed_window}
";

/// One request and the status it must get.
struct Case {
    method: &'static str,
    path: String,
    body: Option<String>,
    token: Option<&'static str>,
    status: u16,
}

fn case(method: &'static str, path: &str, body: Option<Value>, status: u16) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body: body.map(|b| b.to_string()),
        token: None,
        status,
    }
}

fn with_token(mut case: Case, token: &'static str) -> Case {
    case.token = Some(token);
    case
}

#[tokio::test]
async fn every_route_answers_as_openapi_json_says() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "envoy.yaml",
        "domain: rl\ndescriptors: [{key: user, rate_limit: {unit: hour, requests_per_unit: 1}}]\n",
    );
    let file = write(dir.path(), "sluice.yaml", POLICIES);
    let config = ["--config", file.to_str().unwrap()];
    let admin = Serve::start(&config, &[("SLUICE_ADMIN_TOKEN", "t")]);
    let plain = Serve::start(&config, &[]);
    let mut redis = RedisServer::start();
    let redis_url = redis.url();
    let down = Serve::start(
        &[&config[..], &["--store", &redis_url]].concat(),
        &[("SLUICE_ADMIN_TOKEN", "t")],
    );
    let open_file = write(
        dir.path(),
        "open.yaml",
        &format!("on_store_error: allow{POLICIES}"),
    );
    let fails_open = Serve::start(
        &[
            "--config",
            open_file.to_str().unwrap(),
            "--store",
            &redis_url,
        ],
        &[],
    );
    redis.kill();

    let long = format!("/v1/limits/api/{}", "k".repeat(1025));
    let one = |key: &str| json!({"policy": "api", "key": key});
    let envoy = |user: &str| json!({"domain": "rl", "descriptors": [{"entries": [{"key": "user", "value": user}]}]});
    let cases = [
        (&admin, case("POST", "/v1/check", Some(one("a")), 200)),
        (
            &admin,
            case(
                "POST",
                "/v1/check",
                Some(json!({"policy": "api", "key": "a", "cost": 2})),
                429,
            ),
        ),
        (
            &admin,
            case(
                "POST",
                "/v1/check",
                Some(json!({"policies": ["per-second", "per-hour"], "key": "a"})),
                200,
            ),
        ),
        (
            &admin,
            case(
                "POST",
                "/v1/check",
                Some(json!({"policy": "two", "key": "a", "cost": 2})),
                200,
            ),
        ),
        (
            &admin,
            case(
                "POST",
                "/v1/check",
                Some(json!({"policy": "two", "key": "a"})),
                429,
            ),
        ),
        (&admin, case("GET", "/v1/limits/two/a", None, 429)),
        (
            &admin,
            case("POST", "/v1/check", Some(json!({"policy": "api"})), 400),
        ),
        (
            &admin,
            case(
                "POST",
                "/v1/check",
                Some(json!({"policy": "nope", "key": "a"})),
                404,
            ),
        ),
        (
            &admin,
            Case {
                body: Some(format!("{{\"key\": \"{}\"}}", "k".repeat(70_000))),
                ..case("POST", "/v1/check", None, 413)
            },
        ),
        (&down, case("POST", "/v1/check", Some(one("a")), 503)),
        // Issue 11: a degraded answer fits the document too.
        (&fails_open, case("POST", "/v1/check", Some(one("a")), 200)),
        (&fails_open, case("GET", "/v1/limits/api/a", None, 200)),
        (&admin, case("GET", "/v1/limits/api/a", None, 200)),
        (&admin, case("GET", &long, None, 400)),
        (&admin, case("GET", "/v1/limits/nope/a", None, 404)),
        (&down, case("GET", "/v1/limits/api/a", None, 503)),
        (
            &admin,
            with_token(case("DELETE", "/v1/limits/api/a", None, 204), "t"),
        ),
        (&admin, with_token(case("DELETE", &long, None, 400), "t")),
        (
            &admin,
            with_token(case("DELETE", "/v1/limits/api/a", None, 401), "wrong"),
        ),
        (
            &plain,
            with_token(case("DELETE", "/v1/limits/api/a", None, 403), "t"),
        ),
        (
            &admin,
            with_token(case("DELETE", "/v1/limits/nope/a", None, 404), "t"),
        ),
        (
            &down,
            with_token(case("DELETE", "/v1/limits/api/a", None, 503), "t"),
        ),
        (&admin, case("GET", "/v1/policies", None, 200)),
        // Issue 13: forward-auth keys by the peer (127.0.0.1, no trusted
        // proxy); `api` allows 2 an hour.
        (
            &admin,
            case("GET", "/v1/forward-auth?policy=api", None, 200),
        ),
        (
            &admin,
            case("GET", "/v1/forward-auth?policy=api", None, 200),
        ),
        (
            &admin,
            case("GET", "/v1/forward-auth?policy=api", None, 429),
        ),
        (
            &admin,
            case(
                "GET",
                "/v1/forward-auth?policy=api&deny_status=403",
                None,
                403,
            ),
        ),
        (
            &admin,
            case(
                "GET",
                "/v1/forward-auth?policy=api&deny_status=200",
                None,
                400,
            ),
        ),
        (
            &admin,
            case("GET", "/v1/forward-auth?policy=nope", None, 404),
        ),
        (&down, case("GET", "/v1/forward-auth?policy=api", None, 503)),
        // Issue 13: envoyproxy/ratelimit's /json; `user` allows 1 an hour.
        (&admin, case("POST", "/json", Some(envoy("a")), 200)),
        (&admin, case("POST", "/json", Some(envoy("a")), 429)),
        (
            &admin,
            case("POST", "/json", Some(json!({"domain": ""})), 400),
        ),
        (&down, case("POST", "/json", Some(envoy("a")), 503)),
        (&admin, case("GET", "/healthz", None, 200)),
        (&admin, case("GET", "/readyz", None, 200)),
        (&down, case("GET", "/readyz", None, 503)),
        (&admin, case("GET", "/metrics", None, 200)),
        (&admin, case("GET", "/openapi.json", None, 200)),
        (&admin, case("GET", "/v2/nothing", None, 404)),
        (&admin, case("PUT", "/healthz", None, 405)),
    ];

    let mut covered = BTreeSet::new();
    for (serve, case) in &cases {
        let what = format!("{} {} → {}", case.method, case.path, case.status);
        let mut request = client().request(case.method.parse().unwrap(), serve.url(&case.path));
        if let Some(body) = &case.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        if let Some(token) = case.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), case.status, "{what}");
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        match conforms(&doc, case.method, &case.path, case.status, &headers, &text) {
            Ok(operation) => covered.extend(operation),
            Err(e) => panic!("{what}: {e}"),
        }
    }

    // Issue 12: the listener's own answers, on every operation.
    let slow_file = write(
        dir.path(),
        "slow.yaml",
        &format!("server:\n  body_timeout: 1s{POLICIES}"),
    );
    let slow = Serve::start(&["--config", slow_file.to_str().unwrap()], &[]);
    covered.extend(listener_answers(&doc, &admin, &slow).await);

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in operations(item) {
            for status in op["responses"].as_object().unwrap().keys() {
                documented.insert(format!("{} {path} {status}", method.to_uppercase()));
            }
        }
    }
    let missed: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missed.is_empty(),
        "documented but never exercised: {missed:?}"
    );
}

/// Issue 12: drives every documented operation to the answers the
/// listener gives before any handler runs, over raw TCP (no HTTP client
/// sends such requests): 431 for 101 headers, 413 for a `Content-Length`
/// over 64 KiB (on `serve`), 408 for a body that stops arriving (on
/// `slow`, whose body timeout is 1 s; all at once, so the test waits it
/// once). Checks each against the document; answers what was exercised.
async fn listener_answers(doc: &Value, serve: &Serve, slow: &Serve) -> Vec<String> {
    let mut requests = tokio::task::JoinSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = template.replace("{policy}", "api").replace("{key}", "a");
        for (method, _) in operations(item) {
            let method = method.to_uppercase();
            let head = format!("{method} {path} HTTP/1.1\r\nhost: sluice\r\n");
            let many: String = (0..101).map(|i| format!("x-h{i}: v\r\n")).collect();
            for (base, request, status) in [
                (&serve.base, format!("{head}{many}\r\n"), 431),
                (
                    &serve.base,
                    format!("{head}content-length: 100000\r\n\r\n"),
                    413,
                ),
                (
                    &slow.base,
                    format!("{head}content-length: 10\r\n\r\nab"),
                    408,
                ),
            ] {
                let address = base.trim_start_matches("http://").to_owned();
                let (method, path) = (method.clone(), path.clone());
                requests.spawn(async move {
                    let answer = raw(&address, request.as_bytes()).await;
                    (method, path, status, answer)
                });
            }
        }
    }
    let mut exercised = Vec::new();
    while let Some(done) = requests.join_next().await {
        let (method, path, status, (got, headers, text)) = done.unwrap();
        let what = format!("{method} {path} → {status} (raw)");
        assert_eq!(got, status, "{what}: {text}");
        match conforms(doc, &method, &path, status, &headers, &text) {
            Ok(operation) => exercised.extend(operation),
            Err(e) => panic!("{what}: {e}"),
        }
    }
    exercised
}

/// Sends `request` as is to `address` and reads the answer until the
/// server closes the connection (each answer here closes it): its status,
/// headers and body.
async fn raw(address: &str, request: &[u8]) -> (u16, HeaderMap, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(common::PATIENCE, stream.read_to_end(&mut answer));
    read.await
        .expect("the server closes the connection")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        headers.append(name, HeaderValue::from_str(value.trim()).unwrap());
    }
    (status.parse().unwrap(), headers, body.to_owned())
}

#[test]
fn every_example_in_openapi_json_fits_its_schema() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let mut checked = 0;
    let mut check = |schema: &Value, examples: &Value| {
        for example in examples
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, e)| &e["value"])
        {
            validate(&doc, schema, example).unwrap_or_else(|e| panic!("{e}: {example}"));
            checked += 1;
        }
    };
    for item in doc["paths"].as_object().unwrap().values() {
        for (_, op) in operations(item) {
            if let Some(body) = op.get("requestBody") {
                let json = &body["content"]["application/json"];
                check(&json["schema"], &json["examples"]);
            }
            for response in op["responses"].as_object().unwrap().values() {
                let response = resolve(&doc, response);
                if let Some(json) = response["content"].get("application/json") {
                    check(&json["schema"], &json["examples"]);
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} examples");
}

/// `value` (an object) with `field` set to `to`, or removed when `to` is
/// `None`.
fn with(value: &Value, field: &str, to: Option<Value>) -> Value {
    let mut value = value.clone();
    let object = value.as_object_mut().unwrap();
    match to {
        Some(to) => object.insert(field.to_owned(), to),
        None => object.remove(field),
    };
    value
}

/// Issue 10: the schema validator is shown to reject, one at a time, each
/// thing the document forbids, starting from bodies it accepts; were it
/// to accept anything, the tests above would prove nothing.
#[test]
fn the_schema_validator_rejects_each_thing_the_document_forbids() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let decision = json!({"allowed": false, "policy": "api", "key": "k", "burst": 3,
        "remaining": 0, "reset_after_ms": 60000, "retry_after_ms": 20000});
    let multi = with(&decision, "results", Some(json!([decision.clone()])));
    let request = json!({"policy": "api", "key": "k", "cost": 2});
    let accepted = [
        ("Decision", decision.clone()),
        (
            "Decision",
            with(&decision, "retry_after_ms", Some(Value::Null)),
        ),
        ("Decision", with(&decision, "shadow", Some(json!(true)))),
        ("Decision", with(&decision, "delay_ms", Some(json!(0)))),
        ("CheckResponse", decision.clone()),
        ("CheckResponse", multi.clone()),
        ("MultiDecision", multi.clone()),
        ("CheckRequest", request.clone()),
        ("CheckRequest", json!({"policies": ["a", "b"], "key": "k"})),
        ("Health", json!({"status": "ok"})),
    ];
    for (name, value) in &accepted {
        let fits = validate(&doc, &schema(name), value);
        assert_eq!(fits, Ok(()), "{name} refused {value}");
    }
    let rejected = [
        (
            "Decision",
            with(&decision, "remaining", Some(json!("0"))),
            "is not of type \"integer\"",
        ),
        (
            "Decision",
            with(&decision, "remaining", Some(json!(1.5))),
            "is not of type \"integer\"",
        ),
        (
            "Decision",
            with(&decision, "allowed", Some(json!(0))),
            "is not of type \"boolean\"",
        ),
        (
            "Decision",
            with(&decision, "allowed", None),
            "missing required \"allowed\"",
        ),
        (
            "Decision",
            with(&decision, "retry_after_ms", None),
            "missing required \"retry_after_ms\"",
        ),
        (
            "Decision",
            with(&decision, "burst", Some(json!(-1))),
            "-1 < minimum 0",
        ),
        (
            "Decision",
            with(&decision, "burst", Some(Value::Null)),
            "null where it is not nullable",
        ),
        (
            "Decision",
            with(&decision, "shadow", Some(json!(false))),
            "false is not one of [Bool(true)]",
        ),
        (
            "Decision",
            json!([decision.clone()]),
            "is not of type \"object\"",
        ),
        (
            "CheckResponse",
            with(&decision, "key", None),
            "fits none of anyOf",
        ),
        (
            "MultiDecision",
            decision.clone(),
            "missing required \"results\"",
        ),
        (
            "MultiDecision",
            with(&decision, "results", Some(json!([]))),
            "the number of items is out of range",
        ),
        (
            "MultiDecision",
            with(
                &decision,
                "results",
                Some(json!(vec![decision.clone(); 17])),
            ),
            "the number of items is out of range",
        ),
        (
            "MultiDecision",
            with(
                &decision,
                "results",
                Some(json!([with(&decision, "burst", Some(json!("3")))])),
            ),
            "burst: \"3\" is not of type \"integer\"",
        ),
        (
            "CheckRequest",
            with(&request, "colour", Some(json!("red"))),
            "\"colour\" is not documented",
        ),
        (
            "CheckRequest",
            with(&request, "policies", Some(json!(["api"]))),
            "fits 2 of oneOf, not 1",
        ),
        (
            "CheckRequest",
            with(&request, "policy", None),
            "fits 0 of oneOf, not 1",
        ),
        (
            "CheckRequest",
            with(&request, "policy", Some(json!(""))),
            "has a length out of range",
        ),
        (
            "CheckRequest",
            with(&request, "key", Some(json!("k".repeat(1025)))),
            "has a length out of range",
        ),
        (
            "CheckRequest",
            with(&request, "cost", Some(json!(0))),
            "0 < minimum 1",
        ),
        (
            "CheckRequest",
            with(&request, "cost", Some(json!(1_000_001))),
            "1000001 > maximum 1000000",
        ),
        ("Health", json!({"status": "fine"}), "is not one of"),
    ];
    for (name, value, reason) in &rejected {
        match validate(&doc, &schema(name), value) {
            Ok(()) => panic!("{name} accepted {value}"),
            Err(e) => assert!(
                e.contains(reason),
                "{name}, {value}: {e:?} lacks {reason:?}"
            ),
        }
    }
}

/// Issue 10: an answer is refused for an undocumented status, a missing
/// or malformed documented header, a body where none is documented, a
/// wrong media type or a body that does not fit, each alone.
#[test]
fn an_answer_is_refused_for_each_way_it_can_differ_from_the_document() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let mut denied = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json"),
        ("ratelimit-limit", "3"),
        ("ratelimit-remaining", "0"),
        ("ratelimit-reset", "60"),
        ("ratelimit-policy", r#""api";q=3;w=60"#),
        ("ratelimit", r#""api";r=0;t=60"#),
        ("retry-after", "20"),
    ] {
        denied.insert(name, HeaderValue::from_static(value));
    }
    let body = json!({"allowed": false, "policy": "api", "key": "k", "burst": 3,
        "remaining": 0, "reset_after_ms": 60000, "retry_after_ms": 20000})
    .to_string();
    let check = |method, path, status, headers: &HeaderMap, text: &str| {
        conforms(&doc, method, path, status, headers, text)
    };
    assert_eq!(
        check("POST", "/v1/check", 429, &denied, &body),
        Ok(Some("POST /v1/check 429".to_owned()))
    );
    assert_eq!(
        check("GET", "/v1/limits/api/a/b", 429, &denied, &body),
        Ok(Some("GET /v1/limits/{policy}/{key} 429".to_owned()))
    );
    let without = |name: &str| {
        let mut h = denied.clone();
        h.remove(name);
        h
    };
    let replaced = |name: &'static str, value: &'static str| {
        let mut h = denied.clone();
        h.insert(name, HeaderValue::from_static(value));
        h
    };
    let json_error = r#"{"error": "x"}"#;
    let refused = [
        (
            check("POST", "/v1/check", 418, &denied, &body),
            "status 418 is not documented",
        ),
        (
            check("GET", "/v1/policies", 404, &denied, json_error),
            "status 404 is not documented",
        ),
        (
            check("GET", "/v2/nothing", 500, &denied, json_error),
            "500 on a route that is not documented",
        ),
        (
            check("POST", "/v1/check", 429, &without("retry-after"), &body),
            "no Retry-After header",
        ),
        (
            check("POST", "/v1/check", 429, &without("ratelimit"), &body),
            "no RateLimit header",
        ),
        (
            check(
                "POST",
                "/v1/check",
                429,
                &replaced("ratelimit-remaining", "none"),
                &body,
            ),
            "RateLimit-Remaining: \"none\" is not an integer",
        ),
        (
            check(
                "POST",
                "/v1/check",
                429,
                &replaced("retry-after", "1.5"),
                &body,
            ),
            "Retry-After: \"1.5\" is not an integer",
        ),
        (
            check(
                "POST",
                "/v1/check",
                429,
                &replaced("content-type", "text/plain"),
                &body,
            ),
            "content-type \"text/plain\", not \"application/json\"",
        ),
        (
            check("POST", "/v1/check", 429, &denied, "denied"),
            "not JSON",
        ),
        (check("POST", "/v1/check", 429, &denied, ""), "not JSON"),
        (
            check("POST", "/v1/check", 429, &denied, r#"{"allowed": false}"#),
            "fits none of anyOf",
        ),
        (
            check("DELETE", "/v1/limits/api/a", 204, &denied, json_error),
            "a body where none is documented",
        ),
        (
            check("GET", "/healthz", 200, &denied, r#"{"status": "fine"}"#),
            "is not one of",
        ),
    ];
    for (i, (result, reason)) in refused.iter().enumerate() {
        match result {
            Ok(_) => panic!("case {i} ({reason}) was accepted"),
            Err(e) => assert!(e.contains(reason), "case {i}: {e:?} lacks {reason:?}"),
        }
    }
}

/// Checks an answer to `method path` against the document: its `status`
/// is documented for the operation (or, for a route that does not exist,
/// is the shared `NotFound` or `MethodNotAllowed`), every header documented
/// for it is present (and a whole number where its schema says integer),
/// and its body is absent when none is documented, and otherwise of the
/// documented media type and, for JSON, fits the documented schema.
/// Returns the operation it exercised, as `METHOD template status`.
fn conforms(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    headers: &HeaderMap,
    text: &str,
) -> Result<Option<String>, String> {
    let (documented, exercised) = match operation(doc, method, path) {
        Some((template, op)) => (
            resolve(doc, &op["responses"][status.to_string()]),
            Some(format!("{method} {template} {status}")),
        ),
        // Routes that do not exist answer with the shared responses.
        None => {
            let name = match status {
                404 => "NotFound",
                405 => "MethodNotAllowed",
                _ => return Err(format!("{status} on a route that is not documented")),
            };
            (&doc["components"]["responses"][name], None)
        }
    };
    if !documented.is_object() {
        return Err(format!("status {status} is not documented"));
    }
    for (name, header) in documented["headers"].as_object().into_iter().flatten() {
        let value = headers
            .get(name.as_str())
            .ok_or_else(|| format!("no {name} header"))?;
        let value = value
            .to_str()
            .map_err(|_| format!("{name} is not text: {value:?}"))?;
        if resolve(doc, header)["schema"]["type"] == "integer" && value.parse::<u64>().is_err() {
            return Err(format!("{name}: {value:?} is not an integer"));
        }
    }
    match documented["content"].as_object() {
        None if text.is_empty() => {}
        None => return Err("a body where none is documented".into()),
        Some(content) => {
            let (media, spec) = content.iter().next().ok_or("empty content")?;
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if content_type != media {
                return Err(format!("content-type {content_type:?}, not {media:?}"));
            }
            if media == "application/json" {
                let body: Value =
                    serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text}"))?;
                validate(doc, &spec["schema"], &body).map_err(|e| format!("{e}\nbody: {body}"))?;
            }
        }
    }
    Ok(exercised)
}

/// The operations of a path item (not its shared `parameters`).
fn operations(item: &Value) -> impl Iterator<Item = (&String, &Value)> {
    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    item.as_object()
        .into_iter()
        .flatten()
        .filter(move |(name, _)| methods.contains(&name.as_str()))
}

/// The operation `method path` names, and its path template.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    // The query string is no part of the path's template.
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .iter()
        .find_map(|(template, item)| {
            let parts: Vec<&str> = template.split('/').collect();
            // The last parameter ({key}) takes the rest of the path.
            let fits = if parts.last().is_some_and(|p| p.starts_with('{')) {
                segments.len() >= parts.len()
            } else {
                segments.len() == parts.len()
            };
            let matches = fits
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p.starts_with('{') || p == s);
            let op = item.get(method.to_lowercase())?;
            matches.then_some((template.as_str(), op))
        })
}

/// `value` with a `$ref` followed.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => value,
    }
}

/// Checks `value` against the OpenAPI 3.0 `schema`: the keywords the
/// document uses (`pattern` and `uniqueItems` are not checked).
fn validate(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        validate(doc, sub, value)?;
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.iter().any(|s| validate(doc, s, value).is_ok())
    {
        return Err(format!("{value} fits none of anyOf"));
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let fitting = one
            .iter()
            .filter(|s| validate(doc, s, value).is_ok())
            .count();
        if fitting != 1 {
            return Err(format!("{value} fits {fitting} of oneOf, not 1"));
        }
    }
    if value.is_null() {
        return match schema.get("type") {
            Some(_) if schema["nullable"] != true => Err("null where it is not nullable".into()),
            _ => Ok(()),
        };
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{value} is not one of {allowed:?}"));
    }
    let fits = match schema["type"].as_str() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => return Err(format!("unknown type {other}")),
    };
    if !fits {
        return Err(format!("{value} is not of type {}", schema["type"]));
    }
    if let (Some(n), Some(min)) = (value.as_f64(), schema["minimum"].as_f64())
        && n < min
    {
        return Err(format!("{n} < minimum {min}"));
    }
    if let (Some(n), Some(max)) = (value.as_f64(), schema["maximum"].as_f64())
        && n > max
    {
        return Err(format!("{n} > maximum {max}"));
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min)
            || schema["maxLength"].as_u64().is_some_and(|max| chars > max)
        {
            return Err(format!("{s:?} has a length out of range"));
        }
    }
    if let Some(items) = value.as_array() {
        if schema["minItems"]
            .as_u64()
            .is_some_and(|min| (items.len() as u64) < min)
            || schema["maxItems"]
                .as_u64()
                .is_some_and(|max| items.len() as u64 > max)
        {
            return Err("the number of items is out of range".into());
        }
        for item in items {
            validate(doc, &schema["items"], item)?;
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("missing required {name:?} in {value}"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => {
                    validate(doc, property, field).map_err(|e| format!("{name}: {e}"))?
                }
                None if schema["additionalProperties"] == false => {
                    return Err(format!("{name:?} is not documented"));
                }
                None => {}
            }
        }
    }
    Ok(())
}
