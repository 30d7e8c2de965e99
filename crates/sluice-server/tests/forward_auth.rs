//! `/v1/forward-auth` in-process (issue 13): the policy and the denial
//! status from the query or the configuration, the key from a named header
//! or the client's address (believed from trusted proxies only, and only
//! from the header they set), and the answers a gateway copies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use common::Answer;
use common::app::{App, quota};
use sluice::{Algorithm, Policy};
use sluice_server::config::ForwardAuthSettings;
use sluice_tower::ProxyHeader;

const GATEWAY: &str = "10.0.0.2:40000";
const STRANGER: &str = "198.51.100.7:50000";

fn app() -> App {
    let per_minute = |name: &str, limit| {
        let q = quota(Algorithm::FixedWindow, limit, Duration::from_secs(60), None);
        Policy::new(name, q).unwrap()
    };
    let app = App::memory(vec![per_minute("default", 2), per_minute("login", 1)], None);
    let mut settings = ForwardAuthSettings::default();
    settings.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    app.service.set_forward_auth(settings);
    app
}

/// `method /v1/forward-auth?query` from `peer` with `headers`.
async fn ask(
    app: &App,
    method: Method,
    query: &str,
    peer: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/v1/forward-auth{query}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    app.send(request).await
}

#[tokio::test]
async fn admits_then_denies_with_the_headers_a_gateway_copies() {
    let app = app();
    let xff = [("x-forwarded-for", "203.0.113.9")];
    for remaining in ["1", "0"] {
        let a = ask(&app, Method::GET, "", GATEWAY, &xff).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.header("ratelimit-limit"), "2");
        assert_eq!(a.header("ratelimit-remaining"), remaining);
        assert_eq!(a.json["key"], "203.0.113.9");
    }
    // Any method: the gateway asks with the client's.
    let a = ask(&app, Method::POST, "", GATEWAY, &xff).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("ratelimit-remaining"), "0");
    assert_eq!(a.header("retry-after"), "60");
    // nginx needs a 403; the query says so, or the configuration does.
    let a = ask(&app, Method::GET, "?deny_status=403", GATEWAY, &xff).await;
    assert_eq!(a.status, 403);
    let mut settings = (*app.service.forward_auth()).clone();
    settings.deny_status = axum::http::StatusCode::FORBIDDEN;
    app.service.set_forward_auth(settings);
    assert_eq!(ask(&app, Method::GET, "", GATEWAY, &xff).await.status, 403);
    // Another client has its own allowance.
    let other = [("x-forwarded-for", "203.0.113.10")];
    assert_eq!(
        ask(&app, Method::GET, "", GATEWAY, &other).await.status,
        200
    );
}

#[tokio::test]
async fn a_client_cannot_choose_its_key() {
    let app = app();
    // Not a trusted peer: its own address, whatever it says.
    for _ in 0..2 {
        let spoofed = [("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "5.6.7.8")];
        let a = ask(&app, Method::GET, "", STRANGER, &spoofed).await;
        assert_eq!(
            (a.status, a.json["key"].as_str()),
            (200, Some("198.51.100.7"))
        );
    }
    let fresh = [("x-forwarded-for", "9.9.9.9")];
    assert_eq!(
        ask(&app, Method::GET, "", STRANGER, &fresh).await.status,
        429
    );
    // From the gateway, only the header it sets: here X-Forwarded-For, so a
    // client's X-Real-IP is ignored, and the entries the client wrote to
    // the left of the gateway's are never read.
    let a = ask(
        &app,
        Method::GET,
        "",
        GATEWAY,
        &[
            ("x-real-ip", "5.6.7.8"),
            ("x-forwarded-for", "1.2.3.4, 203.0.113.20"),
        ],
    )
    .await;
    assert_eq!(a.json["key"], "203.0.113.20");
    let mut settings = (*app.service.forward_auth()).clone();
    settings.client_header = ProxyHeader::XRealIp;
    app.service.set_forward_auth(settings);
    let a = ask(
        &app,
        Method::GET,
        "",
        GATEWAY,
        &[
            ("x-real-ip", "203.0.113.30"),
            ("x-forwarded-for", "1.2.3.4"),
        ],
    )
    .await;
    assert_eq!(a.json["key"], "203.0.113.30");
}

#[tokio::test]
async fn the_policy_and_a_header_key_come_from_the_query() {
    let app = app();
    let key = [("x-api-key", "team-7")];
    let a = ask(
        &app,
        Method::GET,
        "?policy=login&key_header=x-api-key",
        STRANGER,
        &key,
    )
    .await;
    assert_eq!(
        (a.status, a.json["policy"].as_str(), a.json["key"].as_str()),
        (200, Some("login"), Some("team-7"))
    );
    let a = ask(
        &app,
        Method::GET,
        "?policy=login&key_header=x-api-key",
        STRANGER,
        &key,
    )
    .await;
    assert_eq!(a.status, 429);
    // Without the header, the client's address is the key.
    let a = ask(
        &app,
        Method::GET,
        "?policy=login&key_header=x-api-key",
        STRANGER,
        &[],
    )
    .await;
    assert_eq!(
        (a.status, a.json["key"].as_str()),
        (200, Some("198.51.100.7"))
    );
}

#[tokio::test]
async fn bad_questions_get_clear_errors() {
    let app = app();
    for (query, status, says) in [
        ("?policy=nope", 404, "unknown policy \"nope\""),
        ("?deny_status=200", 400, "deny_status must be 429 or 403"),
        ("?deny_status=abc", 400, "deny_status must be 429 or 403"),
        ("?polcy=login", 400, "unknown field `polcy`"),
    ] {
        let a = ask(&app, Method::GET, query, GATEWAY, &[]).await;
        assert_eq!(a.status, status, "{query}: {}", a.text);
        let error = a.json["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{query}: {error}");
    }
}

/// The gateway passes on the original request's path and method
/// (`X-Forwarded-Uri` from Caddy and Traefik, `X-Original-URI` as the nginx
/// example sets it, `X-Forwarded-Method`); `forward_auth.routes` chooses
/// the policy by them, from a trusted proxy only.
#[tokio::test]
async fn routes_choose_the_policy_by_the_original_path_and_method() {
    let app = app();
    let mut settings = (*app.service.forward_auth()).clone();
    let text = "\
forward_auth:
  routes:
    - {path: /login, methods: [POST], policy: login}
policies:
  default: {limit: 2, period: 60s}
  login: {limit: 1, period: 60s}
";
    settings.routes = sluice_server::config::parse(text, "sluice.yaml")
        .unwrap()
        .forward_auth
        .routes;
    app.service.set_forward_auth(settings);
    let policy = |a: &Answer| a.json["policy"].as_str().unwrap_or_default().to_owned();
    let login_post = [
        ("x-forwarded-for", "203.0.113.20"),
        ("x-forwarded-uri", "/login?next=/"),
        ("x-forwarded-method", "POST"),
    ];
    let a = ask(&app, Method::GET, "", GATEWAY, &login_post).await;
    assert_eq!(
        (a.status, policy(&a).as_str()),
        (200, "login"),
        "{}",
        a.text
    );
    let a = ask(&app, Method::GET, "", GATEWAY, &login_post).await;
    assert_eq!((a.status, policy(&a).as_str()), (429, "login"));
    // nginx's X-Original-URI; another method is another route.
    let login_get = [
        ("x-forwarded-for", "203.0.113.20"),
        ("x-original-uri", "/login"),
        ("x-forwarded-method", "GET"),
    ];
    let a = ask(&app, Method::GET, "", GATEWAY, &login_get).await;
    assert_eq!((a.status, policy(&a).as_str()), (200, "default"));
    let original = [("x-original-uri", "/login"), ("x-forwarded-method", "POST")];
    let a = ask(&app, Method::GET, "", GATEWAY, &original).await;
    assert_eq!(policy(&a), "login");
    // From a peer that is no proxy, the headers are the client's: ignored.
    let a = ask(&app, Method::GET, "", STRANGER, &login_post).await;
    assert_eq!((a.status, policy(&a).as_str()), (200, "default"));
    // The query's policy wins over the routes.
    let a = ask(&app, Method::GET, "?policy=default", GATEWAY, &login_post).await;
    assert_eq!(policy(&a), "default");
}
