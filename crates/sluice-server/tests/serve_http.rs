//! The real `sluice serve` binary over TCP: the smoke test of what only a
//! socket shows (one connection carrying pipelined requests). Every route,
//! status, header and body is tested in-process, in `routes.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Serve, write};

const POLICIES: &str = "
policies:
  per-hour:
    algorithm: sliding_window_log
    limit: 100
    period: 1h
";

fn start() -> (Serve, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sluice.yaml", POLICIES);
    let serve = Serve::start(&["--config", file.to_str().unwrap()], &[]);
    (serve, dir)
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    use std::io::{Read, Write};
    let (serve, _dir) = start();
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
