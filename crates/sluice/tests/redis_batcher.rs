//! Issue 11, the Redis connection and batcher, against a real redis-server:
//! every check answered within the timeout of its arrival while Redis is
//! paused or stopped, nothing charged for a check answered as failed, the
//! first request after a restart, a store made while Redis is down, a
//! transient `FUNCTION LOAD` failure, a full queue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use sluice::store::redis::QueueFull;
use sluice::{Algorithm, Check, Quota, RedisOptions, RedisStore, Store, StoreError};
use sluice_testkit::{RedisCluster, RedisSentinel, RedisServer};

use common::process::{signal, wait_until_stopped, wait_until_unread_bytes};

/// The store timeout of these tests.
const TIMEOUT: Duration = Duration::from_millis(200);
/// What an answer may take beyond the timeout: scheduling on a loaded
/// test machine (the tests share two cores with builds), never Redis.
const MARGIN: Duration = Duration::from_millis(200);

/// Checks at once while Redis is stalled: five calls' worth, so that a
/// check waiting for the calls before it would answer after two timeouts.
const CONCURRENT: usize = 600;

fn options() -> RedisOptions {
    RedisOptions::default().with_timeout(TIMEOUT)
}

fn fixed_window() -> Quota {
    Quota::new(
        Algorithm::FixedWindow,
        1000,
        Duration::from_secs(3600),
        None,
    )
    .unwrap()
}

/// How Redis stops answering.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// `CLIENT PAUSE … ALL`: Redis holds every client's commands.
    Pause,
    /// SIGSTOP: the process stops; the kernel holds what is sent.
    Stop,
}

impl Stall {
    fn begin(self, server: &RedisServer) {
        match self {
            Stall::Pause => assert_eq!(server.cli(&["client", "pause", "1000", "all"]), "OK"),
            Stall::Stop => signal(server.pid().unwrap(), "-STOP"),
        }
    }

    fn end(self, server: &RedisServer) {
        match self {
            Stall::Pause => assert_eq!(server.cli(&["client", "unpause"]), "OK"),
            Stall::Stop => signal(server.pid().unwrap(), "-CONT"),
        }
    }
}

/// [`CONCURRENT`] concurrent checks while Redis is stalled: each is
/// answered `Timeout` within the timeout of its arrival (plus scheduling),
/// however many wait; and once Redis resumes and runs the calls it held,
/// none of them has charged anything (the library refused them as late).
async fn a_stalled_redis_answers_in_time_and_charges_nothing(stall: Stall) {
    let server = RedisServer::start();
    let store = RedisStore::connect_with(&server.url(), options())
        .await
        .unwrap();
    let quota = fixed_window();
    // Loads the function, and tells the store Redis's time.
    let warm = store
        .decide_one(&Check::new("stall", "warm", &quota, 1))
        .await;
    assert!(warm.unwrap().allowed);

    stall.begin(&server);
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let quota = fixed_window();
                let key = format!("client-{i}");
                let arrived = Instant::now();
                let answer = store
                    .decide_one(&Check::new("stall", &key, &quota, 1))
                    .await;
                (answer, arrived.elapsed())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for task in tasks {
        let (answer, took) = task.await.unwrap();
        assert!(
            matches!(answer, Err(StoreError::Timeout(t)) if t == TIMEOUT),
            "{stall:?}: {answer:?}"
        );
        slowest = slowest.max(took);
    }
    stall.end(&server);
    println!("{stall:?}: the slowest of {CONCURRENT} answers took {slowest:?}");
    assert!(
        slowest <= TIMEOUT + MARGIN,
        "{stall:?}: an answer took {slowest:?}"
    );

    // A peek goes on the same connection after the calls Redis held, so
    // once it is answered Redis has run them all.
    let peek = store
        .peek(&Check::new("stall", "client-0", &quota, 0))
        .await;
    assert_eq!(peek.unwrap().remaining, 1000, "{stall:?}");
    assert_eq!(
        server.cli(&["dbsize"]),
        "1",
        "{stall:?}: only the warm-up charged"
    );
    let errors = server.cli(&["info", "errorstats"]);
    assert!(
        errors.contains("errorstat_LATE:count="),
        "{stall:?}: Redis ran calls after their deadline and refused them: {errors}"
    );
    // And the store decides again.
    let after = store
        .decide_one(&Check::new("stall", "client-0", &quota, 1))
        .await;
    assert_eq!(after.unwrap().remaining, 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_a_paused_redis_answers_in_time_and_charges_nothing() {
    a_stalled_redis_answers_in_time_and_charges_nothing(Stall::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_a_stopped_redis_answers_in_time_and_charges_nothing() {
    a_stalled_redis_answers_in_time_and_charges_nothing(Stall::Stop).await;
}

/// A call Redis runs before its deadline but answers after it (Redis busy
/// with another client's script between the two) charges its check, whose
/// caller is answered `Timeout`: the store refunds it when the reply comes.
/// Redis is stopped while the call and the busy script are sent, so that
/// it reads both in one turn of its loop and runs the call first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_a_late_reply_is_refunded() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(500);
    let store = RedisStore::connect_with(&server.url(), options().with_timeout(timeout))
        .await
        .unwrap();
    let quota = fixed_window();
    let warm = store
        .decide_one(&Check::new("late", "warm", &quota, 1))
        .await;
    assert!(warm.unwrap().allowed);
    server.cli(&["config", "resetstat"]);
    // The other client, connected before Redis stops: a script that keeps
    // Redis busy for 1.5 s (well past the deadline, under the busy-script
    // threshold of 5 s).
    let mut busy = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let script = "local s = redis.call('TIME') repeat local n = redis.call('TIME') \
                  until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 1500000 return 1";

    signal(server.pid().unwrap(), "-STOP");
    wait_until_stopped(server.pid().unwrap());
    let decision = {
        let store = store.clone();
        tokio::spawn(async move {
            let quota = fixed_window();
            store.decide_one(&Check::new("late", "k", &quota, 1)).await
        })
    };
    // The call is in Redis's socket before the script is written, so Redis
    // reads both in one turn and runs the call first.
    // (Blocking here is fine: the store's tasks run on the runtime's
    // workers, not on the test's thread.)
    wait_until_unread_bytes(server.port());
    let command = format!(
        "*3\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n0\r\n",
        script.len()
    );
    std::io::Write::write_all(&mut busy, command.as_bytes()).unwrap();
    signal(server.pid().unwrap(), "-CONT");

    let answer = decision.await.unwrap();
    assert!(
        matches!(answer, Err(StoreError::Timeout(t)) if t == timeout),
        "{answer:?}"
    );
    let mut reply = [0u8; 16];
    let n = std::io::Read::read(&mut busy, &mut reply).unwrap();
    assert_eq!(&reply[..n], b":1\r\n", "the script ran");
    // The refund follows the late reply: polled.
    let key = "sluice:{k}:late";
    let mut exists = String::new();
    for _ in 0..100 {
        exists = server.cli(&["exists", key]);
        if exists == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = server.cli(&["info", "commandstats"]) + &server.cli(&["info", "errorstats"]);
    assert_eq!(exists, "0", "the charge was given back: {stats}");
    // The path: the call ran in time (it did not fail as late), and a
    // refund followed it.
    assert!(
        stats.contains("cmdstat_fcall:calls=2,") && !stats.contains("errorstat"),
        "{stats}"
    );
}

/// The connection lost in a Redis restart is replaced when it is lost, not
/// by a failing request: the first request after each restart succeeds.
/// (On a runtime of its own threads, as a server's: this test's thread
/// blocks while it kills and restarts Redis, and the runtime must notice
/// the loss meanwhile, as an idle server's does.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_the_first_request_after_a_redis_restart_succeeds() {
    let mut server = RedisServer::start();
    let store = RedisStore::connect_with(&server.url(), options())
        .await
        .unwrap();
    let quota = fixed_window();
    let check = Check::new("restart", "k", &quota, 1);
    assert!(store.decide_one(&check).await.unwrap().allowed);
    for round in 0..3 {
        server.kill();
        server.restart();
        let first = store.decide_one(&check).await;
        assert_eq!(
            first.unwrap().remaining,
            999,
            "round {round}: the restarted Redis is empty"
        );
    }
}

/// A store can be made while Redis is down: it fails transiently until
/// Redis is up, then decides at once. `connect_with` still waits to be
/// connected, and refuses a zero timeout.
#[tokio::test]
async fn i11_a_store_made_while_redis_is_down_decides_once_it_is_up() {
    let mut server = RedisServer::start();
    server.kill();
    let url = server.url();
    let down = RedisStore::connect_with(&url, options()).await;
    assert!(down.is_err(), "connect_with waits for Redis");
    let zero = RedisStore::open(&url, options().with_timeout(Duration::ZERO)).await;
    assert!(matches!(zero, Err(StoreError::Protocol(_))));
    assert!(RedisStore::open("http://nowhere", options()).await.is_err());

    let store = RedisStore::open(&url, options()).await.unwrap();
    let quota = fixed_window();
    let check = Check::new("late", "k", &quota, 1);
    let error = store.decide_one(&check).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(store.ping().await.is_err());

    server.restart();
    // The first request after Redis came up asks for an attempt at once.
    assert!(store.decide_one(&check).await.unwrap().allowed);
    assert!(store.ping().await.is_ok());
}

/// A store on a Redis Cluster can be made while the cluster is down too
/// (it fails transiently), and one made while it is up decides at once.
#[tokio::test]
async fn i11_a_store_on_a_cluster_is_made_without_waiting() {
    let mut gone = RedisServer::start();
    gone.kill();
    let url = format!("redis+cluster://127.0.0.1:{}", gone.port());
    assert!(RedisStore::connect_with(&url, options()).await.is_err());
    let store = RedisStore::open(&url, options()).await.unwrap();
    let quota = fixed_window();
    let check = Check::new("cluster", "k", &quota, 1);
    let error = store.decide_one(&check).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");

    let cluster = RedisCluster::start();
    let store = RedisStore::open(&cluster.url(), options()).await.unwrap();
    assert_eq!(store.decide_one(&check).await.unwrap().remaining, 999);
}

/// The same behind Sentinel: a store made while no Sentinel answers fails
/// transiently, and asks the Sentinels again at each call until one names
/// the master.
#[tokio::test]
async fn i11_a_store_behind_sentinel_is_made_without_waiting() {
    let mut gone = RedisServer::start();
    gone.kill();
    let url = format!("redis+sentinel://127.0.0.1:{}/mymaster", gone.port());
    assert!(RedisStore::connect_with(&url, options()).await.is_err());
    let store = RedisStore::open(&url, options()).await.unwrap();
    let quota = fixed_window();
    let check = Check::new("sentinel", "k", &quota, 1);
    let error = store.decide_one(&check).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");

    let sentinel = RedisSentinel::start(1);
    let store = RedisStore::open(&sentinel.url(), options()).await.unwrap();
    assert_eq!(store.decide_one(&check).await.unwrap().remaining, 999);
}

/// `FUNCTION LOAD` refused for lack of memory (it may pass) fails the call
/// transiently and keeps functions: once memory is back, decisions run as
/// `FCALL`, never `EVALSHA`.
#[tokio::test]
async fn i11_a_transient_function_load_failure_keeps_functions() {
    let server = RedisServer::start();
    let store = RedisStore::connect_with(&server.url(), options())
        .await
        .unwrap();
    server.cli(&["config", "set", "maxmemory-policy", "noeviction"]);
    server.cli(&["config", "set", "maxmemory", "1"]);
    let quota = fixed_window();
    let check = Check::new("oom", "k", &quota, 1);
    let error = store.decide_one(&check).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        server
            .cli(&["info", "errorstats"])
            .contains("errorstat_OOM"),
        "FUNCTION LOAD met OOM"
    );

    server.cli(&["config", "set", "maxmemory", "0"]);
    server.cli(&["config", "resetstat"]);
    assert!(store.decide_one(&check).await.unwrap().allowed);
    assert!(store.decide_one(&check).await.unwrap().allowed);
    let stats = server.cli(&["info", "commandstats"]);
    assert!(stats.contains("cmdstat_fcall:"), "{stats}");
    assert!(!stats.contains("cmdstat_evalsha"), "{stats}");
}

/// When the queue of checks waiting for Redis is full, a check is answered
/// at once with a transient error of its own; the checks queued are
/// decided. On one thread, every check below is queued (or refused) before
/// the driver runs.
#[tokio::test(flavor = "current_thread")]
async fn i11_a_full_queue_refuses_at_once() {
    const QUEUE: usize = 8192;
    let server = RedisServer::start();
    let options = options().with_timeout(Duration::from_secs(30));
    let store = RedisStore::connect_with(&server.url(), options)
        .await
        .unwrap();
    let quota = fixed_window();
    let keys: Vec<String> = (0..QUEUE + 100).map(|i| format!("client-{i}")).collect();
    let checks: Vec<Check<'_>> = keys
        .iter()
        .map(|k| Check::new("queue", k, &quota, 1))
        .collect();
    let answers = common::join_all(checks.iter().map(|c| store.decide_one(c))).await;
    let mut full = 0;
    for answer in &answers {
        match answer {
            Ok(d) => assert!(d.allowed),
            Err(StoreError::Unavailable(cause)) if cause.downcast_ref::<QueueFull>().is_some() => {
                full += 1
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(full, 100, "the checks beyond the queue's {QUEUE}");
    assert!(answers[QUEUE - 1].is_ok() && answers[QUEUE].is_err());
    assert_eq!(server.cli(&["dbsize"]), QUEUE.to_string());
}
