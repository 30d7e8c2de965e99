//! The configuration: a YAML file, environment variables and flags.
//!
//! Precedence, highest first: command-line flags, environment variables
//! (`SLUICE_CONFIG`, `SLUICE_STORE`, `SLUICE_GRPC_LISTEN`), the file, the built-in defaults. With
//! no file at all Sluice runs on the memory store with one policy,
//! `default`: token bucket, 10 per 60 s, burst 10.
//!
//! The library's part (the YAML walker, errors with file, line and field,
//! `store`, `redis`, `memory` and `policies`) is the `sluice-config` crate,
//! which library users load on their own; this module adds the server's
//! sections over the same walker.
//!
//! - `file`: the whole file, the library's sections and the server's.
//! - `server`: `server`, the HTTP listener's bounds and drain deadline.
//! - `grpc`: `grpc`, the gRPC listener's address and bounds.
//! - `forward_auth`: `forward_auth` and `trusted_proxies`, for `/v1/forward-auth`.
//! - `envoy_settings`: `envoy_config` and `envoy`, for Envoy's ShouldRateLimit.
//! - [`envoy`]: envoyproxy/ratelimit's configuration files.
//! - `fields`: every field the file accepts, for tests of samples and docs.

pub mod envoy;
mod envoy_settings;
mod fields;
mod file;
mod forward_auth;
mod grpc;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice::{Algorithm, Policy, Quota, RedisOptions};

pub use envoy_settings::{ENVOY_CONFIG_ENV, EnvoySettings};
pub use fields::fields;
pub use file::{FileConfig, parse};
pub use forward_auth::{DENY_STATUS_EXPECTED, ForwardAuthRoute, ForwardAuthSettings, deny_status};
pub use grpc::{GrpcSettings, LISTEN_EXPECTED, parse_listen};
pub use server::ServerSettings;
use sluice_config::yaml;
pub use sluice_config::{
    ConfigError, ConfigErrors, MemorySettings, Origin, StoreSpec, parse_duration,
};

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "SLUICE_CONFIG";
/// The environment variable naming the store.
pub const STORE_ENV: &str = "SLUICE_STORE";
/// The environment variable naming the address of the gRPC listener.
pub const GRPC_LISTEN_ENV: &str = "SLUICE_GRPC_LISTEN";

/// Everything Sluice runs with, checked.
#[derive(Debug)]
pub struct Config {
    /// Where decisions are kept.
    pub store: StoreSpec,
    /// The policies in force, in file order.
    pub policies: Vec<Policy>,
    /// How the Redis store names its keys and how long a call may take.
    pub redis: RedisOptions,
    /// The HTTP listener's bounds and the drain deadline.
    pub server: ServerSettings,
    /// The bound on the keys kept in process memory.
    pub memory: MemorySettings,
    /// How `/v1/forward-auth` answers, and whose client addresses it believes.
    pub forward_auth: ForwardAuthSettings,
    /// The gRPC listener: its address (none: off) and bounds.
    pub grpc: GrpcSettings,
    /// envoyproxy/ratelimit's configuration, read, and how Envoy is answered.
    pub envoy: EnvoySettings,
    /// The file the configuration came from, if any.
    pub source: Option<PathBuf>,
}

/// What the command line says; `None` where a flag was not given.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--store URL`.
    pub store: Option<String>,
    /// `--grpc-listen ADDRESS`.
    pub grpc_listen: Option<String>,
    /// `--envoy-config PATH`.
    pub envoy_config: Option<PathBuf>,
}

impl Config {
    /// The configuration with no file: memory store, the `default` policy.
    pub fn builtin() -> Config {
        Config {
            store: StoreSpec::Memory,
            policies: vec![default_policy()],
            redis: RedisOptions::default(),
            server: ServerSettings::default(),
            memory: MemorySettings::default(),
            forward_auth: ForwardAuthSettings::default(),
            grpc: GrpcSettings::default(),
            envoy: EnvoySettings::default(),
            source: None,
        }
    }

    /// Loads the configuration from flags, then the environment (read with
    /// `env`), then the file they name, then the defaults.
    pub fn resolve(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let file = flags
            .config
            .clone()
            .or_else(|| env(CONFIG_ENV).map(PathBuf::from));
        let mut config = match file {
            Some(path) => Config::load(&path)?,
            None => Config::builtin(),
        };
        let store = match (&flags.store, env(STORE_ENV)) {
            (Some(flag), _) => Some((flag.clone(), Origin::Flag("--store"))),
            (None, Some(var)) => Some((var, Origin::Env(STORE_ENV))),
            (None, None) => None,
        };
        if let Some((text, origin)) = store {
            config.store = StoreSpec::parse(&text).map_err(|message| ConfigError {
                origin,
                path: String::new(),
                message,
            })?;
        }
        let grpc_listen = match (&flags.grpc_listen, env(GRPC_LISTEN_ENV)) {
            (Some(flag), _) => Some((flag.clone(), Origin::Flag("--grpc-listen"))),
            (None, Some(var)) => Some((var, Origin::Env(GRPC_LISTEN_ENV))),
            (None, None) => None,
        };
        if let Some((text, origin)) = grpc_listen {
            let address = parse_listen(&text).map_err(|message| ConfigError {
                origin,
                path: String::new(),
                message,
            })?;
            config.grpc.listen = Some(address);
        }
        let envoy = match (&flags.envoy_config, env(ENVOY_CONFIG_ENV)) {
            (Some(flag), _) => Some((flag.display().to_string(), Origin::Flag("--envoy-config"))),
            (None, Some(var)) => Some((var, Origin::Env(ENVOY_CONFIG_ENV))),
            (None, None) => None,
        };
        if let Some((text, origin)) = envoy {
            config.envoy.set_path(&text, origin)?;
            config.envoy.load_rules()?;
        }
        Ok(config)
    }

    /// Loads the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = sluice_config::read_file(path)?;
        Config::from_text(&text, path)
    }

    /// The configuration written in `text`, the content of the file at
    /// `path` (named in errors and kept as [`Config::source`]; never read:
    /// relative TLS file names are still resolved beside it). What
    /// [`Config::load`] does once it has read the file.
    pub fn from_text(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let file = parse(text, &path.display().to_string())?;
        let mut envoy = file.envoy;
        envoy.load_rules()?;
        Ok(Config {
            store: file.store.unwrap_or(StoreSpec::Memory),
            policies: file.policies,
            redis: file.redis,
            server: file.server,
            memory: file.memory,
            forward_auth: file.forward_auth,
            grpc: file.grpc,
            envoy,
            source: Some(path.to_owned()),
        })
    }
}

/// The policy Sluice runs with when there is no configuration file.
pub fn default_policy() -> Policy {
    let quota = Quota::new(
        Algorithm::TokenBucket,
        10,
        Duration::from_secs(60),
        Some(10),
    );
    // Both are valid constants, checked by a test below.
    match quota.map(|q| Policy::new("default", q)) {
        Ok(Ok(policy)) => policy,
        _ => unreachable!("the built-in default policy is valid"),
    }
}

#[cfg(test)]
mod tests;
