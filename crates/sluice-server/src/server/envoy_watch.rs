//! The watch of envoyproxy/ratelimit's configuration: polled (every second
//! in `sluice serve`), reloaded when the set of its files or their contents
//! change, as that project reloads its runtime directory.
//!
//! Symbolic links are followed: a Kubernetes ConfigMap volume swaps a
//! `..data` link to a new directory at once, and the files seen through it
//! change with it. A new configuration with errors is refused and logged,
//! and the running one stays; both outcomes count in
//! `sluice_config_reloads_total`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::envoy::EnvoyConfig;
use crate::service::DecisionService;

/// How often `sluice serve` looks at the files.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What the files are now: each file's path and content, in name order.
/// An unreadable path reads as empty, so that its return is a change.
type Fingerprint = Vec<(PathBuf, Vec<u8>)>;

/// A watch of the configuration at one path.
pub struct EnvoyWatch {
    path: PathBuf,
    merge: bool,
    seen: Fingerprint,
}

impl EnvoyWatch {
    /// A watch of `path` (a file or a directory), whose files are what the
    /// service holds now; `merge` is `envoy.merge_domains`.
    pub fn new(path: &Path, merge: bool) -> EnvoyWatch {
        EnvoyWatch {
            path: path.to_owned(),
            merge,
            seen: fingerprint(path),
        }
    }

    /// Looks at the files once: when they changed since last seen, loads
    /// them and puts them in force on `service`. `None` when nothing
    /// changed, else whether the new configuration was taken.
    pub fn poll(&mut self, service: &DecisionService) -> Option<bool> {
        let now = fingerprint(&self.path);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        let ok = match EnvoyConfig::load(&self.path, self.merge) {
            Ok(config) => {
                let domains = config.domains.len();
                service.set_envoy_config(config);
                tracing::info!(path = %self.path.display(), domains, "envoy_config changed: reloaded");
                true
            }
            Err(errors) => {
                tracing::error!(
                    path = %self.path.display(),
                    errors = %crate::logging::one_line(&errors),
                    "envoy_config changed: refused, the running one stays"
                );
                false
            }
        };
        service.metrics().reload(ok);
        Some(ok)
    }

    /// Polls every `every`, on the blocking pool (file reads block), for
    /// as long as the process runs.
    pub fn spawn(self, service: DecisionService, every: Duration) {
        let watch = Arc::new(Mutex::new(self));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is at once: skip it
            loop {
                ticks.tick().await;
                let (watch, service) = (Arc::clone(&watch), service.clone());
                let polled = tokio::task::spawn_blocking(move || {
                    if let Ok(mut watch) = watch.lock() {
                        watch.poll(&service);
                    }
                });
                if let Err(e) = polled.await {
                    tracing::error!(error = %sluice::error::chain(&e), "the envoy_config watch stopped");
                    return;
                }
            }
        });
    }
}

/// The files at `path` and their contents: the file itself, or the `.yaml`
/// and `.yml` files directly in the directory (what
/// [`EnvoyConfig::load`] reads), links followed.
fn fingerprint(path: &Path) -> Fingerprint {
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    if !path.is_dir() {
        return vec![(path.to_owned(), read(path))];
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml") && p.is_file())
        .map(|p| {
            let content = read(&p);
            (p, content)
        })
        .collect();
    files.sort();
    files
}
