//! Issue 12: keys with every kind of character, sent through the JSON API
//! (in-process, `oneshot`) to the memory store, a real Redis and a Redis
//! Cluster: each distinct key is its own counter (no two keys share state,
//! whatever their separators, hash-tag braces, escapes or invisible
//! characters), the same key written two ways in JSON is one counter, the
//! peek path reaches the same counter percent-encoded, a reset forgets
//! only its own key, and nothing the transport cannot carry (invalid
//! UTF-8, lone surrogates, raw control characters, an empty or too long
//! key) gets anything but a 400.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::app::{App, quota};
use serde_json::json;
use sluice::{Algorithm, MAX_KEY_LEN, Policy};
use sluice_testkit::{RedisCluster, RedisServer};

/// One unit an hour: a key's first check is admitted and its second
/// denied, unless another key's check already spent its unit.
fn policies() -> Vec<Policy> {
    let once = quota(Algorithm::FixedWindow, 1, Duration::from_secs(3600), None);
    vec![
        Policy::new("p", once).unwrap(),
        Policy::new("q", once).unwrap(),
    ]
}

/// Every kind of key: each ASCII character alone (NUL, controls, `{`,
/// `}`, `:`, `#`, `%`, quotes, backslash, DEL); the C1 controls and
/// invisible or special code points; keys that differ only by a
/// separator, a brace, an escape-looking `%7B`, case, a trailing NUL or
/// space, composition; and the longest keys, differing only at the end.
/// All distinct.
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
    keys.extend((0x80u32..0xa0).filter_map(char::from_u32).map(String::from));
    for c in [
        '\u{a0}',
        '\u{ad}',
        '\u{feff}',
        '\u{200b}',
        '\u{200d}',
        '\u{2028}',
        '\u{2029}',
        '\u{fffd}',
        '\u{ffff}',
        '\u{e000}',
        '\u{10ffff}',
        '\u{1f600}',
        'é',
    ] {
        keys.push(c.to_string());
    }
    for key in [
        // Beside "a", "{", "}", ":", "%" and "A" above.
        "a:b",
        ":b",
        "a:",
        "a::b",
        "a#b",
        "{a}",
        "{a}b",
        "a{b}",
        "{a:b}",
        "{}",
        "}{",
        "{{a}}",
        "%7B",
        "%7Ba%7D",
        "%25",
        "%257B",
        "a}:p",
        "}:p",
        "sluice:{a}:p",
        "a\0",
        "\0a",
        "a ",
        " a",
        "e\u{301}",
        "a/b",
        "a/../b",
        "..",
        "[a]",
        "a\r\nb",
        "\u{1b}[31mred",
        "\\\"",
        "<script>",
    ] {
        keys.push(key.to_owned());
    }
    keys.push("x".repeat(MAX_KEY_LEN));
    keys.push(format!("{}y", "x".repeat(MAX_KEY_LEN - 1)));
    keys.push("{".repeat(MAX_KEY_LEN));
    keys.push(format!("{}}}", "{".repeat(MAX_KEY_LEN - 1)));
    // 341 three-byte characters and one byte: 1024 bytes, 342 characters.
    keys.push(format!("{}a", "€".repeat(MAX_KEY_LEN / 3)));
    keys.push("%".repeat(MAX_KEY_LEN));
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "the keys are distinct");
    keys
}

/// `POST /v1/check` with `body` as is.
async fn check_raw(app: &App, body: &[u8]) -> common::Answer {
    let request = Request::post("/v1/check")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    app.send(request).await
}

/// `key` under `policy`, checked: the status, after asserting the answer
/// names the key exactly as sent.
async fn check(app: &App, policy: &str, key: &str) -> u16 {
    let a = app.check(json!({"policy": policy, "key": key})).await;
    assert!(
        matches!(a.status, 200 | 429),
        "{key:?}: {} {}",
        a.status,
        a.text
    );
    assert_eq!(a.json["key"], key, "the answer names the key as sent");
    a.status
}

/// Every byte but the unreserved ones as `%XX`.
fn percent_encoded(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn every_key_is_its_own_counter(app: &App) {
    let keys = keys();
    // First checks: each admitted, so no earlier key spent its unit.
    for key in &keys {
        assert_eq!(check(app, "p", key).await, 200, "{key:?} shares state");
    }
    // Second checks: each denied, so each first check kept its own state.
    for key in &keys {
        assert_eq!(check(app, "p", key).await, 429, "{key:?} kept nothing");
    }
    // The peek path reaches the same counters, percent-encoded.
    for key in &keys {
        let a = app
            .get(&format!("/v1/limits/p/{}", percent_encoded(key)))
            .await;
        assert_eq!(
            a.status, 429,
            "{key:?}: a check would be denied: {}",
            a.text
        );
        assert_eq!(
            (&a.json["key"], &a.json["remaining"]),
            (&json!(key), &json!(0)),
            "{key:?}"
        );
    }
    // Another policy's counters are untouched by all of the above.
    for key in keys.iter().step_by(5) {
        assert_eq!(check(app, "q", key).await, 200, "{key:?} under q");
    }
    // A reset forgets its own key only (every seventh).
    for key in keys.iter().step_by(7) {
        let path = format!("/v1/limits/p/{}", percent_encoded(key));
        assert_eq!(app.delete(&path, Some("t")).await.status, 204, "{key:?}");
    }
    for (i, key) in keys.iter().enumerate() {
        let want = if i % 7 == 0 { 200 } else { 429 };
        assert_eq!(check(app, "p", key).await, want, "{key:?} after the resets");
    }
}

/// The same key written two ways in JSON is one counter; what JSON or the
/// key rules cannot carry is a 400 and charges nothing.
async fn escapes_and_what_cannot_be_a_key(app: &App) {
    for (plain, escaped) in [
        (
            &br#"{"policy": "p", "key": "same-a"}"#[..],
            &br#"{"policy": "p", "key": "same-\u0061"}"#[..],
        ),
        (
            "{\"policy\": \"p\", \"key\": \"same-\u{1f600}\"}".as_bytes(),
            &br#"{"policy": "p", "key": "same-\ud83d\ude00"}"#[..],
        ),
        (
            "{\"policy\": \"p\", \"key\": \"same-\u{7f}\"}".as_bytes(),
            &br#"{"policy": "p", "key": "same-\u007f"}"#[..],
        ),
        (
            &br#"{"policy": "p", "key": "same-/"}"#[..],
            &br#"{"policy": "p", "key": "same-\/"}"#[..],
        ),
    ] {
        let first = check_raw(app, plain).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let second = check_raw(app, escaped).await;
        assert_eq!(second.status, 429, "{}", String::from_utf8_lossy(escaped));
        assert_eq!(first.json["key"], second.json["key"]);
    }
    let long = format!(
        r#"{{"policy": "p", "key": "{}"}}"#,
        "z".repeat(MAX_KEY_LEN + 1)
    );
    for body in [
        &b"{\"policy\": \"p\", \"key\": \"bad-\xff\"}"[..],
        b"{\"policy\": \"p\", \"key\": \"bad-\xc3\"}",
        b"{\"policy\": \"p\", \"key\": \"bad-\xed\xa0\x80\"}",
        br#"{"policy": "p", "key": "bad-\ud800"}"#,
        br#"{"policy": "p", "key": "bad-\udc00x"}"#,
        b"{\"policy\": \"p\", \"key\": \"bad-\x01\"}",
        b"{\"policy\": \"p\", \"key\": \"bad-\n\"}",
        br#"{"policy": "p", "key": ""}"#,
        long.as_bytes(),
    ] {
        let a = check_raw(app, body).await;
        assert_eq!(
            a.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            a.text
        );
    }
    // The path refuses what is not UTF-8 once decoded, and the empty key.
    for path in [
        "/v1/limits/p/bad-%FF",
        "/v1/limits/p/bad-%ED%A0%80",
        "/v1/limits/p/",
    ] {
        let a = app.request(Method::GET, path, Body::empty(), None).await;
        assert!(
            matches!(a.status, 400 | 404),
            "{path}: {} {}",
            a.status,
            a.text
        );
    }
    // Nothing refused was charged: the nearest valid keys are untouched.
    for key in ["bad-", "bad-x", "bad-\u{fffd}"] {
        assert_eq!(check(app, "p", key).await, 200, "{key:?}");
    }
}

#[tokio::test]
async fn issue_12_every_key_is_its_own_counter_on_memory() {
    let app = App::memory(policies(), Some("t"));
    every_key_is_its_own_counter(&app).await;
    escapes_and_what_cannot_be_a_key(&app).await;
}

#[tokio::test]
async fn issue_12_every_key_is_its_own_counter_on_redis() {
    let redis = RedisServer::start();
    let app = App::redis(&redis.url(), "redis", policies()).await;
    every_key_is_its_own_counter(&app).await;
    escapes_and_what_cannot_be_a_key(&app).await;
}

#[tokio::test]
async fn issue_12_every_key_is_its_own_counter_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let app = App::redis(&cluster.url(), "redis_cluster", policies()).await;
    every_key_is_its_own_counter(&app).await;
    escapes_and_what_cannot_be_a_key(&app).await;
}
