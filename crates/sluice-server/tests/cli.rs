//! The `sluice` binary driven as a user would: `check` and `validate`,
//! their output and their exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn sluice(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(args)
        .env_remove("SLUICE_CONFIG")
        .env_remove("SLUICE_STORE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the sluice binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[test]
fn check_with_no_configuration_uses_the_default_policy() {
    let out = sluice(&["check", "default", "user-42"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"allowed": true, "policy": "default", "key": "user-42", "burst": 10,
            "remaining": 9, "reset_after_ms": 6000, "retry_after_ms": 0})
    );
}

#[test]
fn check_exits_1_when_denied_and_2_on_errors() {
    let out = sluice(&["check", "default", "k", "--cost", "11"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowed"], false);
    assert!(
        json["retry_after_ms"].is_null(),
        "a cost over the burst can never pass"
    );

    let out = sluice(&["check", "nope", "k"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        r#"error: unknown policy "nope"; the policies are: default"#
    );

    let out = sluice(&["check", "default", "k", "--cost", "0"], &[]);
    assert_eq!(out.status.code(), Some(2), "clap refuses a zero cost");

    let long_key = "k".repeat(1025);
    let out = sluice(&["check", "default", &long_key], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("key must be 1 to 1024 bytes long, got 1025"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_reads_the_file_named_by_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sluice.yaml",
        "policies:\n  tiny:\n    algorithm: fixed_window\n    limit: 2\n    period: 1h\n",
    );
    for (args, env) in [
        (
            vec!["check", "--config", &file, "tiny", "k", "--cost", "2"],
            vec![],
        ),
        (
            vec!["check", "tiny", "k", "--cost", "2"],
            vec![("SLUICE_CONFIG", file.as_str())],
        ),
    ] {
        let out = sluice(&args, &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (json["burst"].as_u64(), json["remaining"].as_u64()),
            (Some(2), Some(0))
        );
    }
    // The store flag beats the environment, which is checked too.
    let out = sluice(
        &["check", "--config", &file, "tiny", "k"],
        &[("SLUICE_STORE", "etcd://x")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("environment variable SLUICE_STORE: must be memory"),
        "{}",
        text(&out.stderr)
    );
    let out = sluice(
        &["check", "--config", &file, "--store", "memory", "tiny", "k"],
        &[("SLUICE_STORE", "etcd://x")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn validate_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ok.yaml",
        "store: memory\npolicies:\n  a: {limit: 1, period: 1s}\n  b: {limit: 2, period: 1m}\n",
    );
    let out = sluice(&["validate", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{file}: ok, 2 policies\nconfig: {file}\nstore: memory\npolicies: 2\n  \
             a: on_store_error deny\n    token_bucket, 1 per 1s, burst 1\n  \
             b: on_store_error deny\n    token_bucket, 2 per 1m, burst 2\n"
        )
    );
}

/// Issue 14: `validate` shows what it understood, reads `SLUICE_CONFIG`
/// when given no file, and speaks JSON.
#[test]
fn issue_14_validate_prints_the_resolved_policies() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "tiers.yaml",
        "store: redis://app:s3cret@redis:6379\npolicies:\n  api:\n    limit: 100\n    period: 1m\n    \
         burst: 20\n    overrides:\n      customer-7: {limit: 1000}\n  login:\n    \
         algorithm: fixed_window\n    limit: 5\n    period: 15m\n    shadow: true\n",
    );
    let out = sluice(&["validate"], &[("SLUICE_CONFIG", &file)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "store: redis://app:***@redis:6379",
        "  api: on_store_error deny",
        "    token_bucket, 100 per 1m, burst 20",
        "      override \"customer-7\": token_bucket, 1000 per 1m, burst 20",
        "  login: shadow (reports, never denies); on_store_error deny",
        "    fixed_window, 5 per 15m",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} not in\n{stdout}"
        );
    }
    assert!(!stdout.contains("s3cret"), "{stdout}");

    let out = sluice(&["validate", "--json", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["config"], file.as_str());
    assert_eq!(json["policies"][1]["name"], "login");
    assert_eq!(json["policies"][1]["shadow"], true);
    assert_eq!(
        json["policies"][0]["limits"][0]["overrides"][0]["limit"],
        1000
    );

    let out = sluice(&["validate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: no configuration file: name one, or set SLUICE_CONFIG\n"
    );
}

/// Issue 14: `check` decides several policies all or nothing, in the shape
/// of `/v1/check` with `policies`.
#[test]
fn issue_14_check_takes_several_policies() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "two.yaml",
        "policies:\n  wide: {limit: 5, period: 1m}\n  narrow: {limit: 1, period: 1m}\n",
    );
    let out = sluice(
        &[
            "check",
            "--config",
            &file,
            "wide,narrow",
            "k",
            "--cost",
            "2",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["policy"], "narrow", "the denying policy is at the top");
    assert_eq!(json["results"][0]["policy"], "wide");
    assert_eq!(json["results"][0]["allowed"], true);
    assert_eq!(json["results"][1]["allowed"], false);

    let out = sluice(&["check", "--config", &file, "wide,nope", "k"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: unknown policy \"nope\"; the policies are: narrow, wide\n"
    );
}

/// Issue 14: `peek` spends nothing, `reset` forgets the key; on Redis,
/// whose state outlives each process.
#[test]
fn issue_14_peek_and_reset_on_redis() {
    let server = sluice_testkit::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sluice.yaml",
        "redis:\n  timeout: 5s\npolicies:\n  tiny: {algorithm: fixed_window, limit: 2, period: 1h}\n",
    );
    let url = server.url();
    let run = |command: &str| {
        sluice(
            &[command, "--config", &file, "tiny", "k"],
            &[("SLUICE_STORE", &url)],
        )
    };
    let remaining = |out: &Output| {
        assert!(
            out.status.code().is_some_and(|c| c < 2),
            "{}",
            text(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), json["remaining"].as_u64())
    };
    assert_eq!(remaining(&run("check")), (Some(0), Some(1)));
    // A peek answers what the check would: admitted, leaving 0.
    assert_eq!(remaining(&run("peek")), (Some(0), Some(0)));
    assert_eq!(
        remaining(&run("peek")),
        (Some(0), Some(0)),
        "a peek spends nothing"
    );
    assert_eq!(remaining(&run("check")), (Some(0), Some(0)));
    assert_eq!(
        remaining(&run("peek")),
        (Some(1), Some(0)),
        "exit 1: would be denied"
    );
    let out = run("reset");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "reset \"k\" under policy \"tiny\"\n");
    assert_eq!(server.cli(&["dbsize"]), "0");
    assert_eq!(remaining(&run("peek")), (Some(0), Some(1)));
}

#[test]
fn validate_lists_every_error_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.yaml",
        "store: memcached\npolicies:\n  api:\n    limit: -5\n    period: 1m\n  web:\n    limit: 3\n    period: soon\n",
    );
    let out = sluice(&["validate", &file], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{file}:1: store: must be memory")),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!("{file}:4: policies.api.limit: must be a positive integer, got -5")
    );
    assert!(
        lines[2].starts_with(&format!(
            "{file}:8: policies.web.period: \"soon\" is not a duration"
        )),
        "{stderr}"
    );
}

#[test]
fn validate_never_panics_on_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.yaml");
    std::fs::write(&path, [0xff, 0xfe, 0x00, b'{', b'[', 0x80]).unwrap();
    let out = sluice(&["validate", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("garbage.yaml:1:") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let out = sluice(&["validate", "/nonexistent.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("cannot read /nonexistent.yaml: no such file"));
}

#[test]
fn two_checks_on_one_redis_share_the_limit() {
    let server = sluice_testkit::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sluice.yaml",
        // A timeout far above the default: a cold process on a loaded
        // test machine, not Redis, sets the pace here.
        "redis:\n  timeout: 5s\npolicies:\n  tiny:\n    algorithm: sliding_window_log\n    limit: 2\n    period: 1h\n",
    );
    let url = server.url();
    let remaining: Vec<Option<i32>> = (0..3)
        .map(|_| {
            sluice(
                &["check", "--config", &file, "--store", &url, "tiny", "k"],
                &[],
            )
        })
        .map(|out| out.status.code())
        .collect();
    assert_eq!(
        remaining,
        [Some(0), Some(0), Some(1)],
        "two admitted, the third denied"
    );
    assert_eq!(server.cli(&["dbsize"]), "1");
}

#[test]
fn an_unreachable_redis_is_an_error_that_hides_the_password() {
    let out = sluice(
        &[
            "check",
            "--store",
            "redis://app:s3cret@127.0.0.1:1",
            "default",
            "k",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: connecting to redis://app:***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // Issue 14: redis-rs shows its I/O cause and returns it as the source
    // too; it is printed once.
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.to_lowercase().matches("connection refused").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn bench_reports_rate_share_and_latency_as_json() {
    let out = sluice(
        &[
            "bench",
            "--duration",
            "200ms",
            "--keys",
            "100",
            "--distribution",
            "zipf",
            "--limit",
            "5",
            "--period",
            "1h",
            "--concurrency",
            "4",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["store"], "memory");
    assert_eq!(report["redis_path"], serde_json::Value::Null);
    assert_eq!(report["algorithm"], "token_bucket");
    let decisions = report["decisions"].as_u64().unwrap();
    assert!(decisions > 500, "{report}");
    // 100 keys × 5 per hour: at most 500 admitted, whatever the speed.
    let allowed = (report["allowed_ratio"].as_f64().unwrap() * decisions as f64).round() as u64;
    assert!(allowed <= 500, "{report}");
    assert!(report["decisions_per_sec"].as_f64().unwrap() > 0.0);
    let (p50, p99, p999) = (
        report["p50_us"].as_f64().unwrap(),
        report["p99_us"].as_f64().unwrap(),
        report["p999_us"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{report}");
}

/// Issue 15: `--no-batching` makes one Redis call per decision; batched,
/// the 16 decisions in flight share calls.
#[test]
fn bench_without_batching_makes_one_call_per_decision() {
    let server = sluice_testkit::RedisServer::start();
    let url = server.url();
    let mut calls_per_decision = Vec::new();
    for flag in [None, Some("--no-batching")] {
        // Loads the library first, so that every call counted decides.
        let warm = sluice(
            &["bench", "--store", &url, "--duration", "50ms", "--json"],
            &[],
        );
        assert_eq!(warm.status.code(), Some(0), "{}", text(&warm.stderr));
        server.cli(&["config", "resetstat"]);
        let mut args = vec![
            "bench",
            "--store",
            &url,
            "--duration",
            "300ms",
            "--keys",
            "1",
            "--concurrency",
            "16",
            "--json",
        ];
        args.extend(flag);
        let out = sluice(&args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let decisions = report["decisions"].as_u64().unwrap();
        let stats = server.cli(&["info", "commandstats"]);
        let calls: u64 = stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_fcall:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no FCALL in {stats}"));
        calls_per_decision.push((calls, decisions));
    }
    let [(batched, made), (unbatched, decided)] = calls_per_decision[..] else {
        unreachable!()
    };
    assert_eq!(unbatched, decided, "one call per decision without batching");
    assert!(batched < made, "{batched} calls for {made} decisions");
}

/// Issue 15: `sluice bench --redis-path` forces the module, Functions or
/// EVALSHA on one Redis (bench/run compares them so), says which path
/// decided, and refuses to pass another path off as the module.
#[test]
fn issue_15_bench_forces_the_redis_path() {
    let bench = |url: &str, path: &str| {
        sluice(
            &[
                "bench",
                "--store",
                url,
                "--redis-path",
                path,
                "--duration",
                "200ms",
                "--concurrency",
                "4",
                "--json",
            ],
            &[],
        )
    };
    let calls = |server: &sluice_testkit::RedisServer, command: &str| {
        let stats = server.cli(&["info", "commandstats"]);
        let prefix = format!("cmdstat_{command}:calls=");
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let server = sluice_testkit::RedisServer::with_module();
    for (path, command) in [
        ("module", "sluice.call"),
        ("function", "fcall"),
        ("script", "evalsha"),
    ] {
        server.cli(&["config", "resetstat"]);
        let out = bench(&server.url(), path);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["redis_path"], path, "{report}");
        assert!(calls(&server, command) > 0, "{path}: no {command} calls");
        for other in ["sluice.call", "fcall", "evalsha"] {
            if other != command {
                assert_eq!(calls(&server, other), 0, "{path} also used {other}");
            }
        }
    }
    let plain = sluice_testkit::RedisServer::start();
    let out = bench(&plain.url(), "auto");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["redis_path"], "function", "{report}");
    let out = bench(&plain.url(), "module");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no SLUICE.CALL"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bench_names_the_flag_that_is_wrong() {
    let out = sluice(
        &[
            "bench",
            "--algorithm",
            "sliding_window_log",
            "--limit",
            "200000",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--algorithm/--limit/--period/--burst"),
        "{}",
        text(&out.stderr)
    );
    let out = sluice(&["bench", "--duration", "5"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("a number needs a unit"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 11: `rediss://` made `sluice check` panic (exit 101). Now it
/// connects with the configured CA and client certificate, and without
/// them is an error like any other (exit 2).
#[test]
fn i11_check_over_rediss_with_a_client_certificate() {
    let redis = sluice_testkit::TlsRedisServer::start(true);
    let certs = redis.certificates();
    let dir = tempfile::tempdir().unwrap();
    let policies =
        "policies:\n  tiny:\n    algorithm: fixed_window\n    limit: 2\n    period: 1h\n";
    let with_tls = write(
        dir.path(),
        "tls.yaml",
        &format!(
            "redis:\n  timeout: 5s\n  tls:\n    ca: {}\n    cert: {}\n    key: {}\n{policies}",
            certs.ca().display(),
            certs.client_cert().display(),
            certs.client_key().display()
        ),
    );
    let args = [
        "check",
        "--config",
        &with_tls,
        "--store",
        &redis.url(),
        "tiny",
        "k",
    ];
    for expected in [0, 0, 1] {
        let out = sluice(&args, &[]);
        assert_eq!(out.status.code(), Some(expected), "{}", text(&out.stderr));
    }
    let without = write(dir.path(), "plain.yaml", policies);
    let out = sluice(
        &[
            "check",
            "--config",
            &without,
            "--store",
            &redis.url(),
            "tiny",
            "k",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("error: connecting to rediss://"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_follows_the_master_a_sentinel_names() {
    let redis = sluice_testkit::RedisSentinel::start(1);
    let out = sluice(&["check", "--store", &redis.url(), "default", "k"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(redis.cli(0, &["dbsize"]), "1", "the state is on the master");
}

/// Issue 14: `validate` names a file it cannot read as such, with no line
/// of a file that does not exist: missing, a directory, not UTF-8.
#[test]
fn i14_validate_names_a_missing_or_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("sluice.yaml");
    let missing = missing.to_str().unwrap();
    let out = sluice(&["validate", missing], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!("cannot read {missing}: no such file")
    );
    let folder = dir.path().to_str().unwrap();
    let out = sluice(&["validate", folder], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!("cannot read {folder}: it is a directory, not a file")
    );
    std::fs::write(
        dir.path().join("latin1.yaml"),
        b"policies:\n  caf\xe9: {}\n",
    )
    .unwrap();
    let latin1 = dir.path().join("latin1.yaml");
    let out = sluice(&["validate", latin1.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("{}:2: not UTF-8 text", latin1.display())),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 14: the command line reads durations in the grammar of the file,
/// and says what it got and what is accepted.
#[test]
fn i14_flags_read_durations_as_the_file_does() {
    let out = sluice(&["bench", "--period", "1M"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "\"1M\" is not a duration: write a whole number followed by ms, s, m, h or d (or us), e.g. 250ms or 1h30m"
        ),
        "{stderr}"
    );
    let out = sluice(&["bench", "--duration", "2 days"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("\"2 days\" is not a duration"));
}

/// Issue 14: `peek --state` shows each limit's stored state; in memory
/// (state lives per process) the key is untouched, on Redis it shows what
/// two earlier `sluice check` processes spent.
#[test]
fn issue_14_peek_state_shows_the_spend() {
    let state_of = |out: &Output| {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["allowed"], true, "the decision is still printed");
        json["state"].as_array().unwrap().clone()
    };
    let memory = state_of(&sluice(&["peek", "default", "k", "--state"], &[]));
    assert_eq!(memory.len(), 1);
    assert_eq!(memory[0]["summary"], "untouched");
    assert_eq!(memory[0]["untouched"], true);

    let server = sluice_testkit::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sluice.yaml",
        "policies:\n  api: {algorithm: token_bucket, limit: 10, period: 1h}\n",
    );
    let url = server.url();
    let run = |args: &[&str]| {
        let mut all = vec![args[0], "--config", &file, "api", "k"];
        all.extend_from_slice(&args[1..]);
        sluice(&all, &[("SLUICE_STORE", &url)])
    };
    for _ in 0..2 {
        assert_eq!(run(&["check"]).status.code(), Some(0));
    }
    let redis = state_of(&run(&["peek", "--state"]));
    assert_eq!(redis.len(), 1);
    let summary = redis[0]["summary"].as_str().unwrap();
    // 2 of 10 tokens at 10 per hour refill in 12 minutes, less the
    // moments the processes took.
    assert!(
        summary.starts_with("token bucket: 8 of 10 tokens; full again in 11m59s"),
        "{summary}"
    );
    assert_eq!(redis[0]["algorithm"], "token_bucket");
    assert_eq!(redis[0]["remaining"], 8);
    assert_eq!(redis[0]["capacity"], 10);
    assert_eq!(redis[0]["untouched"], false);
    let plain = run(&["peek"]);
    let json: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(json.get("state").is_none(), "no state without --state");
}
