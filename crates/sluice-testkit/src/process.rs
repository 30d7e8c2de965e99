//! Plumbing shared by [`RedisServer`](crate::RedisServer) and
//! [`RedisCluster`](crate::RedisCluster): finding the binaries, reserving free
//! ports, spawning one `redis-server` and waiting until it answers `PING`,
//! and running `redis-cli`.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The only address the harness ever binds or connects to.
pub(crate) const HOST: &str = "127.0.0.1";

/// How long a freshly spawned `redis-server` (or a new cluster) may take to
/// become ready before the harness gives up and panics with the logs.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often readiness is polled. Redis usually answers within a few ms.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How many times a start is retried when `redis-server` lost the race for
/// its port to another process (the port is free when picked, but nothing
/// holds it until `redis-server` binds it).
const START_ATTEMPTS: usize = 5;

/// Cluster nodes also listen on `port + 10000` (the cluster bus).
const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// Cluster ports stay below this so that `port + 10000` is a valid port.
const MAX_CLUSTER_PORT: u16 = u16::MAX - CLUSTER_BUS_OFFSET;

/// Ports handed out in this process and not yet released. Tests in one binary
/// run on parallel threads; without this, two of them could pick the same
/// free port before either server binds it. Other processes are covered by
/// the retry in [`Node::start`].
static RESERVED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Panics unless `redis-server` and `redis-cli` are both on `PATH`.
pub(crate) fn require_binaries() {
    require_binaries_in(std::env::var_os("PATH").as_deref());
}

fn require_binaries_in(path: Option<&OsStr>) {
    for name in ["redis-server", "redis-cli"] {
        let found = path
            .is_some_and(|path| std::env::split_paths(path).any(|dir| dir.join(name).is_file()));
        assert!(found, "{}", not_installed(name));
    }
}

fn not_installed(name: &str) -> String {
    format!(
        "{name} is not installed: run scripts/test, which installs it \
         (Debian: apt-get install redis-server redis-tools)"
    )
}

/// What a node is started as; cluster nodes need a second free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Standalone,
    Cluster,
    /// `redis-server --sentinel`, which needs a config file it can rewrite.
    Sentinel,
}

/// Ports reserved in [`RESERVED`] until this is dropped. The first one is the
/// client port; a cluster node also holds its bus port.
#[derive(Debug)]
pub(crate) struct PortReservation {
    ports: Vec<u16>,
}

impl PortReservation {
    /// Finds a loopback port that is free now (bind port 0, read it, release
    /// it) and not reserved by another test in this process. For a cluster
    /// node the port is below 55535 and `port + 10000` is free too.
    pub(crate) fn pick(mode: Mode) -> Self {
        const TRIES: usize = 1000;
        for _ in 0..TRIES {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("cannot bind 127.0.0.1:0 to pick a free port for redis-server");
            let port = listener
                .local_addr()
                .expect("cannot read the port of a listener bound to 127.0.0.1:0")
                .port();
            let mut ports = vec![port];
            // Held until the end of this iteration so that both ports are
            // known to be free at the same moment.
            let mut _bus_listener = None;
            if mode == Mode::Cluster {
                if port >= MAX_CLUSTER_PORT {
                    continue;
                }
                let bus = port + CLUSTER_BUS_OFFSET;
                match TcpListener::bind((Ipv4Addr::LOCALHOST, bus)) {
                    Ok(listener) => _bus_listener = Some(listener),
                    Err(_) => continue,
                }
                ports.push(bus);
            }
            let mut reserved = RESERVED.lock().unwrap_or_else(PoisonError::into_inner);
            if ports.iter().any(|p| reserved.contains(p)) {
                continue;
            }
            reserved.extend(&ports);
            return Self { ports };
        }
        panic!("found no free loopback port for redis-server ({mode:?}) in {TRIES} tries");
    }

    /// The client port.
    pub(crate) fn port(&self) -> u16 {
        self.ports[0]
    }
}

impl Drop for PortReservation {
    fn drop(&mut self) {
        let mut reserved = RESERVED.lock().unwrap_or_else(PoisonError::into_inner);
        for port in &self.ports {
            reserved.remove(port);
        }
    }
}

/// Why one launch of `redis-server` failed.
#[derive(Debug)]
enum LaunchError {
    /// Another process took the port between picking and binding: retry.
    PortInUse(String),
    /// Anything else: give up and show this message.
    Failed(String),
}

/// One `redis-server` process. It is killed and reaped on drop.
#[derive(Debug)]
pub(crate) struct Node {
    /// `None` while killed.
    child: Option<Child>,
    reservation: PortReservation,
    dir: PathBuf,
    log_path: PathBuf,
    /// The config file given first, for a Sentinel (which insists on one).
    config_file: Option<PathBuf>,
    extra_args: Vec<String>,
}

impl Node {
    /// Starts a node on a fresh free port, with its data, config and log in
    /// `dir`, and waits until it answers `PING`. Retries with another port
    /// when the chosen one was taken before `redis-server` could bind it.
    /// `args` go to `redis-server` after the harness's own, and again on
    /// every restart.
    pub(crate) fn start(dir: &Path, mode: Mode, args: &[String]) -> Self {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let reservation = PortReservation::pick(mode);
            let port = reservation.port();
            let mut extra_args = match mode {
                Mode::Standalone => Vec::new(),
                Mode::Sentinel => vec!["--sentinel".to_owned()],
                Mode::Cluster => vec![
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-config-file".to_owned(),
                    format!("nodes-{port}.conf"),
                    "--cluster-node-timeout".to_owned(),
                    "5000".to_owned(),
                ],
            };
            extra_args.extend_from_slice(args);
            let config_file =
                (mode == Mode::Sentinel).then(|| dir.join(format!("sentinel-{port}.conf")));
            let mut node = Self {
                child: None,
                reservation,
                dir: dir.to_owned(),
                log_path: dir.join(format!("redis-{port}.log")),
                config_file,
                extra_args,
            };
            match node.launch() {
                Ok(()) => return node,
                Err(LaunchError::PortInUse(log)) => last_log = log,
                Err(LaunchError::Failed(message)) => panic!("{message}"),
            }
        }
        panic!(
            "redis-server lost the race for a free port {START_ATTEMPTS} times in a row \
             (another process bound it first); last log:\n{last_log}"
        );
    }

    /// Starts the node again on the same port and directory (killing it
    /// first if it is running) and waits until it answers `PING`.
    pub(crate) fn restart(&mut self) {
        self.kill();
        let port = self.port();
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match self.launch() {
                Ok(()) => return,
                // Something else grabbed the port while the node was down;
                // it may be short-lived (a client's ephemeral port), so wait
                // a little and try again.
                Err(LaunchError::PortInUse(log)) => {
                    last_log = log;
                    thread::sleep(Duration::from_millis(200));
                }
                Err(LaunchError::Failed(message)) => panic!("{message}"),
            }
        }
        panic!(
            "redis-server could not restart on port {port}: another process holds it; \
             last log:\n{last_log}"
        );
    }

    /// Sends SIGKILL and reaps the process. Does nothing if it is not running.
    pub(crate) fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            let port = self.port();
            reap(child).unwrap_or_else(|e| panic!("cannot kill redis-server on port {port}: {e}"));
        }
    }

    /// The client port.
    pub(crate) fn port(&self) -> u16 {
        self.reservation.port()
    }

    /// The process id, while running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The whole log file (every launch of this node), for panic messages.
    pub(crate) fn log(&self) -> String {
        read_log(&self.log_path, 0)
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT args…` against this node.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        run_cli(self.port(), args)
    }

    /// Spawns `redis-server` on this node's port and waits until it answers
    /// `PING` as this very process (not as another server on the same port).
    fn launch(&mut self) -> Result<(), LaunchError> {
        let port = self.port();
        let log_path = self.log_path.display();
        // The log is appended to across restarts; only this launch's part
        // decides why it failed.
        let log_start = fs::metadata(&self.log_path).map_or(0, |m| m.len());
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| LaunchError::Failed(format!("cannot open {log_path}: {e}")))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| LaunchError::Failed(format!("cannot open {log_path}: {e}")))?;
        let mut command = Command::new("redis-server");
        if let Some(config) = &self.config_file {
            // Sentinel rewrites it with what it learns; a restart reads that.
            if !config.exists() {
                fs::write(config, "").map_err(|e| {
                    LaunchError::Failed(format!("cannot write {}: {e}", config.display()))
                })?;
            }
            command.arg(config);
        }
        let mut child = command
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", HOST])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no"])
            .args(["--protected-mode", "yes"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                LaunchError::Failed(if e.kind() == io::ErrorKind::NotFound {
                    not_installed("redis-server")
                } else {
                    format!("cannot spawn redis-server: {e}")
                })
            })?;
        let pid = child.id();

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    let log = read_log(&self.log_path, log_start);
                    return Err(if log.contains("Address already in use") {
                        LaunchError::PortInUse(log)
                    } else {
                        LaunchError::Failed(format!(
                            "redis-server on port {port} exited ({status}) before answering \
                             PING; {log_path}:\n{log}"
                        ))
                    });
                }
                Err(e) => {
                    let _ = reap(child);
                    return Err(LaunchError::Failed(format!(
                        "cannot check on redis-server (pid {pid}, port {port}): {e}"
                    )));
                }
            }
            if answers_as(port, pid) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = reap(child);
                let log = read_log(&self.log_path, log_start);
                return Err(LaunchError::Failed(format!(
                    "redis-server on port {port} did not answer PING within \
                     {READY_TIMEOUT:?}; {log_path}:\n{log}"
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // No panic here: a panic while a failing test unwinds would abort.
        if let Some(child) = self.child.take() {
            let _ = reap(child);
        }
    }
}

/// SIGKILL, then wait, so that no zombie is left behind.
fn reap(mut child: Child) -> io::Result<()> {
    // Fails only if the process is already gone; `wait` still reaps it.
    let _ = child.kill();
    child.wait().map(drop)
}

fn read_log(path: &Path, from: u64) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
            String::from_utf8_lossy(&bytes[from..]).into_owned()
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Whether the server on `port` answers `PING` and is the process `pid`:
/// right after a port race, another process's Redis may own the port.
fn answers_as(port: u16, pid: u32) -> bool {
    if command(port, "PING").ok().as_deref() != Some("PONG") {
        return false;
    }
    let expected = format!("process_id:{pid}");
    command(port, "INFO server").is_ok_and(|info| info.lines().any(|line| line == expected))
}

/// Sends one inline command over raw TCP and returns a simple-string or
/// bulk-string reply. An error reply (`-ERR …`, `-LOADING …`) is an `Err`.
/// Quicker than spawning `redis-cli`, which matters when polling.
pub(crate) fn command(port: u16, command: &str) -> io::Result<String> {
    let timeout = Duration::from_secs(1);
    let stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    (&stream).write_all(format!("{command}\r\n").as_bytes())?;
    read_reply(&mut BufReader::new(&stream))
}

fn read_reply(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    match line.split_at_checked(1) {
        Some(("+", text)) => Ok(text.to_owned()),
        Some(("-", error)) => Err(io::Error::other(error.to_owned())),
        Some(("$", len)) => {
            let len: usize = len
                .parse()
                .map_err(|_| io::Error::other(format!("unexpected bulk length in {line:?}")))?;
            let mut body = vec![0; len + 2]; // The payload, then "\r\n".
            reader.read_exact(&mut body)?;
            body.truncate(len);
            String::from_utf8(body).map_err(io::Error::other)
        }
        _ => Err(io::Error::other(format!("unexpected reply {line:?}"))),
    }
}

/// Runs `redis-cli -h 127.0.0.1 -p PORT args…` and returns its trimmed
/// stdout. Panics, with stderr, when `redis-cli` exits non-zero.
pub(crate) fn run_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", HOST, "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                panic!("{}", not_installed("redis-cli"))
            }
            panic!("cannot run redis-cli: {e}")
        });
    if !output.status.success() {
        panic!(
            "redis-cli -p {port} {args:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim(),
        );
    }
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(
        expected = "redis-server is not installed: run scripts/test, which installs it \
                               (Debian: apt-get install redis-server redis-tools)"
    )]
    fn missing_redis_server_says_how_to_install_it() {
        let empty = tempfile::tempdir().unwrap();
        require_binaries_in(Some(empty.path().as_os_str()));
    }

    #[test]
    #[should_panic(expected = "redis-server is not installed")]
    fn no_path_at_all_is_missing_redis() {
        require_binaries_in(None);
    }

    #[test]
    fn binaries_are_found_on_path() {
        require_binaries();
    }

    #[test]
    fn reservations_are_distinct_and_released_on_drop() {
        let a = PortReservation::pick(Mode::Standalone);
        let b = PortReservation::pick(Mode::Cluster);
        assert_ne!(a.port(), b.port());
        assert!(b.port() < MAX_CLUSTER_PORT);
        assert_eq!(b.ports, [b.port(), b.port() + CLUSTER_BUS_OFFSET]);
        let ports = b.ports.clone();
        drop(b);
        let reserved = RESERVED.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(reserved.contains(&a.port()));
        assert!(ports.iter().all(|p| !reserved.contains(p)));
    }

    /// A node whose port is already taken, e.g. by another test process.
    fn node_on_taken_port(port: u16, dir: &Path) -> Node {
        Node {
            child: None,
            // Not from `pick`: dropping it un-reserves a port that the OS
            // will not hand out anyway while it is bound.
            reservation: PortReservation { ports: vec![port] },
            dir: dir.to_owned(),
            log_path: dir.join(format!("redis-{port}.log")),
            config_file: None,
            extra_args: Vec::new(),
        }
    }

    #[test]
    fn a_port_taken_by_another_redis_is_a_race_to_retry() {
        let other = crate::RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let mut node = node_on_taken_port(other.port(), dir.path());
        // The other server answers PING on that port, but it is not ours.
        match node.launch() {
            Err(LaunchError::PortInUse(log)) => assert!(log.contains("Address already in use")),
            other => panic!("expected PortInUse, got {other:?}"),
        }
        assert!(node.child.is_none());
    }

    #[test]
    fn a_port_taken_by_any_listener_is_a_race_to_retry() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut node = node_on_taken_port(listener.local_addr().unwrap().port(), dir.path());
        assert!(matches!(node.launch(), Err(LaunchError::PortInUse(_))));
    }

    #[test]
    fn replies_are_parsed() {
        let parse = |bytes: &[u8]| read_reply(&mut &bytes[..]);
        assert_eq!(parse(b"+PONG\r\n").unwrap(), "PONG");
        assert_eq!(parse(b"$6\r\na\r\nb:c\r\n").unwrap(), "a\r\nb:c");
        assert_eq!(
            parse(b"-LOADING busy\r\n").unwrap_err().to_string(),
            "LOADING busy"
        );
        assert!(parse(b"$-1\r\n").is_err());
        assert!(parse(b"").is_err());
    }
}
