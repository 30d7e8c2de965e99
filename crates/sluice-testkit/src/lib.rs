//! Test harness for Sluice: starts **real** `redis-server` processes on free
//! loopback ports, so the Redis store is tested against Redis itself, not a
//! mock.
//!
//! - [`RedisServer`] is one standalone node. It can be killed and restarted on
//!   the same port, to show that a store recovers after Redis goes away, and
//!   take more `redis-server` arguments (e.g. `--loadmodule`).
//! - [`RedisCluster`] is three masters joined with `redis-cli --cluster
//!   create`, with one replica each if asked ([`RedisCluster::with_replicas`]),
//!   and can kill a master so that its replica takes over.
//! - [`RedisSentinel`] is a master, a replica and Sentinels watching them,
//!   and can kill the master and wait for the failover.
//! - [`TlsRedisServer`] listens with TLS too, with [`Certificates`] made for
//!   the test (a CA, a server and a client certificate).
//!
//! Everything is blocking and uses only `std` (plus `tempfile`), so the
//! harness works from sync tests and from inside `#[tokio::test]` alike.
//! (The `sluice-testkit` binary alone uses tokio, for its signal handling.) Each
//! server lives in its own temporary directory (log file, cluster config) and
//! is killed and reaped when its handle is dropped. Keep handles in locals,
//! not in `static`s: statics are never dropped, so their servers would outlive
//! the test binary.
//!
//! When `redis-server` or `redis-cli` is not on `PATH`, `start()` panics and
//! says how to install them. Tests never skip silently.
//!
//! ```
//! use sluice_testkit::RedisServer;
//!
//! let mut redis = RedisServer::start();
//! assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
//! assert_eq!(redis.cli(&["set", "greeting", "hello"]), "OK");
//! assert_eq!(redis.cli(&["get", "greeting"]), "hello");
//!
//! redis.kill();
//! redis.restart();
//! // Same port, but nothing is persisted: the restarted server is empty.
//! assert_eq!(redis.cli(&["exists", "greeting"]), "0");
//! ```
//!
//! # Layout
//! - `server`: [`RedisServer`], one standalone node with `kill` and `restart`.
//! - `cluster`: [`RedisCluster`], three cluster masters (and replicas), their
//!   creation and failover.
//! - `sentinel`: [`RedisSentinel`], a master, a replica and Sentinels.
//! - `tls`: [`TlsRedisServer`] and the [`Certificates`] it uses.
//! - `gateway`: [`Gateway`], a real nginx or Caddy in front of an upstream,
//!   asking Sluice (for the forward-auth tests).
//! - [`corpus`]: the fuzz targets' kept corpus (`fuzz/corpus/`), replayed
//!   through their checks by a normal test.
//! - `module`: [`module_path()`] and [`module_args`], the native Sluice module
//!   for a server ([`RedisServer::with_module`], [`RedisCluster::with_module`]).
//! - `process`: shared plumbing: finding the binaries, reserving free ports,
//!   spawning one `redis-server`, waiting for it to answer `PING`, `redis-cli`.
//! - `main.rs` (the `sluice-testkit` binary): `sluice-testkit cluster` or
//!   `sluice-testkit server [-- ARG…]` starts one of the above for a script
//!   (`bench/run`), prints its URL, ports and pids, and stops it when its
//!   standard input closes or on SIGTERM/SIGINT/SIGHUP.

// Test support: when Redis cannot be started or a command fails, panicking
// with a clear message (and the server log) is the point, so these lints,
// which guard library code against panics, do not apply here.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod cluster;
pub mod corpus;
mod gateway;
mod module;
mod process;
mod sentinel;
mod server;
mod tls;

pub use cluster::RedisCluster;
pub use gateway::{Gateway, GatewayKind};
pub use module::{MODULE_ENV, module_args, module_path};
pub use sentinel::RedisSentinel;
pub use server::RedisServer;
pub use tls::{Certificates, TlsRedisServer};
