//! The `sluice` program as a library that tests can drive: configuration,
//! the decision service, and the commands.
//!
//! # Layout
//!
//! - [`config`]: the YAML file, environment variables and flags, checked, with errors that name file, line and field.
//! - [`body`]: the JSON body of a decision, shared by `sluice check` and the HTTP API.
//! - [`stores`]: opening the store a configuration names.
//! - [`service`]: the transport-neutral decision service every transport calls: it resolves,
//!   decides, times, counts metrics and store errors, and answers verdicts to render.
//! - [`envoy`]: Envoy's ShouldRateLimit, decided on the service's store with envoyproxy/ratelimit's
//!   configuration files.
//! - [`grpc`]: the gRPC adapter: Envoy's rate limit service, health and reflection over the service.
//! - [`http`]: the HTTP API, an adapter over the service, described by `openapi.json`.
//! - [`server`]: `sluice serve`: the process: listeners, signals, reload on SIGHUP, drain on SIGTERM.
//! - [`metrics`]: the Prometheus metrics.
//! - [`process_metrics`]: the standard process metrics (CPU, memory, file descriptors).
//! - [`logging`]: `SLUICE_LOG` and `SLUICE_LOG_FORMAT`, checked; records kept to one line.
//! - [`commands`]: `sluice validate`, `check`, `peek` and `reset`.
//! - [`summary`]: a configuration as a person reads it, for `sluice validate` and the start-up log line.
//! - [`bench`](mod@bench): `sluice bench`, the load generator.
//! - `fuzzing` (hidden): the properties the fuzz targets in `fuzz/` check,
//!   shared with the test that replays their corpus.

pub mod bench;
pub mod body;
pub mod commands;
pub mod config;
pub mod envoy;
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod process_metrics;
pub mod server;
pub mod service;
pub mod stores;
pub mod summary;
