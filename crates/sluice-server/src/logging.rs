//! The log: `SLUICE_LOG` filters it (`info` unless set, e.g.
//! `info,sluice=debug`), `SLUICE_LOG_FORMAT` picks `text` (the default) or
//! `json` (one object per line). It goes to standard error.

use std::io::IsTerminal;

use anyhow::{Context, bail};
use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "SLUICE_LOG";
/// The environment variable choosing the log format.
pub const LOG_FORMAT_ENV: &str = "SLUICE_LOG_FORMAT";

/// Starts logging as the environment says; an invalid filter or format is
/// an error that names the variable.
pub fn init() -> anyhow::Result<()> {
    let filter = match std::env::var(LOG_ENV) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec)
            .with_context(|| format!("environment variable {LOG_ENV}: invalid filter {spec:?}"))?,
        _ => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let format = std::env::var(LOG_FORMAT_ENV).unwrap_or_default();
    let installed = match format.trim() {
        "" | "text" => builder.try_init(),
        "json" => builder.json().flatten_event(true).try_init(),
        other => {
            bail!("environment variable {LOG_FORMAT_ENV}: must be text or json, got {other:?}")
        }
    };
    installed.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}
