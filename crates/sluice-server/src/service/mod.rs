//! The decision service that every transport calls: HTTP today, gRPC and
//! forward-auth next. A transport parses its request, asks the service,
//! and renders the [`Answer`]; resolving the policies, deciding, timing,
//! metrics and store-error counting happen here, once.
//!
//! The policies in force are a [`Snapshot`], swapped whole when the
//! configuration is reloaded: a request sees one version throughout.
//!
//! ```
//! use std::time::Duration;
//! use sluice::{Algorithm, BoxStore, FakeClock, Limiter, MemoryStore, Policy, Quota};
//! use sluice_server::service::DecisionService;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let quota = Quota::new(Algorithm::FixedWindow, 1, Duration::from_secs(60), None).unwrap();
//! let store = BoxStore::new(MemoryStore::with_clock(FakeClock::new(0)));
//! let limiter = Limiter::new(store, [Policy::new("api", quota).unwrap()]);
//! let service = DecisionService::new(limiter, "memory", None);
//!
//! let snapshot = service.snapshot();
//! assert!(snapshot.check(&["api"], "user-42", 1).await.unwrap().allowed);
//! assert!(!snapshot.check(&["api"], "user-42", 1).await.unwrap().allowed);
//! # });
//! ```
//!
//! # Layout
//!
//! - `admin`: [`AdminToken`], the bearer token of the admin operations.

mod admin;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use sluice::store::{Health, LocalBudgets};
use sluice::{BoxStore, Clock, Error, Limiter, MemoryStore, Policy, Store, StoreError, Verdict};
use sluice_tower::headers::Standing;

pub use admin::{AdminToken, EmptyToken, trim_secret};

use crate::config::ForwardAuthSettings;
use crate::envoy::EnvoyState;
use crate::stores::StoreHandles;

use crate::metrics::{Metrics, Outcome, PolicyMetrics};

/// The decision service: the policies in force over the process's one
/// store, the metrics, and the admin token. Cheap to clone; clones share
/// everything.
#[derive(Clone)]
pub struct DecisionService {
    shared: Arc<Shared>,
}

struct Shared {
    snapshot: ArcSwap<Snapshot>,
    metrics: Arc<Metrics>,
    admin_token: Option<AdminToken>,
    /// The resilient store stack's report, when the store has one.
    health: Option<Health>,
    /// The store that keeps keys in this process, if any.
    memory: Option<Arc<MemoryStore>>,
    /// The local budgets in front of Redis, if any.
    budgets: Option<LocalBudgets>,
    /// How `/v1/forward-auth` answers; replaced by a reload.
    forward_auth: ArcSwap<ForwardAuthSettings>,
    /// How Envoy's ShouldRateLimit answers; replaced by a reload.
    envoy: ArcSwap<EnvoyState>,
    /// The store's clock: where ShouldRateLimit's windows end.
    clock: Arc<dyn Clock>,
}

/// One version of the policies: the limiter and, for each of its policies
/// (by [`Resolved::index`](sluice::Resolved::index)), its metric handles.
pub struct Snapshot {
    limiter: Limiter<BoxStore>,
    handles: Vec<PolicyMetrics>,
    metrics: Arc<Metrics>,
    /// Whether store errors are counted here: only when no resilient
    /// stack counts them (it sees every error, the fallback's too).
    count_errors: bool,
}

/// What the service decided for one request: a verdict per policy, in the
/// order asked, and whether the request may go through.
#[derive(Debug)]
pub struct Answer<'a> {
    /// Whether every policy admitted the request (shadow denials admit).
    pub allowed: bool,
    /// One verdict per policy asked for.
    pub verdicts: Vec<Verdict<'a>>,
}

impl Answer<'_> {
    /// The index of the verdict a client must heed: the most restrictive
    /// (a denial, the longest wait, a leaky bucket's longest delay, the
    /// fewest remaining) of the policies not in shadow mode, or of all when
    /// every one is in shadow mode.
    pub fn deciding(&self) -> usize {
        // One policy, the usual case: it decides, and no vector is made.
        if self.verdicts.len() <= 1 {
            return 0;
        }
        let standings: Vec<Standing<'_>> = self.verdicts.iter().map(Standing::from).collect();
        sluice_tower::headers::most_restrictive(&standings).unwrap_or(0)
    }
}

impl DecisionService {
    /// The service deciding with `limiter`, whose store is of kind `store`
    /// (the metrics label: `memory`, `redis`, `redis_cluster`), with the
    /// admin operations on when `admin_token` is given (trimmed; a token
    /// empty once trimmed leaves them off: `sluice serve` refuses one at
    /// start-up, see [`AdminToken::new`]).
    pub fn new(
        limiter: Limiter<BoxStore>,
        store: &'static str,
        admin_token: Option<String>,
    ) -> DecisionService {
        DecisionService::with_handles(limiter, store, admin_token, StoreHandles::default())
    }

    /// [`DecisionService::new`] with what [`open_resilient`](crate::stores::open_resilient) gives
    /// besides the store: the resilient stack's health, which tells the
    /// breaker's state and the store's errors (for `/readyz` and the
    /// metrics) and whose deny cache each reload clears, and the store
    /// that keeps keys in this process, whose keys and evictions the
    /// metrics show.
    pub fn with_handles(
        limiter: Limiter<BoxStore>,
        store: &'static str,
        admin_token: Option<String>,
        handles: StoreHandles,
    ) -> DecisionService {
        let StoreHandles {
            health,
            memory,
            clock,
            budgets,
        } = handles;
        let metrics = Arc::new(Metrics::new(store));
        let count_errors = health.is_none();
        DecisionService {
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(Snapshot::new(limiter, &metrics, count_errors)),
                metrics,
                admin_token: admin_token.and_then(|t| AdminToken::new(&t).ok()),
                health,
                memory,
                budgets,
                forward_auth: ArcSwap::from_pointee(ForwardAuthSettings::default()),
                envoy: ArcSwap::from_pointee(EnvoyState::default()),
                clock,
            }),
        }
    }

    /// The policies in force now.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.shared.snapshot.load()
    }

    /// Puts `policies` in force, keeping every key's state in the store,
    /// and forgets the deny cache's denials (made under the old numbers).
    pub fn replace_policies(&self, policies: Vec<Policy>) {
        let limiter = self.snapshot().limiter.with_policies(policies);
        let count_errors = self.shared.health.is_none();
        let snapshot = Snapshot::new(limiter, &self.shared.metrics, count_errors);
        self.shared.snapshot.store(Arc::new(snapshot));
        if let Some(health) = &self.shared.health {
            health.clear_deny_cache();
        }
        // The slices charged under the old numbers go back (a slice met
        // before this ends goes back before its key takes another).
        if let (Some(budgets), Ok(runtime)) = (
            self.shared.budgets.clone(),
            tokio::runtime::Handle::try_current(),
        ) {
            runtime.spawn(async move { budgets.return_all().await });
        }
    }

    /// The local budgets in front of Redis, when the store has them.
    pub fn budgets(&self) -> Option<&LocalBudgets> {
        self.shared.budgets.as_ref()
    }

    /// How `/v1/forward-auth` answers now.
    pub fn forward_auth(&self) -> Arc<ForwardAuthSettings> {
        self.shared.forward_auth.load_full()
    }

    /// Puts `settings` in force for `/v1/forward-auth` (at start, and at
    /// each reload).
    pub fn set_forward_auth(&self, settings: ForwardAuthSettings) {
        self.shared.forward_auth.store(Arc::new(settings));
    }

    /// Where the envoyproxy/ratelimit configuration in force is kept.
    pub(crate) fn envoy_state(&self) -> &ArcSwap<EnvoyState> {
        &self.shared.envoy
    }

    /// The store's clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.shared.clock
    }

    /// The resilient store stack's report, when the store has one.
    pub fn health(&self) -> Option<&Health> {
        self.shared.health.as_ref()
    }

    /// The `on_store_error` modes of the policies in force, each once, by
    /// name: what happens to requests while the store is away.
    pub fn modes_in_force(&self) -> Vec<&'static str> {
        let mut modes: Vec<&'static str> = (self.snapshot().policies().iter())
            .map(|p| p.on_store_error().name())
            .collect();
        modes.sort_unstable();
        modes.dedup();
        modes
    }

    /// Every metric in the OpenMetrics text format, with the breaker's
    /// state, the store's errors and the keys in memory as they are now.
    pub fn render_metrics(&self) -> String {
        let metrics = &self.shared.metrics;
        if let Some(health) = &self.shared.health {
            metrics.breaker(health.breaker_state());
            metrics.store_errors_now(&health.store_errors());
        }
        if let Some(memory) = &self.shared.memory {
            metrics.memory_now(memory.len(), memory.evictions());
        }
        if let Some(budgets) = &self.shared.budgets {
            metrics.budgets_now(&budgets.stats());
        }
        metrics.render()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The store's kind: `memory`, `redis` or `redis_cluster`.
    pub fn store_kind(&self) -> &'static str {
        self.shared.metrics.store()
    }

    /// The admin token, when the admin operations are on.
    pub fn admin_token(&self) -> Option<&AdminToken> {
        self.shared.admin_token.as_ref()
    }

    /// Whether the store answers; a failure is logged with its cause.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let snapshot = self.snapshot();
        snapshot.limiter.store().ping().await.inspect_err(|e| {
            tracing::warn!(error = %sluice::error::chain(e), "the store does not answer");
        })
    }
}

impl Snapshot {
    fn new(limiter: Limiter<BoxStore>, metrics: &Arc<Metrics>, count_errors: bool) -> Snapshot {
        Snapshot {
            count_errors,
            handles: limiter
                .policies()
                .iter()
                .map(|p| metrics.for_policy(p.name()))
                .collect(),
            limiter,
            metrics: Arc::clone(metrics),
        }
    }

    /// The store every decision is made on.
    pub(crate) fn store(&self) -> &BoxStore {
        self.limiter.store()
    }

    /// The policies in force, in configuration order.
    pub fn policies(&self) -> &[Policy] {
        self.limiter.policies()
    }

    /// Charges `cost` to `key` under every one of `policies`, all or
    /// nothing, and counts the outcome of each policy. A policy that
    /// admitted a request another denied is not counted as an admission:
    /// nothing was charged to it.
    pub async fn check<'a>(
        &'a self,
        policies: &[impl AsRef<str>],
        key: &'a str,
        cost: u64,
    ) -> Result<Answer<'a>, Error> {
        let resolved = policies
            .iter()
            .map(|name| self.limiter.resolve(name.as_ref(), key))
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        let result = self.limiter.decide(&resolved, cost).await;
        let elapsed = started.elapsed();
        let verdicts = match result {
            Ok(verdicts) => verdicts,
            Err(error) => {
                if let Error::Store(e) = &error {
                    self.count_store_error(e);
                    for r in &resolved {
                        self.handles[r.index()].record(Some(Outcome::Error), elapsed);
                    }
                }
                return Err(error);
            }
        };
        let allowed = verdicts.iter().all(|v| v.decision.allowed);
        for verdict in &verdicts {
            let outcome = Outcome::of(&verdict.decision);
            // Admitted by this policy, but denied by another: nothing taken.
            let counted = allowed || outcome != Outcome::Allowed;
            let handles = &self.handles[verdict.resolved.index()];
            handles.record(counted.then_some(outcome), elapsed);
            handles.source(verdict.decision.source);
        }
        Ok(Answer { allowed, verdicts })
    }

    /// What a check of cost 1 on `key` under `policy` would be told,
    /// charging nothing.
    pub async fn peek<'a>(&'a self, policy: &str, key: &'a str) -> Result<Verdict<'a>, Error> {
        let resolved = self.limiter.resolve(policy, key)?;
        self.limiter
            .peek_resolved(resolved)
            .await
            .inspect_err(|e| self.count_error(e))
    }

    /// The state `key` has under each limit of `policy`, with its quota
    /// (see [`Limiter::inspect`](sluice::Limiter::inspect)).
    pub async fn inspect(
        &self,
        policy: &str,
        key: &str,
    ) -> Result<Vec<(sluice::Quota, Option<sluice::algorithm::State>)>, Error> {
        self.limiter
            .inspect(policy, key)
            .await
            .inspect_err(|e| self.count_error(e))
    }

    /// Forgets `key` under `policy`.
    pub async fn reset(&self, policy: &str, key: &str) -> Result<(), Error> {
        self.limiter
            .reset(policy, key)
            .await
            .inspect_err(|e| self.count_error(e))?;
        tracing::info!(policy, key, "key reset");
        Ok(())
    }

    fn count_error(&self, error: &Error) {
        if let Error::Store(e) = error {
            self.count_store_error(e);
        }
    }

    /// Counts `error` in the store errors, unless a resilient stack does.
    pub(crate) fn count_store_error(&self, error: &StoreError) {
        if self.count_errors {
            self.metrics.store_error(error.kind());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice::store::Resilient;
    use sluice::{Algorithm, FakeClock, MemoryStore, Quota, Source};

    use super::*;

    fn policy(limit: u64) -> Policy {
        let quota = Quota::new(Algorithm::Gcra, limit, Duration::from_secs(60), None).unwrap();
        Policy::new("api", quota).unwrap().with_deny_cache(true)
    }

    /// Issue 11: a reload forgets the deny cache's denials, made under the
    /// old numbers; the metrics say which decisions the cache made.
    #[tokio::test]
    async fn a_reload_clears_the_deny_cache() {
        let clock = FakeClock::new(1_000_000);
        let store = Resilient::new(MemoryStore::with_clock(clock.clone()), clock);
        let health = store.health();
        let limiter = Limiter::new(BoxStore::new(store), [policy(1)]);
        let handles = StoreHandles {
            health: Some(health),
            ..StoreHandles::default()
        };
        let service = DecisionService::with_handles(limiter, "memory", None, handles);
        let source = |service: DecisionService| async move {
            let snapshot = service.snapshot();
            let answer = snapshot.check(&["api"], "k", 1).await.unwrap();
            answer.verdicts[0].decision.source
        };
        assert_eq!(source(service.clone()).await, Source::Store);
        assert_eq!(source(service.clone()).await, Source::Store, "denied");
        assert_eq!(source(service.clone()).await, Source::DenyCache);
        // The same numbers again: the quota still matches, only the clear
        // sends the next check to the store.
        service.replace_policies(vec![policy(1)]);
        assert_eq!(source(service.clone()).await, Source::Store);
        let text = service.render_metrics();
        for line in [
            r#"sluice_decision_sources_total{policy="api",source="deny_cache"} 1"#,
            r#"sluice_decision_sources_total{policy="api",source="store"} 3"#,
            r#"sluice_store_breaker_state{state="closed"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in {text}");
        }
    }
}
