//! The `sluice` program: parses the command line and runs the command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_server::config::{Config, Flags};
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
        } => {
            let flags = Flags { config, store };
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
            let flags = Flags { config, store };
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

fn run<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
