//! Which rule applies to a request's descriptor, as envoyproxy/ratelimit
//! decides it: level by level, each entry `key=value` of the descriptor
//! meets, among the descriptors of its level, the one whose composite key
//! is `key_value`, else the first wildcard, in the order written, that
//! matches `key_value`, else the one of `key` without a value. A limit
//! applies only where the request's descriptor ends: one declared above
//! its last entry, or below it, does not.

/// Whether `value` matches `pattern`, where each `*` stands for any run of
/// characters, possibly empty: envoyproxy/ratelimit's wildcard is the one
/// of Sluice's override patterns, so both use the core's matcher.
pub use sluice::overrides::matches as wildcard_match;

use super::{Descriptor, EnvoyConfig, Level, RateLimit};

/// The rule a request's descriptor meets, and the counter it counts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Match<'a> {
    /// The descriptor whose `rate_limit` applies.
    pub descriptor: &'a Descriptor,
    /// Its `rate_limit`.
    pub limit: &'a RateLimit,
    /// The counter: for each entry of the request, its key and the value it
    /// counts under: its own, or the wildcard pattern (`*` included) met by
    /// a descriptor with `share_threshold`, so that every value the pattern
    /// matches shares one counter.
    pub counter: Vec<(&'a str, &'a str)>,
    /// envoyproxy/ratelimit's statistics key of the rule, as its `GetLimit`
    /// builds it without `detailed_metric`: the domain, then each entry's
    /// key with the value its level shows (`value_to_metric`: the
    /// request's; a wildcard without it, or with `share_threshold`: the
    /// pattern; an explicit value: that value; a key alone: none), so
    /// `domain.route_api.http_method_GET.subject_id`. Without
    /// `value_to_metric` it is the descriptor's full key.
    pub stat_key: String,
}

impl EnvoyConfig {
    /// The rule that the descriptor `entries` (`(key, value)` pairs) of a
    /// request in `domain` meets; `None` when the domain is unknown or no
    /// rule applies.
    pub fn find<'a>(&'a self, domain: &str, entries: &[(&'a str, &'a str)]) -> Option<Match<'a>> {
        let mut level: &Level = self.domains.get(domain)?;
        let mut shared: Vec<Option<&'a str>> = vec![None; entries.len()];
        let mut found = None;
        let mut stat_key = domain.to_owned();
        for (i, &(key, value)) in entries.iter().enumerate() {
            let composite = format!("{key}_{value}");
            let among =
                |test: &dyn Fn(&Descriptor) -> bool| level.descriptors.iter().find(|d| test(d));
            let exact = among(&|d| d.composite == composite);
            let wildcard = match exact {
                Some(_) => None,
                None => among(&|d| {
                    d.composite.contains('*') && wildcard_match(&d.composite, &composite)
                }),
            };
            let Some(next) = exact
                .or(wildcard)
                .or_else(|| among(&|d| d.composite == key))
            else {
                break;
            };
            let pattern_value = |d: &'a Descriptor| {
                (d.composite.strip_prefix(key))
                    .and_then(|p| p.strip_prefix('_'))
                    .unwrap_or(&d.composite)
            };
            let shown = match (wildcard, exact) {
                (Some(w), _) if w.share_threshold || !w.value_to_metric => pattern_value(w),
                (Some(_), _) | (None, Some(_)) => value,
                (None, None) if next.value_to_metric => value,
                (None, None) => "",
            };
            stat_key.push('.');
            stat_key.push_str(key);
            if !shown.is_empty() {
                stat_key.push('_');
                stat_key.push_str(shown);
            }
            if let (Some(pattern), true) = (wildcard, next.share_threshold) {
                let pattern = &pattern.composite;
                shared[i] = Some(
                    pattern
                        .strip_prefix(key)
                        .and_then(|p| p.strip_prefix('_'))
                        .unwrap_or(pattern),
                );
            }
            if let (Some(limit), true) = (&next.rate_limit, i + 1 == entries.len()) {
                found = Some((next, limit));
            }
            if next.nested.descriptors.is_empty() {
                break;
            }
            level = &next.nested;
        }
        let (descriptor, limit) = found?;
        let counter = (entries.iter().zip(shared))
            .map(|(&(key, value), shared)| (key, shared.unwrap_or(value)))
            .collect();
        Some(Match {
            descriptor,
            limit,
            counter,
            stat_key,
        })
    }
}

impl EnvoyConfig {
    /// Every rule that counts (a `rate_limit` that is not `unlimited`) as
    /// `(domain, statistics key)`, the key without its `domain.` prefix:
    /// the series envoyproxy/ratelimit creates when it loads its
    /// configuration, so that they exist at zero before the first hit.
    /// Rules whose key depends on the request (`detailed_metric`, or
    /// `value_to_metric` on their path) have no such key and are left out.
    pub fn counted_rules(&self) -> Vec<(&str, &str)> {
        fn walk<'a>(domain: &'a str, level: &'a Level, out: &mut Vec<(&'a str, &'a str)>) {
            for d in &level.descriptors {
                if d.detailed_metric || d.value_to_metric {
                    continue;
                }
                if d.rate_limit.as_ref().is_some_and(|l| !l.unlimited) {
                    let key = (d.full_key.strip_prefix(domain))
                        .and_then(|k| k.strip_prefix('.'))
                        .unwrap_or(&d.full_key);
                    out.push((domain, key));
                }
                walk(domain, &d.nested, out);
            }
        }
        let mut out = Vec::new();
        for (domain, level) in &self.domains {
            walk(domain, level, &mut out);
        }
        out
    }
}
