//! `sluice bench`: a load generator that drives the library directly (no
//! HTTP) against any store, to size a deployment and to compare stores.
//!
//! `concurrency` tasks each loop until the deadline: pick a key (uniform or
//! Zipf over `keys` pre-made keys, from a seeded generator), decide, and
//! record the decision's latency. On Redis the tasks' decisions are in flight
//! together on one multiplexed connection, as a server's requests would be.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;
use serde::Serialize;
use sluice::store::LocalBudgets;
use sluice::{
    Algorithm, BoxStore, Limiter, LocalBudget, Policy, Quota, RedisOptions, RedisStore, SystemClock,
};

use crate::config::StoreSpec;
use crate::stores::{self, Connecting};

/// How keys are chosen for each decision.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Distribution {
    /// Every key equally often.
    Uniform,
    /// A few keys very often, most rarely (Zipf, exponent 1): real traffic.
    Zipf,
}

/// How a bench on Redis has its decisions made: the store's own choice, or
/// one path forced (to compare them on one Redis).
#[derive(Clone, Copy, Debug, Default, PartialEq, clap::ValueEnum)]
pub enum RedisPath {
    /// As a deployment would: the module if loaded, else Functions, else
    /// `EVALSHA`.
    #[default]
    Auto,
    /// The native module's `SLUICE.CALL`; the bench fails if Redis has no
    /// such command rather than measure another path.
    Module,
    /// The Lua library as a Redis Function (`FCALL`), never the module.
    Function,
    /// The Lua library by `EVALSHA`, never the module nor Functions.
    Script,
}

impl RedisPath {
    /// The store's options that make it take this path.
    fn options(self, options: RedisOptions) -> RedisOptions {
        match self {
            RedisPath::Auto | RedisPath::Module => options,
            RedisPath::Function => options.with_module(false),
            RedisPath::Script => options.with_module(false).with_functions(false),
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The store to decide on.
    pub store: StoreSpec,
    /// On Redis, which path decides.
    pub redis_path: RedisPath,
    /// The quota every key gets.
    pub quota: Quota,
    /// How many distinct keys.
    pub keys: u64,
    /// How keys are picked.
    pub distribution: Distribution,
    /// Decisions in flight at once.
    pub concurrency: usize,
    /// How long to run.
    pub duration: Duration,
    /// Units each decision charges.
    pub cost: u64,
    /// On Redis, the bench policy's local budget (`--local-budget`).
    pub local_budget: Option<LocalBudget>,
    /// On Redis, whether concurrent decisions share calls
    /// ([`RedisOptions::batching`]).
    pub batching: bool,
}

/// Reads `--local-budget`: `MAX_OVERSHOOT,INSTANCES`, such as `0.01,3`.
pub fn parse_local_budget(text: &str) -> Result<LocalBudget, String> {
    let (overshoot, instances) = text
        .split_once(',')
        .ok_or_else(|| format!("expected MAX_OVERSHOOT,INSTANCES such as 0.01,3, got {text:?}"))?;
    let overshoot: f64 = overshoot
        .trim()
        .parse()
        .map_err(|e| format!("{overshoot:?}: {e}"))?;
    let instances: u32 = instances
        .trim()
        .parse()
        .map_err(|e| format!("{instances:?}: {e}"))?;
    LocalBudget::new(overshoot, instances).map_err(|e| e.to_string())
}

/// What a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The store's kind.
    pub store: &'static str,
    /// On Redis, the path that made the decisions: `module`, `function` or
    /// `script` (none on memory).
    pub redis_path: Option<&'static str>,
    /// The algorithm.
    pub algorithm: &'static str,
    /// Distinct keys.
    pub keys: u64,
    /// `uniform` or `zipf`.
    pub distribution: &'static str,
    /// Decisions in flight at once.
    pub concurrency: usize,
    /// Seconds the run took.
    pub seconds: f64,
    /// Decisions made.
    pub decisions: u64,
    /// Decisions per second.
    pub decisions_per_sec: f64,
    /// The share of decisions that admitted.
    pub allowed_ratio: f64,
    /// Calls that failed.
    pub errors: u64,
    /// Latency percentiles, in microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// The slowest decision.
    pub max_us: f64,
}

/// The policy name a bench decides under; on Redis its keys live under the
/// prefix `sluice-bench`, away from a deployment's own.
pub const BENCH_POLICY: &str = "bench";

/// What a task counted (added up at the end); the latencies go to the
/// shared [`Latencies`].
#[derive(Default)]
struct Tally {
    decisions: u64,
    allowed: u64,
    errors: u64,
}

/// The latencies of every task, in one histogram: the few buckets the
/// decisions fall in stay in the cache, where 64 histograms of their own
/// (350 KB of counts each) had the bench spend ~9% of its CPU in a record
/// (perf record of `sluice bench --concurrency 64` on Redis). The tasks
/// run on one thread, so the lock is never contended.
type Latencies = Arc<std::sync::Mutex<Histogram<u64>>>;

/// Runs the bench `options` describes.
pub async fn run(options: &BenchOptions) -> anyhow::Result<BenchReport> {
    let redis = options.redis_path.options(
        RedisOptions::default()
            .with_prefix("sluice-bench")
            .with_batching(options.batching),
    );
    let (store, redis_store) = match &options.store {
        StoreSpec::Memory => (
            stores::open(&options.store, &redis, Connecting::Wait).await?,
            None,
        ),
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) | StoreSpec::RedisSentinel(url) => {
            let store = stores::redis_store(&options.store, url, &redis, Connecting::Wait).await?;
            // Clones share the connection and the path in use.
            let boxed = match options.local_budget {
                Some(_) => BoxStore::new(LocalBudgets::new(store.clone(), SystemClock)),
                None => BoxStore::new(store.clone()),
            };
            (boxed, Some(store))
        }
    };
    let policy = Policy::new(BENCH_POLICY, options.quota)
        .context("the bench policy")?
        .with_local_budget(options.local_budget);
    let limiter = Limiter::new(store, [policy]);
    let keys: Arc<Vec<String>> =
        Arc::new((0..options.keys).map(|i| format!("bench-{i}")).collect());
    let zipf = Zipf::new(options.keys as f64, 1.0).context("--keys")?;

    let started = Instant::now();
    let deadline = started + options.duration;
    let latencies: Latencies = Arc::new(std::sync::Mutex::new(latency_histogram()?));
    let mut tasks = Vec::with_capacity(options.concurrency);
    for task in 0..options.concurrency {
        let (limiter, keys) = (limiter.clone(), Arc::clone(&keys));
        let latencies = Arc::clone(&latencies);
        let (distribution, cost) = (options.distribution, options.cost);
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(task as u64);
            let mut tally = Tally::default();
            loop {
                // A decision on memory never waits: yield now and then so
                // every task gets its turn on the runtime's threads.
                if tally.decisions % 64 == 63 {
                    tokio::task::yield_now().await;
                }
                let at = Instant::now();
                if at >= deadline {
                    break;
                }
                let index = match distribution {
                    Distribution::Uniform => rng.random_range(0..keys.len()),
                    Distribution::Zipf => (rng.sample(zipf) as usize).saturating_sub(1),
                };
                let key = keys.get(index).map_or("bench-0", String::as_str);
                let result = limiter.check(BENCH_POLICY, key, cost).await;
                let took = at.elapsed();
                tally.decisions += 1;
                match result {
                    Ok(decision) => tally.allowed += u64::from(decision.allowed),
                    Err(_) => tally.errors += 1,
                }
                latencies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .saturating_record(took.as_nanos().try_into().unwrap_or(u64::MAX));
            }
            anyhow::Ok(tally)
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.context("a bench task failed")??;
        total.decisions += tally.decisions;
        total.allowed += tally.allowed;
        total.errors += tally.errors;
    }
    let latency_ns = latencies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let seconds = started.elapsed().as_secs_f64();
    // The path is known once the first call has asked for the module.
    let redis_path = redis_store.as_ref().map(RedisStore::library_form);
    if options.redis_path == RedisPath::Module && redis_path != Some("module") {
        anyhow::bail!(
            "--redis-path module: the Redis has no SLUICE.CALL (load crates/sluice-redis-module's library), \
             the decisions were made by {}",
            redis_path.unwrap_or("memory")
        );
    }
    let us = |q: f64| latency_ns.value_at_quantile(q) as f64 / 1000.0;
    Ok(BenchReport {
        store: options.store.kind(),
        redis_path,
        algorithm: options.quota.algorithm().name(),
        keys: options.keys,
        distribution: match options.distribution {
            Distribution::Uniform => "uniform",
            Distribution::Zipf => "zipf",
        },
        concurrency: options.concurrency,
        seconds,
        decisions: total.decisions,
        decisions_per_sec: total.decisions as f64 / seconds,
        allowed_ratio: if total.decisions == 0 {
            0.0
        } else {
            total.allowed as f64 / total.decisions as f64
        },
        errors: total.errors,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        max_us: latency_ns.max() as f64 / 1000.0,
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} on {}{}: {} keys ({}), {} in flight, {:.1} s",
            self.algorithm,
            self.store,
            self.redis_path
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
            self.keys,
            self.distribution,
            self.concurrency,
            self.seconds
        )?;
        writeln!(f, "decisions/s  {:.0}", self.decisions_per_sec)?;
        writeln!(
            f,
            "decisions    {} ({} errors)",
            self.decisions, self.errors
        )?;
        writeln!(f, "allowed      {:.1}%", self.allowed_ratio * 100.0)?;
        write!(
            f,
            "latency µs   p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            self.p50_us, self.p99_us, self.p999_us, self.max_us
        )
    }
}

/// An empty histogram of latencies from 1 ns to an hour, to 3 significant
/// digits.
fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The quota of a bench from its flags; the error names the flag.
pub fn quota(
    algorithm: Algorithm,
    limit: u64,
    period: Duration,
    burst: Option<u64>,
) -> anyhow::Result<Quota> {
    Quota::new(algorithm, limit, period, burst).context("--algorithm/--limit/--period/--burst")
}
