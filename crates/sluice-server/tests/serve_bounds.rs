//! Issue 12: the HTTP listener's bounds, in-process: `server::run` on
//! 127.0.0.1:0 in the test's runtime, driven by raw TCP clients that
//! misbehave as attackers do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::PATIENCE;
use sluice::{BoxStore, Limiter, MemoryStore};
use sluice_server::config::{ServerSettings, default_policy};
use sluice_server::server::{self, Listeners};
use sluice_server::service::DecisionService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A server with `settings` on a free loopback port; stops when dropped.
struct Server {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(settings: ServerSettings) -> Server {
    let limiter = Limiter::new(BoxStore::new(MemoryStore::new()), vec![default_policy()]);
    let service = DecisionService::new(limiter, "memory", None);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::run(
        service,
        Listeners::http(listener),
        settings,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        address,
        _stop: stop,
    }
}

fn settings() -> ServerSettings {
    let mut s = ServerSettings::default();
    s.header_timeout = Duration::from_secs(60);
    s.body_timeout = Duration::from_secs(60);
    s
}

/// Reads one answer's head (up to the blank line) from `tcp`, within
/// [`PATIENCE`]; the empty string when the server closed first.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(PATIENCE, async {
        while !head.ends_with(b"\r\n\r\n") {
            match tcp.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => head.push(byte[0]),
            }
        }
    })
    .await
    .expect("an answer or a close within the patience");
    String::from_utf8_lossy(&head).into_owned()
}

/// Sends `GET /healthz` on `tcp` and reads the answer whole.
async fn healthz(tcp: &mut TcpStream) -> String {
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(tcp).await;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; length];
    tcp.read_exact(&mut body).await.unwrap();
    head
}

#[tokio::test]
async fn i12_a_client_trickling_its_head_is_cut_off_while_others_are_answered() {
    let mut s = settings();
    s.header_timeout = Duration::from_millis(500);
    let server = start(s).await;
    let slow = TcpStream::connect(server.address).await.unwrap();
    let (mut read, mut write) = slow.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        write
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await?;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            write.write_all(b"a").await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    // A normal client is answered meanwhile.
    let mut normal = TcpStream::connect(server.address).await.unwrap();
    assert!(healthz(&mut normal).await.starts_with("HTTP/1.1 200"));
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, read.read_to_end(&mut rest)).await;
    let took = started.elapsed();
    assert!(closed.is_ok(), "the trickling client was never cut off");
    assert!(rest.is_empty() || !rest.starts_with(b"HTTP/1.1 200"));
    // The configured 500 ms plus a generous margin for a loaded machine.
    assert!(took < Duration::from_secs(10), "cut off after {took:?}");
    trickle.abort();
}

#[tokio::test]
async fn i12_more_than_100_headers_get_431() {
    let server = start(settings()).await;
    let mut tcp = TcpStream::connect(server.address).await.unwrap();
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for i in 0..120 {
        request.push_str(&format!("X-H{i}: v\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head:?}");
}

#[tokio::test]
async fn i12_a_head_above_max_header_bytes_gets_431() {
    let mut s = settings();
    s.max_header_bytes = 4096;
    let server = start(s).await;
    let mut tcp = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(5000)
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head:?}");
}

#[tokio::test]
async fn i12_a_10_gb_content_length_gets_413_at_once() {
    // The body timeout is a minute: an answer before it is not a timeout.
    let server = start(settings()).await;
    let mut tcp = TcpStream::connect(server.address).await.unwrap();
    tcp.write_all(
        b"POST /v1/check HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000000\r\n\r\n{\"policy\":",
    )
    .await
    .unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head:?}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head:?}"
    );
}

#[tokio::test]
async fn i12_a_body_that_does_not_arrive_in_time_gets_408() {
    let mut s = settings();
    s.body_timeout = Duration::from_millis(300);
    let server = start(s).await;
    let mut tcp = TcpStream::connect(server.address).await.unwrap();
    tcp.write_all(b"POST /v1/check HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n{\"pol")
        .await
        .unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head:?}");
}

#[tokio::test]
async fn i12_connections_beyond_the_maximum_wait_and_are_served_once_others_close() {
    let mut s = settings();
    s.max_connections = 2;
    let server = start(s).await;
    let mut first = TcpStream::connect(server.address).await.unwrap();
    let mut second = TcpStream::connect(server.address).await.unwrap();
    assert!(healthz(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(healthz(&mut second).await.starts_with("HTTP/1.1 200"));

    // The third is in the backlog: its request is not read yet.
    let mut third = TcpStream::connect(server.address).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "the third connection was served beyond the maximum"
    );

    // Those served are unharmed and keep being answered.
    assert!(healthz(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(healthz(&mut second).await.starts_with("HTTP/1.1 200"));

    drop(first);
    let head = read_head(&mut third).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
    assert!(healthz(&mut second).await.starts_with("HTTP/1.1 200"));
}
