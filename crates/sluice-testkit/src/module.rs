//! The native Sluice module (`crates/sluice-redis-module`) for the servers
//! the tests start: where its `.so` is, and the `redis-server` arguments
//! that load it.

use std::path::PathBuf;

/// The environment variable that names the module's `.so` when it is not
/// at its place in this workspace's `target/debug`.
pub const MODULE_ENV: &str = "SLUICE_REDIS_MODULE";

/// The module's `.so`: `$SLUICE_REDIS_MODULE`, else
/// `target/debug/libsluice_redis.so` of this workspace (or of
/// `$CARGO_TARGET_DIR`).
///
/// # Panics
///
/// When the file is not there, with a message that says how to build it
/// (`scripts/test` builds it before the tests).
pub fn module_path() -> PathBuf {
    let path = match std::env::var_os(MODULE_ENV) {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
                PathBuf::from,
            );
            target.join("debug").join(library_file())
        }
    };
    if !path.is_file() {
        panic!(
            "the native Sluice module is not built: {} is missing. Build it with \
             `cargo build -p sluice-redis-module` (scripts/test does), or point \
             {MODULE_ENV} at a libsluice_redis.so",
            path.display()
        );
    }
    path
}

/// The `redis-server` arguments that load the module.
pub fn module_args() -> Vec<String> {
    vec![
        "--loadmodule".to_owned(),
        module_path().display().to_string(),
    ]
}

fn library_file() -> &'static str {
    if cfg!(target_os = "macos") {
        "libsluice_redis.dylib"
    } else {
        "libsluice_redis.so"
    }
}
