//! The Prometheus metrics `sluice serve` exposes at `/metrics`:
//!
//! - `sluice_decisions_total{policy,outcome}`: outcome `allowed`, `denied`,
//!   `shadow_denied` (a shadow policy would have denied) or `error`;
//! - `sluice_decision_duration_seconds{policy,store}`: how long the store took;
//! - `sluice_decision_sources_total{policy,source}`: what made each
//!   decision, source `store`, `deny_cache`, `fallback` (the store failed
//!   and the policy's `on_store_error` answered) or `local_budget` (a slice
//!   this process held);
//! - `sluice_local_budget_decisions_total{answered}`: decisions under a
//!   `local_budget`, answered `local` (from a slice held, no Redis call)
//!   or by `store`: the local hit share is `local` over both;
//! - `sluice_local_budget_slices_taken_total`,
//!   `sluice_local_budget_slices_returned_total` and
//!   `sluice_local_budget_units_returned_total`: slices taken from Redis,
//!   slices whose unspent rest was given back, and the units given back;
//! - `sluice_store_errors_total{kind}`: calls to the store that failed, by
//!   kind (`unavailable`, `timeout`, `protocol`, ...);
//! - `sluice_store_breaker_state{state}`: 1 for the circuit breaker's state
//!   (`closed`, `open`, `half_open`), 0 for the others;
//! - `sluice_config_reloads_total{result}`: result `ok` or `error`;
//! - `sluice_build_info{version}`: 1, labelled with Sluice's version;
//! - `sluice_memory_keys`: keys held in process memory (the memory store,
//!   or the local store of `on_store_error: local` in front of Redis),
//!   expired ones not yet purged included;
//! - `sluice_memory_evictions_total`: keys evicted at `memory.max_keys`
//!   (each starts afresh);
//! - `sluice_envoy_total_hits_total`, `sluice_envoy_over_limit_total`,
//!   `sluice_envoy_near_limit_total`, `sluice_envoy_within_limit_total`,
//!   `sluice_envoy_shadow_mode_total` `{domain,key}`: envoyproxy/ratelimit's
//!   statistics of each rule of its configuration, in hits, counted as it
//!   counts them (`key` is the rule's full key without the domain, as
//!   declared: `key_value.key2`);
//! - the standard process metrics ([`crate::process_metrics`]).
//!
//! Every counter whose labels the configuration knows is there from the
//! start, at zero: each policy's outcomes and sources (from when the policy
//! is loaded, at start or at a reload), each kind of store error, both
//! results of a reload, each envoyproxy/ratelimit rule's statistics (from
//! when its file is loaded; a rule whose key carries the request's values,
//! `detailed_metric` or `value_to_metric`, from its first hit). An alert on
//! a rate then has a series to match before the first event.
//!
//! Labels come only from the configuration (policy names, the store kind,
//! the envoyproxy/ratelimit rules), never from a client, so a client cannot
//! grow the series without bound; the exceptions are the opt-ins of that
//! configuration which name request values (`detailed_metric`), and a
//! request's own limit override, labelled by its entries as that project
//! does.
//! The handles of each policy are looked up once, when the policies are
//! loaded, so a decision only bumps atomics.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice::store::BreakerState;
use sluice::{Decision, StoreError};

use crate::process_metrics::ProcessCollector;

type Labels = Vec<(&'static str, String)>;

/// The registry and every metric family in it.
pub struct Metrics {
    registry: Registry,
    decisions: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    sources: Family<Labels, Counter>,
    store_errors: Family<Labels, Counter>,
    breaker: Family<Labels, Gauge>,
    reloads: Family<Labels, Counter>,
    memory_keys: Gauge,
    memory_evictions: Counter,
    /// Local budgets: decisions answered locally and by the store, slices
    /// taken, slices returned, units returned.
    budgets: [Counter; 5],
    envoy: [Family<Labels, Counter>; 5],
    store: &'static str,
}

/// envoyproxy/ratelimit's statistics of one rule, in hits.
#[derive(Clone, Debug, Default)]
pub struct EnvoyStats {
    /// Every hit asked for.
    pub total_hits: Counter,
    /// Hits past the limit.
    pub over_limit: Counter,
    /// Hits past the near-limit ratio of the limit, not over it.
    pub near_limit: Counter,
    /// Hits within the limit.
    pub within_limit: Counter,
    /// Hits past the limit let through in shadow mode.
    pub shadow_mode: Counter,
}

/// The names of envoyproxy/ratelimit's statistics, in [`EnvoyStats`] order.
const ENVOY_STATS: [(&str, &str); 5] = [
    ("total_hits", "Hits asked for, by envoyproxy/ratelimit rule"),
    (
        "over_limit",
        "Hits past the limit, by envoyproxy/ratelimit rule",
    ),
    (
        "near_limit",
        "Hits past the near-limit ratio and within the limit, by envoyproxy/ratelimit rule",
    ),
    (
        "within_limit",
        "Hits within the limit, by envoyproxy/ratelimit rule",
    ),
    (
        "shadow_mode",
        "Hits past the limit let through in shadow mode, by envoyproxy/ratelimit rule",
    ),
];

/// The breaker's states, as `sluice_store_breaker_state` labels them.
const BREAKER_STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];

/// What one policy's decision came to, as counted in `sluice_decisions_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted.
    Allowed,
    /// Denied.
    Denied,
    /// Admitted, but the shadow policy would have denied it.
    ShadowDenied,
    /// No decision: the store failed.
    Error,
}

impl Outcome {
    /// The outcome of `decision`.
    pub fn of(decision: &Decision) -> Outcome {
        match (decision.allowed, decision.shadow) {
            (true, true) => Outcome::ShadowDenied,
            (true, false) => Outcome::Allowed,
            (false, _) => Outcome::Denied,
        }
    }
}

/// One policy's metric handles, looked up once.
#[derive(Clone)]
pub struct PolicyMetrics {
    outcomes: [Counter; 4],
    /// By [`sluice::Source`]: store, deny cache, fallback, local budget.
    sources: [Counter; 4],
    duration: Histogram,
}

impl PolicyMetrics {
    /// Counts a decision of `outcome` (none for a policy whose admission
    /// was not charged because another policy denied) that took `elapsed`.
    pub fn record(&self, outcome: Option<Outcome>, elapsed: Duration) {
        if let Some(outcome) = outcome {
            self.outcomes[outcome as usize].inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts a decision made by `source`.
    pub fn source(&self, source: sluice::Source) {
        let at = match source {
            sluice::Source::Store => 0,
            sluice::Source::DenyCache => 1,
            // An `unlimited` or `block` override decided alone: no source
            // of the store's to count.
            sluice::Source::Override => return,
            sluice::Source::LocalBudget => 3,
            _ => 2,
        };
        self.sources[at].inc();
    }
}

impl Metrics {
    /// Empty metrics for a service whose store is `store` (`memory`,
    /// `redis` or `redis_cluster`).
    pub fn new(store: &'static str) -> Metrics {
        let mut registry = Registry::default();
        let decisions = Family::<Labels, Counter>::default();
        // 50 µs to ~1.6 s: a memory decision is far below, a Redis round
        // trip in the middle, a timeout at the top.
        let durations: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(50e-6, 2.0, 16)));
        let sources = Family::<Labels, Counter>::default();
        let store_errors = Family::<Labels, Counter>::default();
        let breaker = Family::<Labels, Gauge>::default();
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "sluice_decisions",
            "Decisions made, by policy and outcome",
            decisions.clone(),
        );
        registry.register(
            "sluice_decision_duration_seconds",
            "Time the store took to decide, by policy and store",
            durations.clone(),
        );
        registry.register(
            "sluice_decision_sources",
            "Decisions made, by policy and what made them (store, deny_cache, fallback, local_budget)",
            sources.clone(),
        );
        registry.register(
            "sluice_store_errors",
            "Calls to the store that failed, by kind",
            store_errors.clone(),
        );
        registry.register(
            "sluice_store_breaker_state",
            "1 for the store's circuit breaker state, 0 for the others",
            breaker.clone(),
        );
        registry.register(
            "sluice_config_reloads",
            "Configuration reloads, by result",
            reloads.clone(),
        );
        let memory_keys = Gauge::default();
        registry.register(
            "sluice_memory_keys",
            "Keys held in process memory (the memory store, or the local fallback store)",
            memory_keys.clone(),
        );
        let memory_evictions = Counter::default();
        registry.register(
            "sluice_memory_evictions",
            "Keys evicted from process memory at memory.max_keys",
            memory_evictions.clone(),
        );
        let budgets = budget_metrics(&mut registry);
        let envoy: [Family<Labels, Counter>; 5] = Default::default();
        for ((name, help), family) in ENVOY_STATS.iter().zip(&envoy) {
            registry.register(format!("sluice_envoy_{name}"), *help, family.clone());
        }
        let build = Family::<Labels, Gauge>::default();
        registry.register(
            "sluice_build_info",
            "1, labelled with the version of Sluice running",
            build.clone(),
        );
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
            .set(1);
        registry.register_collector(Box::new(ProcessCollector));
        let metrics = Metrics {
            registry,
            envoy,
            memory_keys,
            memory_evictions,
            budgets,
            decisions,
            durations,
            sources,
            store_errors,
            breaker,
            reloads,
            store,
        };
        // At zero from the start (see the module's docs).
        for kind in StoreError::KINDS {
            metrics.store_errors_of(kind);
        }
        for ok in [true, false] {
            metrics.reloads_of(ok);
        }
        metrics
    }

    /// The store's kind, as the metrics label it.
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// The handles of the policy named `policy`.
    pub fn for_policy(&self, policy: &str) -> PolicyMetrics {
        let outcome = |name: &str| {
            let labels = vec![("policy", policy.to_owned()), ("outcome", name.to_owned())];
            self.decisions.get_or_create(&labels).clone()
        };
        let labels = vec![
            ("policy", policy.to_owned()),
            ("store", self.store.to_owned()),
        ];
        PolicyMetrics {
            outcomes: [
                outcome("allowed"),
                outcome("denied"),
                outcome("shadow_denied"),
                outcome("error"),
            ],
            sources: [
                sluice::Source::Store,
                sluice::Source::DenyCache,
                sluice::Source::Fallback,
                sluice::Source::LocalBudget,
            ]
            .map(|source| {
                let labels = vec![
                    ("policy", policy.to_owned()),
                    ("source", source.name().to_owned()),
                ];
                self.sources.get_or_create(&labels).clone()
            }),
            duration: self.durations.get_or_create(&labels).clone(),
        }
    }

    fn store_errors_of(&self, kind: &str) -> Counter {
        (self.store_errors)
            .get_or_create(&vec![("kind", kind.to_owned())])
            .clone()
    }

    /// Counts a failed call to the store, of `kind` ([`sluice::StoreError::kind`]).
    pub fn store_error(&self, kind: &str) {
        self.store_errors_of(kind).inc();
    }

    /// Brings `sluice_store_errors_total` up to `totals`, the counts by kind
    /// that a resilient store stack keeps (see [`sluice::store::Health`]).
    pub fn store_errors_now(&self, totals: &[(&'static str, u64)]) {
        for (kind, total) in totals {
            let counter = self.store_errors_of(kind);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// Shows the circuit breaker in `state`.
    pub fn breaker(&self, state: BreakerState) {
        for s in BREAKER_STATES {
            let labels = vec![("state", s.name().to_owned())];
            self.breaker
                .get_or_create(&labels)
                .set(i64::from(s == state));
        }
    }

    /// Shows `keys` held in process memory and brings the evictions up to
    /// `evictions`, the store's count so far.
    pub fn memory_now(&self, keys: usize, evictions: u64) {
        self.memory_keys
            .set(i64::try_from(keys).unwrap_or(i64::MAX));
        let counted = self.memory_evictions.get();
        self.memory_evictions
            .inc_by(evictions.saturating_sub(counted));
    }

    /// Brings the local budgets' counters up to `stats`, the store's
    /// counts so far.
    pub fn budgets_now(&self, stats: &sluice::store::BudgetStats) {
        let decisions = stats.decisions();
        let now = [
            stats.local(),
            decisions.saturating_sub(stats.local()),
            stats.slices_taken(),
            stats.slices_returned(),
            stats.units_returned(),
        ];
        for (counter, total) in self.budgets.iter().zip(now) {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The statistics of the envoyproxy/ratelimit rule `key` (its full key
    /// without the domain) of `domain`.
    pub fn envoy(&self, domain: &str, key: &str) -> EnvoyStats {
        let labels = vec![("domain", domain.to_owned()), ("key", key.to_owned())];
        let [
            total_hits,
            over_limit,
            near_limit,
            within_limit,
            shadow_mode,
        ] = self
            .envoy
            .each_ref()
            .map(|f| f.get_or_create(&labels).clone());
        EnvoyStats {
            total_hits,
            over_limit,
            near_limit,
            within_limit,
            shadow_mode,
        }
    }

    fn reloads_of(&self, ok: bool) -> Counter {
        let result = if ok { "ok" } else { "error" };
        (self.reloads)
            .get_or_create(&vec![("result", result.to_owned())])
            .clone()
    }

    /// Counts a configuration reload that succeeded (`ok`) or not.
    pub fn reload(&self, ok: bool) {
        self.reloads_of(ok).inc();
    }

    /// Every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Registers the local budgets' counters, in [`Metrics::budgets_now`]'s order.
fn budget_metrics(registry: &mut Registry) -> [Counter; 5] {
    let decisions = Family::<Labels, Counter>::default();
    registry.register(
        "sluice_local_budget_decisions",
        "Decisions under a local_budget, by what answered them (local: a slice held; store)",
        decisions.clone(),
    );
    let answered = |by: &str| (decisions.get_or_create(&vec![("answered", by.to_owned())])).clone();
    let counter = |registry: &mut Registry, name: &str, help: &str| {
        let counter = Counter::default();
        registry.register(name, help, counter.clone());
        counter
    };
    [
        answered("local"),
        answered("store"),
        counter(
            registry,
            "sluice_local_budget_slices_taken",
            "Slices of a key's allowance taken from Redis",
        ),
        counter(
            registry,
            "sluice_local_budget_slices_returned",
            "Slices whose unspent rest was given back to Redis",
        ),
        counter(
            registry,
            "sluice_local_budget_units_returned",
            "Units given back to Redis from slices",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_decisions_durations_and_errors_by_label() {
        let metrics = Metrics::new("memory");
        let api = metrics.for_policy("default");
        api.record(Some(Outcome::Allowed), Duration::from_micros(30));
        api.record(Some(Outcome::Allowed), Duration::from_micros(30));
        api.record(Some(Outcome::ShadowDenied), Duration::from_micros(30));
        api.record(None, Duration::from_micros(30));
        api.source(sluice::Source::Fallback);
        metrics.store_error("timeout");
        metrics.store_errors_now(&[("timeout", 3), ("unavailable", 2)]);
        metrics.breaker(BreakerState::Open);
        metrics.reload(false);
        metrics.memory_now(1200, 40);
        metrics.memory_now(900, 75);
        let text = metrics.render();
        for line in [
            r#"sluice_decisions_total{policy="default",outcome="allowed"} 2"#,
            r#"sluice_decisions_total{policy="default",outcome="shadow_denied"} 1"#,
            r#"sluice_decisions_total{policy="default",outcome="denied"} 0"#,
            r#"sluice_decision_duration_seconds_count{policy="default",store="memory"} 4"#,
            r#"sluice_decision_duration_seconds_bucket{le="0.00005",policy="default",store="memory"} 4"#,
            r#"sluice_decision_sources_total{policy="default",source="fallback"} 1"#,
            r#"sluice_decision_sources_total{policy="default",source="store"} 0"#,
            r#"sluice_store_errors_total{kind="timeout"} 3"#,
            r#"sluice_store_errors_total{kind="unavailable"} 2"#,
            r#"sluice_store_breaker_state{state="open"} 1"#,
            r#"sluice_store_breaker_state{state="closed"} 0"#,
            r#"sluice_config_reloads_total{result="error"} 1"#,
            "sluice_memory_keys 900",
            "sluice_memory_evictions_total 75",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn counters_are_at_zero_before_anything_happens() {
        let metrics = Metrics::new("memory");
        let _ = metrics.for_policy("api");
        let text = metrics.render();
        let mut lines = vec![
            r#"sluice_config_reloads_total{result="ok"} 0"#.to_owned(),
            r#"sluice_config_reloads_total{result="error"} 0"#.to_owned(),
            r#"sluice_decision_sources_total{policy="api",source="store"} 0"#.to_owned(),
            r#"sluice_decision_duration_seconds_count{policy="api",store="memory"} 0"#.to_owned(),
            format!(
                r#"sluice_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        ];
        for outcome in ["allowed", "denied", "shadow_denied", "error"] {
            lines.push(format!(
                r#"sluice_decisions_total{{policy="api",outcome="{outcome}"}} 0"#
            ));
        }
        for kind in StoreError::KINDS {
            lines.push(format!(r#"sluice_store_errors_total{{kind="{kind}"}} 0"#));
        }
        for line in lines {
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn renders_the_process_metrics() {
        let text = Metrics::new("memory").render();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            let value = (text.lines())
                .find_map(|line| line.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in\n{text}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|e| panic!("{name}{value}: {e}"));
            // CPU time is counted in ticks of 10 ms: a fresh test may have none.
            let least = if name.starts_with("process_cpu") {
                0.0
            } else {
                1.0
            };
            assert!(value >= least, "{name}{value}");
        }
        assert!(
            text.contains("# TYPE process_cpu_seconds counter"),
            "{text}"
        );
    }
}
