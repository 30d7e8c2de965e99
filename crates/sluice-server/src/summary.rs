//! What a configuration says once resolved, for a person to check: the
//! source, the store (password hidden), every policy with its limits,
//! overrides, shadow mode and `on_store_error`, and Envoy's rules. `sluice
//! validate` prints it (as text or JSON) and the start-up log line names
//! its parts, so that a misread (`1M` taken for a month, a limit meant per
//! second read per minute) shows before it bites.

use std::fmt;

use serde::Serialize;
use sluice::{Limit, Override, Policy, Quota};

use crate::config::Config;
use crate::config::envoy::Level;

/// How the log and `validate` name a configuration that has no file.
pub const BUILTIN: &str = "built-in default";

/// A configuration, resolved, as a person reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// The file the configuration came from, or [`BUILTIN`].
    pub config: String,
    /// The store, any password shown as `***`.
    pub store: String,
    /// Every policy, in the file's order.
    pub policies: Vec<PolicySummary>,
    /// envoyproxy/ratelimit's rules, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy: Option<EnvoySummary>,
}

/// One policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PolicySummary {
    /// Its name.
    pub name: String,
    /// Whether it only reports (never denies).
    pub shadow: bool,
    /// What it answers when the store fails: `allow`, `deny` or `local`.
    pub on_store_error: &'static str,
    /// Its local budget (slices of a hot key spent in each instance), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_budget: Option<BudgetSummary>,
    /// Its limits, all of which a request must pass.
    pub limits: Vec<LimitSummary>,
}

/// A policy's local budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BudgetSummary {
    /// The most the instances together may over-admit, as a share of a
    /// key's capacity.
    pub max_overshoot: f64,
    /// How many instances share each limit.
    pub instances: u32,
}

// The overshoot is a valid fraction (never NaN), so equality is total.
impl Eq for BudgetSummary {}

/// One limit of a policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LimitSummary {
    /// The quota of keys without an override.
    #[serde(flatten)]
    pub quota: QuotaSummary,
    /// Under a local budget, the slice size of keys without an override
    /// (absent when they are not sliced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slice: Option<u64>,
    /// And the most the instances together may over-admit, in units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_over_admission: Option<u64>,
    /// The keys with a quota of their own, sorted by key.
    pub overrides: Vec<OverrideSummary>,
}

/// A per-key override.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OverrideSummary {
    /// The key, or a pattern of keys (`*` matches any run of characters).
    pub key: String,
    /// Its quota; absent when the key is unlimited or blocked.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSummary>,
    /// Admitted without touching the store (an allowlist).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unlimited: bool,
    /// Always denied, with no retry time (a blocklist).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub block: bool,
}

/// A quota in the file's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QuotaSummary {
    /// The algorithm's name, as in the file.
    pub algorithm: &'static str,
    /// Units per period.
    pub limit: u64,
    /// The period, in the one duration grammar (`1m`, `1h30m`, `100ms`).
    pub period: String,
    /// The period in milliseconds (rounded up).
    pub period_ms: u64,
    /// The bucket's capacity; absent for the window algorithms, which
    /// have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// envoyproxy/ratelimit's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EnvoySummary {
    /// The file or directory it was read from.
    pub path: String,
    /// Its domains, sorted.
    pub domains: Vec<String>,
    /// Its descriptors that carry a `rate_limit`, at every depth.
    pub rules: usize,
}

impl Summary {
    /// The summary of `config`.
    pub fn of(config: &Config) -> Summary {
        Summary {
            config: config
                .source
                .as_ref()
                .map_or_else(|| BUILTIN.to_owned(), |p| p.display().to_string()),
            store: config.store.to_string(),
            policies: config.policies.iter().map(PolicySummary::of).collect(),
            envoy: config.envoy.path.as_ref().map(|path| EnvoySummary {
                path: path.display().to_string(),
                domains: config.envoy.rules.domains.keys().cloned().collect(),
                rules: config.envoy.rules.domains.values().map(rules).sum(),
            }),
        }
    }

    /// The policies' names, joined with commas, in the file's order.
    pub fn policy_names(&self) -> String {
        join(self.policies.iter().map(|p| p.name.as_str()))
    }

    /// The shadow policies' names, joined with commas, or `none`.
    pub fn shadow_names(&self) -> String {
        let shadow = join(
            (self.policies.iter())
                .filter(|p| p.shadow)
                .map(|p| p.name.as_str()),
        );
        if shadow.is_empty() {
            "none".to_owned()
        } else {
            shadow
        }
    }
}

impl PolicySummary {
    fn of(policy: &Policy) -> PolicySummary {
        PolicySummary {
            name: policy.name().to_owned(),
            shadow: policy.shadow(),
            on_store_error: policy.on_store_error().name(),
            local_budget: policy.local_budget().map(|b| BudgetSummary {
                max_overshoot: b.max_overshoot(),
                instances: b.instances(),
            }),
            limits: (policy.limits().iter())
                .map(|l| LimitSummary::of(l, policy.local_budget()))
                .collect(),
        }
    }
}

impl LimitSummary {
    fn of(limit: &Limit, budget: Option<sluice::LocalBudget>) -> LimitSummary {
        let mut overrides: Vec<OverrideSummary> = (limit.overrides())
            .map(|(key, rule)| OverrideSummary {
                key: key.to_owned(),
                quota: rule.quota().map(QuotaSummary::of),
                unlimited: *rule == Override::Unlimited,
                block: *rule == Override::Blocked,
            })
            .collect();
        overrides.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let slice = budget.and_then(|b| b.slice(limit.quota()));
        LimitSummary {
            quota: QuotaSummary::of(limit.quota()),
            slice,
            max_over_admission: budget
                .filter(|_| slice.is_some())
                .map(|b| b.bound(limit.quota())),
            overrides,
        }
    }
}

impl QuotaSummary {
    fn of(quota: &Quota) -> QuotaSummary {
        QuotaSummary {
            algorithm: quota.algorithm().name(),
            limit: quota.limit(),
            period: sluice::duration::display(quota.period()).to_string(),
            period_ms: quota.period_us().div_ceil(1000),
            burst: quota.algorithm().has_burst().then(|| quota.burst()),
        }
    }
}

/// The descriptors of `level` and below that carry a `rate_limit`.
fn rules(level: &Level) -> usize {
    (level.descriptors.iter())
        .map(|d| usize::from(d.rate_limit.is_some()) + rules(&d.nested))
        .sum()
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(",")
}

impl fmt::Display for QuotaSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {} per {}", self.algorithm, self.limit, self.period)?;
        if let Some(burst) = self.burst {
            write!(f, ", burst {burst}")?;
        }
        Ok(())
    }
}

/// The text `sluice validate` prints: one line per fact, indented.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "config: {}", self.config)?;
        writeln!(f, "store: {}", self.store)?;
        writeln!(f, "policies: {}", self.policies.len())?;
        for policy in &self.policies {
            write!(f, "  {}:", policy.name)?;
            if policy.shadow {
                f.write_str(" shadow (reports, never denies);")?;
            }
            if let Some(b) = &policy.local_budget {
                let (overshoot, instances) = (b.max_overshoot, b.instances);
                write!(f, " local_budget {overshoot} over {instances} instances;")?;
            }
            writeln!(f, " on_store_error {}", policy.on_store_error)?;
            for limit in &policy.limits {
                write!(f, "    {}", limit.quota)?;
                match (limit.slice, limit.max_over_admission) {
                    (Some(slice), Some(bound)) => writeln!(
                        f,
                        "; local slices of {slice}, over-admitting at most {bound}"
                    )?,
                    _ => writeln!(f)?,
                }
                for o in &limit.overrides {
                    write!(f, "      override {:?}: ", o.key)?;
                    match &o.quota {
                        Some(quota) => writeln!(f, "{quota}")?,
                        None if o.block => writeln!(f, "blocked")?,
                        None => writeln!(f, "unlimited")?,
                    }
                }
            }
        }
        if let Some(envoy) = &self.envoy {
            writeln!(
                f,
                "envoy_config: {}: {} {} in domains {}",
                envoy.path,
                envoy.rules,
                if envoy.rules == 1 { "rule" } else { "rules" },
                envoy.domains.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const FILE: &str = "\
store: redis://user:hunter2@redis.internal:6379
policies:
  api:
    algorithm: token_bucket
    limit: 100
    period: 1m
    burst: 20
    overrides:
      customer-7: {limit: 1000, period: 1m}
  login:
    algorithm: fixed_window
    limit: 5
    period: 15m
    shadow: true
    on_store_error: deny
  hot:
    limit: 100000
    period: 1s
    local_budget: {max_overshoot: 0.01, instances: 3}
";

    fn summary() -> Summary {
        Summary::of(&Config::from_text(FILE, Path::new("sluice.yaml")).unwrap())
    }

    #[test]
    fn issue_14_validate_shows_what_it_understood() {
        assert_eq!(
            summary().to_string(),
            "\
config: sluice.yaml
store: redis://user:***@redis.internal:6379
policies: 3
  api: on_store_error deny
    token_bucket, 100 per 1m, burst 20
      override \"customer-7\": token_bucket, 1000 per 1m, burst 20
  login: shadow (reports, never denies); on_store_error deny
    fixed_window, 5 per 15m
  hot: local_budget 0.01 over 3 instances; on_store_error deny
    token_bucket, 100000 per 1s, burst 100000; local slices of 333, over-admitting at most 996
"
        );
    }

    #[test]
    fn the_json_names_every_field_and_omits_a_window_burst() {
        let json = serde_json::to_value(summary()).unwrap();
        assert_eq!(json["store"], "redis://user:***@redis.internal:6379");
        let api = &json["policies"][0];
        assert_eq!(api["limits"][0]["period_ms"], 60_000);
        assert_eq!(api["limits"][0]["burst"], 20);
        assert_eq!(api["limits"][0]["overrides"][0]["key"], "customer-7");
        let login = &json["policies"][1];
        assert_eq!(login["shadow"], true);
        assert_eq!(login["on_store_error"], "deny");
        assert!(login["limits"][0].get("burst").is_none());
        assert!(json.get("envoy").is_none());
        assert!(login.get("local_budget").is_none());
        let hot = &json["policies"][2];
        assert_eq!(hot["local_budget"]["instances"], 3);
        assert_eq!(hot["limits"][0]["slice"], 333);
        assert_eq!(hot["limits"][0]["max_over_admission"], 996);
    }

    #[test]
    fn the_log_names_the_shadow_policies() {
        let s = summary();
        assert_eq!(
            (s.policy_names(), s.shadow_names()),
            ("api,login,hot".into(), "login".into())
        );
        let builtin = Summary::of(&Config::builtin());
        assert_eq!(builtin.config, BUILTIN);
        assert_eq!(builtin.shadow_names(), "none");
    }
}
