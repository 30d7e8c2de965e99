//! The article's API, as the real `article-api` binary, over HTTP: ten
//! requests from one client are served, the eleventh gets the article's 429.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use sluice_testkit::RedisServer;

const OK_BODY: &str = r#"{"message":"Resource accessed successfully!"}"#;
const DENIED_BODY: &str = r#"{"message":"Rate limit exceeded. Try again later."}"#;

/// The running binary; killed and reaped on drop, also when a test fails.
struct Api {
    child: Child,
    /// Kept open so that the binary never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// `127.0.0.1:PORT`, from the line the binary prints at startup.
    addr: String,
    /// That line.
    banner: String,
}

impl Api {
    /// Starts `article-api` on a free port (`LISTEN=127.0.0.1:0`), with
    /// Redis at `redis_url` or, without one, the memory store.
    fn start(redis_url: Option<&str>) -> Api {
        let mut command = Command::new(env!("CARGO_BIN_EXE_article-api"));
        command
            .env("LISTEN", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(url) = redis_url {
            command.env("REDIS_URL", url);
        }
        let mut child = command.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut api = Api {
            child,
            _stdout: stdout,
            addr: String::new(),
            banner: String::new(),
        };
        api._stdout.read_line(&mut api.banner).unwrap();
        // "article-api listening on http://127.0.0.1:PORT/api/resource (store: …)"
        api.addr = api
            .banner
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in the banner {:?}", api.banner))
            .to_owned();
        api
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lower-case names.
    headers: HashMap<String, String>,
    body: String,
}

/// `GET path` on a new connection, read until the server closes it.
fn get(addr: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Reply {
        status: status.parse().unwrap(),
        headers,
        body: body.to_owned(),
    }
}

/// Ten 200s with the article's body and a falling `RateLimit-Remaining`,
/// then the article's 429 with `Retry-After`.
fn ten_then_the_articles_429(api: &Api) {
    for remaining in (0..10).rev() {
        let reply = get(&api.addr, "/api/resource");
        assert_eq!(reply.status, 200, "{reply:#?}");
        assert_eq!(reply.body, OK_BODY);
        assert_eq!(reply.headers["content-type"], "application/json");
        assert_eq!(reply.headers["ratelimit-limit"], "10");
        assert_eq!(reply.headers["ratelimit-remaining"], remaining.to_string());
        assert_eq!(reply.headers["ratelimit-policy"], r#""api";q=10;w=60"#);
    }
    let denied = get(&api.addr, "/api/resource");
    assert_eq!(denied.status, 429, "{denied:#?}");
    assert_eq!(denied.body, DENIED_BODY);
    assert_eq!(denied.headers["content-type"], "application/json");
    // One token comes back every 6 s.
    let retry_after: u64 = denied.headers["retry-after"].parse().unwrap();
    assert!((1..=6).contains(&retry_after), "{denied:#?}");
    assert_eq!(denied.headers["ratelimit-remaining"], "0");
}

#[test]
fn with_the_memory_store() {
    let api = Api::start(None);
    assert!(api.banner.ends_with("(store: memory)\n"), "{}", api.banner);
    ten_then_the_articles_429(&api);
}

#[test]
fn with_the_redis_store() {
    let redis = RedisServer::start();
    let api = Api::start(Some(&redis.url()));
    assert!(api.banner.ends_with("(store: redis)\n"), "{}", api.banner);
    ten_then_the_articles_429(&api);
    assert_eq!(redis.cli(&["dbsize"]), "1", "one key: the client's bucket");
}
