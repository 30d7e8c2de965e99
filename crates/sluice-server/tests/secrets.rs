//! Issue 12: secrets never leak. A real `sluice serve`, logging at
//! `trace` in both formats, with a Redis password in its store URL and an
//! admin token set: admin calls with good and bad tokens, a reload and a
//! store failure, then the whole log and `/metrics` are searched for both
//! secrets. And a blank admin token is refused at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{Serve, check, client, metrics, send, write};
use serde_json::json;
use sluice_testkit::RedisServer;

/// Distinctive, so that any leak, whole or in part, is found by `contains`.
const PASSWORD: &str = "pw-Zq7Kx9Lm2Vb4";
const TOKEN: &str = "tok-Hn3Rt8Wy5Pc1";

/// Every prefix of `secret` long enough to identify it (8 characters):
/// a log that cut a secret short would still leak it.
fn leaks(text: &str, secret: &str) -> bool {
    (8..=secret.len()).any(|n| text.contains(&secret[..n]))
}

#[tokio::test]
async fn issue_12_no_secret_in_trace_logs_or_metrics() {
    for format in ["json", "text"] {
        let mut redis = RedisServer::start();
        // Set after start: the testkit waits for an unauthenticated PING.
        assert_eq!(redis.cli(&["config", "set", "requirepass", PASSWORD]), "OK");
        let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port());
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "sluice.yaml",
            "redis:\n  timeout: 2s\npolicies:\n  api: {limit: 100, period: 1h}\n",
        );
        // A secrets file's trailing newline, and surrounding spaces.
        let token_env = format!("  {TOKEN}\n");
        let serve = Serve::start(
            &[],
            &[
                ("SLUICE_CONFIG", file.to_str().unwrap()),
                ("SLUICE_STORE", &url),
                ("SLUICE_ADMIN_TOKEN", &token_env),
                ("SLUICE_LOG", "trace"),
                ("SLUICE_LOG_FORMAT", format),
            ],
        );
        // Connected (with the password) before the calls that use Redis.
        let deadline = std::time::Instant::now() + common::PATIENCE;
        while send(client().get(serve.url("/readyz"))).await.status != 200 {
            assert!(std::time::Instant::now() < deadline, "{}", serve.log());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let a = check(&serve, json!({"policy": "api", "key": "k"})).await;
        assert_eq!(a.status, 200, "{}", a.text);

        // The admin API: the right token (trimmed), then wrong ones.
        let reset = |token: String| {
            client()
                .delete(serve.url("/v1/limits/api/k"))
                .header("authorization", token)
        };
        assert_eq!(send(reset(format!("Bearer {TOKEN}"))).await.status, 204);
        for wrong in [
            format!("Bearer {TOKEN}x"),
            format!("Bearer {}", &TOKEN[..10]),
            format!("Basic {TOKEN}"),
            format!("Bearer {PASSWORD}"),
        ] {
            let a = send(reset(wrong.clone())).await;
            assert_eq!(a.status, 401, "{wrong}");
            // An echo of the header would be a leak too (of the guess).
            assert!(!a.text.contains(&wrong), "{}", a.text);
        }

        // A reload.
        let before = serve.log_len();
        serve.signal("HUP");
        serve.wait_for_log_after(before, "reloaded");

        // A store failure.
        redis.kill();
        let a = check(&serve, json!({"policy": "api", "key": "k"})).await;
        assert!([200, 503].contains(&a.status), "{}", a.text);
        let before = serve.log_len();
        let a = send(client().get(serve.url("/readyz"))).await;
        assert_eq!(a.status, 503, "{}", a.text);
        serve.wait_for_log_after(before, "does not answer");

        let metrics = metrics(&serve).await;
        let log = serve.log();
        // The filter let everything through (Sluice logs nothing at
        // trace level itself, so debug lines show it), and the store is
        // named, redacted.
        assert!(log.contains("DEBUG"), "{log}");
        assert!(log.contains(":***@127.0.0.1"), "{log}");
        for (name, secret) in [("password", PASSWORD), ("token", TOKEN)] {
            assert!(
                !leaks(&log, secret),
                "{format}: the {name} is in the log:\n{log}"
            );
            assert!(!leaks(&metrics, secret), "the {name} is in /metrics");
        }
    }
}

#[test]
fn issue_12_a_blank_admin_token_is_refused_at_start_up() {
    for blank in ["", "  ", "\n", " \t\n"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("SLUICE_CONFIG")
            .env_remove("SLUICE_STORE")
            .env("SLUICE_ADMIN_TOKEN", blank)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{blank:?}: {stderr}");
        assert!(
            stderr.contains("SLUICE_ADMIN_TOKEN") && stderr.contains("empty"),
            "{blank:?}: {stderr}"
        );
    }
}

/// The admin token can come from a file, as Docker and Kubernetes mount
/// secrets, trimmed as a file is written (a trailing newline); a file that
/// cannot be read, or both ways at once, stop start-up with a clear error.
#[tokio::test]
async fn issue_12_the_admin_token_can_be_read_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "token", &format!("{TOKEN}\n"));
    let file = file.to_str().unwrap();
    let serve = Serve::start(&[], &[("SLUICE_ADMIN_TOKEN_FILE", file)]);
    let reset = |token: &str| {
        client()
            .delete(serve.url("/v1/limits/default/alice"))
            .bearer_auth(token)
    };
    assert_eq!(send(reset(TOKEN)).await.status, 204);
    assert_eq!(send(reset(&format!("{TOKEN}x"))).await.status, 401);
    drop(serve);

    let missing = dir.path().join("absent");
    let missing = missing.to_str().unwrap();
    for (env, needles) in [
        (
            vec![("SLUICE_ADMIN_TOKEN_FILE", missing)],
            vec![missing, "SLUICE_ADMIN_TOKEN_FILE", ": no such file"],
        ),
        (
            vec![
                ("SLUICE_ADMIN_TOKEN_FILE", file),
                ("SLUICE_ADMIN_TOKEN", TOKEN),
            ],
            vec!["both set"],
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("SLUICE_CONFIG")
            .env_remove("SLUICE_STORE")
            .env_remove("SLUICE_ADMIN_TOKEN")
            .envs(env)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
        }
        assert!(!leaks(&stderr, TOKEN), "{stderr}");
    }
}
