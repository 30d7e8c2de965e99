//! The `sluice` program as a library that tests can drive: configuration,
//! the JSON shape of decisions, and the commands.
//!
//! # Layout
//!
//! - [`config`]: the YAML file, environment variables and flags, checked, with errors that name file, line and field.
//! - [`body`]: the JSON body of a decision, shared by `sluice check` and the HTTP API.
//! - [`stores`]: opening the store a configuration names.
//! - [`commands`]: `sluice check` and `sluice validate`.

pub mod body;
pub mod commands;
pub mod config;
pub mod stores;
