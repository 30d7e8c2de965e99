//! `envoy_config` and `envoy`: where envoyproxy/ratelimit's configuration
//! files are (a file, or a directory of `.yaml` files), and how Envoy's
//! ShouldRateLimit answers. The files themselves are read by
//! [`EnvoyConfig::load`], with errors that name their own file and line.

use std::path::{Path, PathBuf};

use marked_yaml::Node;
use sluice_config::io_reason;

use super::envoy::EnvoyConfig;
use super::yaml::{Walker, join};
use super::{ConfigError, ConfigErrors, Origin};
use crate::envoy::{EnvoyOptions, ResponseHeaders};

/// The environment variable naming envoyproxy/ratelimit's configuration.
pub const ENVOY_CONFIG_ENV: &str = "SLUICE_ENVOY_CONFIG";

pub(super) const FIELDS: &[&str] = &[
    "merge_domains",
    "shadow_mode",
    "on_store_error",
    "response_headers",
    "dynamic_metadata",
    "near_limit_ratio",
];

/// envoyproxy/ratelimit's configuration and how it is answered.
#[derive(Clone, Debug, Default)]
pub struct EnvoySettings {
    /// `envoy_config`: the file or directory, if any.
    pub path: Option<PathBuf>,
    /// The `envoy` options.
    pub options: EnvoyOptions,
    /// What the files at `path` say (empty without a path).
    pub rules: EnvoyConfig,
}

impl EnvoySettings {
    /// Reads the files at [`EnvoySettings::path`] into
    /// [`EnvoySettings::rules`], merging domains if the options say so.
    pub fn load_rules(&mut self) -> Result<(), ConfigErrors> {
        self.rules = match &self.path {
            Some(path) => EnvoyConfig::load(path, self.options.merge_domains)?,
            None => EnvoyConfig::default(),
        };
        Ok(())
    }

    /// Sets the path to `text`, given by `origin` (a flag, a variable):
    /// an error when nothing is there.
    pub fn set_path(&mut self, text: &str, origin: Origin) -> Result<(), ConfigError> {
        let path = PathBuf::from(text);
        if let Err(e) = std::fs::metadata(&path) {
            return Err(ConfigError {
                origin,
                path: String::new(),
                message: format!("cannot read {text}: {}", io_reason(&e)),
            });
        }
        self.path = Some(path);
        Ok(())
    }
}

/// Reads `envoy_config` at `node`: a path, relative to the configuration
/// file's directory, where something must be.
pub(super) fn envoy_config(w: &mut Walker<'_>, node: &Node) -> Option<PathBuf> {
    let s = w.scalar(node, "envoy_config", "a file or directory")?;
    let given = Path::new(s.as_str());
    let path = match Path::new(w.file()).parent() {
        Some(base) if given.is_relative() => base.join(given),
        _ => given.to_owned(),
    };
    match std::fs::metadata(&path) {
        Ok(_) => Some(path),
        Err(e) => {
            let message = format!("cannot read {}: {}", path.display(), io_reason(&e));
            w.error(s.span(), "envoy_config", message);
            None
        }
    }
}

/// Reads the `envoy` mapping at `node` over the defaults; invalid fields
/// are reported and keep their default.
pub(super) fn envoy(w: &mut Walker<'_>, node: &Node) -> EnvoyOptions {
    let mut options = EnvoyOptions::default();
    let Some(map) = w.mapping(node, "envoy", FIELDS) else {
        return options;
    };
    let flag = |w: &mut Walker<'_>, field: &str| {
        (map.get_node(field)).and_then(|n| w.boolean(n, &join("envoy", field)))
    };
    if let Some(on) = flag(w, "merge_domains") {
        options.merge_domains = on;
    }
    if let Some(on) = flag(w, "shadow_mode") {
        options.shadow_mode = on;
    }
    if let Some(on) = flag(w, "dynamic_metadata") {
        options.dynamic_metadata = on;
    }
    if let Some(node) = map.get_node("on_store_error") {
        let path = join("envoy", "on_store_error");
        if let Some(mode) = w.parsed(node, &path, "allow, deny or local") {
            options.on_store_error = mode;
        }
    }
    if let Some(node) = map.get_node("response_headers") {
        let path = join("envoy", "response_headers");
        if let Some(s) = w.scalar(node, &path, ResponseHeaders::NAMES) {
            match ResponseHeaders::parse(s.as_str()) {
                Some(mode) => options.response_headers = mode,
                None => w.error(
                    s.span(),
                    &path,
                    format!("must be {}, got {}", ResponseHeaders::NAMES, s.as_str()),
                ),
            }
        }
    }
    if let Some(node) = map.get_node("near_limit_ratio") {
        let path = join("envoy", "near_limit_ratio");
        if let Some(ratio) = w.parsed::<f32>(node, &path, "a ratio from 0 to 1") {
            if (0.0..=1.0).contains(&ratio) {
                options.near_limit_ratio = ratio;
            } else {
                w.error(
                    node.span(),
                    &path,
                    format!("must be from 0 to 1, got {ratio}"),
                );
            }
        }
    }
    options
}
