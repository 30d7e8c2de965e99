//! The signals `sluice serve` answers: SIGTERM and Ctrl-C stop it (a
//! second one at once), SIGHUP reloads its policies.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;

use crate::config::{Config, Flags, StoreSpec};
use crate::service::DecisionService;
use crate::summary::Summary;

/// Two futures: the first completes on the first SIGTERM or Ctrl-C
/// (SIGINT), the second on the next one after it. The first starts the
/// drain; the second is an operator who will not wait for it.
pub fn terminations() -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let (second_tx, second_rx) = oneshot::channel::<()>();
    // Listen before returning, so a signal sent right after is not missed.
    let mut sigterm = signal(SignalKind::terminate())
        .inspect_err(
            |e| tracing::warn!(error = %sluice::error::chain(e), "cannot listen for SIGTERM"),
        )
        .ok();
    tokio::spawn(async move {
        let next = async |sigterm: &mut Option<Signal>| {
            let term = async {
                match sigterm {
                    Some(stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
            }
        };
        let name = next(&mut sigterm).await;
        tracing::info!("{name}: draining requests in flight");
        let _ = first_tx.send(());
        let name = next(&mut sigterm).await;
        tracing::warn!("{name} again: stopping without waiting for the drain");
        let _ = second_tx.send(());
    });
    (
        async move {
            if first_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        },
        async move {
            if second_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        },
    )
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
            tracing::warn!(error = %sluice::error::chain(&e), "cannot listen for SIGHUP; reload is off");
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
                    let summary = Summary::of(&config);
                    service.replace_policies(config.policies);
                    service.set_forward_auth(config.forward_auth);
                    service.set_envoy(crate::envoy::EnvoyState {
                        config: config.envoy.rules,
                        options: config.envoy.options,
                    });
                    service.metrics().reload(true);
                    tracing::info!(
                        config = %summary.config,
                        policies = %summary.policy_names(),
                        shadow = %summary.shadow_names(),
                        "SIGHUP: configuration reloaded"
                    );
                }
                Err(errors) => {
                    service.metrics().reload(false);
                    tracing::error!(
                        errors = %crate::logging::one_line(&errors),
                        "SIGHUP: configuration refused, the running one stays"
                    );
                }
            }
        }
    });
}
