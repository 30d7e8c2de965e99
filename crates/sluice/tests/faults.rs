//! Fault tests on real Redis processes: a steady load from several
//! concurrent clients on a few keys, through a [`Limiter`] over the
//! [`Resilient`] stack on a [`RedisStore`] with a 300 ms timeout, while
//! the test breaks Redis (kills it, stops it with SIGSTOP, pauses its
//! clients, restarts it empty, flushes its functions and scripts). For
//! each `on_store_error` mode the run asserts:
//!
//! - no panic, and every answer within the timeout plus a margin;
//! - every answer the store did not make is the mode's: `allow` admits
//!   marked degraded, `deny` is an error, `local` is a degraded decision
//!   against the local share, exact among the local decisions;
//! - a store failure never becomes a denial in `allow` or `deny`;
//! - no key admits beyond its limit while Redis is up;
//! - within a second of the fault being lifted the store decides again,
//!   and fresh keys get exactly their limit.
//!
//! The topology is a [`Topology`]: the single node takes every fault
//! above; behind Sentinel and in a Cluster with replicas, the master that
//! serves the keys is killed and a replica takes over (`Failover`), and
//! the same invariants hold, recovery counted from the failover's end.
//!
//! Each run prints its worst latency, how soon the store decided again,
//! and how many units Redis charged for requests it did not admit to a
//! client (`--nocapture` shows it): the figures in `docs/RELIABILITY.md`
//! come from these lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sluice::store::Resilient;
use sluice::{
    Algorithm, Decision, Error, Limiter, LocalShare, OnStoreError, Policy, Quota, RedisOptions,
    RedisStore, Source, SystemClock,
};
use sluice_testkit::{RedisCluster, RedisSentinel, RedisServer};

/// The store's call timeout.
const TIMEOUT: Duration = Duration::from_millis(300);
/// Every answer comes within the timeout and this margin: the issue asks
/// for every decision within the store timeout of its arrival, and the
/// margin is for scheduling on a loaded machine (two cores shared with
/// builds; the breaker and the fallback answer in microseconds).
const MARGIN: Duration = Duration::from_millis(300);
/// Each key's limit: a token bucket of 10 per hour, so that nothing refills
/// during a run and every key's admissions can be counted exactly.
const LIMIT: u64 = 10;
/// The local share in `local` mode: half, so 5 per key.
const SHARE: f64 = 0.5;
/// Concurrent clients, and keys per phase.
const CLIENTS: usize = 8;
const KEYS: usize = 3;
/// The answers each phase waits for before moving on.
const PER_PHASE: usize = 150;
/// The store decides again within this of the fault being lifted: the
/// link's longest reconnect backoff (2 s, jittered up: a connection that
/// timed out while Redis was stopped may be in it), the breaker's open
/// period (500 ms) twice over, a call's timeout, and a margin for a loaded
/// machine. Unloaded it takes about 465 ms; fresh-clone CI runs on a loaded
/// machine took over 1 s and over 3 s. Twice a run never recovered: a reply
/// that Redis wrote only after SIGCONT had taught the batcher an offset to
/// Redis's clock 1 s and more too small, so every later call was refused
/// as late; the batcher now reads Redis `TIME` again after such a refusal
/// (`store::redis::batch`'s test). The bound is generous; a failure names
/// the answers seen and the breaker's state.
const RECOVERY: Duration = Duration::from_secs(12);

/// A Redis deployment the tests can break. A single node takes every
/// fault but `Failover`; Sentinel and Cluster take `Failover` only (the
/// other methods' defaults say so).
trait Topology {
    /// The URL clients connect to.
    fn url(&self) -> String;
    /// Kills every node (SIGKILL).
    fn kill(&mut self) {
        unsupported("kill")
    }
    /// Starts every node again, empty, and waits until they answer.
    fn restart(&mut self) {
        unsupported("restart")
    }
    /// The processes to stop with SIGSTOP and continue with SIGCONT.
    fn pids(&self) -> Vec<u32> {
        unsupported("pids")
    }
    /// Runs `redis-cli` on every node that takes writes.
    fn cli(&self, _args: &[&str]) {
        unsupported("cli")
    }
    /// Kills the master that serves the test's keys, so that a replica
    /// takes over.
    fn kill_master(&mut self) {
        unsupported("kill_master")
    }
    /// Waits until a replica has taken over from the killed master.
    fn await_failover(&mut self) {
        unsupported("await_failover")
    }
    /// Whether `key` is one the test may use: on a cluster, one that the
    /// master `kill_master` kills serves.
    fn serves(&self, _key: &str) -> bool {
        true
    }
}

fn unsupported(what: &str) -> ! {
    panic!("this topology has no {what}")
}

/// One standalone `redis-server`.
struct Single(RedisServer);

impl Topology for Single {
    fn url(&self) -> String {
        self.0.url()
    }
    fn kill(&mut self) {
        self.0.kill();
    }
    fn restart(&mut self) {
        self.0.restart();
    }
    fn pids(&self) -> Vec<u32> {
        self.0.pid().into_iter().collect()
    }
    fn cli(&self, args: &[&str]) {
        self.0.cli(args);
    }
}

/// A master and its replica behind three Sentinels.
struct Sentinel {
    redis: RedisSentinel,
    killed: Option<u16>,
}

impl Topology for Sentinel {
    fn url(&self) -> String {
        self.redis.url()
    }
    fn kill_master(&mut self) {
        self.killed = Some(self.redis.kill_master());
    }
    fn await_failover(&mut self) {
        let old = self.killed.take().expect("a master was killed");
        self.redis.wait_for_failover(old);
    }
}

/// Three masters with a replica each; master 0 is the one killed, and the
/// test's keys are those it serves.
struct Cluster {
    redis: RedisCluster,
    replica: Option<usize>,
}

impl Topology for Cluster {
    fn url(&self) -> String {
        self.redis.url()
    }
    fn kill_master(&mut self) {
        self.replica = Some(self.redis.kill_master(0));
    }
    fn await_failover(&mut self) {
        let replica = self.replica.take().expect("a master was killed");
        self.redis.wait_for_failover(replica);
    }
    fn serves(&self, key: &str) -> bool {
        // The state key's hash tag is the client's key: node 0 serves the
        // key when it answers for `{key}` itself, not with a redirection.
        !self
            .redis
            .cli(0, &["EXISTS", &format!("{{{key}}}")])
            .contains("MOVED")
    }
}

/// The ways the tests break Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Killed, down for a while, then started again (empty).
    Kill,
    /// Stopped with SIGSTOP: connections stay open, nothing answers.
    Sigstop,
    /// `CLIENT PAUSE WRITE`: Redis holds every command that may write,
    /// Sluice's decisions among them (it still answers `PING`). Not `ALL`:
    /// that holds the `CLIENT UNPAUSE` of a new connection too, so the
    /// pause could only end when it expires.
    ClientPause,
    /// Killed and at once started again: in-flight calls die, and the
    /// server comes back with no data and no functions.
    RestartEmpty,
    /// `FUNCTION FLUSH` and `SCRIPT FLUSH`: Sluice's Lua is gone.
    FlushScripts,
    /// The master serving the keys is killed and a replica takes over
    /// (Sentinel, Cluster); lifted when the failover is complete.
    Failover,
}

impl Fault {
    /// Whether the store cannot decide at all until the fault is lifted.
    fn is_outage(self) -> bool {
        matches!(self, Fault::Kill | Fault::Sigstop | Fault::ClientPause)
    }

    fn apply(self, redis: &mut dyn Topology) {
        match self {
            Fault::Kill => redis.kill(),
            Fault::Sigstop => signal(redis, "-STOP"),
            Fault::ClientPause => redis.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]),
            Fault::RestartEmpty => {
                redis.kill();
                redis.restart();
            }
            Fault::FlushScripts => {
                redis.cli(&["FUNCTION", "FLUSH"]);
                redis.cli(&["SCRIPT", "FLUSH"]);
            }
            Fault::Failover => redis.kill_master(),
        }
    }

    fn lift(self, redis: &mut dyn Topology) {
        match self {
            Fault::Kill => redis.restart(),
            Fault::Sigstop => signal(redis, "-CONT"),
            Fault::ClientPause => redis.cli(&["CLIENT", "UNPAUSE"]),
            Fault::Failover => redis.await_failover(),
            Fault::RestartEmpty | Fault::FlushScripts => {}
        }
    }

    /// Whether every unit Redis charged was for an admission a client was
    /// told of. Not after a failover: a call the old master ran, and
    /// replicated, before it died unanswered stays charged on the new one
    /// (the store cannot know it ran).
    fn charges_only_admissions(self) -> bool {
        self != Fault::Failover
    }
}

/// Sends `signal` to every process of `redis` (which the testkit started).
fn signal(redis: &dyn Topology, signal: &str) {
    for pid in redis.pids() {
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }
}

/// Where a run is; each phase's requests use keys of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum Phase {
    /// Redis is up.
    Before,
    /// The fault is in effect.
    During,
    /// The fault is lifted; the store is not yet seen deciding.
    Recovering,
    /// The store decided again.
    After,
}

impl Phase {
    fn from(n: u8) -> Phase {
        [
            Phase::Before,
            Phase::During,
            Phase::Recovering,
            Phase::After,
        ][usize::from(n)]
    }
}

/// One answer.
#[derive(Debug)]
struct Answer {
    /// The phase when the request was sent (its key is that phase's).
    sent: Phase,
    /// The phase when the answer came.
    came: Phase,
    /// When it was sent and when its answer came.
    sent_at: Instant,
    came_at: Instant,
    key: String,
    elapsed: Duration,
    result: Result<Decision, String>,
}

/// Everything the clients heard.
#[derive(Default)]
struct Log {
    answers: Mutex<Vec<Answer>>,
}

impl Log {
    fn count(&self, phase: Phase) -> usize {
        (self.answers.lock().iter())
            .filter(|a| a.sent == phase && a.came == phase)
            .count()
    }

    /// How the answers to requests sent in `phase` came: each source or
    /// error, with its count.
    fn outcomes(&self, phase: Phase) -> String {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for a in self.answers.lock().iter().filter(|a| a.sent == phase) {
            let outcome = match &a.result {
                Ok(d) => format!("{:?}", d.source),
                Err(e) => e.clone(),
            };
            *counts.entry(outcome).or_default() += 1;
        }
        format!("answers sent in {phase:?}: {counts:?}")
    }

    fn store_decided_in(&self, phase: Phase) -> bool {
        (self.answers.lock().iter())
            .any(|a| a.sent == phase && matches!(&a.result, Ok(d) if d.source == Source::Store))
    }
}

/// Polls `done` every few milliseconds, for at most `within`.
async fn until(within: Duration, what: &str, done: impl Fn() -> bool) -> Duration {
    until_or_explain(within, what, done, String::new).await
}

/// [`until`], naming what was seen (`seen()`) when it fails.
async fn until_or_explain(
    within: Duration,
    what: &str,
    done: impl Fn() -> bool,
    seen: impl Fn() -> String,
) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < within,
            "{what} took over {within:?}; {}",
            seen()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

/// The limiter every client shares: policy `api` in `mode`, over the
/// resilient stack on `url`.
async fn limiter(url: &str, mode: OnStoreError) -> Limiter<Resilient<RedisStore>> {
    let options = RedisOptions::default().with_timeout(TIMEOUT);
    let store = RedisStore::connect_with(url, options).await.unwrap();
    let quota = Quota::new(
        Algorithm::TokenBucket,
        LIMIT,
        Duration::from_secs(3600),
        None,
    )
    .unwrap();
    let policy = Policy::new("api", quota)
        .unwrap()
        .with_on_store_error(mode)
        .with_local_share(LocalShare::new(SHARE).unwrap());
    Limiter::new(Resilient::new(store, SystemClock), [policy])
}

/// Runs `fault` on `redis` under load with every policy in `mode`, and
/// checks every answer. Returns the worst latency.
async fn run(redis: &mut dyn Topology, fault: Fault, mode: OnStoreError) -> Duration {
    let limiter = limiter(&redis.url(), mode).await;
    let log = Arc::new(Log::default());
    let phase = Arc::new(AtomicU8::new(Phase::Before as u8));
    let stop = Arc::new(AtomicBool::new(false));
    // A prefix per run, so that runs on one server never share keys; each
    // phase's keys are ones the topology serves where the fault strikes.
    let run = format!("{fault:?}-{mode}");
    let keys: Arc<HashMap<u8, Vec<String>>> = Arc::new(
        (0..4u8)
            .map(|p| {
                let keys = (0..)
                    .map(|i| format!("{run}-{:?}-{i}", Phase::from(p)))
                    .filter(|key| redis.serves(key))
                    .take(KEYS)
                    .collect();
                (p, keys)
            })
            .collect(),
    );
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (limiter, log) = (limiter.clone(), Arc::clone(&log));
            let (phase, stop, keys) = (Arc::clone(&phase), Arc::clone(&stop), Arc::clone(&keys));
            tokio::spawn(async move {
                let mut n = client;
                while !stop.load(Ordering::SeqCst) {
                    let sent = Phase::from(phase.load(Ordering::SeqCst));
                    let key = keys[&(sent as u8)][n % KEYS].clone();
                    n += 1;
                    let sent_at = Instant::now();
                    let result = limiter.check("api", &key, 1).await;
                    let came_at = Instant::now();
                    let elapsed = came_at - sent_at;
                    let came = Phase::from(phase.load(Ordering::SeqCst));
                    let result = result.map_err(|e| match e {
                        Error::Store(e) => e.kind().to_owned(),
                        other => panic!("not a store error: {other}"),
                    });
                    let answer = Answer {
                        sent,
                        came,
                        sent_at,
                        came_at,
                        key,
                        elapsed,
                        result,
                    };
                    log.answers.lock().push(answer);
                    // A steady load, not a spin: at most ~1000 a second
                    // per client, however fast the fallback answers.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    let enough = |p: Phase| {
        let log = Arc::clone(&log);
        move || log.count(p) >= PER_PHASE
    };
    let during = "the load during the fault";
    until(
        Duration::from_secs(10),
        "the load before the fault",
        enough(Phase::Before),
    )
    .await;
    // The phase changes before the fault and its lifting begin, and their
    // instants are kept: a request counts as during the fault only if it
    // was sent once the fault was in effect and answered before its
    // lifting began.
    phase.store(Phase::During as u8, Ordering::SeqCst);
    // The testkit blocks (it waits for processes): off the clients' threads.
    tokio::task::block_in_place(|| fault.apply(redis));
    let applied = Instant::now();
    until(Duration::from_secs(10), during, enough(Phase::During)).await;
    let lifting = Instant::now();
    tokio::task::block_in_place(|| fault.lift(redis));
    phase.store(Phase::Recovering as u8, Ordering::SeqCst);
    let recovery = until_or_explain(
        RECOVERY,
        "recovery",
        || log.store_decided_in(Phase::Recovering),
        || {
            let breaker = limiter.store().health().breaker_state();
            format!("{}; breaker {breaker:?}", log.outcomes(Phase::Recovering))
        },
    )
    .await;
    if fault == Fault::Failover {
        // A cluster keeps sending some calls to the dead master's address
        // for a moment after the first success on the new one (its slot
        // map refreshes; up to ~70 ms measured), which can open the breaker
        // once more. Recovery is asserted above; "after" starts once the
        // breaker's open period has passed twice.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    phase.store(Phase::After as u8, Ordering::SeqCst);
    until(
        Duration::from_secs(10),
        "the load after",
        enough(Phase::After),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let answers = std::mem::take(&mut *log.answers.lock());
    check(&answers, fault, mode, (applied, lifting));
    // What Redis spent on the fault's keys beyond the admissions the
    // clients were told of: requests answered as failed (or by the
    // fallback) that Redis still executed when it resumed.
    let mut charged = 0;
    for key in &keys[&(Phase::During as u8)] {
        let told = (answers.iter())
            .filter(|a| &a.key == key)
            .filter(|a| matches!(&a.result, Ok(d) if d.source == Source::Store && d.allowed))
            .count() as u64;
        // The key as it stands: a peek of cost 0.
        let quota = *limiter.policy("api").unwrap().quota();
        let standing =
            sluice::Store::peek(limiter.store(), &sluice::Check::new("api", key, &quota, 0))
                .await
                .unwrap();
        assert_eq!(standing.source, Source::Store);
        charged += (LIMIT - standing.remaining).saturating_sub(told);
    }
    let worst = answers.iter().map(|a| a.elapsed).max().unwrap_or_default();
    let fallbacks = (answers.iter())
        .filter(|a| !matches!(&a.result, Ok(d) if d.source == Source::Store))
        .count();
    eprintln!(
        "fault {fault:?}, mode {mode}: {} answers, {fallbacks} not by the store, worst latency {worst:?}, store deciding {recovery:?} after the fault was lifted, {charged} units charged in Redis for answers that were not its admissions",
        answers.len()
    );
    if fault.charges_only_admissions() {
        assert_eq!(
            charged, 0,
            "{fault:?}/{mode}: units charged for failed answers"
        );
    }
    worst
}

/// Every invariant of the module docs, on every answer of one run.
fn check(
    answers: &[Answer],
    fault: Fault,
    mode: OnStoreError,
    (applied, lifting): (Instant, Instant),
) {
    let local_limit = LocalShare::new(SHARE).unwrap().scale(LIMIT);
    let mut by_key: HashMap<&str, (Phase, Vec<&Decision>, Vec<&Decision>)> = HashMap::new();
    for a in answers {
        let at = format!("{fault:?}/{mode}: {a:?}");
        assert!(a.elapsed <= TIMEOUT + MARGIN, "too slow: {at}");
        match (&a.result, mode) {
            (Ok(d), _) if d.source == Source::Store => {}
            (Ok(d), OnStoreError::Allow) => assert!(d.allowed && d.degraded(), "{at}"),
            (Ok(d), OnStoreError::Local) => assert!(d.degraded(), "{at}"),
            (Err(_), OnStoreError::Deny) => {}
            _ => panic!("not the mode's answer: {at}"),
        }
        // Before the fault and after the store is seen deciding, Redis is
        // up: the store decides everything.
        if a.sent == a.came && matches!(a.sent, Phase::Before | Phase::After) {
            assert!(
                matches!(&a.result, Ok(d) if d.source == Source::Store),
                "{at}"
            );
        }
        // Throughout an outage nothing is decided by the store.
        if fault.is_outage() && a.sent_at >= applied && a.came_at <= lifting {
            assert!(
                !matches!(&a.result, Ok(d) if d.source == Source::Store),
                "{at}"
            );
        }
        let entry = by_key
            .entry(&a.key)
            .or_insert((a.sent, Vec::new(), Vec::new()));
        if let Ok(d) = &a.result {
            let list = if d.source == Source::Store {
                &mut entry.1
            } else {
                &mut entry.2
            };
            list.push(d);
        }
    }
    for (key, (sent, by_store, local)) in &by_key {
        let admitted = by_store.iter().filter(|d| d.allowed).count() as u64;
        let at = format!("{fault:?}/{mode}: key {key}");
        // No admission beyond the limit while Redis is up. Keys sent to
        // before a restart lost their state with it: only the others.
        if !matches!(fault, Fault::Kill | Fault::RestartEmpty) || *sent == Phase::After {
            assert!(admitted <= LIMIT, "{at}: the store admitted {admitted}");
        }
        // After the recovery, exactly the limit.
        if *sent == Phase::After {
            let want = LIMIT.min(by_store.len() as u64);
            assert_eq!(admitted, want, "{at}: {} answers", by_store.len());
        }
        if mode == OnStoreError::Local {
            let got = local.iter().filter(|d| d.allowed).count() as u64;
            assert_eq!(
                got,
                local_limit.min(local.len() as u64),
                "{at}: local admissions"
            );
        }
    }
}

/// Runs `fault` once per mode, each on a fresh server.
async fn every_mode(fault: Fault) {
    for mode in OnStoreError::ALL {
        let mut redis = Single(RedisServer::start());
        run(&mut redis, fault, mode).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_failing_over() {
    for mode in OnStoreError::ALL {
        let mut redis = Sentinel {
            redis: tokio::task::block_in_place(|| RedisSentinel::start(3)),
            killed: None,
        };
        run(&mut redis, Fault::Failover, mode).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_failing_over() {
    for mode in OnStoreError::ALL {
        let mut redis = Cluster {
            redis: tokio::task::block_in_place(RedisCluster::with_replicas),
            replica: None,
        };
        run(&mut redis, Fault::Failover, mode).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_started_again() {
    every_mode(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_with_sigstop_and_continued() {
    every_mode(Fault::Sigstop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pausing_its_clients() {
    every_mode(Fault::ClientPause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty() {
    every_mode(Fault::RestartEmpty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_losing_its_functions_and_scripts() {
    every_mode(Fault::FlushScripts).await;
}
