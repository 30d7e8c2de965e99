//! What every request handler shares: the policies in force (swapped
//! whole on reload), the store, the metrics and the admin token.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use sluice::Limiter;

use crate::http::policies::policies_json;
use crate::metrics::{Metrics, PolicyMetrics};
use crate::server::admin::AdminToken;
use crate::stores::AnyStore;

/// The state the HTTP handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    active: ArcSwap<Active>,
    metrics: Metrics,
    store: &'static str,
    admin_token: Option<AdminToken>,
}

/// The policies in force and what goes with them; replaced whole when the
/// configuration is reloaded, so a request sees one version throughout.
pub struct Active {
    /// Decides against the policies, on the one store of the process.
    pub limiter: Limiter<AnyStore>,
    /// Each policy's metric handles.
    pub metrics: HashMap<String, PolicyMetrics>,
    /// The body of `GET /v1/policies`, made once.
    pub policies_json: Bytes,
}

impl AppState {
    /// The state for `limiter` on a store of kind `store` (the metrics
    /// label: `memory`, `redis`, `redis_cluster`), with the admin API on
    /// when `admin_token` is given.
    pub fn new(
        limiter: Limiter<AnyStore>,
        store: &'static str,
        admin_token: Option<String>,
    ) -> AppState {
        let metrics = Metrics::new(store);
        let active = Active::new(limiter, &metrics);
        AppState {
            shared: Arc::new(Shared {
                active: ArcSwap::from_pointee(active),
                metrics,
                store,
                admin_token: admin_token.map(AdminToken::new),
            }),
        }
    }

    /// The policies in force now.
    pub fn active(&self) -> arc_swap::Guard<Arc<Active>> {
        self.shared.active.load()
    }

    /// Puts `policies` in force, keeping every key's state in the store.
    pub fn replace_policies(&self, policies: Vec<sluice::Policy>) {
        let limiter = self.active().limiter.with_policies(policies);
        let active = Active::new(limiter, &self.shared.metrics);
        self.shared.active.store(Arc::new(active));
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Counts `error` in `sluice_store_errors_total` if the store failed,
    /// and says whether it did.
    pub fn count_store_error(&self, error: &sluice::Error) -> bool {
        let failed = matches!(error, sluice::Error::Store(_));
        if failed {
            self.shared.metrics.store_error();
        }
        failed
    }

    /// The store's kind: `memory`, `redis` or `redis_cluster`.
    pub fn store_kind(&self) -> &'static str {
        self.shared.store
    }

    /// The admin token, when the admin API is on.
    pub fn admin_token(&self) -> Option<&AdminToken> {
        self.shared.admin_token.as_ref()
    }
}

impl Active {
    fn new(limiter: Limiter<AnyStore>, metrics: &Metrics) -> Active {
        Active {
            metrics: metrics.for_policies(limiter.policies()),
            policies_json: policies_json(limiter.policies()),
            limiter,
        }
    }
}
