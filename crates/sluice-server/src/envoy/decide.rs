//! The plan of a request → one store call → a status per descriptor, and
//! the statistics of each rule.
//!
//! Every rule counts on a fixed window of `requests_per_unit` per unit,
//! aligned to the Unix epoch (sluice's fixed window), as
//! envoyproxy/ratelimit's counters are. Where that project increments every
//! counter and then compares, here every counted rule is decided in one
//! store call, all or nothing: a rejected request spends nothing.

use std::time::Duration;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit as PbRateLimit,
};
use envoy_types::pb::google::protobuf::Duration as PbDuration;
use sluice::quota::MAX_LIMIT;
use sluice::{Algorithm, Check, Decision, Quota, Store};

use super::plan::{self, Rule, Target};
use super::{EnvoyError, EnvoyState, RateLimitRequest, RateLimitResponse, answer};
use crate::metrics::EnvoyStats;
use crate::service::DecisionService;

/// What one descriptor came to.
pub(super) struct Outcome<'a> {
    /// The rule that applied, if one was counted.
    pub rule: Option<&'a Rule<'a>>,
    /// The status answered.
    pub status: DescriptorStatus,
}

/// Envoy's ShouldRateLimit on `service`'s store under `state`.
pub(super) async fn should_rate_limit(
    service: &DecisionService,
    state: &EnvoyState,
    request: &RateLimitRequest,
) -> Result<RateLimitResponse, EnvoyError> {
    let targets = plan::plan(&state.config, request)?;
    let options = &state.options;
    // The quota of each counted rule; `None` for a limit of 0, which is
    // over for every request without asking the store.
    let quotas: Vec<Option<Quota>> = (targets.iter())
        .map(|t| match t {
            Target::Limited(rule) if rule.requests_per_unit > 0 => quota(rule),
            _ => None,
        })
        .collect();
    // One check per counter: two descriptors of one request on the same
    // counter are decided together, their costs added (a store call names
    // each counter once), and both answer that decision: over the limit
    // together, where envoyproxy/ratelimit, incrementing one after the
    // other, may pass the first.
    let mut checks: Vec<Check<'_>> = Vec::new();
    let mut check_of: Vec<Option<usize>> = Vec::with_capacity(targets.len());
    for (target, quota) in targets.iter().zip(&quotas) {
        let (Target::Limited(rule), Some(quota)) = (target, quota) else {
            check_of.push(None);
            continue;
        };
        let policy = plan::policy_name(rule.unit);
        // Any cost over the limit is denied alike; capping it keeps every
        // store's arithmetic small.
        let cost = rule.cost.min(quota.limit() + 1);
        let shadow = rule.shadow || options.shadow_mode;
        match (checks.iter()).position(|c| c.policy == policy && c.key == rule.counter) {
            Some(i) => {
                let merged = checks[i].cost.saturating_add(cost).min(quota.limit() + 1);
                checks[i] = checks[i]
                    .with_cost(merged)
                    .with_shadow(checks[i].shadow && shadow);
                check_of.push(Some(i));
            }
            None => {
                check_of.push(Some(checks.len()));
                checks.push(
                    Check::new(policy, &rule.counter, quota, cost)
                        .with_shadow(shadow)
                        .with_on_store_error(options.on_store_error),
                );
            }
        }
    }
    let decisions = if checks.is_empty() {
        Vec::new()
    } else {
        let snapshot = service.snapshot();
        match snapshot.store().decide(&checks).await {
            Ok(decisions) => decisions,
            Err(e) => {
                snapshot.count_store_error(&e);
                let error = sluice::error::chain(&e);
                tracing::warn!(%error, "the store cannot decide an Envoy request");
                return Err(EnvoyError::Unavailable(error.to_string()));
            }
        }
    };
    let now_us = service.clock().now_us();
    let admitted = decisions.iter().all(|d| d.allowed);
    let metrics = service.metrics();
    let mut outcomes = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        let status = match target {
            Target::Free => (
                DescriptorStatus {
                    code: Code::Ok.into(),
                    ..DescriptorStatus::default()
                },
                None,
            ),
            Target::Unlimited(_) => (
                DescriptorStatus {
                    code: Code::Ok.into(),
                    limit_remaining: u32::MAX,
                    ..DescriptorStatus::default()
                },
                None,
            ),
            Target::Limited(rule) => {
                let decision = check_of[i].and_then(|c| decisions.get(c));
                let status = status(rule, decision, now_us);
                let stats =
                    metrics.envoy(&request.domain, stat_label(&request.domain, &rule.stat_key));
                count(&stats, rule, decision, admitted, options.near_limit_ratio);
                (status, Some(rule))
            }
        };
        outcomes.push(Outcome {
            rule: status.1,
            status: status.0,
        });
    }
    let over = outcomes
        .iter()
        .any(|o| o.status.code == i32::from(Code::OverLimit));
    // The global shadow mode answers OK whatever the statuses say, as
    // envoyproxy/ratelimit's SHADOW_MODE does.
    let overall = if over && !options.shadow_mode {
        Code::OverLimit
    } else {
        Code::Ok
    };
    Ok(answer::response(request, overall, outcomes, options))
}

/// The quota of `rule`: a fixed window of `requests_per_unit` per unit. A
/// limit above sluice's largest is counted at that largest (10^9 a unit).
fn quota(rule: &Rule<'_>) -> Option<Quota> {
    let limit = u64::from(rule.requests_per_unit).min(MAX_LIMIT);
    let period = Duration::from_secs(rule.unit.seconds());
    Quota::new(Algorithm::FixedWindow, limit, period, None).ok()
}

/// The status of a counted `rule` that the store decided as `decision`
/// (`None`: a limit of 0, over without asking). Over the limit, a rule's
/// own shadow mode answers OK with nothing remaining; the global shadow
/// mode keeps the status OVER_LIMIT and makes the whole answer OK, as
/// envoyproxy/ratelimit does.
fn status(rule: &Rule<'_>, decision: Option<&Decision>, now_us: u64) -> DescriptorStatus {
    let over = decision.is_none_or(|d| !d.allowed || d.shadow);
    let code = if over && !rule.shadow {
        Code::OverLimit
    } else {
        Code::Ok
    };
    let remaining = match decision {
        Some(d) if !over => u32::try_from(d.remaining).unwrap_or(u32::MAX),
        _ => 0,
    };
    let period_us = rule.unit.seconds() * 1_000_000;
    let until_reset_us = period_us - now_us % period_us;
    DescriptorStatus {
        code: code.into(),
        current_limit: Some(PbRateLimit {
            name: rule.name.to_owned(),
            requests_per_unit: rule.requests_per_unit,
            unit: plan::pb_unit(rule.unit).into(),
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(PbDuration {
            seconds: i64::try_from(until_reset_us / 1_000_000).unwrap_or(i64::MAX),
            nanos: i32::try_from(until_reset_us % 1_000_000 * 1_000).unwrap_or(0),
        }),
        ..DescriptorStatus::default()
    }
}

/// The metric label of a statistics key: without its `domain.` prefix.
fn stat_label<'k>(domain: &str, stat_key: &'k str) -> &'k str {
    (stat_key.strip_prefix(domain))
        .and_then(|k| k.strip_prefix('.'))
        .unwrap_or(stat_key)
}

/// Counts `rule`'s hits as envoyproxy/ratelimit's `base_limiter.go` does,
/// from the count before and after the hits: `total_hits` always;
/// `over_limit` for the hits past the limit (and, when the limit was not
/// yet reached, `near_limit` for those between the near-limit threshold
/// and the limit); within the limit, `near_limit` for the hits past the
/// threshold and `within_limit` for them all; `shadow_mode` for the hits
/// past the limit a shadow rule let through. A rule within its limit in a
/// request another rule rejected spent nothing: only its `total_hits`
/// counts.
fn count(
    stats: &EnvoyStats,
    rule: &Rule<'_>,
    decision: Option<&Decision>,
    admitted: bool,
    near_ratio: f32,
) {
    let hits = rule.cost;
    stats.total_hits.inc_by(hits);
    let limit = u64::from(rule.requests_per_unit);
    let near = (f64::from(limit as f32 * near_ratio)).floor() as u64;
    let (over, before) = match decision {
        None => (true, 0),
        Some(d) => {
            let over = !d.allowed || d.shadow;
            // Within the limit, `remaining` is after the hits; over it, the
            // standing count (nothing was spent).
            let count = d.limit.saturating_sub(d.remaining);
            (
                over,
                if over {
                    count
                } else {
                    count.saturating_sub(hits)
                },
            )
        }
    };
    let after = before.saturating_add(hits);
    if over {
        // Saturating: a rule sharing its counter with another descriptor
        // of the request was denied for their sum, past what its own hits
        // reach.
        let past = if before >= limit {
            hits
        } else {
            after.saturating_sub(limit)
        };
        stats.over_limit.inc_by(past);
        if before < limit {
            stats
                .near_limit
                .inc_by(limit.saturating_sub(near.max(before)));
        }
        if rule.shadow || decision.is_some_and(|d| d.shadow) {
            stats.shadow_mode.inc_by(past);
        }
    } else if admitted {
        if after > near {
            stats
                .near_limit
                .inc_by(if before >= near { hits } else { after - near });
        }
        stats.within_limit.inc_by(hits);
    }
}
