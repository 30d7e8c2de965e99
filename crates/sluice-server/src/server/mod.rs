//! `sluice serve`: the process around the [`DecisionService`]: its
//! listeners, signals, reload and shutdown. The only module that knows
//! every transport.
//!
//! # Layout
//!
//! - [`signals`]: SIGTERM and Ctrl-C stop, SIGHUP reloads.

pub mod signals;

use std::future::Future;

use anyhow::Context;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use sluice::Limiter;
use tokio::net::TcpListener;

use crate::config::{Config, Flags};
use crate::service::DecisionService;
use crate::stores::{self, Connecting};

/// The address `sluice serve` listens on when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The environment variable naming the address to listen on.
pub const LISTEN_ENV: &str = "SLUICE_LISTEN";
/// The environment variable holding the admin token; the admin API is off
/// without it.
pub const ADMIN_TOKEN_ENV: &str = "SLUICE_ADMIN_TOKEN";

/// Where `sluice serve` listens: one socket per transport.
#[derive(Debug)]
#[non_exhaustive]
pub struct Listeners {
    /// The HTTP API.
    pub http: TcpListener,
}

impl Listeners {
    /// The HTTP API on `http`, and no other transport.
    pub fn http(http: TcpListener) -> Listeners {
        Listeners { http }
    }
}

/// Serves `service` on every one of `listeners` until `shutdown`
/// completes, then stops accepting and returns once the requests in flight
/// are answered.
pub async fn run(
    service: DecisionService,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_http(service, listeners.http, shutdown).await
}

/// Answers HTTP/1.1 on `listener` with the API over `service` until
/// `shutdown` completes, then drains.
///
/// Each connection sets `TCP_NODELAY` (a decision is small: it goes out at
/// once, not after Nagle's delay) and answers pipelined requests with one
/// write per batch rather than one per answer (hyper's `pipeline_flush`).
async fn serve_http(
    service: DecisionService,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::http::router(service);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.pipeline_flush(true);
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
        let service = TowerToHyperService::new(app.clone());
        let connection = connections.watch(http.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// Runs `sluice serve`: resolves the configuration from `flags` and the
/// environment, opens the store (connecting to Redis in the background),
/// listens on `listen` (else
/// `$SLUICE_LISTEN`, else [`DEFAULT_LISTEN`]), reloads the policies on
/// SIGHUP and drains on SIGTERM or Ctrl-C.
pub async fn serve(flags: Flags, listen: Option<String>) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let config = Config::resolve(&flags, env)?;
    let admin_token = admin_token(std::env::var(ADMIN_TOKEN_ENV).ok())?;
    let listen = listen
        .or_else(|| env(LISTEN_ENV))
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    // Redis may come up after Sluice: start unready (/readyz says so),
    // answer by each policy's on_store_error, and connect in the background.
    let (store, health) =
        stores::open_resilient(&config.store, &config.redis, Connecting::InBackground).await?;
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let policies = policy_names(&config);
    let limiter = Limiter::new(store, config.policies);
    let service = DecisionService::with_health(limiter, config.store.kind(), admin_token, health);
    tracing::info!(
        %address,
        store = %config.store,
        %policies,
        admin_api = service.admin_token().is_some(),
        "sluice listening"
    );
    signals::reload_on_hangup(service.clone(), flags, config.store, env);
    run(service, Listeners::http(listener), signals::terminate()).await?;
    tracing::info!("sluice stopped");
    Ok(())
}

/// The admin token from `$SLUICE_ADMIN_TOKEN` (`value`): `None` when it is
/// unset, the token trimmed when set, and an error when it is set but
/// blank (only spaces or newlines), which would otherwise turn the admin
/// API on with a token no request can match, or off without a word.
pub fn admin_token(value: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match crate::service::AdminToken::new(&value) {
        Ok(_) => Ok(Some(crate::service::trim_secret(&value).to_owned())),
        Err(e) => anyhow::bail!(
            "environment variable {ADMIN_TOKEN_ENV}: {e}; set a token, or unset the \
             variable to turn the admin API off"
        ),
    }
}

/// The policies' names, sorted and joined with commas, for the log.
pub fn policy_names(config: &Config) -> String {
    let mut names: Vec<&str> = config.policies.iter().map(|p| p.name()).collect();
    names.sort_unstable();
    names.join(",")
}
