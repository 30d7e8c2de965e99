//! The `sluice-testkit` binary (what `bench/run` starts its Redis with):
//! it prints where its servers are, they answer, and once stopped, by its
//! standard input closing or by SIGTERM, no `redis-server` of its own is
//! left running and its directory is gone.

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_sluice-testkit");

/// How long the binary may take to exit once told to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `sluice-testkit` and the facts it printed.
struct Started {
    child: Child,
    /// Held open: dropping it closes the binary's standard input.
    stdin: Option<ChildStdin>,
    url: String,
    ports: Vec<u16>,
    pids: Vec<u32>,
    dir: PathBuf,
}

/// Starts the binary with `args` and reads its lines up to `ready`.
fn start(args: &[&str]) -> Started {
    let mut child = Command::new(BINARY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut ports, mut pids, mut dir) = (None, Vec::new(), Vec::new(), None);
    let mut ready = false;
    // Reading ends at `ready`, or at EOF if the binary failed (the harness's
    // own timeouts bound how long a start can take).
    for line in stdout.lines() {
        let line = line.unwrap();
        match line.split_once(' ') {
            Some(("url", value)) => url = Some(value.to_owned()),
            Some(("port", value)) => ports.push(value.parse().unwrap()),
            Some(("pid", value)) => pids.push(value.parse().unwrap()),
            Some(("dir", value)) => dir = Some(PathBuf::from(value)),
            None if line == "ready" => {
                ready = true;
                break;
            }
            _ => panic!("unexpected line from sluice-testkit: {line:?}"),
        }
    }
    if !ready {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        panic!("sluice-testkit {args:?} ended ({status}) before `ready`:\n{stderr}");
    }
    Started {
        child,
        stdin,
        url: url.expect("no url line"),
        ports,
        pids,
        dir: dir.expect("no dir line"),
    }
}

impl Started {
    /// Waits (bounded) for the binary to exit; returns its status and stderr.
    fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                self.child.kill().unwrap();
                self.child.wait().unwrap();
                panic!("sluice-testkit did not exit within {STOP_TIMEOUT:?} of being stopped");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status, stderr)
    }

    /// Asserts that none of the printed `redis-server`s is running any more
    /// (each was reaped: not even a zombie is left) and the directory is gone.
    fn assert_nothing_left(&self) {
        for pid in &self.pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "redis-server {pid} is still there after sluice-testkit stopped"
            );
        }
        assert!(!self.dir.exists(), "{} was not deleted", self.dir.display());
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn cluster_is_ok_and_stops_when_stdin_closes() {
    let mut cluster = start(&["cluster"]);
    assert_eq!(cluster.ports.len(), 3);
    assert_eq!(cluster.pids.len(), 3);
    let addresses: Vec<String> = cluster
        .ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    assert_eq!(
        cluster.url,
        format!("redis+cluster://{}", addresses.join(","))
    );
    for port in &cluster.ports {
        let info = redis_cli(*port, &["cluster", "info"]);
        assert!(
            info.lines().any(|line| line.trim() == "cluster_state:ok"),
            "{info}"
        );
    }
    for pid in &cluster.pids {
        assert!(Path::new(&format!("/proc/{pid}")).exists());
    }

    drop(cluster.stdin.take());
    let (status, stderr) = cluster.wait();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("standard input closed"), "{stderr}");
    cluster.assert_nothing_left();
}

#[test]
fn server_takes_redis_arguments_and_stops_on_sigterm() {
    let mut server = start(&["server", "--", "--maxmemory", "12345678"]);
    assert_eq!(server.ports.len(), 1);
    assert_eq!(server.pids.len(), 1);
    let port = server.ports[0];
    assert_eq!(server.url, format!("redis://127.0.0.1:{port}"));
    assert_eq!(
        redis_cli(port, &["config", "get", "maxmemory"]),
        "maxmemory\n12345678\n"
    );

    // Standard input stays open: the signal alone stops it.
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (status, stderr) = server.wait();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    server.assert_nothing_left();
    drop(server.stdin.take());
}

#[test]
fn a_usage_error_exits_2_and_starts_nothing() {
    let output = Command::new(BINARY)
        .args(["server", "--maxmemory", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("after --"), "{stderr}");
    assert!(stderr.contains("usage: sluice-testkit"), "{stderr}");
}

#[test]
fn a_server_that_cannot_start_exits_1_with_its_log() {
    let output = Command::new(BINARY)
        .args(["server", "--", "--no-such-directive", "1"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-directive"), "{stderr}");
    assert!(stderr.contains("did not start"), "{stderr}");
}
