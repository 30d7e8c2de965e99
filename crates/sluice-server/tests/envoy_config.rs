//! envoyproxy/ratelimit's configuration in `sluice serve`: `envoy_config`
//! and the `envoy` block in the file, `--envoy-config` and
//! `SLUICE_ENVOY_CONFIG`, errors with their file and line, and the watch
//! that reloads the files when they change (a Kubernetes ConfigMap's
//! symlink swap included), keeping every counter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use common::PATIENCE;
use common::envoy_examples::{NOW_S, OK, OVER, request};
use sluice::{BoxStore, FakeClock, Limiter, MemoryStore, OnStoreError};
use sluice_server::config::{Config, Flags};
use sluice_server::envoy::ResponseHeaders;
use sluice_server::server::envoy_watch::EnvoyWatch;
use sluice_server::service::DecisionService;
use sluice_server::stores::StoreHandles;

/// A limits file of `per_day` for each user. A day, not a minute: the
/// windows are aligned to the unit, and a test that crossed a minute's end
/// between two requests saw its count start again.
fn limits(per_day: u32) -> String {
    format!(
        "domain: rl
descriptors:
  - key: user
    rate_limit:
      unit: day
      requests_per_unit: {per_day}
"
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_file_names_the_envoy_config_and_its_options() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("limits.yaml"), &limits(3));
    let file = dir.path().join("sluice.yaml");
    write(
        &file,
        "policies: {api: {algorithm: gcra, limit: 1, period: 1s}}
envoy_config: limits.yaml
envoy:
  merge_domains: true
  shadow_mode: true
  on_store_error: local
  response_headers: ietf
  dynamic_metadata: true
  near_limit_ratio: 0.5
",
    );
    let config = Config::load(&file).unwrap();
    assert_eq!(
        config.envoy.path.as_deref(),
        Some(dir.path().join("limits.yaml").as_path())
    );
    assert!(config.envoy.rules.domains.contains_key("rl"));
    let o = &config.envoy.options;
    assert!(o.merge_domains && o.shadow_mode && o.dynamic_metadata);
    assert_eq!(o.on_store_error, OnStoreError::Local);
    assert_eq!(o.response_headers, ResponseHeaders::Ietf);
    assert_eq!(o.near_limit_ratio, 0.5);
}

#[test]
fn errors_name_their_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.yaml");
    let policies = "policies: {api: {algorithm: gcra, limit: 1, period: 1s}}\n";
    write(&file, &format!("{policies}envoy_config: missing.yaml\n"));
    let message = Config::load(&file).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{}:2: envoy_config: cannot read {}: no such file",
            file.display(),
            dir.path().join("missing.yaml").display()
        )
    );
    write(
        &file,
        &format!("{policies}envoy:\n  response_headers: loud\n  near_limit_ratio: 2\n  oops: 1\n"),
    );
    let message = Config::load(&file).unwrap_err().to_string();
    for part in [
        ":3: envoy.response_headers: must be draft, ietf or off, got loud",
        ":4: envoy.near_limit_ratio: must be from 0 to 1, got 2",
        "envoy.oops",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    // An error in the envoyproxy/ratelimit file names that file and line.
    write(
        &dir.path().join("limits.yaml"),
        "domain: rl\ndescriptors:\n  - key: user\n    rate_limit: {unit: fortnight}\n",
    );
    write(&file, &format!("{policies}envoy_config: limits.yaml\n"));
    let message = Config::load(&file).unwrap_err().to_string();
    assert!(
        message.contains("limits.yaml:4: descriptors[0].rate_limit.unit"),
        "{message}"
    );
    // sluice validate reads it too.
    assert!(sluice_server::commands::validate(&file).is_err());
}

#[test]
fn the_flag_and_the_variable_name_the_envoy_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.yaml");
    write(&path, &limits(3));
    let flags = Flags {
        envoy_config: Some(path.clone()),
        ..Flags::default()
    };
    let config = Config::resolve(&flags, |_| None).unwrap();
    assert!(config.envoy.rules.domains.contains_key("rl"));
    let text = path.display().to_string();
    let env = |name: &str| (name == "SLUICE_ENVOY_CONFIG").then(|| text.clone());
    let config = Config::resolve(&Flags::default(), env).unwrap();
    assert!(config.envoy.rules.domains.contains_key("rl"));
    let missing = Flags {
        envoy_config: Some(dir.path().join("nothing")),
        ..Flags::default()
    };
    let message = Config::resolve(&missing, |_| None).unwrap_err().to_string();
    assert!(message.starts_with("--envoy-config: "), "{message}");
}

fn service(config: sluice_server::config::envoy::EnvoyConfig) -> DecisionService {
    let clock = FakeClock::new(NOW_S * 1_000_000);
    let store = BoxStore::new(MemoryStore::with_clock(clock.clone()));
    let handles = StoreHandles {
        clock: std::sync::Arc::new(clock),
        ..StoreHandles::default()
    };
    let service = DecisionService::with_handles(Limiter::new(store, []), "memory", None, handles);
    service.set_envoy_config(config);
    service
}

async fn remaining(service: &DecisionService) -> (i32, u32) {
    let answer = service
        .should_rate_limit(&request("rl", &[&[("user", "a")]]))
        .await
        .unwrap();
    (answer.statuses[0].code, answer.statuses[0].limit_remaining)
}

/// Issue 13: a ConfigMap's `..data` symlink swapped to a new directory is
/// reloaded, the counters kept; a broken one is refused, the old kept.
#[tokio::test]
async fn a_configmap_symlink_swap_is_reloaded_keeping_counters() {
    let mount = tempfile::tempdir().unwrap();
    let m = mount.path();
    // What the kubelet makes: a timestamped directory, `..data` pointing
    // at it, and each file a link through `..data`.
    std::fs::create_dir(m.join("..v1")).unwrap();
    write(&m.join("..v1/limits.yaml"), &limits(3));
    symlink("..v1", m.join("..data")).unwrap();
    symlink("..data/limits.yaml", m.join("limits.yaml")).unwrap();
    let config = sluice_server::config::envoy::EnvoyConfig::load(m, false).unwrap();
    let service = service(config);
    let mut watch = EnvoyWatch::new(m, false);
    assert_eq!(remaining(&service).await, (OK, 2));
    assert_eq!(watch.poll(&service), None, "nothing changed");

    let swap = |version: &str, text: &str| {
        std::fs::create_dir(m.join(version)).unwrap();
        write(&m.join(version).join("limits.yaml"), text);
        symlink(version, m.join("..data_tmp")).unwrap();
        std::fs::rename(m.join("..data_tmp"), m.join("..data")).unwrap();
    };
    swap("..v2", &limits(5));
    assert_eq!(watch.poll(&service), Some(true));
    assert_eq!(
        remaining(&service).await,
        (OK, 3),
        "5 a day, the one spent kept"
    );
    assert_eq!(watch.poll(&service), None);

    swap(
        "..v3",
        "domain: rl\ndescriptors: [{key: user, rate_limit: {unit: fortnight}}]\n",
    );
    assert_eq!(watch.poll(&service), Some(false));
    assert_eq!(
        remaining(&service).await,
        (OK, 2),
        "the running config stays"
    );
    let metrics = service.render_metrics();
    for line in [
        r#"sluice_config_reloads_total{result="ok"} 1"#,
        r#"sluice_config_reloads_total{result="error"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in {metrics}");
    }
    // A new file beside the others is a change too.
    swap("..v4", &limits(1));
    assert_eq!(watch.poll(&service), Some(true));
    assert_eq!(remaining(&service).await, (OVER, 0));
}

/// The spawned watch polls on its own at the interval it is given.
#[tokio::test]
async fn the_spawned_watch_reloads_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.yaml");
    write(&path, &limits(3));
    let config = sluice_server::config::envoy::EnvoyConfig::load(&path, false).unwrap();
    let service = service(config);
    EnvoyWatch::new(&path, false).spawn(service.clone(), Duration::from_millis(10));
    write(&path, &limits(7));
    let started = Instant::now();
    let limit = async || {
        let answer = service
            .should_rate_limit(&request("rl", &[&[("user", "a")]]))
            .await
            .unwrap();
        answer.statuses[0]
            .current_limit
            .as_ref()
            .map(|l| l.requests_per_unit)
    };
    while limit().await != Some(7) {
        assert!(started.elapsed() < PATIENCE, "the watch never reloaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Issue 13, in the real process: `sluice serve` answers `/json` with the
/// envoyproxy/ratelimit files its configuration names; SIGHUP puts a
/// changed `envoy` block in force, the watch a changed file, both keeping
/// the counters; a broken file stops start-up with its file and line.
#[tokio::test]
async fn sluice_serve_reloads_on_sighup_and_on_a_changed_file() {
    use common::{Serve, client, send};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("limits.yaml"), &limits(5));
    let main = |headers: &str| {
        format!(
            "policies: {{api: {{limit: 1, period: 1s}}}}\nenvoy_config: limits.yaml\nenvoy:\n  response_headers: {headers}\n"
        )
    };
    write(&d.join("sluice.yaml"), &main("off"));
    let serve = Serve::start(&["--config", d.join("sluice.yaml").to_str().unwrap()], &[]);
    let body = serde_json::json!({"domain": "rl", "descriptors": [{"entries": [{"key": "user", "value": "a"}]}]});
    let ask = || send(client().post(serve.url("/json")).json(&body));
    let first = ask().await;
    assert_eq!(first.status, 200, "{:?}", first.json);
    assert_eq!(first.json["statuses"][0]["limitRemaining"], 4);
    assert_eq!(first.json.get("responseHeadersToAdd"), None, "headers off");

    write(&d.join("sluice.yaml"), &main("draft"));
    let seen = serve.log_len();
    serve.signal("HUP");
    serve.wait_for_log_after(seen, "reloaded");
    let second = ask().await;
    assert_eq!(
        second.json["statuses"][0]["limitRemaining"], 3,
        "counted on"
    );
    assert_eq!(second.json["responseHeadersToAdd"][1]["value"], "3");

    let seen = serve.log_len();
    write(&d.join("limits.yaml"), &limits(10));
    serve.wait_for_log_after(seen, "envoy_config changed: reloaded");
    let third = ask().await;
    assert_eq!(
        third.json["statuses"][0]["limitRemaining"], 7,
        "10 a day, 3 spent"
    );

    write(
        &d.join("limits.yaml"),
        "domain: rl\ndescriptors:\n  - key: user\n    rate_limit: {unit: fortnight}\n",
    );
    let seen = serve.log_len();
    let refused = serve.wait_for_log_after(seen, "limits.yaml:4");
    assert!(
        refused.contains("descriptors[0].rate_limit.unit"),
        "{refused}"
    );
    assert_eq!(
        ask().await.json["statuses"][0]["limitRemaining"],
        6,
        "the running one stays"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(d.join("sluice.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("limits.yaml:4"),
        "{stderr}"
    );
}
