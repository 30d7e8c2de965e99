//! Sluice's YAML configuration for library users: the policies, the store
//! and its settings from a `sluice.yaml`, with every error collected and
//! named by file, line and field (`sluice.yaml:7: policies.api.limit: must
//! be a positive integer, got -5`).
//!
//! The `sluice` server reads the same file with more sections (`server`,
//! `grpc`, `envoy`, ...); this crate reads the part a program embedding
//! [`sluice::Limiter`] needs, and refuses any other field.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let text = "
//! policies:
//!   api:
//!     algorithm: gcra
//!     limit: 2
//!     period: 1s
//!     overrides:
//!       partner: {limit: 100}
//! ";
//! let config = sluice_config::Config::from_str(text, "sluice.yaml")?;
//! let limiter = config.limiter().await?;
//! assert!(limiter.check("api", "alice", 1).await?.allowed);
//! assert!(limiter.check("api", "alice", 1).await?.allowed);
//! assert!(!limiter.check("api", "alice", 1).await?.allowed);
//!
//! let errors = sluice_config::Config::from_str("policies:\n  api: {limit: 0}\n", "f.yaml")
//!     .unwrap_err()
//!     .to_string();
//! assert_eq!(
//!     errors,
//!     "f.yaml:2: policies.api.period: missing field\n\
//!      f.yaml:2: policies.api.limit: must be a positive integer, got 0"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`yaml`]: a span-aware YAML walker that knows no schema (mappings with
//!   allowed fields, lists, scalars, numbers, durations, booleans), which
//!   collects every error with its file, line and field.
//! - [`schema`]: the library's sections (`store`, `redis`, `memory`,
//!   `policies`, what to do when the store fails) over that walker.
//! - `store`: [`StoreSpec`], the store URL, with passwords hidden when shown.
//! - `memory`: [`MemorySettings`], the bound on the keys kept in process memory.
//! - `local_budget`: a policy's `local_budget` (`max_overshoot`, `instances`).
//! - `tls`: `redis.tls`, the CA and client certificate files, read and checked.
//! - [`fields`]: every field the sections accept, for tests of samples and docs.
//! - `file`: reading a configuration file, with an error that names it.
//! - `error`: [`ConfigError`] and [`ConfigErrors`], errors that say where they are.

mod error;
pub mod fields;
mod file;
mod local_budget;
mod memory;
pub mod schema;
mod store;
mod tls;
pub mod yaml;

use std::path::Path;

use sluice::store::{Connecting, LocalBudgets, OpenError, open_redis};
use sluice::{BoxStore, Limiter, MemoryStore, Policy, RedisOptions, SystemClock};

pub use error::{ConfigError, ConfigErrors, Origin};
pub use file::{io_reason, read_file, unreadable};
pub use memory::MemorySettings;
pub use schema::{FIELDS, Policies, Settings};
/// Reads a duration in the one grammar of [`sluice::duration`] (`250ms`,
/// `1h30m`): the parser for a flag or an environment variable that takes
/// one, so that they read durations as the file does.
pub use sluice::duration::parse as parse_duration;
pub use store::StoreSpec;

/// What a configuration file says about the limiter: its policies, its
/// store and the store's settings.
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    /// Where decisions are kept: `store`, memory when absent.
    pub store: StoreSpec,
    /// The policies, in file order.
    pub policies: Vec<Policy>,
    /// How the Redis store names its keys and how long a call may take.
    pub redis: RedisOptions,
    /// The bound on the keys kept in process memory.
    pub memory: MemorySettings,
}

impl Config {
    /// Reads and checks the configuration file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        let text = read_file(path)?;
        Config::from_str(&text, &path.display().to_string())
    }

    /// The configuration written in `text`, the content of the file named
    /// `file` (named in errors; relative TLS file names are resolved
    /// beside it). Every error is listed, in file order.
    pub fn from_str(text: &str, file: &str) -> Result<Config, ConfigErrors> {
        let root = yaml::load(text, file, "a YAML mapping such as `policies: ...`")?;
        let mut w = yaml::Walker::new(file);
        let Some(map) = w.mapping(&root, "", FIELDS) else {
            return Err(w.finish(()).err().unwrap_or(ConfigErrors(Vec::new())));
        };
        let settings = schema::settings(&mut w, map);
        let policies = schema::policies(&mut w, map, Policies::Required);
        w.finish(Config {
            store: settings.store.unwrap_or(StoreSpec::Memory),
            policies,
            redis: settings.redis,
            memory: settings.memory,
        })
    }

    /// Opens the store the configuration names: the memory store (bounded
    /// by `memory.max_keys`), or Redis with the `redis` settings, once
    /// connected, behind [`LocalBudgets`] for the policies with a
    /// `local_budget` (their slices are given back when next met past
    /// their lifetime; a program that wants them back when idle opens its
    /// own `LocalBudgets` and calls its `return_idle`).
    pub async fn open_store(&self) -> Result<BoxStore, OpenError> {
        Ok(match &self.store {
            StoreSpec::Memory => {
                BoxStore::new(MemoryStore::new().with_max_keys(self.memory.max_keys))
            }
            StoreSpec::Redis(url)
            | StoreSpec::RedisCluster(url)
            | StoreSpec::RedisSentinel(url) => {
                let redis = open_redis(url, &self.redis, Connecting::Wait).await?;
                BoxStore::new(LocalBudgets::new(redis, SystemClock))
            }
        })
    }

    /// A limiter deciding the configuration's policies on its store
    /// ([`Config::open_store`]).
    pub async fn limiter(&self) -> Result<Limiter<BoxStore>, OpenError> {
        Ok(Limiter::new(
            self.open_store().await?,
            self.policies.clone(),
        ))
    }
}
