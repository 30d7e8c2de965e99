//! The harness of the attack tests: a real `sluice serve` with short
//! bounds ([`Target`]), regular clients that keep asking for decisions on
//! their keep-alive connections ([`Regulars`]), newcomers that connect
//! during the attack, a [`Monitor`] of the process's resident memory and
//! sockets, and [`siege`], which runs one attack through all of it and
//! ends it with a SIGTERM while the attack goes on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::waves::{Ending, How, Kind, Wave};
use super::wire::{check_request, read_answer};
use crate::common::{PATIENCE, Serve, write};

/// `server.header_timeout` in the test's configuration: short, so that a
/// slow client's cut shows within the test.
pub const HEADER_TIMEOUT: Duration = Duration::from_millis(1500);
/// `server.body_timeout`.
pub const BODY_TIMEOUT: Duration = Duration::from_millis(1500);
/// `server.send_timeout`.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1500);
/// `server.drain_timeout`: shorter than the head and body timeouts, so
/// that a slow client still held at SIGTERM is closed by the drain
/// deadline, not by its own timeout.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// `server.max_connections`: lowered from 512, so that a few hundred
/// attackers are well beyond it.
pub const MAX_CONNECTIONS: usize = 128;
/// `server.max_header_bytes` (the default, written out).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The largest body the API reads (`sluice_server::http::MAX_BODY`).
pub const MAX_BODY: usize = sluice_server::http::MAX_BODY;
/// What a loaded machine (two cores, other tests running) may add to a
/// configured deadline before a test calls it missed.
pub const MARGIN: Duration = Duration::from_secs(5);
/// Regular clients, each on its own keep-alive connection.
pub const REGULARS: usize = 4;
/// The file descriptors this test process may need at once: the largest
/// wave (300), the regulars, newcomers and the runtime's own, with room.
const FILES_NEEDED: u64 = 1024;

/// How long the regulars are measured before the attack, and under it.
const UNLOADED: Duration = Duration::from_secs(1);
const LOADED: Duration = Duration::from_secs(2);
/// How often a newcomer connects while the attack is in force.
const NEWCOMER_EVERY: Duration = Duration::from_millis(500);
/// A regular's pause between two requests: a steady load, not a flood.
const REGULAR_PAUSE: Duration = Duration::from_millis(5);

/// The test's configuration: the bounds above and one policy that admits
/// every check, so any answer but 200 is a failure.
fn config() -> String {
    format!(
        "server:\n  header_timeout: {}ms\n  body_timeout: {}ms\n  send_timeout: {}ms\n  \
         drain_timeout: {}ms\n  \
         max_connections: {MAX_CONNECTIONS}\n  max_header_bytes: {MAX_HEADER_BYTES}\n\
         policies:\n  {}:\n    limit: 1000000000\n    period: 1h\n",
        HEADER_TIMEOUT.as_millis(),
        BODY_TIMEOUT.as_millis(),
        SEND_TIMEOUT.as_millis(),
        DRAIN_TIMEOUT.as_millis(),
        super::wire::POLICY,
    )
}

/// Raises this process's soft limit on open files to its hard limit when
/// it is below [`FILES_NEEDED`] (`sluice serve`, started after, inherits
/// it); fails, saying how to fix it, when the hard limit is too low.
pub fn enough_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= FILES_NEEDED,
        "the attack tests need {FILES_NEEDED} open files and the hard limit is {hard}: \
         raise it (`ulimit -Hn {FILES_NEEDED}` as root, or LimitNOFILE in systemd)"
    );
    if limit.current.is_some_and(|soft| soft < FILES_NEEDED) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: limit.maximum,
            },
        )
        .expect("the soft limit can be raised to the hard one");
    }
}

/// One attack test at a time: each loads the machine, and its figures
/// mean something only when it runs alone.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `sluice serve` with [`config`], on a free loopback port.
pub struct Target {
    /// The process.
    pub serve: Serve,
    /// Where it listens.
    pub address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Target {
    /// Starts it and waits until it listens.
    pub fn start() -> Target {
        Target::with_config(&config())
    }

    /// Starts it with the configuration `yaml` instead.
    pub fn with_config(yaml: &str) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "sluice.yaml", yaml);
        let serve = Serve::start(&["--config", file.to_str().unwrap()], &[]);
        let address = serve.base.strip_prefix("http://").unwrap().parse().unwrap();
        Target {
            serve,
            address,
            _dir: dir,
        }
    }
}

/// The resident memory of process `pid` in KiB (`VmRSS`), `None` once it
/// has exited.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The sockets process `pid` has open (its listener, its signal pipes and
/// its connections), `None` once it has exited.
fn sockets(pid: u32) -> Option<usize> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        fds.filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|link| link.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}

/// One reading of the server process.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// When it was taken.
    pub at: Instant,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open sockets.
    pub sockets: usize,
}

/// Reads the server's memory and sockets every 20 ms on a thread of its
/// own (the runtime's threads are busy with the attack), until dropped or
/// the process exits.
pub struct Monitor {
    readings: Arc<Mutex<Vec<Reading>>>,
    done: Arc<AtomicBool>,
}

impl Monitor {
    /// Starts reading process `pid`.
    pub fn start(pid: u32) -> Monitor {
        let readings = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (sink, stop) = (Arc::clone(&readings), Arc::clone(&done));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (Some(rss_kib), Some(sockets)) = (rss_kib(pid), sockets(pid)) else {
                    break;
                };
                let at = Instant::now();
                sink.lock().unwrap().push(Reading {
                    at,
                    rss_kib,
                    sockets,
                });
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Monitor { readings, done }
    }

    /// The readings taken from `since` on.
    pub fn since(&self, since: Instant) -> Vec<Reading> {
        let readings = self.readings.lock().unwrap();
        readings.iter().filter(|r| r.at >= since).copied().collect()
    }

    /// The latest reading.
    pub fn last(&self) -> Reading {
        *self.readings.lock().unwrap().last().expect("a reading")
    }

    /// Waits for a reading taken after now for which `ok` holds, within
    /// [`PATIENCE`]; panics with `what` otherwise.
    pub async fn until(&self, what: &str, ok: impl Fn(&Reading) -> bool) -> Reading {
        let from = Instant::now();
        loop {
            if let Some(r) = self.since(from).into_iter().find(&ok) {
                return r;
            }
            assert!(
                from.elapsed() < PATIENCE,
                "never: {what}; last {:?}",
                self.last()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// One decision request of a client: when it was sent, how long its
/// answer took, and what was wrong with it, if anything.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the request was sent.
    pub at: Instant,
    /// Until its answer was read whole.
    pub took: Duration,
    /// `Err` says what was wrong: no answer, or not a 200 admitting it.
    pub outcome: Result<(), String>,
}

/// Sends one decision request on `tcp` and reads its answer.
pub async fn decide(tcp: &mut TcpStream, buf: &mut Vec<u8>, key: &str) -> Sample {
    let at = Instant::now();
    let exchange = async {
        tcp.write_all(&check_request(key))
            .await
            .map_err(|e| format!("write: {e}"))?;
        let answer = read_answer(tcp, buf)
            .await
            .map_err(|e| format!("read: {e}"))?
            .ok_or("closed with no answer")?;
        let body = String::from_utf8_lossy(&answer.body);
        if answer.status == 200 && body.contains(r#""allowed":true"#) {
            Ok(())
        } else {
            Err(format!("{} {body}", answer.status))
        }
    };
    let outcome = tokio::time::timeout(PATIENCE, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {PATIENCE:?}")));
    Sample {
        at,
        took: at.elapsed(),
        outcome,
    }
}

/// Clients that keep asking for decisions, each on one keep-alive
/// connection made before the attack (a failed one is made again, and its
/// failure recorded).
pub struct Regulars {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Regulars {
    /// Connects [`REGULARS`] clients to `address` and starts them.
    pub async fn start(address: SocketAddr) -> Regulars {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for i in 0..REGULARS {
            let mut tcp = TcpStream::connect(address).await.unwrap();
            let key = format!("regular-{i}");
            let mut buf = Vec::new();
            // One answer first: the connection is then being served.
            let first = decide(&mut tcp, &mut buf, &key).await;
            assert!(first.outcome.is_ok(), "regular {i}: {first:?}");
            let (sink, stopped) = (Arc::clone(&samples), stopped.clone());
            tasks.push(tokio::spawn(async move {
                while !*stopped.borrow() {
                    let sample = decide(&mut tcp, &mut buf, &key).await;
                    let failed = sample.outcome.is_err();
                    sink.lock().unwrap().push(sample);
                    if failed {
                        buf.clear();
                        match TcpStream::connect(address).await {
                            Ok(again) => tcp = again,
                            Err(_) => break,
                        }
                    }
                    tokio::time::sleep(REGULAR_PAUSE).await;
                }
            }));
        }
        Regulars {
            samples,
            stop,
            tasks,
        }
    }

    /// The samples of requests sent within `from..to`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap();
        samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .cloned()
            .collect()
    }

    /// Stops them, each after its request in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// A new client: one connection, one decision request.
async fn newcomer(address: SocketAddr, n: usize) -> Sample {
    let at = Instant::now();
    match tokio::time::timeout(PATIENCE, TcpStream::connect(address)).await {
        Ok(Ok(mut tcp)) => {
            let mut sample = decide(&mut tcp, &mut Vec::new(), &format!("newcomer-{n}")).await;
            sample.at = at;
            sample.took = at.elapsed();
            sample
        }
        Ok(Err(e)) => Sample {
            at,
            took: at.elapsed(),
            outcome: Err(format!("connect: {e}")),
        },
        Err(_) => Sample {
            at,
            took: at.elapsed(),
            outcome: Err("no connection".into()),
        },
    }
}

/// The 99th percentile of the samples' times.
pub fn p99(samples: &[Sample]) -> Duration {
    let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    took.sort_unstable();
    took[(took.len() * 99).div_ceil(100).saturating_sub(1)]
}

/// How long a newcomer may wait for its answer while an attack holds
/// every connection the server serves: the attackers ahead of it in the
/// listen backlog are served `MAX_CONNECTIONS - REGULARS` at a time, and
/// each holds its connection at most a head's, a body's and a stalled
/// answer's timeout; one more round for the newcomer's own turn, and the
/// margin.
pub fn newcomer_bound(attackers: usize) -> Duration {
    let slots = MAX_CONNECTIONS - REGULARS;
    let rounds = u32::try_from(attackers.div_ceil(slots) + 1).unwrap();
    (HEADER_TIMEOUT + BODY_TIMEOUT + SEND_TIMEOUT) * rounds + MARGIN
}

/// The memory the server may hold during and after an attack, in KiB:
/// what it held before, plus for each connection it serves at once a full
/// head and a full body (the most either may buffer) and 64 KiB for the
/// rest (hyper's buffers, the task, the socket's structures): 18 MiB;
/// far below what the unbounded server held (124 MB for 300 slow clients,
/// issue 12). Without `max_header_bytes` (hyper's own 400 KB limit in
/// force) the header floods went 23 MB above it.
pub fn rss_bound_kib(before_kib: u64) -> u64 {
    let per_connection = (MAX_HEADER_BYTES + MAX_BODY + 64 * 1024) as u64 / 1024;
    before_kib + MAX_CONNECTIONS as u64 * per_connection
}

/// What [`siege`] saw, for the test's own assertions and the figures.
#[derive(Debug)]
pub struct Findings {
    /// The first wave's connections, every one ended or stopped.
    pub endings: Vec<Ending>,
    /// The most connections the server held at once in the first wave
    /// (its sockets less the ones it holds anyway).
    pub peak_connections: usize,
}

/// Runs `attack` on a fresh `sluice serve`:
///
/// 1. the regulars alone, for the unloaded figures;
/// 2. the attack's first wave: once every attacker has connected, the
///    regulars and a newcomer every 500 ms are measured for 2 s;
///    the regulars' p99 must stay under max(20 x unloaded p99, 1 s), every
///    request of theirs answered 200; each newcomer answered 200 within
///    [`newcomer_bound`]; the server's connections at most
///    `max_connections`, its memory within [`rss_bound_kib`];
/// 3. the wave stopped, the memory once the connections are gone, within
///    the bound too;
/// 4. a second wave, and SIGTERM in its midst: the process exits 0 within
///    `drain_timeout` and the margin, the attack still going.
///
/// Prints the figures (run with `--nocapture` to see them).
pub async fn siege(name: &str, attack: &[(Kind, usize)]) -> Findings {
    enough_files();
    let mut target = Target::start();
    let pid = target.serve.pid();
    let monitor = Monitor::start(pid);
    let regulars = Regulars::start(target.address).await;
    // Sockets the server holds whatever the clients (its listener, its
    // signals' pipe), read once the regulars have been answered.
    let own = monitor.until("a reading", |_| true).await.sockets - REGULARS;

    // 1. Unloaded.
    let start = Instant::now();
    tokio::time::sleep(UNLOADED).await;
    let unloaded = regulars.between(start, Instant::now());
    let rss_before = monitor.last().rss_kib;
    assert_answered("unloaded", &unloaded);

    // 2. Under attack.
    let attack_started = Instant::now();
    let wave = Wave::start(target.address, attack);
    wave.in_force(PATIENCE).await;
    let loaded_from = Instant::now();
    let mut newcomers = Vec::new();
    while loaded_from.elapsed() < LOADED {
        let n = newcomers.len();
        newcomers.push(tokio::spawn(newcomer(target.address, n)));
        tokio::time::sleep(NEWCOMER_EVERY).await;
    }
    let loaded = regulars.between(loaded_from, Instant::now());
    let mut arrivals = Vec::new();
    for n in newcomers {
        arrivals.push(n.await.unwrap());
    }
    let during = monitor.since(attack_started);
    let endings = wave.stop().await;

    assert_answered("under attack", &loaded);
    assert_answered("newcomers", &arrivals);
    let (p99_unloaded, p99_loaded) = (p99(&unloaded), p99(&loaded));
    // Not a speed claim: "not starved". The machine has two cores shared
    // with other tests and the attackers themselves, so the bound is wide:
    // twenty times the same requests' p99 before the attack, measured in
    // this run, and never less than a second.
    let bound = (p99_unloaded * 20).max(Duration::from_secs(1));
    assert!(
        p99_loaded <= bound,
        "{name}: the regulars' p99 went from {p99_unloaded:?} to {p99_loaded:?} (bound {bound:?})"
    );
    let newcomer_max = arrivals.iter().map(|s| s.took).max().unwrap();
    let wait_bound = newcomer_bound(wave_size(attack));
    assert!(
        newcomer_max <= wait_bound,
        "{name}: a newcomer waited {newcomer_max:?} (bound {wait_bound:?})"
    );
    let peak_connections = during.iter().map(|r| r.sockets).max().unwrap() - own;
    assert!(
        peak_connections <= MAX_CONNECTIONS,
        "{name}: {peak_connections} connections served at once"
    );
    let rss_bound = rss_bound_kib(rss_before);
    let rss_peak = during.iter().map(|r| r.rss_kib).max().unwrap();
    assert!(
        rss_peak <= rss_bound,
        "{name}: {rss_peak} KiB resident under attack, from {rss_before} KiB (bound {rss_bound} KiB)"
    );

    // 3. After: the attackers' connections gone, the memory within bound.
    let after = monitor
        .until("the attackers' connections closed", |r| {
            r.sockets <= own + REGULARS
        })
        .await;
    assert!(
        after.rss_kib <= rss_bound,
        "{name}: {} KiB resident after the attack, from {rss_before} KiB (bound {rss_bound} KiB)",
        after.rss_kib
    );
    regulars.stop().await;

    // 4. SIGTERM while a second wave goes on.
    let wave = Wave::start(target.address, attack);
    wave.in_force(PATIENCE).await;
    let signalled = Instant::now();
    target.serve.signal("TERM");
    let status = tokio::task::block_in_place(|| target.serve.wait_exit());
    let exit_after = signalled.elapsed();
    let still_going = wave.opened.load(Ordering::Relaxed);
    drop(wave.stop().await);
    assert!(
        status.success(),
        "{name}: {status:?}\n{}",
        target.serve.log()
    );
    // The drain deadline, plus the margin for a loaded machine.
    assert!(
        exit_after <= DRAIN_TIMEOUT + MARGIN,
        "{name}: exited {exit_after:?} after SIGTERM\n{}",
        target.serve.log()
    );
    assert!(still_going >= wave_size(attack), "the second wave ran");

    println!(
        "attack {name}: regulars p99 {p99_unloaded:?} unloaded ({} requests), \
         {p99_loaded:?} under attack ({} requests); newcomers {} answered, slowest {newcomer_max:?}; \
         server connections at most {peak_connections}; RSS {rss_before} KiB before, \
         {rss_peak} KiB at most under attack, {} KiB after; exit {exit_after:?} after SIGTERM",
        unloaded.len(),
        loaded.len(),
        arrivals.len(),
        after.rss_kib
    );
    Findings {
        endings,
        peak_connections,
    }
}

fn wave_size(attack: &[(Kind, usize)]) -> usize {
    attack.iter().map(|(_, n)| n).sum()
}

/// Every sample answered 200, and some were taken.
fn assert_answered(phase: &str, samples: &[Sample]) {
    assert!(!samples.is_empty(), "{phase}: no request was made");
    let failed: Vec<_> = samples.iter().filter(|s| s.outcome.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{phase}: {} of {} requests failed, the first: {:?}",
        failed.len(),
        samples.len(),
        failed[0]
    );
}

/// The endings of `kind`, and how many each way.
pub fn of(endings: &[Ending], kind: Kind) -> Vec<&Ending> {
    endings.iter().filter(|e| e.kind == kind).collect()
}

/// A summary of how `endings` ended, for failure messages and figures.
pub fn tally(endings: &[&Ending]) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for e in endings {
        let how = match &e.how {
            How::Broken(_) => "broken".to_owned(),
            how => format!("{how:?}"),
        };
        *counts.entry(how).or_default() += 1;
    }
    format!("{counts:?}")
}

/// Prints how the connections of `kind` ended and how long they were
/// held, for the figures.
pub fn print_endings(name: &str, kind: Kind, endings: &[Ending]) {
    let mine = of(endings, kind);
    let ended: Vec<Duration> = mine
        .iter()
        .filter(|e| e.how != How::Stopped)
        .map(|e| e.held)
        .collect();
    for e in &mine {
        if let How::Broken(why) = &e.how {
            println!("attack {name}: {kind:?}: broken after {:?}: {why}", e.held);
        }
    }
    println!(
        "attack {name}: {kind:?}: {} connections {}, held {:?} to {:?}",
        mine.len(),
        tally(&mine),
        ended.iter().min(),
        ended.iter().max(),
    );
}
