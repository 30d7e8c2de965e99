//! The signals `sluice serve` answers: SIGTERM and Ctrl-C stop it, SIGHUP
//! reloads its policies.

use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Config, Flags, StoreSpec};
use crate::server::policy_names;
use crate::service::DecisionService;

/// Completes on the first SIGTERM or Ctrl-C (SIGINT).
pub async fn terminate() {
    let sigterm = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = sigterm => tracing::info!("SIGTERM: draining requests in flight"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: draining requests in flight"),
    }
}

/// On every SIGHUP, reads the configuration again (as `flags` and `env`
/// say) and puts its policies in force. A configuration with errors is
/// refused and logged, and the running one stays. The store is opened once:
/// a different store in the new configuration needs a restart, and is
/// logged as such.
pub fn reload_on_hangup(
    service: DecisionService,
    flags: Flags,
    store: StoreSpec,
    env: impl Fn(&str) -> Option<String> + Send + 'static,
) {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload is off");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match Config::resolve(&flags, &env) {
                Ok(config) => {
                    if config.store != store {
                        tracing::warn!(
                            running = %store,
                            configured = %config.store,
                            "the store cannot change while running; restart to use the new one"
                        );
                    }
                    let policies = policy_names(&config);
                    service.replace_policies(config.policies);
                    service.metrics().reload(true);
                    tracing::info!(%policies, "SIGHUP: configuration reloaded");
                }
                Err(errors) => {
                    service.metrics().reload(false);
                    tracing::error!(
                        "SIGHUP: configuration refused, the running one stays:\n{errors}"
                    );
                }
            }
        }
    });
}
