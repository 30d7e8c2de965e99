//! `sluice serve` as an operator runs it: start-up, the log, reload on
//! SIGHUP, and draining on SIGTERM and Ctrl-C.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{Serve, check, client, metrics, send, write};
use serde_json::json;
use sluice_testkit::RedisServer;

#[tokio::test]
async fn with_no_configuration_it_serves_the_default_policy_on_memory() {
    let serve = Serve::start(&[], &[("SLUICE_LISTEN", "127.0.0.1:0")]);
    let line = serve.wait_for_log("listening");
    assert!(
        line.contains(
            "config=built-in default store=memory policies=default shadow=none admin_api=false"
        ),
        "{line}"
    );
    let a = check(&serve, json!({"policy": "default", "key": "user-42"})).await;
    assert_eq!(
        a.json,
        json!({"allowed": true, "policy": "default", "key": "user-42", "burst": 10,
            "remaining": 9, "reset_after_ms": 6000, "retry_after_ms": 0})
    );
}

#[tokio::test]
async fn the_json_log_format_writes_one_object_per_line() {
    let serve = Serve::start(&[], &[("SLUICE_LOG_FORMAT", "json")]);
    let line = serve.wait_for_log("listening");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["store"], "memory");
    assert_eq!(event["policies"], "default");
    assert_eq!(
        format!("http://{}", event["address"].as_str().unwrap()),
        serve.base
    );
}

#[test]
fn a_bad_configuration_or_environment_stops_it_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "policies:\n  api:\n    limit: -5\n    period: 1s\n",
    );
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 8] = [
        (
            &["--config", bad.to_str().unwrap()],
            &[],
            "bad.yaml:3: policies.api.limit: must be a positive integer, got -5",
        ),
        (
            &[],
            &[("SLUICE_LOG_FORMAT", "xml")],
            "environment variable SLUICE_LOG_FORMAT: invalid format \"xml\"; expected text or json",
        ),
        // Issue 14: tracing took `verbose` for a target and silenced every record.
        (
            &[],
            &[("SLUICE_LOG", "verbose")],
            "environment variable SLUICE_LOG: invalid filter \"verbose\": \"verbose\" is not a level \
             (to filter a target, write verbose=debug); expected a level (off, error, warn, info, \
             debug or trace) or comma-separated target=level directives",
        ),
        (
            &["--listen", "8080:"],
            &[],
            "error: --listen: must be an address to listen on such as 127.0.0.1:8081, :8081 \
             (every interface) or 8081 (127.0.0.1 only), got \"8080:\"",
        ),
        (
            &[],
            &[("SLUICE_LISTEN", "nowhere")],
            "error: environment variable SLUICE_LISTEN: must be an address to listen on",
        ),
        (
            &[],
            &[("SLUICE_STORE", "postgres://db")],
            "error: environment variable SLUICE_STORE:",
        ),
        (
            &[],
            &[("SLUICE_LOG", "info,[")],
            "SLUICE_LOG: invalid filter",
        ),
        (
            // TEST-NET-1: no interface of this machine has it.
            &["--listen", "192.0.2.1:1"],
            &[],
            "error: cannot listen on 192.0.2.1:1: ",
        ),
    ];
    for (args, env, message) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.arg("serve").args(args).env_remove("SLUICE_CONFIG");
        for (name, value) in env {
            command.env(name, value);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(message), "{stderr:?} lacks {message:?}");
    }
}

#[tokio::test]
async fn sighup_reloads_the_policies_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = |limit: &str| {
        format!(
            "policies:\n  api:\n    limit: {limit}\n    period: 1h\n    algorithm: fixed_window\n"
        )
    };
    let file = write(dir.path(), "sluice.yaml", &yaml("1"));
    let serve = Serve::start(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(
        check(&serve, json!({"policy": "api", "key": "k"}))
            .await
            .status,
        200
    );
    assert_eq!(
        check(&serve, json!({"policy": "api", "key": "k"}))
            .await
            .status,
        429
    );

    let more = yaml("3") + "  extra:\n    limit: 1\n    period: 1s\n";
    write(dir.path(), "sluice.yaml", &more);
    let seen = serve.log_len();
    serve.signal("HUP");
    let line = serve.wait_for_log_after(seen, "reloaded");
    assert!(line.contains("policies=api,extra"), "{line}");
    // Issue 11: the unit spent under the old limit carries over.
    let a = check(&serve, json!({"policy": "api", "key": "k"})).await;
    assert_eq!((a.status, a.json["burst"].as_u64()), (200, Some(3)));
    assert_eq!(a.json["remaining"].as_u64(), Some(1), "{}", a.text);
    assert_eq!(
        check(&serve, json!({"policy": "extra", "key": "k"}))
            .await
            .status,
        200
    );

    let two_errors = yaml("-5") + "  extra:\n    limit: 1\n    period: 0s\n";
    write(dir.path(), "sluice.yaml", &two_errors);
    let seen = serve.log_len();
    serve.signal("HUP");
    // Issue 14: one record on one line, the errors joined by "; ".
    let error = serve.wait_for_log_after(seen, "configuration refused");
    assert!(
        error.contains("sluice.yaml:3: policies.api.limit: must be a positive integer, got -5; ")
            && error.contains("sluice.yaml:8: policies.extra.period:"),
        "{error}"
    );
    assert_eq!(serve.log_len(), seen + 1, "{}", serve.log());
    let a = check(&serve, json!({"policy": "extra", "key": "other"})).await;
    assert_eq!(a.status, 200, "the running configuration stays");
    let policies = send(client().get(serve.url("/v1/policies"))).await;
    assert_eq!(policies.json["policies"][0]["limit"], 3);

    let metrics = metrics(&serve).await;
    assert!(
        metrics.contains(r#"sluice_config_reloads_total{result="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sluice_config_reloads_total{result="error"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn sigterm_and_ctrl_c_stop_it_with_exit_code_0() {
    for signal in ["TERM", "INT"] {
        let mut serve = Serve::start(&[], &[]);
        assert_eq!(
            check(&serve, json!({"policy": "default", "key": "k"}))
                .await
                .status,
            200
        );
        serve.signal(signal);
        let status = serve.wait_exit();
        assert!(status.success(), "SIG{signal}: {status:?}\n{}", serve.log());
        serve.wait_for_log("sluice stopped");
    }
}

// Multi-threaded: the request runs while the test blocks reading the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = "redis:\n  timeout: 20s\npolicies:\n  api:\n    limit: 5\n    period: 1m\n";
    let file = write(dir.path(), "sluice.yaml", yaml);
    let args = ["--config", file.to_str().unwrap(), "--store", &redis.url()];
    let mut serve = Serve::start(&args, &[("SLUICE_LOG", "info,sluice_server=debug")]);
    assert_eq!(
        check(&serve, json!({"policy": "api", "key": "k"}))
            .await
            .status,
        200
    );

    // Redis holds every script call for 3 s: the next check stays in flight.
    redis.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    let seen = serve.log_len();
    let in_flight = tokio::spawn({
        let url = serve.url("/v1/check");
        async move {
            client()
                .post(url)
                .json(&json!({"policy": "api", "key": "k"}))
                .send()
                .await
        }
    });
    serve.wait_for_log_after(seen, "deciding");
    serve.signal("TERM");
    serve.wait_for_log_after(seen, "draining");
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["remaining"], 3);
    assert!(serve.wait_exit().success(), "{}", serve.log());
}

/// A serve whose drain deadline is `drain`, with a client that sent half a
/// request body (the request is in flight, reading its body) on a
/// connection the server has already answered once.
async fn serve_with_half_a_request(
    drain: &str,
) -> (Serve, tokio::net::TcpStream, tempfile::TempDir) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "server:\n  drain_timeout: {drain}\n  header_timeout: 5m\n  body_timeout: 5m\n\
         policies:\n  api:\n    limit: 5\n    period: 1m\n"
    );
    let file = write(dir.path(), "sluice.yaml", &yaml);
    let serve = Serve::start(&["--config", file.to_str().unwrap()], &[]);
    let address = serve.base.strip_prefix("http://").unwrap().to_owned();
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    tcp.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    tcp.write_all(b"POST /v1/check HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n{\"pol")
        .await
        .unwrap();
    (serve, tcp, dir)
}

#[tokio::test]
async fn i12_sigterm_drains_a_stalled_client_for_no_longer_than_the_deadline() {
    let (mut serve, _client, _dir) = serve_with_half_a_request("1s").await;
    let started = std::time::Instant::now();
    serve.signal("TERM");
    let status = serve.wait_exit();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}\n{}", serve.log());
    // The 1 s deadline plus a generous margin for a loaded machine; without
    // a deadline the stalled client holds it for the 5 min body timeout.
    assert!(
        took < std::time::Duration::from_secs(10),
        "took {took:?}\n{}",
        serve.log()
    );
    serve.wait_for_log("drain deadline reached");
}

#[tokio::test]
async fn i12_a_second_sigterm_stops_it_at_once() {
    let (mut serve, _client, _dir) = serve_with_half_a_request("5m").await;
    let seen = serve.log_len();
    serve.signal("TERM");
    serve.wait_for_log_after(seen, "draining");
    let started = std::time::Instant::now();
    serve.signal("TERM");
    let status = serve.wait_exit();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}\n{}", serve.log());
    assert!(
        took < std::time::Duration::from_secs(10),
        "took {took:?}\n{}",
        serve.log()
    );
    serve.wait_for_log_after(seen, "again");
}

/// Issue 14: a bare port listens on 127.0.0.1, `:port` on every interface
/// (0.0.0.0), as Go and envoyproxy/ratelimit users write them.
#[tokio::test]
async fn issue_14_a_bare_port_or_colon_port_is_an_address() {
    for (listen, host) in [("0", "127.0.0.1"), (":0", "0.0.0.0")] {
        let serve = Serve::start(&["--listen", listen], &[]);
        let line = serve.wait_for_log("listening");
        let prefix = format!("http://{host}:");
        let port = (serve.base.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{listen}: {line}"))
            .to_owned();
        let health = client()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "{listen}");
    }
}

/// Issue 14: the start-up line names the file, the store, the policies,
/// the shadow ones and Envoy's domains.
#[tokio::test]
async fn issue_14_the_start_up_line_says_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sluice.yaml",
        "policies:\n  api: {limit: 1, period: 1s}\n  dry: {limit: 1, period: 1s, shadow: true}\n",
    );
    let envoy = write(
        dir.path(),
        "envoy.yaml",
        "domain: edge\ndescriptors:\n  - key: path\n    rate_limit: {unit: second, requests_per_unit: 1}\n",
    );
    let file = file.to_str().unwrap();
    let serve = Serve::start(
        &["--config", file, "--envoy-config", envoy.to_str().unwrap()],
        &[],
    );
    let line = serve.wait_for_log("listening");
    let expected =
        format!("config={file} store=memory policies=api,dry shadow=dry admin_api=false");
    assert!(line.contains(&expected), "{line}");
    assert!(line.contains("envoy_domains=edge"), "{line}");
}
