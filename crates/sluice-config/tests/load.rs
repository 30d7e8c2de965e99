//! A library user loads a `sluice.yaml` from disk and decides with its
//! policies, without the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sluice_config::{Config, StoreSpec};

fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[tokio::test]
async fn a_library_user_loads_a_file_and_decides_with_its_policies() {
    let (_dir, path) = write(
        "\
store: memory
memory:
  max_keys: 1000
policies:
  login:
    algorithm: fixed_window
    limit: 2
    period: 1m
    overrides:
      ci-runner: {limit: 3}
",
    );
    let config = Config::load(&path).unwrap();
    assert_eq!(config.store, StoreSpec::Memory);
    assert_eq!(config.memory.max_keys.get(), 1000);
    let limiter = config.limiter().await.unwrap();
    let mut alice = Vec::new();
    let mut ci = Vec::new();
    for _ in 0..4 {
        alice.push(limiter.check("login", "alice", 1).await.unwrap().allowed);
        ci.push(
            limiter
                .check("login", "ci-runner", 1)
                .await
                .unwrap()
                .allowed,
        );
    }
    assert_eq!(alice, [true, true, false, false]);
    assert_eq!(ci, [true, true, true, false], "the override's own limit");
}

/// The library reads only its own sections: a server section is an
/// unknown field, reported with the others at once.
#[test]
fn every_error_is_reported_at_once_and_server_sections_are_unknown() {
    let (_dir, path) = write(
        "\
server:
  drain_timeout: 1s
redis:
  timeout: 0s
policies:
  api: {limit: -1, period: 1s}
",
    );
    let file = path.display().to_string();
    let errors = Config::load(&path).unwrap_err().to_string();
    assert_eq!(
        errors,
        format!(
            "{file}:1: server: unknown field; expected one of store, redis, on_store_error, local_share, deny_cache, policies, memory\n\
             {file}:4: redis.timeout: must be above zero, got 0s\n\
             {file}:6: policies.api.limit: must be a positive integer, got -1"
        )
    );
}
