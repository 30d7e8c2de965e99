//! The `sluice` program: parses the command line and runs the command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use sluice::Algorithm;
use sluice_server::bench::{self, BenchOptions, Distribution, RedisPath};
use sluice_server::config::{
    CONFIG_ENV, Config, ENVOY_CONFIG_ENV, Flags, GRPC_LISTEN_ENV, STORE_ENV, StoreSpec,
    parse_duration,
};
use sluice_server::server::LISTEN_ENV;
use sluice_server::{commands, logging, server};

/// Sluice: a rate limiter that decides atomically.
#[derive(Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The configuration and store of a one-shot command.
#[derive(Args)]
struct StoreArgs {
    /// The configuration file (default: the built-in `default` policy on
    /// the memory store).
    #[arg(long, env = CONFIG_ENV)]
    config: Option<PathBuf>,
    /// The store: memory, redis://…, rediss://… or redis+cluster://…
    /// (default: the file's `store`, else memory).
    #[arg(long, env = STORE_ENV, hide_env_values = true)]
    store: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the decision service: the HTTP API, /metrics, /healthz and
    /// /readyz. SIGHUP reloads the configuration; SIGTERM and Ctrl-C drain
    /// the requests in flight and exit. The admin API (DELETE
    /// /v1/limits/…) is on when $SLUICE_ADMIN_TOKEN is set; the log is
    /// shaped by $SLUICE_LOG (a level such as info or debug, or
    /// target=level directives such as info,sluice_server=debug; default
    /// info) and $SLUICE_LOG_FORMAT (text or json); an invalid one stops
    /// start-up. Exits 2 on a start-up error.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// The address to listen on: host:port, :port (every interface,
        /// 0.0.0.0) or a bare port (127.0.0.1 only) [default:
        /// 127.0.0.1:8080]; port 0 picks a free port, which the start-up
        /// log line names.
        #[arg(long, env = LISTEN_ENV)]
        listen: Option<String>,
        /// The address of the gRPC listener (Envoy's rate limit service,
        /// grpc.health.v1 and server reflection), written as --listen
        /// (default: the file's `grpc.listen`, else off); the start-up log
        /// line names it as `grpc_address`.
        #[arg(long, env = GRPC_LISTEN_ENV)]
        grpc_listen: Option<String>,
        /// envoyproxy/ratelimit's configuration, a file or a directory of
        /// .yaml files, for Envoy's rate limit service (default: the
        /// file's `envoy_config`).
        #[arg(long, env = ENVOY_CONFIG_ENV)]
        envoy_config: Option<PathBuf>,
    },
    /// Measures decisions per second and their latency on a store, driving
    /// the library directly (no HTTP). On Redis its keys live under the
    /// prefix `sluice-bench`.
    Bench {
        /// The store: memory, redis://…, rediss://… or redis+cluster://…
        #[arg(long, env = STORE_ENV, hide_env_values = true, default_value = "memory")]
        store: String,
        /// The algorithm.
        #[arg(
            long,
            default_value = "token_bucket",
            value_parser = PossibleValuesParser::new(Algorithm::ALL.map(Algorithm::name))
                .try_map(|name| name.parse::<Algorithm>())
        )]
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
        /// On Redis: spend slices of each key locally, as a policy's
        /// `local_budget` does: MAX_OVERSHOOT,INSTANCES such as 0.01,3.
        #[arg(long, value_parser = bench::parse_local_budget)]
        local_budget: Option<sluice::LocalBudget>,
        /// On Redis, one call per decision instead of packing concurrent
        /// decisions into shared calls (to measure what batching saves).
        #[arg(long)]
        no_batching: bool,
        /// On Redis, which path decides: auto (the module if loaded, else
        /// Functions, else EVALSHA), or module, function or script forced.
        #[arg(long, value_enum, default_value = "auto")]
        redis_path: RedisPath,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Checks a configuration file and prints what it understood (the
    /// store, every policy's algorithm, limit, period, burst, overrides,
    /// shadow mode and on_store_error, Envoy's rules); on errors lists
    /// every one. Exits 0 when valid, 1 when not, 2 without a file.
    Validate {
        /// The YAML configuration file.
        #[arg(env = CONFIG_ENV)]
        file: Option<PathBuf>,
        /// Print what it understood as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Makes one decision, charging the key, and prints it as JSON; exits 0
    /// when allowed, 1 when denied, 2 on an error.
    Check {
        #[command(flatten)]
        store: StoreArgs,
        /// The policy to check against; several, comma-separated
        /// (api,login), are decided all or nothing, as /v1/check with
        /// "policies".
        #[arg(value_delimiter = ',', required = true)]
        policy: Vec<String>,
        /// The client's key.
        key: String,
        /// Units to charge.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        cost: u64,
    },
    /// Prints, as JSON, what a check of cost 1 would be told, charging
    /// nothing; exits 0 when it would be allowed, 1 when denied, 2 on an
    /// error.
    Peek {
        #[command(flatten)]
        store: StoreArgs,
        /// The policy.
        policy: String,
        /// The client's key.
        key: String,
        /// Also print the key's stored state under each of the policy's
        /// limits, under "state": a line in words and its numbers.
        #[arg(long)]
        state: bool,
    },
    /// Forgets a key under a policy (its next check starts afresh); exits
    /// 0 when done, 2 on an error.
    Reset {
        #[command(flatten)]
        store: StoreArgs,
        /// The policy.
        policy: String,
        /// The client's key.
        key: String,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = Given(matches.subcommand().map(|(_, m)| m));
    match cli.command {
        Command::Serve {
            store,
            listen,
            grpc_listen,
            envoy_config,
        } => {
            // Settings read from the environment are left to the
            // configuration, which names the variable in its errors.
            let flags = Flags {
                config: given.flag("config", store.config),
                store: given.flag("store", store.store),
                grpc_listen: given.flag("grpc_listen", grpc_listen),
                envoy_config: given.flag("envoy_config", envoy_config),
            };
            let listen = given.flag("listen", listen);
            let served = logging::init().and_then(|()| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?
                    .block_on(server::serve(flags, listen))
            });
            exit(served.map(|()| ExitCode::SUCCESS))
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
            local_budget,
            no_batching,
            redis_path,
            json,
        } => exit((|| {
            let store = StoreSpec::parse(&store).map_err(|e| anyhow::anyhow!("--store: {e}"))?;
            let options = BenchOptions {
                store,
                redis_path,
                quota: bench::quota(algorithm, limit, period, burst)?,
                keys,
                distribution,
                concurrency: usize::try_from(concurrency)?,
                duration,
                cost,
                local_budget,
                batching: !no_batching,
            };
            let report = run(bench::run(&options))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        })()),
        Command::Validate { file, json } => validate(file, json),
        Command::Check {
            store,
            policy,
            key,
            cost,
        } => with_service(store, &given, |service| async move {
            let snapshot = service.snapshot();
            let names: Vec<&str> = policy.iter().map(String::as_str).collect();
            let printed = commands::check(&snapshot, &names, &key, cost).await?;
            print_decision(&printed, printed.allowed())
        }),
        Command::Peek {
            store,
            policy,
            key,
            state,
        } => with_service(store, &given, |service| async move {
            let snapshot = service.snapshot();
            let peeked = commands::peek(&snapshot, &policy, &key, state).await?;
            print_decision(&peeked, peeked.decision.allowed())
        }),
        Command::Reset { store, policy, key } => {
            with_service(store, &given, |service| async move {
                commands::reset(&service.snapshot(), &policy, &key).await?;
                println!("reset {key:?} under policy {policy:?}");
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// The subcommand's matches: where each value came from.
struct Given<'a>(Option<&'a ArgMatches>);

impl Given<'_> {
    /// `value` if it was given on the command line (not read from the
    /// environment by clap).
    fn flag<T>(&self, id: &str, value: Option<T>) -> Option<T> {
        let typed = self
            .0
            .and_then(|m| m.value_source(id))
            .is_some_and(|source| source == ValueSource::CommandLine);
        value.filter(|_| typed)
    }
}

/// `sluice validate`: the summary (text or JSON), or every error.
fn validate(file: Option<PathBuf>, json: bool) -> ExitCode {
    let Some(file) = file else {
        eprintln!("error: no configuration file: name one, or set {CONFIG_ENV}");
        return ExitCode::from(2);
    };
    match commands::validate(&file) {
        Ok(summary) if json => exit(serde_json::to_string(&summary).map_err(Into::into).map(
            |text| {
                println!("{text}");
                ExitCode::SUCCESS
            },
        )),
        Ok(summary) => {
            let n = summary.policies.len();
            let noun = if n == 1 { "policy" } else { "policies" };
            println!("{}: ok, {n} {noun}", file.display());
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(1)
        }
    }
}

/// Opens the store `args` name and runs `command` on the policies of their
/// configuration.
fn with_service<F, Fut>(args: StoreArgs, given: &Given<'_>, command: F) -> ExitCode
where
    F: FnOnce(sluice_server::service::DecisionService) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let flags = Flags {
        config: given.flag("config", args.config),
        store: given.flag("store", args.store),
        ..Flags::default()
    };
    exit(
        Config::resolve(&flags, |name| std::env::var(name).ok())
            .map_err(anyhow::Error::from)
            .and_then(|config| {
                run(async move {
                    let service = commands::open(config).await?;
                    command(service).await
                })
            }),
    )
}

/// Prints a decision as JSON; exits 0 when allowed, 1 when denied.
fn print_decision(printed: &impl serde::Serialize, allowed: bool) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string(printed)?);
    Ok(ExitCode::from(if allowed { 0 } else { 1 }))
}

/// The exit status of a command: its own, or 2 after printing the error
/// with each of its causes once.
fn exit(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", sluice::error::chain(e.as_ref()));
        ExitCode::from(2)
    })
}

fn run<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
