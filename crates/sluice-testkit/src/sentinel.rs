//! [`RedisSentinel`]: a master, a replica, and Sentinels watching them,
//! with a helper that kills the master and waits for the failover.

use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{self, HOST, Mode, Node, POLL_INTERVAL, READY_TIMEOUT, run_cli};

/// The name the Sentinels know the master by.
pub(crate) const MASTER_NAME: &str = "sluice";

/// How long a Sentinel waits before it deems an unanswering master down.
/// Small, so that a failover takes a second or two; large enough that a
/// busy test machine does not fail over by mistake.
const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// Sentinel's failover timeout: a failover that stalls is retried after
/// twice this.
const FAILOVER_TIMEOUT: Duration = Duration::from_millis(3000);

/// How long [`RedisSentinel::wait_for_failover`] waits.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);

/// A real Redis Sentinel deployment on `127.0.0.1`: a master, one replica
/// of it, and one or three Sentinels (`redis-server --sentinel`, quorum 1)
/// that watch it under the name `sluice`. Each process is
/// on a free port, in one temporary directory; dropping the value kills
/// (SIGKILL) and reaps each by its pid and deletes the directory.
///
/// [`kill_master`](Self::kill_master) kills the master;
/// [`wait_for_failover`](Self::wait_for_failover) waits until the Sentinels
/// have promoted the replica. The dead master stays dead.
///
/// ```no_run
/// let mut redis = sluice_testkit::RedisSentinel::start(1);
/// let old = redis.master_port();
/// redis.kill_master();
/// redis.wait_for_failover(old);
/// assert_ne!(redis.master_port(), old);
/// ```
#[derive(Debug)]
pub struct RedisSentinel {
    // Declared before `dir` so that the processes die before their files.
    sentinels: Vec<Node>,
    /// The first master, then its replica.
    servers: Vec<Node>,
    dir: TempDir,
}

impl RedisSentinel {
    /// Starts the master, its replica (waiting until it has synced), then
    /// `sentinels` Sentinels, and waits until every Sentinel knows the
    /// replica and the other Sentinels.
    ///
    /// # Panics
    ///
    /// If `redis-server` is missing, or the deployment does not come up
    /// within 10 s (the message holds every log).
    pub fn start(sentinels: usize) -> RedisSentinel {
        Self::start_with_replica_args(sentinels, &[])
    }

    /// Like [`start`](Self::start), with more `redis-server` arguments for
    /// the replica only, e.g. [`module_args`](crate::module_args): a fleet
    /// half-way through a rolling upgrade, whose failover promotes a server
    /// unlike the master it replaces.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with_replica_args(sentinels: usize, replica_args: &[String]) -> RedisSentinel {
        process::require_binaries();
        let dir = tempfile::Builder::new()
            .prefix("sluice-redis-sentinel-")
            .tempdir()
            .expect("cannot create a temporary directory for Redis Sentinel");
        let master = Node::start(dir.path(), Mode::Standalone, &[]);
        let mut replica_of = vec![
            "--replicaof".to_owned(),
            HOST.to_owned(),
            master.port().to_string(),
        ];
        replica_of.extend_from_slice(replica_args);
        let replica = Node::start(dir.path(), Mode::Standalone, &replica_of);
        let mut deployment = RedisSentinel {
            sentinels: Vec::new(),
            servers: vec![master, replica],
            dir,
        };
        deployment.wait_until("the replica has synced", |d| {
            d.servers[1]
                .cli(&["info", "replication"])
                .contains("master_link_status:up")
        });
        let master_port = deployment.servers[0].port().to_string();
        let down_after = DOWN_AFTER.as_millis().to_string();
        let failover_timeout = FAILOVER_TIMEOUT.as_millis().to_string();
        let args: Vec<String> = [
            ["monitor", MASTER_NAME, HOST, &master_port, "1"].as_slice(),
            &["down-after-milliseconds", MASTER_NAME, &down_after],
            &["failover-timeout", MASTER_NAME, &failover_timeout],
        ]
        .iter()
        .flat_map(|directive| std::iter::once("--sentinel").chain(directive.iter().copied()))
        .map(str::to_owned)
        .collect();
        for _ in 0..sentinels {
            let node = Node::start(deployment.dir.path(), Mode::Sentinel, &args);
            deployment.sentinels.push(node);
        }
        let others = format!("num-other-sentinels\n{}", sentinels.saturating_sub(1));
        deployment.wait_until("every Sentinel knows the replica and the others", |d| {
            d.sentinels.iter().all(|s| {
                let master = s.cli(&["sentinel", "master", MASTER_NAME]);
                master.contains("num-slaves\n1") && master.contains(&others)
            })
        });
        deployment
    }

    /// `redis+sentinel://127.0.0.1:S1[,127.0.0.1:S2…]/sluice`: the
    /// Sentinels and the master's name.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinel_ports()
            .iter()
            .map(|port| format!("{HOST}:{port}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", sentinels.join(","))
    }

    /// The Sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(Node::port).collect()
    }

    /// The ports of the first master and of its replica, in that order.
    pub fn server_ports(&self) -> Vec<u16> {
        self.servers.iter().map(Node::port).collect()
    }

    /// The port of the master as the first Sentinel that answers names it.
    ///
    /// # Panics
    ///
    /// If no Sentinel answers.
    pub fn master_port(&self) -> u16 {
        for sentinel in &self.sentinels {
            let reply = sentinel.cli(&["sentinel", "get-master-addr-by-name", MASTER_NAME]);
            if let Some(port) = reply.lines().nth(1).and_then(|p| p.parse().ok()) {
                return port;
            }
        }
        panic!("no Sentinel names the master:\n{}", self.logs());
    }

    /// Kills (SIGKILL) the server that is the master now, and returns its
    /// port. It is not restarted.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        let node = self
            .servers
            .iter_mut()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("the master's port {port} is none of the servers'"));
        node.kill();
        port
    }

    /// Stops the server that is the master now with SIGSTOP, and returns
    /// its port: it still accepts connections (the kernel does) but
    /// answers nothing, like a master that hangs. It stays stopped; drop
    /// kills it all the same.
    pub fn pause_master(&mut self) -> u16 {
        let port = self.master_port();
        let pid = self
            .servers
            .iter()
            .find(|n| n.port() == port)
            .and_then(Node::pid)
            .unwrap_or_else(|| panic!("the master's port {port} is none of the running servers'"));
        let status = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -STOP {pid}: {e}"));
        assert!(status.success(), "kill -STOP {pid} failed: {status}");
        port
    }

    /// Waits (up to 30 s) until every Sentinel names a master other than
    /// the one on `old_port`, and that server says it is a master; returns
    /// how long it took.
    ///
    /// # Panics
    ///
    /// If the failover does not happen in time (with every log).
    pub fn wait_for_failover(&self, old_port: u16) -> Duration {
        let started = Instant::now();
        let done = |d: &RedisSentinel| {
            let ports: Vec<Option<u16>> = d
                .sentinels
                .iter()
                .map(|s| {
                    s.cli(&["sentinel", "get-master-addr-by-name", MASTER_NAME])
                        .lines()
                        .nth(1)
                        .and_then(|p| p.parse().ok())
                })
                .collect();
            let Some(Some(new)) = ports.first().copied() else {
                return false;
            };
            new != old_port
                && ports.iter().all(|p| *p == Some(new))
                && run_cli(new, &["role"]).starts_with("master")
        };
        let deadline = started + FAILOVER_WAIT;
        while !done(self) {
            if Instant::now() >= deadline {
                panic!(
                    "no failover away from port {old_port} within {FAILOVER_WAIT:?}:\n{}",
                    self.logs()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
        started.elapsed()
    }

    /// Runs `redis-cli` against server `server` (0: the first master, 1: its
    /// replica); see [`RedisServer::cli`](crate::RedisServer::cli).
    pub fn cli(&self, server: usize, args: &[&str]) -> String {
        self.servers[server].cli(args)
    }

    /// Every process's log, to print when a test fails.
    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .chain(&self.sentinels)
            .map(|node| format!("--- port {} ---\n{}", node.port(), node.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls `ready` until it holds, for at most [`READY_TIMEOUT`].
    fn wait_until(&self, what: &str, ready: impl Fn(&RedisSentinel) -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready(self) {
            if Instant::now() >= deadline {
                panic!(
                    "Redis Sentinel: not so within {READY_TIMEOUT:?}: {what}\n{}",
                    self.logs()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_master_is_replaced_by_its_replica() {
        let mut redis = RedisSentinel::start(1);
        let [master, replica] = redis.server_ports()[..] else {
            unreachable!()
        };
        assert_eq!(redis.master_port(), master);
        assert_eq!(
            redis.url(),
            format!(
                "redis+sentinel://127.0.0.1:{}/sluice",
                redis.sentinel_ports()[0]
            )
        );
        assert_eq!(redis.cli(0, &["set", "k", "v"]), "OK");
        assert_eq!(redis.kill_master(), master);
        let took = redis.wait_for_failover(master);
        eprintln!("the failover took {took:?}");
        assert_eq!(redis.master_port(), replica);
        assert_eq!(
            redis.cli(1, &["get", "k"]),
            "v",
            "the replica had the write"
        );
        assert_eq!(
            redis.cli(1, &["set", "k", "w"]),
            "OK",
            "and takes writes now"
        );
    }
}
