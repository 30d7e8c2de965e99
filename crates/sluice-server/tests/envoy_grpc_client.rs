//! Issue 13: the gRPC server asked by a client that shares no code with
//! Sluice: `tests/envoy/grpc_client.py`, run by Debian's `/usr/bin/python3`
//! with Debian's `python3-grpcio`, which compiles only the standard
//! reflection and health protos (Debian's `grpc-proto`, with `protoc`) and
//! learns Envoy's rate limit API from the server by reflection.
//!
//! Every example of envoyproxy/ratelimit's README through it on an
//! in-process server on a fake clock (exact windows), then the real
//! `sluice serve --grpc-listen` binary on memory and on Redis: examples
//! with exact `limit_remaining`, health `""` SERVING and an unknown
//! service NOT_FOUND.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use common::envoy_examples::{self, EXAMPLES};
use common::envoy_services;
use common::{Serve, write};
use prost::Message;
use serde_json::{Value, json};
use sluice_server::config::{GrpcSettings, ServerSettings};
use sluice_server::envoy::{RateLimitRequest, RateLimitResponse};
use sluice_server::server::{self, Listeners, listener};
use sluice_testkit::RedisServer;

const PYTHON: &str = "/usr/bin/python3";

/// Fails, saying what to install, when Debian's client side is missing.
fn require_the_client_side() {
    let python = Path::new(PYTHON).exists()
        && Command::new(PYTHON)
            .args(["-c", "import grpc, google.protobuf"])
            .status()
            .is_ok_and(|s| s.success());
    let protoc = Command::new("protoc").arg("--version").output().is_ok();
    let protos = Path::new("/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto")
        .exists()
        && Path::new("/usr/share/grpc-proto/grpc/health/v1/health.proto").exists();
    let mut missing = Vec::new();
    if !python {
        missing.push("python3-grpcio (for /usr/bin/python3)");
    }
    if !protoc {
        missing.push("protobuf-compiler");
    }
    if !protos {
        missing.push("grpc-proto");
    }
    assert!(
        missing.is_empty(),
        "the independent gRPC client needs {}: Debian: apt-get install python3-grpcio \
         protobuf-compiler grpc-proto (scripts/test installs them when run as root)",
        missing.join(", ")
    );
}

/// The Python client, connected to `address` and ready.
struct Client {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Client {
    fn start(address: &str) -> Client {
        require_the_client_side();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/envoy/grpc_client.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        let mut client = Client {
            child,
            input,
            output,
        };
        assert_eq!(client.line(), "ready", "the client discovered the service");
        client
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the client exited (its error is above)");
        line.trim_end().to_owned()
    }

    /// Sends `call`, returns the answer.
    fn call(&mut self, call: Value) -> Value {
        writeln!(self.input, "{call}").unwrap();
        serde_json::from_str(&self.line()).unwrap()
    }

    /// ShouldRateLimit: the answer as the client decoded it with the
    /// server's descriptors, re-encoded, and decoded here.
    fn ask(&mut self, request: &RateLimitRequest) -> (RateLimitResponse, Value) {
        let answer = self.call(json!({"rls": to_json(request)}));
        let hex = answer["hex"].as_str().unwrap_or_else(|| panic!("{answer}"));
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        (
            RateLimitResponse::decode(&bytes[..]).unwrap(),
            answer["ok"].clone(),
        )
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `request` in the proto3 JSON mapping, as the client parses it.
fn to_json(request: &RateLimitRequest) -> Value {
    let descriptors: Vec<Value> = (request.descriptors.iter())
        .map(|d| {
            let entries: Vec<Value> = (d.entries.iter())
                .map(|e| json!({"key": e.key, "value": e.value}))
                .collect();
            json!({"entries": entries})
        })
        .collect();
    json!({"domain": request.domain, "descriptors": descriptors, "hitsAddend": request.hits_addend})
}

/// A server in this test's runtime on a fake clock at [`NOW_S`].
async fn in_process(config: sluice_server::config::envoy::EnvoyConfig) -> SocketAddr {
    let (service, _) = envoy_services::memory(config);
    let http = listener::bind("127.0.0.1:0").await.unwrap();
    let grpc = listener::bind("127.0.0.1:0").await.unwrap();
    let address = grpc.local_addr().unwrap();
    let listeners = Listeners::http(http).with_grpc(grpc, GrpcSettings::default());
    tokio::spawn(server::run(
        service,
        listeners,
        ServerSettings::default(),
        std::future::pending(),
    ));
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn every_readme_example_through_an_independent_client() {
    for example in EXAMPLES {
        let address = in_process(example.load()).await;
        let client = Arc::new(std::sync::Mutex::new(Client::start(&address.to_string())));
        envoy_examples::run(example, |request| {
            let client = Arc::clone(&client);
            async move {
                tokio::task::spawn_blocking(move || client.lock().unwrap().ask(&request).0)
                    .await
                    .unwrap()
            }
        })
        .await;
    }
}

/// A README example whose windows (a day) a test run cannot straddle but
/// once in thousands: Example 2's configuration, from the shared table.
fn messaging() -> &'static str {
    let example = EXAMPLES.iter().find(|e| e.name == "Example 2");
    example.expect("the table has Example 2").config
}

/// The binary with `store`, asked Example 2's questions and health.
fn the_binary_answers(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "messaging.yaml", messaging());
    let serve = Serve::start(
        &[
            "--grpc-listen",
            "127.0.0.1:0",
            "--envoy-config",
            rules.to_str().unwrap(),
            "--store",
            store,
        ],
        &[],
    );
    let line = serve.wait_for_log("listening");
    let grpc = line
        .split(' ')
        .find_map(|field| field.strip_prefix("grpc_address="))
        .unwrap_or_else(|| panic!("no grpc_address in {line:?}"));
    let mut client = Client::start(grpc);
    assert_eq!(
        client.call(json!({"health": ""})),
        json!({"status": "SERVING"})
    );
    assert_eq!(
        client.call(json!({"health": "envoy.service.ratelimit.v3.RateLimitService"})),
        json!({"status": "SERVING"})
    );
    assert_eq!(
        client.call(json!({"health": "no.such.Service"})),
        json!({"error": "NOT_FOUND"})
    );
    let marketing = envoy_examples::request(
        "messaging",
        &[&[("message_type", "marketing"), ("to_number", "2061234567")]],
    );
    let to_number = envoy_examples::request("messaging", &[&[("to_number", "2061234567")]]);
    let remaining = |answer: &Value| {
        answer["statuses"][0]["limit_remaining"]
            .as_u64()
            .unwrap_or(0)
    };
    for left in (0..5).rev() {
        let (_, answer) = client.ask(&marketing);
        assert_eq!(answer["overall_code"], "OK", "{answer}");
        assert_eq!(remaining(&answer), left, "{answer}");
        assert_eq!(
            answer["statuses"][0]["current_limit"],
            json!({"requests_per_unit": 5, "unit": "DAY"})
        );
    }
    let (_, answer) = client.ask(&marketing);
    assert_eq!(answer["overall_code"], "OVER_LIMIT", "{answer}");
    assert_eq!(answer["statuses"][0]["code"], "OVER_LIMIT", "{answer}");
    let (_, answer) = client.ask(&to_number);
    assert_eq!(
        (answer["overall_code"].as_str(), remaining(&answer)),
        (Some("OK"), 99),
        "the other limit is its own counter: {answer}"
    );
    assert_eq!(
        client.call(json!({"rls": {}})),
        json!({"error": "INVALID_ARGUMENT"}),
        "no domain"
    );
}

#[test]
fn the_binary_answers_an_independent_client_on_the_memory_store() {
    the_binary_answers("memory");
}

#[test]
fn the_binary_answers_an_independent_client_on_redis() {
    let redis = RedisServer::start();
    the_binary_answers(&redis.url());
}

/// SIGTERM drains both listeners: a connected gRPC client does not hold
/// the process, which exits cleanly within the drain deadline.
#[test]
fn sigterm_stops_the_grpc_listener_with_the_http_one() {
    let mut serve = Serve::start(&["--grpc-listen", "127.0.0.1:0"], &[]);
    let line = serve.wait_for_log("listening");
    let grpc = line
        .split(' ')
        .find_map(|field| field.strip_prefix("grpc_address="))
        .unwrap_or_else(|| panic!("no grpc_address in {line:?}"))
        .to_owned();
    let mut client = Client::start(&grpc);
    assert_eq!(
        client.call(json!({"health": ""})),
        json!({"status": "SERVING"})
    );
    serve.signal("TERM");
    let status = serve.wait_exit();
    assert!(status.success(), "{status:?}\n{}", serve.log());
    serve.wait_for_log("sluice stopped");
    assert!(
        std::net::TcpStream::connect(&grpc).is_err(),
        "the gRPC listener is closed"
    );
}

#[test]
fn a_bad_grpc_address_stops_it_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let cannot = format!("cannot listen for gRPC on {taken}");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 3] = [
        (
            // A bare port is 127.0.0.1's (issue 14); a trailing colon is nothing.
            &["--grpc-listen", "8081:"],
            &[],
            "--grpc-listen: must be an address to listen on such as 127.0.0.1:8081, :8081 \
             (every interface) or 8081 (127.0.0.1 only), got \"8081:\"",
        ),
        (
            &[],
            &[("SLUICE_GRPC_LISTEN", "127.0.0.1:99999")],
            "environment variable SLUICE_GRPC_LISTEN: must be an address",
        ),
        (&["--grpc-listen", &taken], &[], &cannot),
    ];
    for (args, env, message) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("SLUICE_CONFIG")
            .env_remove("SLUICE_GRPC_LISTEN");
        for (name, value) in env {
            command.env(name, value);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(message), "{stderr:?} lacks {message:?}");
    }
}
