//! `sluice serve`: the process around the [`DecisionService`]: its
//! listeners, signals, reload and shutdown. The only module that knows
//! every transport.
//!
//! # Layout
//!
//! - [`envoy_watch`]: envoyproxy/ratelimit's files, polled and reloaded when they change.
//! - [`listener`]: the listening socket, with a deep backlog.
//! - [`send_timeout`]: a connection whose writes give up on a client that
//!   does not read.
//! - [`read_idle`]: a connection whose reads give up on a silent peer (gRPC).
//! - [`signals`]: SIGTERM and Ctrl-C stop (a second one at once), SIGHUP reloads.

pub mod envoy_watch;
pub mod listener;
pub mod read_idle;
pub mod send_timeout;
pub mod signals;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use hyper_util::service::TowerToHyperService;
use sluice::Limiter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tonic::service::Routes;
use tower::ServiceExt;

use crate::config::{Config, Flags, GrpcSettings, ServerSettings, parse_listen};
use crate::service::DecisionService;
use crate::stores::{self, Connecting};
use crate::summary::Summary;
use read_idle::ReadIdle;
use send_timeout::SendTimeout;

/// The address `sluice serve` listens on when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The environment variable naming the address to listen on.
pub const LISTEN_ENV: &str = "SLUICE_LISTEN";
/// The environment variable holding the admin token; the admin API is off
/// without it.
pub const ADMIN_TOKEN_ENV: &str = "SLUICE_ADMIN_TOKEN";
/// The environment variable naming a file that holds the admin token, as
/// Docker and Kubernetes mount secrets (instead of [`ADMIN_TOKEN_ENV`]).
pub const ADMIN_TOKEN_FILE_ENV: &str = "SLUICE_ADMIN_TOKEN_FILE";

/// Where `sluice serve` listens: one socket per transport.
#[derive(Debug)]
#[non_exhaustive]
pub struct Listeners {
    /// The HTTP API.
    pub http: TcpListener,
    /// The gRPC services and their bounds, when on.
    pub grpc: Option<(TcpListener, GrpcSettings)>,
}

impl Listeners {
    /// The HTTP API on `http`, and no other transport.
    pub fn http(http: TcpListener) -> Listeners {
        Listeners { http, grpc: None }
    }

    /// These listeners and the gRPC services on `listener`, within the
    /// bounds of `settings`.
    pub fn with_grpc(mut self, listener: TcpListener, settings: GrpcSettings) -> Listeners {
        self.grpc = Some((listener, settings));
        self
    }
}

/// Serves `service` on every one of `listeners`, within the bounds of
/// `settings`, until `shutdown` completes; then reports NOT_SERVING on
/// gRPC health, stops accepting on every listener, lets the requests in
/// flight finish for at most `settings.drain_timeout`, closes what is left
/// and returns.
pub async fn run(
    service: DecisionService,
    listeners: Listeners,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some((grpc_listener, grpc_settings)) = listeners.grpc else {
        return serve_http(service, listeners.http, settings, shutdown).await;
    };
    let (routes, health) = crate::grpc::routes(service.clone(), &grpc_settings).await;
    let (stop, stopped) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        // Health watchers and probes learn of the drain before the
        // listeners close.
        health.draining().await;
        let _ = stop.send(true);
    };
    let until = |mut stopped: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let (http, grpc, ()) = tokio::join!(
        serve_http(service, listeners.http, settings, until(stopped.clone())),
        serve_grpc(
            routes,
            grpc_listener,
            &grpc_settings,
            settings,
            until(stopped)
        ),
        signal,
    );
    http.and(grpc)
}

/// Answers HTTP/1.1 on `listener` with the API over `service` until
/// `shutdown` completes, then drains.
async fn serve_http(
    service: DecisionService,
    listener: TcpListener,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::http::router_with(service, settings.body_timeout);
    let http = http1(&settings);
    let bounds = Bounds::of(&settings, settings.max_connections);
    serve_connections(listener, bounds, shutdown, |io, peer| {
        // Forward-auth keys by the peer: its requests carry the address.
        // Only its: storing an extension costs every other request an
        // allocation of the extension map.
        let app = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                if request.uri().path() == crate::http::FORWARD_AUTH_PATH {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                request
            });
        http.serve_connection(io, TowerToHyperService::new(app))
    })
    .await
}

/// Answers gRPC (HTTP/2) on `listener` with `routes` until `shutdown`
/// completes, then drains (HTTP/2 GOAWAY: the streams in flight finish).
async fn serve_grpc(
    routes: Routes,
    listener: TcpListener,
    grpc: &GrpcSettings,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http.timer(TokioTimer::new())
        .max_concurrent_streams(grpc.max_concurrent_streams)
        .keep_alive_interval(grpc.keepalive_interval)
        .keep_alive_timeout(grpc.keepalive_timeout)
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    let bounds = Bounds::of(&settings, grpc.max_connections);
    // A live peer answers a ping within this; a silent one is cut.
    let silence = grpc.keepalive_interval + grpc.keepalive_timeout;
    serve_connections(listener, bounds, shutdown, |io, _peer| {
        let io = TokioIo::new(ReadIdle::new(io.into_inner(), silence));
        let routes = routes
            .clone()
            .map_request(|request: Request<Incoming>| request.map(tonic::body::Body::new));
        http.serve_connection(io, TowerToHyperService::new(routes))
    })
    .await
}

/// What every listener bounds: connections at once, a stalled write, the
/// drain.
#[derive(Clone, Copy)]
struct Bounds {
    max_connections: usize,
    send_timeout: Duration,
    drain_timeout: Duration,
}

impl Bounds {
    fn of(settings: &ServerSettings, max_connections: usize) -> Bounds {
        Bounds {
            max_connections,
            send_timeout: settings.send_timeout,
            drain_timeout: settings.drain_timeout,
        }
    }
}

/// Accepts connections on `listener` and serves each with what `serve`
/// makes of it, until `shutdown` completes; then stops accepting, lets
/// the connections finish for at most `bounds.drain_timeout`, and closes
/// what is left.
///
/// Each connection sets `TCP_NODELAY` (a decision is small: it goes out at
/// once, not after Nagle's delay) and fails a write stalled for
/// `bounds.send_timeout`.
/// At most `bounds.max_connections` are served at once: a permit is
/// taken before `accept`, so further clients wait in the kernel's backlog
/// and those already served are not disturbed.
async fn serve_connections<C>(
    listener: TcpListener,
    bounds: Bounds,
    shutdown: impl Future<Output = ()>,
    mut serve: impl FnMut(TokioIo<SendTimeout<TcpStream>>, SocketAddr) -> C,
) -> std::io::Result<()>
where
    C: GracefulConnection<Error = hyper::Error> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(bounds.max_connections));
    let connections = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap the connections that ended, so the set stays small.
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; stop rather than spin
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %sluice::error::chain(&e), "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %sluice::error::chain(&e), "TCP_NODELAY could not be set");
        }
        let io = TokioIo::new(SendTimeout::new(tcp, bounds.send_timeout));
        let connection = connections.watch(serve(io, peer));
        tasks.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %sluice::error::chain(&e), "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(bounds.drain_timeout, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tasks.len(),
            deadline = ?bounds.drain_timeout,
            "drain deadline reached: closing the connections left"
        );
    }
    // Dropping a connection's task closes its socket.
    tasks.shutdown().await;
    Ok(())
}

/// hyper's HTTP/1 settings for `settings`. The header timeout needs a
/// timer: without one hyper enforces none.
fn http1(settings: &ServerSettings) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_header_size(settings.max_header_bytes);
    // Not `pipeline_flush`: it holds every write while unparsed bytes wait
    // in the read buffer, and after a head that cannot be parsed (too many
    // headers, too large) they always do, so the 431 hyper writes was never
    // sent: the client saw the connection close with no answer (issue 12).
    // hyper parses up to 100 headers on the stack; another count moves
    // them to the heap for every request, so set it only when asked.
    if settings.max_headers != HYPER_MAX_HEADERS {
        http.max_headers(settings.max_headers);
    }
    http
}

/// The number of headers hyper allows when not told otherwise.
const HYPER_MAX_HEADERS: usize = 100;

/// Runs `sluice serve`: resolves the configuration from `flags` and the
/// environment, opens the store (connecting to Redis in the background),
/// listens on `listen` (else
/// `$SLUICE_LISTEN`, else [`DEFAULT_LISTEN`]) and, when the configuration
/// says so, for gRPC on `grpc.listen`, reloads the policies on
/// SIGHUP and drains on SIGTERM or Ctrl-C, for at most the configured
/// drain deadline; a second SIGTERM or Ctrl-C stops it at once.
pub async fn serve(flags: Flags, listen: Option<String>) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let config = Config::resolve(&flags, env)?;
    let admin_token = admin_token(
        std::env::var(ADMIN_TOKEN_ENV).ok(),
        std::env::var_os(ADMIN_TOKEN_FILE_ENV).map(std::path::PathBuf::from),
    )?;
    let listen = match (listen, env(LISTEN_ENV)) {
        (Some(flag), _) => parse_listen(&flag).map_err(|e| anyhow::anyhow!("--listen: {e}"))?,
        (None, Some(var)) => parse_listen(&var)
            .map_err(|e| anyhow::anyhow!("environment variable {LISTEN_ENV}: {e}"))?,
        (None, None) => DEFAULT_LISTEN.to_owned(),
    };
    // Redis may come up after Sluice: start unready (/readyz says so),
    // answer by each policy's on_store_error, and connect in the background.
    let (store, handles) = stores::open_resilient(
        &config.store,
        &config.redis,
        &config.memory,
        Connecting::InBackground,
    )
    .await?;
    if let Some(memory) = &handles.memory {
        stores::purge_every_second(memory);
    }
    let budgets = handles.budgets.clone();
    if let Some(budgets) = &budgets {
        stores::return_idle_slices(budgets);
    }
    let listener = listener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut listeners = Listeners::http(listener);
    let mut grpc_address = None;
    if let Some(grpc_listen) = &config.grpc.listen {
        let grpc = listener::bind(grpc_listen)
            .await
            .with_context(|| format!("cannot listen for gRPC on {grpc_listen}"))?;
        grpc_address = Some(grpc.local_addr()?);
        listeners = listeners.with_grpc(grpc, config.grpc.clone());
    }
    let summary = Summary::of(&config);
    let limiter = Limiter::new(store, config.policies);
    let service = DecisionService::with_handles(limiter, config.store.kind(), admin_token, handles);
    service.set_forward_auth(config.forward_auth);
    let envoy_path = config.envoy.path.clone();
    let merge = config.envoy.options.merge_domains;
    service.set_envoy(crate::envoy::EnvoyState {
        config: config.envoy.rules,
        options: config.envoy.options,
    });
    if let Some(path) = envoy_path {
        envoy_watch::EnvoyWatch::new(&path, merge).spawn(service.clone(), envoy_watch::POLL_EVERY);
    }
    tracing::info!(
        %address,
        config = %summary.config,
        store = %summary.store,
        policies = %summary.policy_names(),
        shadow = %summary.shadow_names(),
        admin_api = service.admin_token().is_some(),
        // Absent (not logged) when gRPC is off, or without Envoy's rules.
        grpc_address = grpc_address.map(tracing::field::display),
        envoy_domains = (summary.envoy.as_ref()).map(|e| tracing::field::display(e.domains.join(","))),
        "sluice listening"
    );
    signals::reload_on_hangup(service.clone(), flags, config.store, env);
    let (first, second) = signals::terminations();
    let served = run(service, listeners, config.server, first);
    tokio::select! {
        served = served => {
            served?;
            // The slices held go back for the other instances to spend.
            if let Some(budgets) = budgets {
                let units = budgets.return_all().await;
                tracing::debug!(units, "local budgets returned");
            }
            tracing::info!("sluice stopped");
        }
        () = second => tracing::warn!("second signal: sluice stopped without draining"),
    }
    Ok(())
}

/// The admin token from `$SLUICE_ADMIN_TOKEN` (`value`) or from the file
/// `$SLUICE_ADMIN_TOKEN_FILE` names (`file`): `None` when neither is set,
/// the token trimmed when one is, and an error when both are, when the file
/// cannot be read, or when the token is blank (only spaces or newlines),
/// which would otherwise turn the admin API on with a token no request can
/// match, or off without a word.
pub fn admin_token(
    value: Option<String>,
    file: Option<std::path::PathBuf>,
) -> anyhow::Result<Option<String>> {
    let (value, from) = match (value, file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => anyhow::bail!(
            "environment variables {ADMIN_TOKEN_ENV} and {ADMIN_TOKEN_FILE_ENV} are both \
             set; set one of them"
        ),
        (Some(value), None) => (value, format!("environment variable {ADMIN_TOKEN_ENV}")),
        (None, Some(path)) => {
            let from = format!("{} (named by {ADMIN_TOKEN_FILE_ENV})", path.display());
            let value = std::fs::read_to_string(&path).map_err(|e| {
                let reason = sluice_config::io_reason(&e);
                anyhow::anyhow!("cannot read the admin token from {from}: {reason}")
            })?;
            (value, from)
        }
    };
    match crate::service::AdminToken::new(&value) {
        Ok(_) => Ok(Some(crate::service::trim_secret(&value).to_owned())),
        Err(e) => anyhow::bail!(
            "{from}: {e}; set a token, or unset the variable to turn the admin API off"
        ),
    }
}
