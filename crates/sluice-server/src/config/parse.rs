//! From YAML text to a checked [`FileConfig`], collecting every error with
//! its line and field path instead of stopping at the first.
//!
//! The YAML is read into a tree whose nodes remember their position
//! (`marked-yaml`); scalars stay strings until a field asks for a number, a
//! duration or a boolean, so each conversion error can name what it got.

use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node, Span};
use sluice::{Algorithm, Policy, Quota, RedisOptions};

use super::error::{ConfigError, ConfigErrors, Origin};
use super::store::StoreSpec;

/// What a configuration file says; absent fields are `None`.
#[derive(Debug)]
pub struct FileConfig {
    /// The `store` field.
    pub store: Option<StoreSpec>,
    /// The `policies` field, in file order.
    pub policies: Vec<Policy>,
    /// The `redis` field: key prefix, call timeout, and whether to use Redis Functions.
    pub redis: RedisOptions,
}

const TOP_FIELDS: &[&str] = &["store", "redis", "policies"];
const REDIS_FIELDS: &[&str] = &["prefix", "timeout", "functions"];
const POLICY_FIELDS: &[&str] = &[
    "algorithm",
    "limit",
    "period",
    "burst",
    "shadow",
    "overrides",
];
const OVERRIDE_FIELDS: &[&str] = &["limit", "period", "burst"];

/// Parses the text of the configuration file `file`.
pub fn parse(text: &str, file: &str) -> Result<FileConfig, ConfigErrors> {
    let mut walker = Walker {
        file,
        errors: Vec::new(),
    };
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    let root = match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(root) => root,
        // An empty file (or one of comments only) is an empty mapping.
        Err(_)
            if text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) =>
        {
            Node::Mapping(MarkedMappingNode::new_empty(Span::new_blank()))
        }
        Err(e) => return Err(walker.load_error(&e).into()),
    };
    let config = walker.top(&root);
    if walker.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(walker.errors))
    }
}

struct Walker<'a> {
    file: &'a str,
    errors: Vec<ConfigError>,
}

/// The raw numbers of a policy or an override, before inheritance.
#[derive(Clone, Copy, Default)]
struct Numbers {
    limit: Option<u64>,
    period: Option<Duration>,
    burst: Option<u64>,
}

impl Walker<'_> {
    fn error(&mut self, span: &Span, path: &str, message: impl Into<String>) {
        let line = span.start().map_or(1, |m| m.line());
        self.errors.push(ConfigError {
            origin: Origin::File {
                file: self.file.to_owned(),
                line,
            },
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn load_error(&self, error: &marked_yaml::LoadError) -> ConfigError {
        use marked_yaml::LoadError as E;
        let (marker, message) = match error {
            E::TopLevelMustBeMapping(m) => (
                Some(*m),
                "the file must be a YAML mapping such as `policies: ...`".to_owned(),
            ),
            E::TopLevelMustBeSequence(m) => {
                (Some(*m), "the file must be a YAML mapping".to_owned())
            }
            E::UnexpectedAnchor(m) => (
                Some(*m),
                "YAML anchors and aliases are not supported".to_owned(),
            ),
            E::MappingKeyMustBeScalar(m) => {
                (Some(*m), "mapping keys must be plain strings".to_owned())
            }
            E::UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".to_owned()),
            E::ScanError(m, e) => (Some(*m), format!("invalid YAML: {}", e.info())),
            E::DuplicateKey(d) => (
                d.key.span().start().copied(),
                format!(
                    "duplicate key {:?} (first defined on line {})",
                    d.key.as_str(),
                    d.prev_key.span().start().map_or(0, |m| m.line())
                ),
            ),
        };
        ConfigError {
            origin: Origin::File {
                file: self.file.to_owned(),
                line: marker.map_or(1, |m| m.line()),
            },
            path: String::new(),
            message,
        }
    }

    /// The node as a mapping whose keys are all among `fields`.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        fields: &[&str],
    ) -> Option<&'n MarkedMappingNode> {
        let Some(map) = node.as_mapping() else {
            self.error(
                node.span(),
                path,
                format!("must be a mapping, got {}", describe(node)),
            );
            return None;
        };
        for key in map.keys() {
            if !fields.contains(&key.as_str()) {
                let at = join(path, key.as_str());
                self.error(
                    key.span(),
                    &at,
                    format!("unknown field; expected one of {}", fields.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn scalar<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &str,
    ) -> Option<&'n MarkedScalarNode> {
        let scalar = node.as_scalar();
        if scalar.is_none() {
            self.error(
                node.span(),
                path,
                format!("must be {expected}, got {}", describe(node)),
            );
        }
        scalar
    }

    fn top(&mut self, root: &Node) -> FileConfig {
        let mut config = FileConfig {
            store: None,
            policies: Vec::new(),
            redis: RedisOptions::default(),
        };
        let Some(map) = self.mapping(root, "", TOP_FIELDS) else {
            return config;
        };
        if let Some(node) = map.get_node("store") {
            if let Some(s) =
                self.scalar(node, "store", "a store such as memory or redis://host:6379")
            {
                match StoreSpec::parse(s.as_str()) {
                    Ok(spec) => config.store = Some(spec),
                    Err(e) => self.error(s.span(), "store", e),
                }
            }
        }
        if let Some(node) = map.get_node("redis") {
            self.redis(node, &mut config.redis);
        }
        match map.get_node("policies") {
            None => {
                // An empty file has its (empty) mapping at its end: say line 1.
                let span = if map.is_empty() {
                    Span::new_blank()
                } else {
                    *map.span()
                };
                self.error(
                    &span,
                    "policies",
                    "missing field; at least one policy is required",
                )
            }
            Some(node) => match node.as_mapping() {
                None => self.error(
                    node.span(),
                    "policies",
                    format!(
                        "must be a mapping from policy name to policy, got {}",
                        describe(node)
                    ),
                ),
                Some(policies) if policies.is_empty() => {
                    self.error(node.span(), "policies", "at least one policy is required")
                }
                Some(policies) => {
                    for (name, body) in policies.iter() {
                        if let Some(p) = self.policy(name, body) {
                            config.policies.push(p);
                        }
                    }
                }
            },
        }
        config
    }

    fn redis(&mut self, node: &Node, options: &mut RedisOptions) {
        let Some(map) = self.mapping(node, "redis", REDIS_FIELDS) else {
            return;
        };
        if let Some(node) = map.get_node("prefix") {
            if let Some(s) = self.scalar(node, "redis.prefix", "a key prefix") {
                if s.as_str().is_empty() || s.as_str().contains(['{', '}']) {
                    let got = s.as_str();
                    self.error(
                        s.span(),
                        "redis.prefix",
                        format!("must be a non-empty prefix without braces, got {got:?}"),
                    );
                } else {
                    options.prefix = s.as_str().to_owned();
                }
            }
        }
        if let Some(node) = map.get_node("timeout") {
            if let Some(timeout) = self.duration(node, "redis.timeout") {
                options.timeout = timeout;
            }
        }
        if let Some(node) = map.get_node("functions") {
            if let Some(functions) = self.boolean(node, "redis.functions") {
                options.functions = functions;
            }
        }
    }

    fn policy(&mut self, name: &MarkedScalarNode, body: &Node) -> Option<Policy> {
        let path = join("policies", name.as_str());
        let map = self.mapping(body, &path, POLICY_FIELDS)?;
        let algorithm = match map.get_node("algorithm") {
            None => Some(Algorithm::default()),
            Some(node) => {
                let at = join(&path, "algorithm");
                let s = self.scalar(node, &at, "an algorithm name")?;
                match s.as_str().parse::<Algorithm>() {
                    Ok(a) => Some(a),
                    Err(e) => {
                        self.error(s.span(), &at, e.to_string());
                        None
                    }
                }
            }
        };
        let numbers = self.numbers(map, &path, true);
        let shadow = match map.get_node("shadow") {
            None => Some(false),
            Some(node) => self.boolean(node, &join(&path, "shadow")),
        };
        let quota = match (algorithm, numbers) {
            (Some(algorithm), Some(n)) => self.quota(algorithm, n, &path, map),
            _ => None,
        };
        let policy = match quota.map(|q| Policy::new(name.as_str(), q)) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                self.error(name.span(), &path, e.to_string());
                None
            }
            None => None,
        };
        let overrides = match map.get_node("overrides") {
            None => Some(Vec::new()),
            Some(node) => self.overrides(node, &path, algorithm.zip(numbers)),
        };
        let mut policy = policy?.with_shadow(shadow?);
        for (key, quota) in overrides? {
            policy = policy.with_override(key, quota);
        }
        Some(policy)
    }

    /// Reads a policy's `overrides`; `base` is the policy's algorithm and
    /// numbers when they are valid. `None` when anything is invalid.
    fn overrides(
        &mut self,
        node: &Node,
        path: &str,
        base: Option<(Algorithm, Numbers)>,
    ) -> Option<Vec<(String, Quota)>> {
        let path = join(path, "overrides");
        let Some(overrides) = node.as_mapping() else {
            let got = describe(node);
            self.error(
                node.span(),
                &path,
                format!("must be a mapping from key to limits, got {got}"),
            );
            return None;
        };
        let mut quotas = Vec::new();
        let mut complete = true;
        for (key, body) in overrides.iter() {
            let key_path = join(&path, key.as_str());
            let own = self
                .mapping(body, &key_path, OVERRIDE_FIELDS)
                .and_then(|o| Some((o, self.numbers(o, &key_path, false)?)));
            let (Some((o, own)), Some((algorithm, n))) = (own, base) else {
                complete = false;
                continue;
            };
            // Inherit every field the override does not set; a burst the
            // policy did not set follows the effective limit.
            let merged = Numbers {
                limit: own.limit.or(n.limit),
                period: own.period.or(n.period),
                burst: own.burst.or(n.burst),
            };
            match self.quota(algorithm, merged, &key_path, o) {
                Some(q) => quotas.push((key.as_str().to_owned(), q)),
                None => complete = false,
            }
        }
        complete.then_some(quotas)
    }

    /// Reads `limit`, `period` and `burst`; `required` makes the first two
    /// mandatory. `None` when one of them is invalid (already reported).
    fn numbers(&mut self, map: &MarkedMappingNode, path: &str, required: bool) -> Option<Numbers> {
        let mut ok = true;
        if required {
            for name in ["limit", "period"] {
                if map.get_node(name).is_none() {
                    self.error(map.span(), &join(path, name), "missing field");
                    ok = false;
                }
            }
        }
        // `Some(None)`: present but invalid, and already reported.
        let limit = map
            .get_node("limit")
            .map(|n| self.positive(n, &join(path, "limit")));
        let period = map
            .get_node("period")
            .map(|n| self.duration(n, &join(path, "period")));
        let burst = map
            .get_node("burst")
            .map(|n| self.positive(n, &join(path, "burst")));
        let invalid = limit.is_some_and(|v| v.is_none())
            || period.is_some_and(|v| v.is_none())
            || burst.is_some_and(|v| v.is_none());
        (ok && !invalid).then(|| Numbers {
            limit: limit.flatten(),
            period: period.flatten(),
            burst: burst.flatten(),
        })
    }

    fn quota(
        &mut self,
        algorithm: Algorithm,
        n: Numbers,
        path: &str,
        map: &MarkedMappingNode,
    ) -> Option<Quota> {
        let (limit, period) = (n.limit?, n.period?);
        match Quota::new(algorithm, limit, period, n.burst) {
            Ok(q) => Some(q),
            Err(e) => {
                let field = e.field();
                let span = map.get_node(field).map_or(*map.span(), |n| *n.span());
                // The error's text starts with the field name; the path says it.
                let message = e.to_string();
                let message = message
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(&message);
                self.error(&span, &join(path, field), message);
                None
            }
        }
    }

    fn positive(&mut self, node: &Node, path: &str) -> Option<u64> {
        let s = self.scalar(node, path, "a positive integer")?;
        match s.as_str().parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.error(
                    s.span(),
                    path,
                    format!("must be a positive integer, got {}", s.as_str()),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let s = self.scalar(node, path, "a duration such as 100ms, 1s, 1m, 1h or 1d")?;
        match parse_duration(s.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(s.span(), path, e);
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        let s = self.scalar(node, path, "true or false")?;
        match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                self.error(
                    s.span(),
                    path,
                    format!("must be true or false, got {other}"),
                );
                None
            }
        }
    }
}

/// Parses a duration written as a number and a unit: `100ms`, `1s`, `1m`,
/// `1h`, `1d` (also `us`, and sums such as `1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "must be a duration such as 100ms, 1s, 1m, 1h or 1d";
    if text.trim().chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{expected} (a number needs a unit), got {text}"));
    }
    humantime::parse_duration(text).map_err(|e| format!("{expected}, got {text} ({e})"))
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn describe(node: &Node) -> String {
    match node {
        Node::Scalar(s) if s.as_str().is_empty() => "nothing".to_owned(),
        Node::Scalar(s) => format!("{:?}", s.as_str()),
        Node::Mapping(_) => "a mapping".to_owned(),
        Node::Sequence(_) => "a list".to_owned(),
    }
}
