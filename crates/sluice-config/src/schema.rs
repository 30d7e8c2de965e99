//! The library's part of Sluice's configuration file: `store`, `redis`,
//! `memory`, `policies` and what to do when the store fails
//! (`on_store_error`, `local_share`, `deny_cache`: at the top level for
//! every policy, and in a policy for itself), read with the generic
//! [`Walker`]. A program with more sections (the `sluice` server) reads its
//! own beside these, from the same mapping: [`settings`] and [`policies`]
//! never check for unknown fields, the caller does with [`FIELDS`] and its
//! own.
//!
//! A policy is one limit (`algorithm`, `limit`, `period`, `burst`,
//! `overrides`, beside `shadow`) or a list of up to 8 of them under
//! `limits` (with `shadow` beside the list); each limit has its own
//! algorithm and overrides, and an override inherits from its own limit.

use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{Node, Span};
use sluice::policy::MAX_LIMITS;
use sluice::{Algorithm, Limit, LocalShare, OnStoreError, Override, Policy, Quota, RedisOptions};

use crate::memory::{MemorySettings, memory};
use crate::store::StoreSpec;
use crate::yaml::{Walker, describe, index, join};

/// The top-level fields [`settings`] and [`policies`] read, in the order
/// an unknown-field error lists them.
pub const FIELDS: &[&str] = &[
    "store",
    "redis",
    "on_store_error",
    "local_share",
    "deny_cache",
    "policies",
    "memory",
];

/// Where decisions are kept, as a file says; absent fields are `None` or
/// the defaults.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Settings {
    /// The `store` field.
    pub store: Option<StoreSpec>,
    /// The `redis` field: key prefix, call timeout, whether to use Redis
    /// Functions, and the TLS files.
    pub redis: RedisOptions,
    /// The `memory` field: the bound on the keys kept in process memory.
    pub memory: MemorySettings,
}

/// Whether a file without `policies` is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policies {
    /// At least one policy must be written (a library user's file).
    Required,
    /// The file may have none: the caller supplies its own (the server's
    /// Envoy-only files, whose descriptors are the limits).
    Optional,
}

/// Reads `store`, `redis` and `memory` from the top-level mapping `map`,
/// reporting every invalid value to `w` (which keeps the default).
pub fn settings(w: &mut Walker<'_>, map: &MarkedMappingNode) -> Settings {
    let mut settings = Settings::default();
    if let Some(node) = map.get_node("store")
        && let Some(s) = w.scalar(node, "store", "a store such as memory or redis://host:6379")
    {
        match StoreSpec::parse(s.as_str()) {
            Ok(spec) => settings.store = Some(spec),
            Err(e) => w.error(s.span(), "store", e),
        }
    }
    if let Some(node) = map.get_node("redis") {
        redis(w, node, &mut settings.redis);
    }
    if let Some(node) = map.get_node("memory") {
        settings.memory = memory(w, node);
    }
    settings
}

/// Reads `policies` from the top-level mapping `map`, with the top-level
/// `on_store_error`, `local_share` and `deny_cache` as every policy's
/// defaults; the valid policies in file order, every invalid one reported
/// to `w`. Empty when `policies` is absent and [`Policies::Optional`].
pub fn policies(w: &mut Walker<'_>, map: &MarkedMappingNode, required: Policies) -> Vec<Policy> {
    let mut found = Vec::new();
    // Invalid top-level values are reported; the policies then start from
    // the built-in defaults so that their own errors are listed too.
    let defaults = on_failure(w, map, "", OnFailure::default()).unwrap_or_default();
    match map.get_node("policies") {
        None if required == Policies::Optional => {}
        None => {
            // An empty file has its (empty) mapping at its end: say line 1.
            let span = if map.is_empty() {
                Span::new_blank()
            } else {
                *map.span()
            };
            w.error(
                &span,
                "policies",
                "missing field; at least one policy is required",
            )
        }
        Some(node) => match node.as_mapping() {
            None => w.error(
                node.span(),
                "policies",
                format!(
                    "must be a mapping from policy name to policy, got {}",
                    describe(node)
                ),
            ),
            Some(policies) if policies.is_empty() => {
                w.error(node.span(), "policies", "at least one policy is required")
            }
            Some(policies) => {
                for (name, body) in policies.iter() {
                    if let Some(p) = policy(w, name, body, defaults) {
                        found.push(p);
                    }
                }
            }
        },
    }
    found
}

pub(crate) const REDIS_FIELDS: &[&str] = &["prefix", "timeout", "functions", "module", "tls"];
pub(crate) const POLICY_FIELDS: &[&str] = &[
    "algorithm",
    "limit",
    "period",
    "burst",
    "shadow",
    "overrides",
    "limits",
    "on_store_error",
    "local_share",
    "deny_cache",
    "local_budget",
];
/// The fields of one limit: a policy's own in the single-limit form, or an
/// element of its `limits`.
pub(crate) const LIMIT_FIELDS: &[&str] = &["algorithm", "limit", "period", "burst", "overrides"];
pub(crate) const OVERRIDE_FIELDS: &[&str] = &["limit", "period", "burst", "unlimited", "block"];

/// What a policy does when the store fails: the top level's values are
/// every policy's defaults, and a policy may set its own.
#[derive(Clone, Copy, Default)]
struct OnFailure {
    mode: OnStoreError,
    share: LocalShare,
    deny_cache: bool,
}

/// Reads `on_store_error`, `local_share` and `deny_cache` from `map` (at
/// `path`), over `base`. `None` when one is invalid (already reported).
fn on_failure(
    w: &mut Walker<'_>,
    map: &MarkedMappingNode,
    path: &str,
    base: OnFailure,
) -> Option<OnFailure> {
    let mode = match map.get_node("on_store_error") {
        None => Some(base.mode),
        Some(node) => w.parsed(node, &join(path, "on_store_error"), "allow, deny or local"),
    };
    let share = match map.get_node("local_share") {
        None => Some(base.share),
        Some(node) => {
            let path = join(path, "local_share");
            let share = w.parsed::<f64>(node, &path, "a share such as 0.25");
            share.and_then(|share| match LocalShare::new(share) {
                Ok(share) => Some(share),
                Err(_) => {
                    w.error(
                        node.span(),
                        &path,
                        format!("must be above 0 and at most 1, got {share}"),
                    );
                    None
                }
            })
        }
    };
    let deny_cache = match map.get_node("deny_cache") {
        None => Some(base.deny_cache),
        Some(node) => w.boolean(node, &join(path, "deny_cache")),
    };
    Some(OnFailure {
        mode: mode?,
        share: share?,
        deny_cache: deny_cache?,
    })
}

/// The raw numbers of a limit or an override, before inheritance.
#[derive(Clone, Copy, Default)]
struct Numbers {
    limit: Option<u64>,
    period: Option<Duration>,
    burst: Option<u64>,
}

fn redis(w: &mut Walker<'_>, node: &Node, options: &mut RedisOptions) {
    let Some(map) = w.mapping(node, "redis", REDIS_FIELDS) else {
        return;
    };
    if let Some(node) = map.get_node("prefix")
        && let Some(s) = w.scalar(node, "redis.prefix", "a key prefix")
    {
        if s.as_str().is_empty() || s.as_str().contains(['{', '}']) {
            let got = s.as_str();
            w.error(
                s.span(),
                "redis.prefix",
                format!("must be a non-empty prefix without braces, got {got:?}"),
            );
        } else {
            options.prefix = s.as_str().to_owned();
        }
    }
    if let Some(node) = map.get_node("timeout")
        && let Some(timeout) = w.duration(node, "redis.timeout")
    {
        if timeout.is_zero() {
            // Every decision would fail: surely a mistake.
            w.error(node.span(), "redis.timeout", "must be above zero, got 0s");
        } else {
            options.timeout = timeout;
        }
    }
    if let Some(node) = map.get_node("functions")
        && let Some(functions) = w.boolean(node, "redis.functions")
    {
        options.functions = functions;
    }
    if let Some(node) = map.get_node("module")
        && let Some(module) = w.boolean(node, "redis.module")
    {
        options.module = module;
    }
    if let Some(node) = map.get_node("tls")
        && let Some(tls) = crate::tls::tls(w, node)
    {
        options.tls = Some(tls);
    }
}

/// Reads one policy, written either as one limit (its fields beside
/// `shadow`) or as `limits`, a list of them. `None` when anything in it is
/// invalid (already reported).
fn policy(
    w: &mut Walker<'_>,
    name: &MarkedScalarNode,
    body: &Node,
    defaults: OnFailure,
) -> Option<Policy> {
    let path = join("policies", name.as_str());
    let map = w.mapping(body, &path, POLICY_FIELDS)?;
    let limits = match map.get_node("limits") {
        None => limit(w, map, &path).map(|l| vec![l]),
        Some(node) => limits(w, map, node, &path),
    };
    let shadow = match map.get_node("shadow") {
        None => Some(false),
        Some(node) => w.boolean(node, &join(&path, "shadow")),
    };
    let on_failure = on_failure(w, map, &path, defaults);
    let budget = match map.get_node("local_budget") {
        None => Some(None),
        Some(node) => crate::local_budget::local_budget(w, node, &path).map(Some),
    };
    match Policy::with_limits(name.as_str(), limits?) {
        Ok(policy) => {
            let on_failure = on_failure?;
            Some(
                policy
                    .with_shadow(shadow?)
                    .with_on_store_error(on_failure.mode)
                    .with_local_share(on_failure.share)
                    .with_deny_cache(on_failure.deny_cache)
                    .with_local_budget(budget?),
            )
        }
        Err(e) => {
            w.error(name.span(), &path, e.to_string());
            None
        }
    }
}

/// Reads a policy's `limits` (the list at `node`), after checking that the
/// policy's mapping holds none of a single limit's fields beside it.
fn limits(
    w: &mut Walker<'_>,
    policy: &MarkedMappingNode,
    node: &Node,
    path: &str,
) -> Option<Vec<Limit>> {
    let mut complete = true;
    for (key, _) in policy.iter() {
        if LIMIT_FIELDS.contains(&key.as_str()) {
            w.error(
                key.span(),
                &join(path, key.as_str()),
                "cannot be set beside `limits`; set it in each limit of the list",
            );
            complete = false;
        }
    }
    let path = join(path, "limits");
    let list = w.sequence(
        node,
        &path,
        "a list of limits such as [{limit: 10, period: 1s}]",
    )?;
    if list.is_empty() {
        w.error(node.span(), &path, "at least one limit is required");
        return None;
    }
    if let Some(extra) = list.get(MAX_LIMITS) {
        w.error(
            extra.span(),
            &path,
            format!("at most {MAX_LIMITS} limits per policy, got {}", list.len()),
        );
        complete = false;
    }
    let mut limits = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let item_path = index(&path, i);
        match w
            .mapping(item, &item_path, LIMIT_FIELDS)
            .and_then(|map| limit(w, map, &item_path))
        {
            Some(l) => limits.push(l),
            None => complete = false,
        }
    }
    complete.then_some(limits)
}

/// Reads one limit's `algorithm`, `limit`, `period`, `burst` and
/// `overrides` from `map`. `None` when any is invalid (already reported).
fn limit(w: &mut Walker<'_>, map: &MarkedMappingNode, path: &str) -> Option<Limit> {
    let algorithm = match map.get_node("algorithm") {
        None => Some(Algorithm::default()),
        Some(node) => w.parsed(node, &join(path, "algorithm"), "an algorithm name"),
    };
    let numbers = numbers(w, map, path, true);
    let quota = match (algorithm, numbers) {
        (Some(algorithm), Some(n)) => quota(w, algorithm, n, path, map),
        _ => None,
    };
    let overrides = match map.get_node("overrides") {
        None => Some(Vec::new()),
        Some(node) => overrides(w, node, path, algorithm.zip(numbers)),
    };
    let mut limit = Limit::new(quota?);
    for (key, rule) in overrides? {
        limit = limit.with_override(key, rule);
    }
    Some(limit)
}

/// Reads a limit's `overrides`, each under an exact key or a pattern with
/// `*` (see `sluice::overrides`): quota fields, inherited from the limit,
/// or `unlimited: true` or `block: true` alone. `base` is the limit's
/// algorithm and numbers when they are valid. `None` when anything is
/// invalid.
fn overrides(
    w: &mut Walker<'_>,
    node: &Node,
    path: &str,
    base: Option<(Algorithm, Numbers)>,
) -> Option<Vec<(String, Override)>> {
    let path = join(path, "overrides");
    let Some(overrides) = node.as_mapping() else {
        let got = describe(node);
        w.error(
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
        let own = w
            .mapping(body, &key_path, OVERRIDE_FIELDS)
            .and_then(|o| Some((o, numbers(w, o, &key_path, false)?)));
        let (Some((o, own)), Some((algorithm, n))) = (own, base) else {
            complete = false;
            continue;
        };
        match flag(w, o, &key_path) {
            Ok(Some(rule)) => {
                quotas.push((key.as_str().to_owned(), rule));
                continue;
            }
            Ok(None) => {}
            Err(()) => {
                complete = false;
                continue;
            }
        }
        // Inherit every field the override does not set from its limit; a
        // burst the limit did not set follows the effective limit.
        let merged = Numbers {
            limit: own.limit.or(n.limit),
            period: own.period.or(n.period),
            burst: own.burst.or(n.burst),
        };
        match quota(w, algorithm, merged, &key_path, o) {
            Some(q) => quotas.push((key.as_str().to_owned(), q.into())),
            None => complete = false,
        }
    }
    complete.then_some(quotas)
}

/// An override's `unlimited: true` or `block: true`, which stand alone:
/// `Ok(None)` when neither is true (the override is a quota), `Err` when
/// one is invalid or mixed with another field (reported).
fn flag(w: &mut Walker<'_>, o: &MarkedMappingNode, path: &str) -> Result<Option<Override>, ()> {
    let mut rule = None;
    let mut ok = true;
    for (name, meaning) in [
        ("unlimited", Override::unlimited()),
        ("block", Override::blocked()),
    ] {
        let Some(node) = o.get_node(name) else {
            continue;
        };
        match w.boolean(node, &join(path, name)) {
            Some(true) if rule.is_some() => {
                w.error(
                    node.span(),
                    &join(path, name),
                    "give unlimited or block, not both",
                );
                ok = false;
            }
            Some(true) => rule = Some((name, node, meaning)),
            Some(false) => {}
            None => ok = false,
        }
    }
    if let Some((name, node, _)) = rule {
        for field in ["limit", "period", "burst"] {
            if o.get_node(field).is_some() {
                w.error(
                    node.span(),
                    &join(path, name),
                    format!("an override with {name}: true takes no {field}"),
                );
                ok = false;
            }
        }
    }
    match (ok, rule) {
        (false, _) => Err(()),
        (true, rule) => Ok(rule.map(|(_, _, meaning)| meaning)),
    }
}

/// Reads `limit`, `period` and `burst`; `required` makes the first two
/// mandatory. `None` when one of them is invalid (already reported).
fn numbers(
    w: &mut Walker<'_>,
    map: &MarkedMappingNode,
    path: &str,
    required: bool,
) -> Option<Numbers> {
    let mut ok = true;
    if required {
        for name in ["limit", "period"] {
            if map.get_node(name).is_none() {
                w.error(map.span(), &join(path, name), "missing field");
                ok = false;
            }
        }
    }
    // `Some(None)`: present but invalid, and already reported.
    let limit = map
        .get_node("limit")
        .map(|n| w.positive(n, &join(path, "limit")));
    let period = map
        .get_node("period")
        .map(|n| w.duration(n, &join(path, "period")));
    let burst = map
        .get_node("burst")
        .map(|n| w.positive(n, &join(path, "burst")));
    let invalid = limit.is_some_and(|v| v.is_none())
        || period.is_some_and(|v| v.is_none())
        || burst.is_some_and(|v| v.is_none());
    (ok && !invalid).then(|| Numbers {
        limit: limit.flatten(),
        period: period.flatten(),
        burst: burst.flatten(),
    })
}

/// The quota of `n`, or `None` with the error reported on the field it is
/// about (the mapping itself when that field is inherited).
fn quota(
    w: &mut Walker<'_>,
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
            w.error(&span, &join(path, field), message);
            None
        }
    }
}
