//! envoyproxy/ratelimit's configuration, read unchanged: one YAML file per
//! domain, with nested `descriptors` whose `rate_limit`s Envoy's rate limit
//! service applies to the descriptors of each request.
//!
//! ```yaml
//! domain: mongo_cps
//! descriptors:
//!   - key: database
//!     value: users
//!     rate_limit:
//!       unit: second
//!       requests_per_unit: 500
//! ```
//!
//! The load errors are that project's (an empty domain or key, a duplicate
//! composite key, `unlimited` beside a `unit`, an unknown unit, a
//! `replaces` that is empty or names its own limit, `share_threshold`
//! without a wildcard, a domain loaded twice without merging, unknown
//! fields), each with its file, line and field. One difference: a field
//! is checked where it is written, so a known field in the wrong place
//! (`unit` beside `key`) is an error here, where that project ignores it.
//!
//! - [`matching`]: which rule a request's descriptor meets, as that project
//!   decides it.

pub mod matching;

use std::collections::BTreeMap;
use std::path::Path;

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::ConfigErrors;
use super::yaml::{self, Walker, index, join};

/// Every domain's descriptors, by domain name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvoyConfig {
    /// The domains, by name.
    pub domains: BTreeMap<String, Level>,
}

/// One level of descriptors: the top of a domain, or what a descriptor
/// nests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Level {
    /// The descriptors of this level, in the order written (merged domains:
    /// in the order loaded).
    pub descriptors: Vec<Descriptor>,
}

/// One entry of a `descriptors` list.
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    /// `key`: never empty.
    pub key: String,
    /// `value`; `None` when absent or empty, matching every value of `key`
    /// that no other entry matches, each value its own counter.
    pub value: Option<String>,
    /// `rate_limit`, if this descriptor has one.
    pub rate_limit: Option<RateLimit>,
    /// `shadow_mode`: decided and counted, never denied.
    pub shadow_mode: bool,
    /// `quota_mode`: kept for compatibility (envoyproxy/ratelimit counts
    /// such limits as quotas in its metrics).
    pub quota_mode: bool,
    /// `detailed_metric`: metrics labelled by the request's values.
    pub detailed_metric: bool,
    /// `value_to_metric`: the request's value in the metric's key.
    pub value_to_metric: bool,
    /// `share_threshold`: every value a wildcard matches shares one counter.
    pub share_threshold: bool,
    /// `metadata`, as JSON, returned with a rejection when asked for.
    pub metadata: Option<serde_json::Value>,
    /// The nested `descriptors`.
    pub nested: Level,
    /// `key_value`, or `key` when there is no value: the composite key,
    /// unique within a level, that a request's `key_value` is matched
    /// against.
    pub composite: String,
    /// The descriptor's full key, as that project names it in metrics:
    /// `domain.key_value.key`.
    pub full_key: String,
}

/// A `rate_limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// `requests_per_unit` (0 when absent, as in that project: every
    /// request is over the limit).
    pub requests_per_unit: u32,
    /// `unit`; `None` only when `unlimited`.
    pub unit: Option<Unit>,
    /// `unlimited`: always admitted, never counted.
    pub unlimited: bool,
    /// `name`, if given: what `replaces` refers to.
    pub name: Option<String>,
    /// The names of the limits this one `replaces` (drops) when both apply
    /// to one request.
    pub replaces: Vec<String>,
}

/// The time unit of a limit: every window is aligned to the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// One second.
    Second,
    /// 60 seconds.
    Minute,
    /// 3,600 seconds.
    Hour,
    /// 86,400 seconds.
    Day,
    /// 7 days.
    Week,
    /// 30 days.
    Month,
    /// 365 days.
    Year,
}

impl Unit {
    /// Every unit, shortest first.
    pub const ALL: [Unit; 7] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    /// The unit as written in the file and in Envoy's API (lower case).
    pub fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    /// The unit's length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        }
    }

    /// The unit named `text`, in any case (as that project reads it).
    pub fn parse(text: &str) -> Option<Unit> {
        Unit::ALL
            .into_iter()
            .find(|u| u.name().eq_ignore_ascii_case(text))
    }
}

const ROOT_FIELDS: &[&str] = &["domain", "descriptors"];
const DESCRIPTOR_FIELDS: &[&str] = &[
    "key",
    "value",
    "rate_limit",
    "descriptors",
    "shadow_mode",
    "quota_mode",
    "detailed_metric",
    "value_to_metric",
    "share_threshold",
    "metadata",
];
const RATE_LIMIT_FIELDS: &[&str] = &["unit", "requests_per_unit", "unlimited", "name", "replaces"];

impl EnvoyConfig {
    /// Loads `path`: one file, or every `.yaml` and `.yml` file directly in
    /// a directory, in name order (as that project's runtime directory
    /// holds them). A domain in a second file is an error, unless `merge`:
    /// then its descriptors are added to the first's.
    pub fn load(path: &Path, merge: bool) -> Result<EnvoyConfig, ConfigErrors> {
        let unreadable = |e: std::io::Error| sluice_config::unreadable(path, &e);
        let files = if path.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(unreadable)? {
                let file = entry.map_err(unreadable)?.path();
                let yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
                if yaml && file.is_file() {
                    files.push(file);
                }
            }
            files.sort();
            files
        } else {
            vec![path.to_owned()]
        };
        let mut config = EnvoyConfig::default();
        let mut errors = Vec::new();
        for file in files {
            let name = file.display().to_string();
            let loaded =
                sluice_config::read_file(&file).and_then(|text| config.add(&text, &name, merge));
            if let Err(ConfigErrors(found)) = loaded {
                errors.extend(found);
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Adds the domain of `text`, the content of the file `file`; a domain
    /// already loaded is an error unless `merge`.
    pub fn add(&mut self, text: &str, file: &str, merge: bool) -> Result<(), ConfigErrors> {
        let root = yaml::load(text, file, "a YAML mapping with domain and descriptors")?;
        let mut w = Walker::new(file);
        let Some(map) = w.mapping(&root, "", ROOT_FIELDS) else {
            return w.finish(());
        };
        let domain = match map.get_node("domain") {
            None => {
                w.error(map.span(), "domain", "missing field; a domain is required");
                None
            }
            Some(node) => match w.scalar(node, "domain", "a domain name") {
                Some(s) if s.as_str().is_empty() => {
                    w.error(s.span(), "domain", "must not be empty");
                    None
                }
                Some(s) => Some((s.as_str().to_owned(), *s.span())),
                None => None,
            },
        };
        let prefix = domain.as_ref().map_or("", |(d, _)| d.as_str());
        let existing = domain.as_ref().and_then(|(d, _)| self.domains.get(d));
        if let (Some((name, span)), Some(_), false) = (&domain, existing, merge) {
            w.error(
                span,
                "domain",
                format!("domain {name:?} is already loaded from another file"),
            );
        }
        let mut level = existing.cloned().unwrap_or_default();
        if let Some(node) = map.get_node("descriptors") {
            descriptors(
                &mut w,
                node,
                "descriptors",
                &format!("{prefix}."),
                &mut level,
            );
        }
        w.finish(())?;
        if let Some((name, _)) = domain {
            self.domains.insert(name, level);
        }
        Ok(())
    }
}

/// Reads the `descriptors` list at `node` into `level`, whose descriptors'
/// full keys start with `parent` (`domain.` or `domain.key_value.`).
fn descriptors(w: &mut Walker<'_>, node: &Node, path: &str, parent: &str, level: &mut Level) {
    let Some(list) = w.sequence(node, path, "a list of descriptors") else {
        return;
    };
    for (i, item) in list.iter().enumerate() {
        let path = index(path, i);
        let Some(map) = w.mapping(item, &path, DESCRIPTOR_FIELDS) else {
            continue;
        };
        if let Some(descriptor) = descriptor(w, map, &path, parent, level) {
            level.descriptors.push(descriptor);
        }
    }
}

/// One descriptor, checked against the ones of its `level` already read.
fn descriptor(
    w: &mut Walker<'_>,
    map: &MarkedMappingNode,
    path: &str,
    parent: &str,
    level: &Level,
) -> Option<Descriptor> {
    let text = |w: &mut Walker<'_>, field: &str| -> Option<String> {
        let node = map.get_node(field)?;
        let s = w.scalar(node, &join(path, field), "a string")?;
        Some(s.as_str().to_owned())
    };
    let flag = |w: &mut Walker<'_>, field: &str| -> bool {
        map.get_node(field)
            .and_then(|node| w.boolean(node, &join(path, field)))
            .unwrap_or(false)
    };
    let mut ok = true;
    let key = match map.get_node("key") {
        None => String::new(),
        Some(_) => text(w, "key").unwrap_or_else(|| {
            ok = false;
            String::new()
        }),
    };
    if key.is_empty() && ok {
        let span = map.get_node("key").map_or(*map.span(), |n| *n.span());
        w.error(&span, &join(path, "key"), "descriptor has an empty key");
        ok = false;
    }
    let value = text(w, "value").filter(|v| !v.is_empty());
    let mut descriptor = Descriptor {
        key,
        value,
        rate_limit: None,
        shadow_mode: flag(w, "shadow_mode"),
        quota_mode: flag(w, "quota_mode"),
        detailed_metric: flag(w, "detailed_metric"),
        value_to_metric: flag(w, "value_to_metric"),
        share_threshold: flag(w, "share_threshold"),
        metadata: None,
        nested: Level::default(),
        composite: String::new(),
        full_key: String::new(),
    };
    if let Some(node) = map.get_node("metadata") {
        if node.as_mapping().is_some() {
            descriptor.metadata = Some(json(node));
        } else {
            let got = super::yaml::describe(node);
            w.error(
                node.span(),
                &join(path, "metadata"),
                format!("must be a mapping, got {got}"),
            );
            ok = false;
        }
    }
    let composite = match &descriptor.value {
        Some(value) => format!("{}_{value}", descriptor.key),
        None => descriptor.key.clone(),
    };
    descriptor.full_key = format!("{parent}{composite}");
    if ok && level.descriptors.iter().any(|d| d.composite == composite) {
        w.error(
            map.span(),
            path,
            format!(
                "duplicate descriptor composite key {:?}",
                descriptor.full_key
            ),
        );
        ok = false;
    }
    if descriptor.share_threshold && !composite.contains('*') {
        let span = map
            .get_node("share_threshold")
            .map_or(*map.span(), |n| *n.span());
        w.error(
            &span,
            &join(path, "share_threshold"),
            format!("can only be used with a wildcard value (containing '*'), but the key is {composite:?}"),
        );
        ok = false;
    }
    descriptor.composite = composite;
    if let Some(node) = map.get_node("rate_limit") {
        descriptor.rate_limit = rate_limit(w, node, &join(path, "rate_limit"));
        ok &= descriptor.rate_limit.is_some();
    }
    if let Some(node) = map.get_node("descriptors") {
        let nested_parent = format!("{}.", descriptor.full_key);
        let mut nested = Level::default();
        descriptors(
            w,
            node,
            &join(path, "descriptors"),
            &nested_parent,
            &mut nested,
        );
        descriptor.nested = nested;
    }
    ok.then_some(descriptor)
}

/// A `rate_limit` mapping; `None` when it is invalid (reported).
fn rate_limit(w: &mut Walker<'_>, node: &Node, path: &str) -> Option<RateLimit> {
    let map = w.mapping(node, path, RATE_LIMIT_FIELDS)?;
    let mut ok = true;
    let unlimited = map
        .get_node("unlimited")
        .and_then(|n| w.boolean(n, &join(path, "unlimited")))
        .unwrap_or(false);
    let unit_path = join(path, "unit");
    let unit = match map.get_node("unit") {
        None => None,
        Some(node) => match w.scalar(node, &unit_path, "a unit") {
            None => {
                ok = false;
                None
            }
            Some(s) => match Unit::parse(s.as_str()) {
                Some(unit) => Some(unit),
                None if unlimited && s.as_str().is_empty() => None,
                None => {
                    let units: Vec<&str> = Unit::ALL.iter().map(|u| u.name()).collect();
                    w.error(
                        s.span(),
                        &unit_path,
                        format!(
                            "invalid rate limit unit {:?}; expected one of {}",
                            s.as_str(),
                            units.join(", ")
                        ),
                    );
                    ok = false;
                    None
                }
            },
        },
    };
    match (unlimited, unit) {
        (true, Some(_)) => {
            let span = map.get_node("unit").map_or(*map.span(), |n| *n.span());
            w.error(
                &span,
                &unit_path,
                "should not be given when unlimited is true",
            );
            ok = false;
        }
        (false, None) if ok => {
            w.error(
                map.span(),
                &unit_path,
                "missing field; a unit such as second or minute is required",
            );
            ok = false;
        }
        _ => {}
    }
    let requests_per_unit = match map.get_node("requests_per_unit") {
        None => 0,
        Some(node) => {
            let p = join(path, "requests_per_unit");
            let expected = "a whole number from 0 to 4294967295";
            match w.scalar(node, &p, expected) {
                None => {
                    ok = false;
                    0
                }
                Some(s) => s.as_str().parse::<u32>().unwrap_or_else(|_| {
                    w.error(
                        s.span(),
                        &p,
                        format!("must be {expected}, got {}", s.as_str()),
                    );
                    ok = false;
                    0
                }),
            }
        }
    };
    let name = match map.get_node("name") {
        None => None,
        Some(node) => w
            .scalar(node, &join(path, "name"), "a name")
            .map(|s| s.as_str().to_owned())
            .filter(|s| !s.is_empty()),
    };
    let mut replaces = Vec::new();
    if let Some(node) = map.get_node("replaces") {
        let list_path = join(path, "replaces");
        if let Some(list) = w.sequence(node, &list_path, "a list of {name: ...}") {
            for (i, item) in list.iter().enumerate() {
                let item_path = index(&list_path, i);
                let Some(entry) = w.mapping(item, &item_path, &["name"]) else {
                    ok = false;
                    continue;
                };
                let replaced = entry
                    .get_node("name")
                    .and_then(|n| w.scalar(n, &join(&item_path, "name"), "a name"))
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                if replaced.is_empty() {
                    w.error(
                        item.span(),
                        &join(&item_path, "name"),
                        "should not be empty",
                    );
                    ok = false;
                } else if name.as_deref() == Some(replaced.as_str()) {
                    w.error(
                        item.span(),
                        &join(&item_path, "name"),
                        format!(
                            "{replaced:?} is this limit's own name; a limit cannot replace itself"
                        ),
                    );
                    ok = false;
                } else {
                    replaces.push(replaced);
                }
            }
        }
    }
    ok.then_some(RateLimit {
        requests_per_unit,
        unit,
        unlimited,
        name,
        replaces,
    })
}

/// A YAML node as JSON: scalars stay strings unless they read as a
/// boolean, an integer or a number (as YAML's core schema reads them).
fn json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" | "~" => Value::Null,
                _ => text
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| text.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| Value::String(text.to_owned())),
            }
        }
        Node::Sequence(items) => Value::Array(items.iter().map(json).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_owned(), json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests;
