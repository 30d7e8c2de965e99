//! Forward-auth against the real gateways (issue 13): Debian's nginx and
//! Caddy, each started from the site configuration the docs give
//! (`examples/gateways/`), in front of a small upstream, asking a real
//! `sluice serve`. Clients beyond the limit get 429 with `Retry-After` from
//! the gateway itself, the upstream sees exactly the admitted requests, and
//! a client cannot choose its key by sending proxy headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::Serve;
use sluice_testkit::{Gateway, GatewayKind};

/// The allowance of each client address, per hour.
const LIMIT: u64 = 3;

/// An upstream that counts the requests it is sent.
async fn upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "from the upstream"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, seen)
}

/// `sluice serve` with one policy of [`LIMIT`] per hour, trusting the
/// gateway's address (127.0.0.1) and reading `client_header`.
fn sluice(dir: &std::path::Path, client_header: &str) -> (Serve, SocketAddr) {
    let config = format!(
        "trusted_proxies: [127.0.0.1]\n\
         forward_auth:\n  client_header: {client_header}\n  \
         routes: [{{path: /login, methods: [POST], policy: login}}]\n\
         policies:\n  default: {{algorithm: fixed_window, limit: {LIMIT}, period: 1h}}\n  \
         login: {{algorithm: fixed_window, limit: 1, period: 1h}}\n"
    );
    let file = common::write(dir, "sluice.yaml", &config);
    let serve = Serve::start(&["--config", file.to_str().unwrap()], &[]);
    let address = serve.base.trim_start_matches("http://").parse().unwrap();
    (serve, address)
}

/// A client connecting from the loopback address `from`.
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(common::PATIENCE)
        .build()
        .unwrap()
}

/// `GET /orders` through the gateway with `headers`: the status,
/// `Retry-After` and `RateLimit-Remaining` (empty when absent) and the body.
async fn get(
    client: &reqwest::Client,
    gateway: &Gateway,
    headers: &[(&str, &str)],
) -> (u16, String, String, String) {
    send(client, gateway, "GET", "/orders", headers).await
}

/// `method path` through the gateway with `headers`, as [`get`] answers.
async fn send(
    client: &reqwest::Client,
    gateway: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, format!("{}{path}", gateway.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        (response.headers().get(name))
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (retry, remaining) = (header("retry-after"), header("ratelimit-remaining"));
    (
        response.status().as_u16(),
        retry,
        remaining,
        response.text().await.unwrap(),
    )
}

async fn a_gateway_asks_sluice(kind: GatewayKind, site: &str, client_header: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, seen) = upstream().await;
    let (_sluice, address) = sluice(dir.path(), client_header);
    let gateway = Gateway::start(kind, site, address, upstream);
    let alice = client_from("127.0.0.3");
    let bob = client_from("127.0.0.4");
    // Alice's allowance, counted down, then refused by the gateway with
    // Sluice's Retry-After.
    for n in 1..=LIMIT {
        let (status, _, remaining, body) = get(&alice, &gateway, &[]).await;
        assert_eq!(status, 200, "{kind:?}: {body}\n{}", gateway.log());
        assert_eq!(body, "from the upstream");
        assert_eq!(remaining, (LIMIT - n).to_string(), "{kind:?}");
    }
    let (status, retry, remaining, _) = get(&alice, &gateway, &[]).await;
    assert_eq!(status, 429, "{kind:?}");
    let retry: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("{kind:?}: Retry-After {retry:?}"));
    assert!((1..=3600).contains(&retry), "{kind:?}: Retry-After {retry}");
    assert_eq!(remaining, "0", "{kind:?}");
    // Alice cannot pass for someone else by naming another address in any
    // proxy header.
    let spoofs = [
        ("x-forwarded-for", "203.0.113.1"),
        ("x-real-ip", "203.0.113.2"),
        ("forwarded", "for=203.0.113.3"),
    ];
    for spoof in spoofs {
        let (status, ..) = get(&alice, &gateway, &[spoof]).await;
        assert_eq!(
            status, 429,
            "{kind:?}: {spoof:?} gave Alice a fresh allowance"
        );
    }
    // Bob has his own allowance, and cannot spend Alice's by naming her.
    for _ in 0..LIMIT {
        let (status, ..) = get(
            &bob,
            &gateway,
            &[("x-forwarded-for", "127.0.0.3"), ("x-real-ip", "127.0.0.3")],
        )
        .await;
        assert_eq!(status, 200, "{kind:?}");
    }
    assert_eq!(get(&bob, &gateway, &[]).await.0, 429, "{kind:?}");
    // The gateway passes on the original path and method: `POST /login`
    // falls under its route's policy (1 per hour), `GET /login` does not,
    // and a client naming another path or method in those headers itself
    // changes nothing.
    let carol = client_from("127.0.0.5");
    let login = |method| send(&carol, &gateway, method, "/login", &[]);
    assert_eq!(login("POST").await.0, 200, "{kind:?}: {}", gateway.log());
    assert_eq!(login("POST").await.0, 429, "{kind:?}");
    assert_eq!(login("GET").await.0, 200, "{kind:?}");
    let spoof = [
        ("x-forwarded-uri", "/orders"),
        ("x-original-uri", "/orders"),
        ("x-forwarded-method", "GET"),
    ];
    let (status, ..) = send(&carol, &gateway, "POST", "/login", &spoof).await;
    assert_eq!(status, 429, "{kind:?}: the client chose its route");
    let spoof = [
        ("x-forwarded-uri", "/login"),
        ("x-forwarded-method", "POST"),
    ];
    let (status, ..) = send(&carol, &gateway, "GET", "/orders", &spoof).await;
    assert_eq!(status, 200, "{kind:?}: the client chose another's route");
    // The upstream saw exactly the admitted requests.
    assert_eq!(seen.load(Ordering::SeqCst), 2 * LIMIT + 3, "{kind:?}");
}

#[tokio::test]
async fn nginx_asks_sluice_before_proxying() {
    let site = include_str!("../../../examples/gateways/nginx.conf");
    a_gateway_asks_sluice(GatewayKind::Nginx, site, "x_real_ip").await;
}

#[tokio::test]
async fn caddy_asks_sluice_before_proxying() {
    let site = include_str!("../../../examples/gateways/Caddyfile");
    a_gateway_asks_sluice(GatewayKind::Caddy, site, "x_forwarded_for").await;
}
