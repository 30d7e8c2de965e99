//! The server's configuration file: the library's sections (`store`,
//! `redis`, `memory`, `policies` and what to do when the store fails, read
//! by [`sluice_config::schema`]) beside the server's own (`server`, `grpc`,
//! `forward_auth`, `trusted_proxies`, `envoy_config`, `envoy`), read in one
//! walk so that one file gets every error reported at once and a field
//! neither knows is refused.

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;
use sluice::{Policy, RedisOptions};
use sluice_config::schema::{self, Policies};

use super::envoy_settings::{EnvoySettings, envoy, envoy_config};
use super::forward_auth::{ForwardAuthSettings, forward_auth, trusted_proxies};
use super::grpc::{GrpcSettings, grpc};
use super::server::{ServerSettings, server};
use super::yaml::{self, Walker, index, join};
use super::{ConfigErrors, MemorySettings, StoreSpec};

/// What a configuration file says; absent fields are `None`.
#[derive(Debug)]
pub struct FileConfig {
    /// The `store` field.
    pub store: Option<StoreSpec>,
    /// The `policies` field, in file order.
    pub policies: Vec<Policy>,
    /// The `redis` field: key prefix, call timeout, whether to use Redis
    /// Functions, and the TLS files.
    pub redis: RedisOptions,
    /// The `server` field: the HTTP listener's bounds and drain deadline.
    pub server: ServerSettings,
    /// The `memory` field: the bound on the keys kept in process memory.
    pub memory: MemorySettings,
    /// The `forward_auth` and `trusted_proxies` fields: how
    /// `/v1/forward-auth` answers and whose client addresses it believes.
    pub forward_auth: ForwardAuthSettings,
    /// The `grpc` field: the gRPC listener's address and bounds.
    pub grpc: GrpcSettings,
    /// The `envoy_config` and `envoy` fields: envoyproxy/ratelimit's
    /// configuration (not read yet) and how Envoy is answered.
    pub envoy: EnvoySettings,
}

/// The server's own top-level fields, after the library's.
pub(super) const SERVER_FIELDS: &[&str] = &[
    "server",
    "forward_auth",
    "trusted_proxies",
    "grpc",
    "envoy_config",
    "envoy",
];

/// Parses the text of the configuration file `file`, listing every error
/// with its line and field path.
pub fn parse(text: &str, file: &str) -> Result<FileConfig, ConfigErrors> {
    let root = yaml::load(text, file, "a YAML mapping such as `policies: ...`")?;
    let mut walker = Walker::new(file);
    let config = top(&mut walker, &root);
    walker.finish(config)
}

fn top(w: &mut Walker<'_>, root: &Node) -> FileConfig {
    let mut config = FileConfig {
        store: None,
        policies: Vec::new(),
        redis: RedisOptions::default(),
        server: ServerSettings::default(),
        memory: MemorySettings::default(),
        forward_auth: ForwardAuthSettings::default(),
        grpc: GrpcSettings::default(),
        envoy: EnvoySettings::default(),
    };
    let fields: Vec<&str> = [schema::FIELDS, SERVER_FIELDS].concat();
    let Some(map) = w.mapping(root, "", &fields) else {
        return config;
    };
    let settings = schema::settings(w, map);
    config.store = settings.store;
    config.redis = settings.redis;
    config.memory = settings.memory;
    if let Some(node) = map.get_node("server") {
        config.server = server(w, node);
    }
    if let Some(node) = map.get_node("forward_auth") {
        forward_auth(w, node, &mut config.forward_auth);
    }
    if let Some(node) = map.get_node("grpc") {
        config.grpc = grpc(w, node);
    }
    if let Some(node) = map.get_node("trusted_proxies") {
        config.forward_auth.trusted_proxies = trusted_proxies(w, node);
    }
    if let Some(node) = map.get_node("envoy_config") {
        config.envoy.path = envoy_config(w, node);
    }
    if let Some(node) = map.get_node("envoy") {
        config.envoy.options = envoy(w, node);
    }
    // A file for Envoy's rate limit service alone: its descriptors are the
    // limits, and the built-in `default` policy serves the rest.
    let envoy_only = map.get_node("envoy_config").is_some();
    let required = if envoy_only {
        Policies::Optional
    } else {
        Policies::Required
    };
    config.policies = schema::policies(w, map, required);
    match map.get_node("policies") {
        None if envoy_only => config.policies.push(super::default_policy()),
        Some(node) => {
            if let Some(policies) = node.as_mapping().filter(|p| !p.is_empty()) {
                forward_auth_policy_exists(w, map, policies);
            }
        }
        None => {}
    }
    config
}

/// Reports a `forward_auth.policy`, or a route's `policy`, that names none
/// of `policies`.
fn forward_auth_policy_exists(
    w: &mut Walker<'_>,
    map: &MarkedMappingNode,
    policies: &MarkedMappingNode,
) {
    let Some(forward_auth) = map.get_node("forward_auth").and_then(Node::as_mapping) else {
        return;
    };
    let mut named = Vec::new();
    if let Some(policy) = forward_auth.get_node("policy").and_then(Node::as_scalar) {
        named.push((policy, "forward_auth.policy".to_owned()));
    }
    let routes = (forward_auth.get_node("routes"))
        .and_then(Node::as_sequence)
        .into_iter()
        .flat_map(|routes| routes.iter().enumerate());
    for (i, route) in routes {
        let policy = (route.as_mapping())
            .and_then(|r| r.get_node("policy"))
            .and_then(Node::as_scalar);
        if let Some(policy) = policy {
            let route = index(&join("forward_auth", "routes"), i);
            named.push((policy, join(&route, "policy")));
        }
    }
    let names: Vec<&str> = policies.keys().map(|k| k.as_str()).collect();
    for (policy, path) in named {
        if !names.contains(&policy.as_str()) {
            let message = format!("no such policy; the policies are: {}", names.join(", "));
            w.error(policy.span(), &path, message);
        }
    }
}
