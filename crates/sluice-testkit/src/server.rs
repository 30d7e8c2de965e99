//! [`RedisServer`]: one standalone `redis-server` on a free loopback port.

use tempfile::TempDir;

use crate::process::{self, Mode, Node};

/// A real, standalone `redis-server` listening on `127.0.0.1` on a free port,
/// with its own temporary directory. Dropping it kills the process (SIGKILL),
/// reaps it and deletes the directory.
///
/// Nothing is persisted (`--save "" --appendonly no`): after
/// [`kill`](Self::kill) and [`restart`](Self::restart) the server is empty,
/// as after a crash of a Redis without persistence.
///
/// ```
/// let redis = sluice_testkit::RedisServer::start();
/// assert_eq!(redis.cli(&["ping"]), "PONG");
/// ```
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `dir` so that the process is killed before its
    // directory is deleted.
    node: Node,
    dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits (up to 10 s)
    /// until it answers `PING`.
    ///
    /// # Panics
    ///
    /// If `redis-server` or `redis-cli` is not installed (the message says
    /// how to install them), or if the server does not come up (the message
    /// holds its log).
    pub fn start() -> Self {
        Self::start_with_args(std::iter::empty::<String>())
    }

    /// Like [`start`](Self::start), with more `redis-server` arguments after
    /// the harness's own (which set the port, bind address, directory and
    /// persistence). They are passed again on every
    /// [`restart`](Self::restart). The server runs in its temporary
    /// directory, so give file arguments as absolute paths.
    ///
    /// ```
    /// let redis = sluice_testkit::RedisServer::start_with_args(["--maxmemory", "12345678"]);
    /// assert_eq!(redis.cli(&["config", "get", "maxmemory"]), "maxmemory\n12345678");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start); an argument `redis-server` refuses makes it
    /// exit at once, and the message holds its log, which says why.
    pub fn start_with_args<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        process::require_binaries();
        let dir = tempfile::Builder::new()
            .prefix("sluice-redis-")
            .tempdir()
            .expect("cannot create a temporary directory for redis-server");
        let node = Node::start(dir.path(), Mode::Standalone, &args);
        Self { node, dir }
    }

    /// The port the server listens on (on `127.0.0.1`). It stays the same
    /// across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.node.port()
    }

    /// The process id of `redis-server`, or `None` while it is
    /// [`kill`](Self::kill)ed. It changes on [`restart`](Self::restart).
    pub fn pid(&self) -> Option<u32> {
        self.node.pid()
    }

    /// The URL to connect to: `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}:{}", process::HOST, self.port())
    }

    /// Like [`start`](Self::start), with the native Sluice module loaded
    /// (see [`module_path`](crate::module_path), which panics with how to
    /// build it when it is missing).
    pub fn with_module() -> Self {
        Self::start_with_args(crate::module_args())
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT args…` and returns its trimmed
    /// stdout, e.g. `cli(&["get", "k"])`. A missing key gives `""`, and a
    /// Redis error reply comes back as its text (`"ERR …"`), because
    /// `redis-cli` exits successfully for those.
    ///
    /// # Panics
    ///
    /// If `redis-cli` fails, e.g. because the server is killed; the message
    /// holds its stderr.
    pub fn cli(&self, args: &[&str]) -> String {
        self.node.cli(args)
    }

    /// How many calls clients made to Sluice's decision library, in any of
    /// its forms (`FCALL`, `EVALSHA`, `EVAL`, the module's `sluice.*`),
    /// less those refused (a function not loaded yet), from `INFO
    /// commandstats`: not the commands the library runs inside.
    ///
    /// # Panics
    ///
    /// As [`cli`](Self::cli).
    pub fn library_calls(&self) -> u64 {
        let stats = self.cli(&["INFO", "commandstats"]);
        let field = |line: &str, name: &str| -> u64 {
            let rest = line.split(&format!("{name}=")).nth(1).unwrap_or("0");
            rest.split(',').next().unwrap_or("0").parse().unwrap_or(0)
        };
        stats
            .lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter(|l| {
                ["fcall:", "evalsha:", "eval:", "sluice"]
                    .iter()
                    .any(|c| l.starts_with(c))
            })
            .map(|l| field(l, "calls") - field(l, "failed_calls"))
            .sum()
    }

    /// Kills the server with SIGKILL and waits for it to exit. Connections
    /// to it break and new ones are refused until [`restart`](Self::restart).
    /// Does nothing if it is already killed.
    pub fn kill(&mut self) {
        self.node.kill();
    }

    /// Starts the server again on the same port and directory and waits
    /// (up to 10 s) until it answers `PING`. A running server is killed
    /// first. The restarted server holds no data.
    ///
    /// # Panics
    ///
    /// If the server does not come back, e.g. because another process took
    /// the port while it was down; the message holds the log.
    pub fn restart(&mut self) {
        self.node.restart();
    }

    /// The server's log (stdout and stderr of every run so far), to print
    /// when a test fails.
    pub fn log(&self) -> String {
        self.node.log()
    }

    /// The temporary directory holding the log file (`redis-PORT.log`). It is
    /// deleted on drop.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::thread;

    use super::*;

    #[test]
    fn set_get_kill_and_restart_on_the_same_port() {
        let mut redis = RedisServer::start();
        let port = redis.port();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
        assert_eq!(redis.cli(&["set", "k", "v"]), "OK");
        assert_eq!(redis.cli(&["get", "k"]), "v");
        assert_eq!(redis.cli(&["get", "missing"]), "");

        let pid = redis.pid().unwrap();
        redis.kill();
        assert!(
            process::command(port, "PING").is_err(),
            "killed server still answers"
        );
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "killed server not reaped"
        );
        redis.kill(); // Killing twice is harmless.

        redis.restart();
        assert_eq!(redis.port(), port);
        assert_eq!(redis.cli(&["ping"]), "PONG");
        assert_eq!(redis.cli(&["exists", "k"]), "0", "nothing is persisted");
        assert!(redis.log().contains("Ready to accept connections"));

        // Restarting a running server replaces it.
        let pid = redis.pid().unwrap();
        redis.restart();
        assert_ne!(redis.pid().unwrap(), pid);
        assert_eq!(redis.cli(&["ping"]), "PONG");
    }

    #[test]
    fn drop_kills_the_process_and_deletes_the_directory() {
        let redis = RedisServer::start();
        let (port, pid, dir) = (redis.port(), redis.pid().unwrap(), redis.dir().to_owned());
        assert!(dir.join(format!("redis-{port}.log")).is_file());
        drop(redis);
        assert!(process::command(port, "PING").is_err());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "dropped server not reaped"
        );
        assert!(!dir.exists());
    }

    #[test]
    fn servers_started_in_parallel_get_their_own_ports() {
        let servers: Vec<RedisServer> = (0..4)
            .map(|_| thread::spawn(RedisServer::start))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect();
        let mut ports: Vec<u16> = servers.iter().map(RedisServer::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), servers.len());
        for redis in &servers {
            assert_eq!(redis.cli(&["ping"]), "PONG");
        }
    }

    #[test]
    fn extra_arguments_are_passed_on_start_and_restart() {
        let mut redis = RedisServer::start_with_args(["--maxmemory", "12345678"]);
        assert_eq!(
            redis.cli(&["config", "get", "maxmemory"]),
            "maxmemory\n12345678"
        );
        redis.restart();
        assert_eq!(
            redis.cli(&["config", "get", "maxmemory"]),
            "maxmemory\n12345678"
        );
    }

    #[test]
    #[should_panic(expected = "no-such-directive")]
    fn an_argument_redis_refuses_panics_with_its_log() {
        RedisServer::start_with_args(["--no-such-directive", "1"]);
    }

    #[test]
    fn error_replies_come_back_as_text() {
        let redis = RedisServer::start();
        assert!(
            redis
                .cli(&["nosuchcommand"])
                .starts_with("ERR unknown command")
        );
    }
}
