//! A request's descriptors → what applies to each: no limit, unlimited, or
//! a rule with its counter and cost, as envoyproxy/ratelimit's
//! `constructLimitsToCheck` and `GetLimit` decide it.

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit as PbUnit;

use super::{EnvoyError, RateLimitRequest};
use crate::config::envoy::{Descriptor, EnvoyConfig, Unit};

/// The longest counter key ([`counter_key`]) a request may lead to, in
/// bytes: far above what Envoy's descriptors make, and a bound on what a
/// client can make the store keep.
pub const MAX_COUNTER_KEY: usize = 4096;

/// What applies to one descriptor of a request.
#[derive(Debug)]
pub(super) enum Target<'a> {
    /// No rule (unknown domain, no match, or replaced): OK, no limit.
    Free,
    /// An `unlimited` rule: OK, never counted; it may still replace
    /// others (the names it `replaces`).
    Unlimited(&'a [String]),
    /// A rule to count.
    Limited(Rule<'a>),
}

/// A rule that applies to one descriptor of a request.
#[derive(Debug)]
pub(super) struct Rule<'a> {
    /// Requests allowed per unit; 0 means every request is over.
    pub requests_per_unit: u32,
    /// The window.
    pub unit: Unit,
    /// The limit's `name` (empty when it has none, or for an override).
    pub name: &'a str,
    /// The descriptor's `shadow_mode` (an override never is).
    pub shadow: bool,
    /// The descriptor of the configuration, `None` for a request's override.
    pub descriptor: Option<&'a Descriptor>,
    /// The statistics key, as envoyproxy/ratelimit names it:
    /// `domain.key_value...`.
    pub stat_key: String,
    /// The store key of the counter ([`counter_key`]).
    pub counter: String,
    /// Units to charge: the descriptor's `hits_addend`, else the
    /// request's (0 meaning 1). Zero charges nothing and reports.
    pub cost: u64,
}

/// Checks `request` and finds what applies to each of its descriptors, in
/// order, with `replaces` applied.
pub(super) fn plan<'a>(
    config: &'a EnvoyConfig,
    request: &'a RateLimitRequest,
) -> Result<Vec<Target<'a>>, EnvoyError> {
    if request.domain.is_empty() {
        return Err(EnvoyError::Invalid(
            "rate limit domain must not be empty".into(),
        ));
    }
    if request.descriptors.is_empty() {
        return Err(EnvoyError::Invalid(
            "rate limit descriptor list must not be empty".into(),
        ));
    }
    let request_cost = match request.hits_addend {
        0 => 1,
        n => u64::from(n),
    };
    let mut targets = Vec::with_capacity(request.descriptors.len());
    let mut replacing: Vec<&str> = Vec::new();
    for (i, descriptor) in request.descriptors.iter().enumerate() {
        if descriptor.entries.is_empty() {
            return Err(EnvoyError::Invalid(format!(
                "descriptor {i} has no entries"
            )));
        }
        let cost = descriptor
            .hits_addend
            .as_ref()
            .map_or(request_cost, |h| h.value);
        let target = target(config, &request.domain, descriptor, cost)?;
        if let Target::Limited(Rule {
            descriptor: Some(d),
            ..
        }) = &target
            && let Some(limit) = &d.rate_limit
        {
            replacing.extend(limit.replaces.iter().map(String::as_str));
        }
        if let Target::Unlimited(replaces) = target {
            replacing.extend(replaces.iter().map(String::as_str));
        }
        targets.push(target);
    }
    for target in &mut targets {
        if let Target::Limited(rule) = target
            && !rule.name.is_empty()
            && replacing.contains(&rule.name)
        {
            *target = Target::Free;
        }
    }
    Ok(targets)
}

fn entries(descriptor: &RateLimitDescriptor) -> Vec<(&str, &str)> {
    (descriptor.entries.iter())
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect()
}

/// What applies to one descriptor of a request in `domain`.
fn target<'a>(
    config: &'a EnvoyConfig,
    domain: &'a str,
    descriptor: &'a RateLimitDescriptor,
    cost: u64,
) -> Result<Target<'a>, EnvoyError> {
    // An unknown domain has no limit, even for a request's own override
    // (as in envoyproxy/ratelimit's GetLimit).
    if !config.domains.contains_key(domain) {
        return Ok(Target::Free);
    }
    let entries = entries(descriptor);
    // A request's own limit applies whatever the configuration says, with
    // statistics under the request's own key, never in shadow mode.
    if let Some(limit) = &descriptor.limit {
        let unit = unit_of(limit.unit).ok_or_else(|| {
            EnvoyError::Invalid(format!("unknown unit {} in a limit", limit.unit))
        })?;
        return Ok(Target::Limited(Rule {
            requests_per_unit: limit.requests_per_unit,
            unit,
            name: "",
            shadow: false,
            descriptor: None,
            stat_key: detailed_key(domain, &entries),
            counter: bounded(counter_key(domain, &entries))?,
            cost,
        }));
    }
    let Some(found) = config.find(domain, &entries) else {
        return Ok(Target::Free);
    };
    if found.limit.unlimited {
        return Ok(Target::Unlimited(&found.limit.replaces));
    }
    // The loader gives every limit that is not unlimited a unit.
    let Some(unit) = found.limit.unit else {
        return Ok(Target::Free);
    };
    let stat_key = if found.descriptor.detailed_metric {
        detailed_key(domain, &found.counter)
    } else {
        found.stat_key.clone()
    };
    Ok(Target::Limited(Rule {
        requests_per_unit: found.limit.requests_per_unit,
        unit,
        name: found.limit.name.as_deref().unwrap_or(""),
        shadow: found.descriptor.shadow_mode,
        descriptor: Some(found.descriptor),
        stat_key,
        counter: bounded(counter_key(domain, &found.counter))?,
        cost,
    }))
}

fn bounded(key: String) -> Result<String, EnvoyError> {
    if key.len() > MAX_COUNTER_KEY {
        return Err(EnvoyError::Invalid(format!(
            "the descriptor's domain, keys and values exceed {MAX_COUNTER_KEY} bytes"
        )));
    }
    Ok(key)
}

/// The unit of Envoy's API numbered `unit`; `None` for UNKNOWN and numbers
/// it does not define.
fn unit_of(unit: i32) -> Option<Unit> {
    match PbUnit::try_from(unit).ok()? {
        PbUnit::Unknown => None,
        PbUnit::Second => Some(Unit::Second),
        PbUnit::Minute => Some(Unit::Minute),
        PbUnit::Hour => Some(Unit::Hour),
        PbUnit::Day => Some(Unit::Day),
        PbUnit::Week => Some(Unit::Week),
        PbUnit::Month => Some(Unit::Month),
        PbUnit::Year => Some(Unit::Year),
    }
}

/// The unit `unit` as Envoy's API numbers it.
pub(super) fn pb_unit(unit: Unit) -> PbUnit {
    match unit {
        Unit::Second => PbUnit::Second,
        Unit::Minute => PbUnit::Minute,
        Unit::Hour => PbUnit::Hour,
        Unit::Day => PbUnit::Day,
        Unit::Week => PbUnit::Week,
        Unit::Month => PbUnit::Month,
        Unit::Year => PbUnit::Year,
    }
}

/// envoyproxy/ratelimit's statistics key of a request's entries:
/// `domain.key_value.key2_value2`, a key alone where its value is empty.
fn detailed_key(domain: &str, entries: &[(&str, &str)]) -> String {
    let mut key = domain.to_owned();
    for (k, v) in entries {
        key.push('.');
        key.push_str(k);
        if !v.is_empty() {
            key.push('_');
            key.push_str(v);
        }
    }
    key
}

/// The store key of the counter of `entries` in `domain`: each part
/// length-prefixed, `<bytes>:<text>`, the domain first, then each key and
/// its value, so that no two different counters share a key whatever
/// their text holds (`a_b`+`c` and `a`+`b_c`, or a value containing `:`,
/// stay apart). The window's unit is the store's policy name
/// (`envoy/<unit>`), so limits of two units on the same entries count
/// apart, as envoyproxy/ratelimit's keys (which end with the window's
/// start) do.
///
/// ```
/// use sluice_server::envoy::counter_key;
///
/// assert_eq!(counter_key("rl", &[("a_b", "c")]), "2:rl3:a_b1:c");
/// assert_ne!(counter_key("rl", &[("a_b", "c")]), counter_key("rl", &[("a", "b_c")]));
/// ```
pub fn counter_key(domain: &str, entries: &[(&str, &str)]) -> String {
    use std::fmt::Write;
    let mut key = String::new();
    for part in std::iter::once(domain).chain(entries.iter().flat_map(|(k, v)| [*k, *v])) {
        // Writing into a String cannot fail.
        let _ = write!(key, "{}:{part}", part.len());
    }
    key
}

/// The store's policy name for windows of `unit`.
pub(super) fn policy_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Second => "envoy/second",
        Unit::Minute => "envoy/minute",
        Unit::Hour => "envoy/hour",
        Unit::Day => "envoy/day",
        Unit::Week => "envoy/week",
        Unit::Month => "envoy/month",
        Unit::Year => "envoy/year",
    }
}
