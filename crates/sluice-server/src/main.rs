//! The `sluice` program: parses the command line and runs the command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sluice::Algorithm;
use sluice_server::bench::{self, BenchOptions, Distribution};
use sluice_server::config::{Config, Flags, STORE_ENV, StoreSpec, parse_duration};
use sluice_server::{commands, logging, server};

/// Sluice: a rate limiter that decides atomically.
#[derive(Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the decision service: the HTTP API, /metrics, /healthz and
    /// /readyz. SIGHUP reloads the configuration; SIGTERM and Ctrl-C drain
    /// the requests in flight and exit. The admin API (DELETE
    /// /v1/limits/…) is on when $SLUICE_ADMIN_TOKEN is set; the log is
    /// shaped by $SLUICE_LOG (a filter, default info) and
    /// $SLUICE_LOG_FORMAT (text or json).
    Serve {
        /// The configuration file (default: $SLUICE_CONFIG, else the
        /// built-in `default` policy on the memory store).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The store: memory, redis://…, rediss://… or redis+cluster://…
        /// (default: $SLUICE_STORE, else the file's `store`).
        #[arg(long)]
        store: Option<String>,
        /// The address to listen on (default: $SLUICE_LISTEN, else
        /// 127.0.0.1:8080); port 0 picks a free port, which the start-up
        /// log line names.
        #[arg(long)]
        listen: Option<String>,
        /// The address of the gRPC listener: Envoy's rate limit service,
        /// grpc.health.v1 and server reflection (default:
        /// $SLUICE_GRPC_LISTEN, else the file's `grpc.listen`, else off);
        /// the start-up log line names it as `grpc_address`.
        #[arg(long)]
        grpc_listen: Option<String>,
        /// envoyproxy/ratelimit's configuration, a file or a directory of
        /// .yaml files, for Envoy's rate limit service (default:
        /// $SLUICE_ENVOY_CONFIG, else the file's `envoy_config`).
        #[arg(long)]
        envoy_config: Option<PathBuf>,
    },
    /// Measures decisions per second and their latency on a store, driving
    /// the library directly (no HTTP). On Redis its keys live under the
    /// prefix `sluice-bench`.
    Bench {
        /// The store: memory, redis://…, rediss://… or redis+cluster://…
        /// (default: $SLUICE_STORE, else memory).
        #[arg(long)]
        store: Option<String>,
        /// The algorithm.
        #[arg(long, default_value = "token_bucket")]
        algorithm: Algorithm,
        /// Units per period, per key.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// The period, such as 1s or 1m.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        period: Duration,
        /// The bucket's capacity (bucket algorithms; default: the limit).
        #[arg(long)]
        burst: Option<u64>,
        /// Distinct keys (1: one hot key).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        keys: u64,
        /// How keys are picked.
        #[arg(long, value_enum, default_value = "uniform")]
        distribution: Distribution,
        /// Decisions in flight at once.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        concurrency: u64,
        /// How long to run, such as 5s.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
        /// Units each decision charges.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        cost: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Checks a configuration file; lists every error and exits 1 if any.
    Validate {
        /// The YAML configuration file.
        file: PathBuf,
    },
    /// Makes one decision and prints it as JSON; exits 0 when allowed,
    /// 1 when denied, 2 on an error.
    Check {
        /// The configuration file (default: $SLUICE_CONFIG, else the
        /// built-in `default` policy on the memory store).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The store: memory, redis://…, rediss://… or redis+cluster://…
        /// (default: $SLUICE_STORE, else the file's `store`).
        #[arg(long)]
        store: Option<String>,
        /// The policy to check against.
        policy: String,
        /// The client's key.
        key: String,
        /// Units to charge.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        cost: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            store,
            listen,
            grpc_listen,
            envoy_config,
        } => {
            let flags = Flags {
                config,
                store,
                grpc_listen,
                envoy_config,
            };
            let served = logging::init().and_then(|()| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?
                    .block_on(server::serve(flags, listen))
            });
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench {
            store,
            algorithm,
            limit,
            period,
            burst,
            keys,
            distribution,
            concurrency,
            duration,
            cost,
            json,
        } => {
            let report =
                bench_options(store, algorithm, limit, period, burst).and_then(|(store, quota)| {
                    let options = BenchOptions {
                        store,
                        quota,
                        keys,
                        distribution,
                        concurrency: usize::try_from(concurrency)?,
                        duration,
                        cost,
                    };
                    tokio::runtime::Builder::new_multi_thread()
                        .enable_all()
                        .build()?
                        .block_on(bench::run(&options))
                });
            match report {
                Ok(report) if json => match serde_json::to_string(&report) {
                    Ok(text) => {
                        println!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(2)
                    }
                },
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Validate { file } => match commands::validate(&file) {
            Ok(n) => {
                println!(
                    "{}: ok, {n} {}",
                    file.display(),
                    if n == 1 { "policy" } else { "policies" }
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(1)
            }
        },
        Command::Check {
            config,
            store,
            policy,
            key,
            cost,
        } => {
            let flags = Flags {
                config,
                store,
                ..Flags::default()
            };
            let result = Config::resolve(&flags, |name| std::env::var(name).ok())
                .map_err(anyhow::Error::from)
                .and_then(|config| run(commands::check(config, &policy, &key, cost)));
            match result.and_then(|body| Ok((body.allowed, serde_json::to_string(&body)?))) {
                Ok((allowed, json)) => {
                    println!("{json}");
                    ExitCode::from(if allowed { 0 } else { 1 })
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// The store and quota a bench's flags name.
fn bench_options(
    store: Option<String>,
    algorithm: Algorithm,
    limit: u64,
    period: Duration,
    burst: Option<u64>,
) -> anyhow::Result<(StoreSpec, sluice::Quota)> {
    let store = store
        .or_else(|| std::env::var(STORE_ENV).ok())
        .map_or(Ok(StoreSpec::Memory), |s| StoreSpec::parse(&s))
        .map_err(|e| anyhow::anyhow!("--store: {e}"))?;
    Ok((store, bench::quota(algorithm, limit, period, burst)?))
}

fn run<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
