//! Issue 14: `/metrics` right after start-up already shows every counter
//! whose labels the configuration knows, at zero, the build's version and
//! the process metrics; a policy added by a reload gets its zero series too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Serve, metrics, write};
use sluice::StoreError;

/// The zero series of `policy`'s decisions and sources.
fn policy_zeros(policy: &str) -> Vec<String> {
    let outcomes = ["allowed", "denied", "shadow_denied", "error"]
        .map(|o| format!(r#"sluice_decisions_total{{policy="{policy}",outcome="{o}"}} 0"#));
    let sources = ["store", "deny_cache", "fallback"]
        .map(|s| format!(r#"sluice_decision_sources_total{{policy="{policy}",source="{s}"}} 0"#));
    outcomes.into_iter().chain(sources).collect()
}

fn assert_shows(text: &str, lines: &[String]) {
    for line in lines {
        assert!(text.contains(line.as_str()), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_14_every_counter_is_there_at_zero_from_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let two =
        "policies:\n  api: {limit: 5, period: 1m}\n  login: {limit: 1, period: 1m, shadow: true}\n";
    let file = write(dir.path(), "sluice.yaml", two);
    let serve = Serve::start(&["--config", file.to_str().unwrap()], &[]);

    let text = metrics(&serve).await;
    let mut zeros: Vec<String> = ["api", "login"]
        .iter()
        .flat_map(|p| policy_zeros(p))
        .collect();
    zeros
        .extend(StoreError::KINDS.map(|k| format!(r#"sluice_store_errors_total{{kind="{k}"}} 0"#)));
    zeros.extend(
        ["ok", "error"].map(|r| format!(r#"sluice_config_reloads_total{{result="{r}"}} 0"#)),
    );
    zeros.push(format!(
        r#"sluice_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    ));
    assert_shows(&text, &zeros);
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "no {name} in\n{text}"
        );
    }
    assert!(!text.contains(r#"policy="search""#), "{text}");

    write(
        dir.path(),
        "sluice.yaml",
        &format!("{two}  search: {{limit: 10, period: 1s}}\n"),
    );
    let seen = serve.log_len();
    serve.signal("HUP");
    serve.wait_for_log_after(seen, "reloaded");
    let text = metrics(&serve).await;
    let mut after = policy_zeros("search");
    after.push(r#"sluice_config_reloads_total{result="ok"} 1"#.to_owned());
    after.push(r#"sluice_config_reloads_total{result="error"} 0"#.to_owned());
    assert_shows(&text, &after);
}
