//! [`RedisCluster`]: three `redis-server` cluster masters on free loopback
//! ports (and a replica of each, if asked), joined with `redis-cli
//! --cluster create`; a master can be killed so that its replica takes over.

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{self, HOST, Mode, Node, POLL_INTERVAL, READY_TIMEOUT};

/// How many masters the cluster has.
const MASTERS: usize = 3;

/// `cluster-node-timeout` of a cluster with replicas: how long a master
/// may not answer before the others deem it failed and its replica takes
/// over. Small, so that a failover takes a few seconds; large enough that
/// a busy test machine does not fail over by mistake.
const FAILOVER_NODE_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long [`RedisCluster::wait_for_failover`] waits.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);

/// How long `redis-cli --cluster create` may take. It usually needs 1-3 s,
/// waiting for gossip to spread the configuration to every node.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// A real Redis Cluster of three masters (and, from
/// [`with_replicas`](Self::with_replicas), a replica of each) on `127.0.0.1`, each
/// on a free port whose cluster-bus port (`port + 10000`) is free too. The
/// 16384 slots are split between them by `redis-cli --cluster create`.
/// Dropping it kills (SIGKILL) and reaps every node and deletes their
/// temporary directory.
///
/// Starting takes about 2 s, sometimes up to 5: Redis keeps a fresh master's
/// `cluster_state` at `fail` for its first 2 s, and `redis-cli --cluster
/// create` checks once a second whether the nodes agree. Tests should start
/// as few clusters as they need. (This example is `no_run` for that reason:
/// the crate's unit tests start a real cluster the same way.)
///
/// ```no_run
/// let cluster = sluice_testkit::RedisCluster::start();
/// // `-c` makes redis-cli follow MOVED redirections to the key's node.
/// assert_eq!(cluster.cli(0, &["-c", "set", "k", "v"]), "OK");
/// assert_eq!(cluster.cli(2, &["-c", "get", "k"]), "v");
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    // Declared before `dir` so that the processes are killed before their
    // directory is deleted.
    nodes: Vec<Node>,
    /// Replicas per master: 0 or 1.
    replicas: usize,
    dir: TempDir,
}

impl RedisCluster {
    /// Starts three cluster-enabled `redis-server`s, joins them with
    /// `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`
    /// (given up to 30 s), and waits (up to 10 s more) until every node
    /// reports `cluster_state:ok` and knows all three nodes.
    ///
    /// # Panics
    ///
    /// If `redis-server` or `redis-cli` is not installed (the message says
    /// how to install them), or if the cluster does not come up (the message
    /// holds the output of `redis-cli` or `CLUSTER INFO`, and every node's log).
    pub fn start() -> Self {
        Self::start_with(0, &[])
    }

    /// Like [`start`](Self::start), with one replica per master: six
    /// nodes, the first three masters (nodes `0..3`) and then their
    /// replicas, with a `cluster-node-timeout` of 1.5 s so that a master's
    /// failure is detected, and its replica promoted, within a few seconds
    /// ([`kill_master`](Self::kill_master),
    /// [`wait_for_failover`](Self::wait_for_failover)). Waits until every
    /// replica has synced with its master.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn with_replicas() -> Self {
        let timeout = FAILOVER_NODE_TIMEOUT.as_millis().to_string();
        let cluster = Self::start_with(1, &["--cluster-node-timeout".to_owned(), timeout]);
        let deadline = Instant::now() + READY_TIMEOUT;
        for node in &cluster.nodes[MASTERS..] {
            while !process::command(node.port(), "INFO replication")
                .is_ok_and(|info| info.contains("master_link_status:up"))
            {
                if Instant::now() >= deadline {
                    panic!(
                        "the replica on port {} did not sync within {READY_TIMEOUT:?}:\n{}",
                        node.port(),
                        cluster.logs()
                    );
                }
                thread::sleep(POLL_INTERVAL);
            }
        }
        cluster
    }

    /// Like [`start`](Self::start), every node with the native Sluice
    /// module loaded (see [`module_path`](crate::module_path)).
    pub fn with_module() -> Self {
        Self::start_with(0, &crate::module_args())
    }

    fn start_with(replicas: usize, args: &[String]) -> Self {
        process::require_binaries();
        let dir = tempfile::Builder::new()
            .prefix("sluice-redis-cluster-")
            .tempdir()
            .expect("cannot create a temporary directory for the Redis cluster");
        let nodes = (0..MASTERS * (1 + replicas))
            .map(|_| Node::start(dir.path(), Mode::Cluster, args))
            .collect();
        let cluster = Self {
            nodes,
            replicas,
            dir,
        };
        cluster.create();
        cluster.wait_until_ok();
        cluster
    }

    /// Kills (SIGKILL) node `node`, a master, so that its replica takes
    /// over; returns the replica's index. It is not restarted.
    ///
    /// # Panics
    ///
    /// Without replicas ([`with_replicas`](Self::with_replicas)), or when
    /// `node` is not a master.
    pub fn kill_master(&mut self, node: usize) -> usize {
        assert!(
            self.replicas > 0,
            "a cluster without replicas cannot fail over"
        );
        let replica = self.replica_of(node);
        self.nodes[node].kill();
        replica
    }

    /// Waits (up to 30 s) until `replica` says it is a master and every
    /// live node reports `cluster_state:ok`; returns how long it took.
    ///
    /// # Panics
    ///
    /// When it does not happen in time (with every log).
    pub fn wait_for_failover(&self, replica: usize) -> Duration {
        let started = Instant::now();
        let deadline = started + FAILOVER_WAIT;
        loop {
            let promoted = self.nodes[replica].cli(&["role"]).starts_with("master");
            let ok = self.nodes.iter().filter(|n| n.pid().is_some()).all(|n| {
                process::command(n.port(), "CLUSTER INFO")
                    .is_ok_and(|info| info.lines().any(|l| l == "cluster_state:ok"))
            });
            if promoted && ok {
                return started.elapsed();
            }
            if Instant::now() >= deadline {
                panic!(
                    "node {replica} did not take over within {FAILOVER_WAIT:?}:\n{}",
                    self.logs()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The index of the node that replicates master `node`.
    fn replica_of(&self, node: usize) -> usize {
        let id = self.nodes[node].cli(&["cluster", "myid"]);
        self.nodes
            .iter()
            .position(|n| {
                n.pid().is_some()
                    && n.cli(&["cluster", "nodes"]).lines().any(|line| {
                        let fields: Vec<&str> = line.split(' ').collect();
                        fields.get(2).is_some_and(|f| f.contains("myself"))
                            && fields.get(3) == Some(&id.as_str())
                    })
            })
            .unwrap_or_else(|| panic!("node {node} is not a master with a replica"))
    }

    /// The client ports of the nodes, in the order of
    /// [`node_urls`](Self::node_urls) and of the indices [`cli`](Self::cli)
    /// takes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Node::port).collect()
    }

    /// The process ids of the nodes' `redis-server`s, in the order of
    /// [`ports`](Self::ports).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    /// The URL naming every node:
    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        format!("redis+cluster://{}", self.addresses().join(","))
    }

    /// One `redis://127.0.0.1:PORT` URL per node, e.g. for a cluster client
    /// that takes a list of seed nodes.
    pub fn node_urls(&self) -> Vec<String> {
        self.addresses()
            .iter()
            .map(|address| format!("redis://{address}"))
            .collect()
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT args…` against node `node`
    /// (`0..3`) and returns its trimmed stdout. Pass `-c` first to follow
    /// `MOVED` redirections: without it, a key owned by another node gives
    /// `"MOVED …"`. Error replies come back as their text.
    ///
    /// # Panics
    ///
    /// If `node` is out of range, or if `redis-cli` fails (with its stderr).
    pub fn cli(&self, node: usize, args: &[&str]) -> String {
        let count = self.nodes.len();
        self.nodes
            .get(node)
            .unwrap_or_else(|| panic!("no cluster node {node}: there are {count} (0..{count})"))
            .cli(args)
    }

    /// Every node's log, one after the other, to print when a test fails.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                format!(
                    "--- redis-server on port {} ---\n{}",
                    node.port(),
                    node.log()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The temporary directory holding every node's log (`redis-PORT.log`)
    /// and cluster config file (`nodes-PORT.conf`), and the output of
    /// `redis-cli --cluster create` (`cluster-create.log`). It is deleted on
    /// drop.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn addresses(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|port| format!("{HOST}:{port}"))
            .collect()
    }

    /// Assigns the slots and makes the nodes meet. `redis-cli` itself waits
    /// until the nodes agree on the configuration before it returns: it
    /// checks once a second, for as long as it takes, so it is bounded here.
    fn create(&self) {
        let addresses = self.addresses().join(" ");
        let log_path = self.dir.path().join("cluster-create.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display()));
        let mut child = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(self.addresses())
            .args([
                "--cluster-replicas",
                &self.replicas.to_string(),
                "--cluster-yes",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-cli --cluster create: {e}"));
        let deadline = Instant::now() + CREATE_TIMEOUT;
        // `None` on success, else why it failed.
        let failure = loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => break None,
                Ok(Some(status)) => break Some(status.to_string()),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Some(format!("killed after {CREATE_TIMEOUT:?}"));
                }
                Err(e) => panic!("cannot wait for redis-cli --cluster create: {e}"),
            }
        };
        let output = fs::read_to_string(&log_path).unwrap_or_else(|e| format!("({e})"));
        // Besides a failed exit status, redis-cli reports some problems only
        // as "[ERR]" lines.
        let failure = failure.or_else(|| {
            output
                .contains("[ERR]")
                .then(|| "it printed [ERR]".to_owned())
        });
        if let Some(why) = failure {
            panic!(
                "redis-cli --cluster create {addresses} failed ({why}):\n{output}\n{}",
                self.logs(),
            );
        }
    }

    /// Polls `CLUSTER INFO` on every node until each reports
    /// `cluster_state:ok` and knows all the nodes.
    fn wait_until_ok(&self) {
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let infos: Vec<String> = self
                .nodes
                .iter()
                .map(|node| {
                    process::command(node.port(), "CLUSTER INFO")
                        .unwrap_or_else(|e| format!("(CLUSTER INFO failed: {e})"))
                })
                .collect();
            let ready = |info: &String| {
                info.lines().any(|line| line == "cluster_state:ok")
                    && info.lines().any(|line| line == known)
            };
            if infos.iter().all(ready) {
                return;
            }
            if Instant::now() >= deadline {
                let infos: Vec<String> = self
                    .ports()
                    .iter()
                    .zip(&infos)
                    .map(|(port, info)| format!("--- CLUSTER INFO on port {port} ---\n{info}"))
                    .collect();
                panic!(
                    "the Redis cluster was not ok within {READY_TIMEOUT:?}:\n{}\n{}",
                    infos.join("\n"),
                    self.logs(),
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn three_masters_serve_every_slot() {
        let started = Instant::now();
        let cluster = RedisCluster::start();
        eprintln!("RedisCluster::start took {:?}", started.elapsed());

        let ports = cluster.ports();
        assert_eq!(ports.len(), 3);
        let pids = cluster.pids();
        assert_eq!(pids.len(), 3);
        assert!(
            pids.iter()
                .all(|pid| Path::new(&format!("/proc/{pid}")).exists())
        );
        assert!(ports.iter().all(|port| *port < 55535));
        assert_eq!(
            cluster.url(),
            format!(
                "redis+cluster://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
                ports[0], ports[1], ports[2]
            )
        );
        assert_eq!(
            cluster.node_urls(),
            ports
                .iter()
                .map(|port| format!("redis://127.0.0.1:{port}"))
                .collect::<Vec<_>>()
        );

        for (node, port) in ports.iter().enumerate() {
            let info = cluster.cli(node, &["cluster", "info"]);
            assert!(info.contains("cluster_state:ok"), "node {node}:\n{info}");
            assert!(
                info.contains("cluster_slots_assigned:16384"),
                "node {node}:\n{info}"
            );
            assert!(info.contains("cluster_size:3"), "node {node}:\n{info}");
            let config = format!("nodes-{port}.conf");
            assert!(cluster.dir().join(config).is_file());
        }

        assert_eq!(cluster.cli(0, &["-c", "set", "k", "v"]), "OK");
        for node in 0..3 {
            assert_eq!(cluster.cli(node, &["-c", "get", "k"]), "v");
        }
        let redirected = (0..3)
            .filter(|node| cluster.cli(*node, &["get", "k"]).starts_with("MOVED "))
            .count();
        assert_eq!(redirected, 2, "without -c, the two other masters say MOVED");

        // A failed `--cluster create` panics with redis-cli's output: here
        // the nodes already belong to a cluster.
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cluster.create()))
            .expect_err("creating the cluster twice should fail");
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("redis-cli --cluster create"), "{message}");
        assert!(message.contains("is not empty"), "{message}");
    }

    #[test]
    fn a_killed_master_is_replaced_by_its_replica() {
        let started = Instant::now();
        let mut cluster = RedisCluster::with_replicas();
        eprintln!("RedisCluster::with_replicas took {:?}", started.elapsed());
        assert_eq!(cluster.ports().len(), 6);
        for node in 0..3 {
            assert!(cluster.cli(node, &["role"]).starts_with("master"));
        }
        for node in 3..6 {
            assert!(cluster.cli(node, &["role"]).starts_with("slave"));
        }
        assert_eq!(cluster.cli(0, &["-c", "set", "k", "v"]), "OK");
        let owner = (0..3)
            .find(|n| !cluster.cli(*n, &["get", "k"]).starts_with("MOVED"))
            .unwrap();
        let replica = cluster.kill_master(owner);
        assert!(replica >= 3);
        let took = cluster.wait_for_failover(replica);
        eprintln!("the failover took {took:?}");
        let live = (0..3).find(|n| *n != owner).unwrap();
        assert_eq!(cluster.cli(live, &["-c", "get", "k"]), "v");
        assert_eq!(
            cluster.cli(replica, &["get", "k"]),
            "v",
            "the replica serves the slot"
        );
    }

    #[test]
    #[should_panic(expected = "no cluster node 3: there are 0 (0..0)")]
    fn out_of_range_node_panics_clearly() {
        // No processes are needed to check the message.
        let cluster = RedisCluster {
            nodes: Vec::new(),
            replicas: 0,
            dir: tempfile::tempdir().unwrap(),
        };
        cluster.cli(3, &["ping"]);
    }
}
