//! `sluice serve`: the decision service, its start, reload and shutdown.

pub mod admin;
pub mod signals;
pub mod state;

use std::future::Future;

use anyhow::Context;
use axum::serve::ListenerExt;
use sluice::Limiter;
use tokio::net::TcpListener;

use crate::config::{Config, Flags};
use crate::stores::AnyStore;
use state::AppState;

/// The address `sluice serve` listens on when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The environment variable naming the address to listen on.
pub const LISTEN_ENV: &str = "SLUICE_LISTEN";
/// The environment variable holding the admin token; the admin API is off
/// without it.
pub const ADMIN_TOKEN_ENV: &str = "SLUICE_ADMIN_TOKEN";

/// Answers HTTP on `listener` with `state` until `shutdown` completes, then
/// stops accepting and returns once the requests in flight are answered.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Decisions are small: send each answer at once, not after Nagle's delay.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
    });
    axum::serve(listener, crate::http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs `sluice serve`: resolves the configuration from `flags` and the
/// environment, opens the store, listens on `listen` (else
/// `$SLUICE_LISTEN`, else [`DEFAULT_LISTEN`]), reloads the policies on
/// SIGHUP and drains on SIGTERM or Ctrl-C.
pub async fn serve(flags: Flags, listen: Option<String>) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let config = Config::resolve(&flags, env)?;
    let listen = listen
        .or_else(|| env(LISTEN_ENV))
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let store = AnyStore::open(&config.store, &config.redis).await?;
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let policies = policy_names(&config);
    let limiter = Limiter::new(store, config.policies);
    let state = AppState::new(limiter, config.store.kind(), env(ADMIN_TOKEN_ENV));
    tracing::info!(
        %address,
        store = %config.store,
        %policies,
        admin_api = state.admin_token().is_some(),
        "sluice listening"
    );
    signals::reload_on_hangup(state.clone(), flags, config.store, env);
    run(state, listener, signals::terminate()).await?;
    tracing::info!("sluice stopped");
    Ok(())
}

/// The policies' names, sorted and joined with commas, for the log.
pub fn policy_names(config: &Config) -> String {
    let mut names: Vec<&str> = config.policies.iter().map(|p| p.name()).collect();
    names.sort_unstable();
    names.join(",")
}
