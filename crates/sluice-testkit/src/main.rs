//! `sluice-testkit`: the harness's Redis from the command line, so that a
//! script (`bench/run`) starts the very servers the tests start.
//!
//! ```text
//! sluice-testkit cluster                       a RedisCluster: three masters
//! sluice-testkit server [-- REDIS-SERVER-ARG…] a RedisServer, with more arguments
//! ```
//!
//! Once the servers answer, it prints one `name value` line per fact, then
//! `ready`, on standard output, for example:
//!
//! ```text
//! url redis+cluster://127.0.0.1:41234,127.0.0.1:38311,127.0.0.1:40127
//! port 41234
//! port 38311
//! port 40127
//! pid 5120
//! pid 5121
//! pid 5122
//! dir /tmp/sluice-redis-cluster-Ab12Cd
//! ready
//! ```
//!
//! (`server` prints one `port` and one `pid`.) Then it stays up until its
//! standard input closes or it gets SIGTERM, SIGINT or SIGHUP, kills its
//! `redis-server` processes (by the pids it started, and reaps them),
//! deletes their directory and exits 0. Give it a standard input that stays
//! open (a pipe or a FIFO): from `/dev/null`, as bash gives a background job,
//! it stops as soon as it is ready. Closing the input is what stops it when
//! the script that started it dies without a chance to signal it.
//!
//! Exit status: 0 after a stop, 1 when the servers did not start (the reason
//! and the servers' logs are on standard error), 2 on a usage error.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::thread;

use sluice_testkit::{RedisCluster, RedisServer};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

const USAGE: &str = "usage: sluice-testkit cluster\n       \
                     sluice-testkit server [-- REDIS-SERVER-ARG…]";

/// What to start, from the command line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// A [`RedisCluster`].
    Cluster,
    /// A [`RedisServer`] with these extra `redis-server` arguments.
    Server(Vec<String>),
    /// `-h` / `--help`.
    Help,
}

impl Command {
    fn parse(args: &[String]) -> Result<Self, String> {
        match args {
            [] => Err("say what to start: cluster or server".to_owned()),
            [first, ..] if first == "-h" || first == "--help" => Ok(Self::Help),
            [first] if first == "cluster" => Ok(Self::Cluster),
            [first, rest @ ..] if first == "cluster" => {
                Err(format!("cluster takes no arguments, got {rest:?}"))
            }
            [first] if first == "server" => Ok(Self::Server(Vec::new())),
            [first, dashes, rest @ ..] if first == "server" && dashes == "--" => {
                Ok(Self::Server(rest.to_vec()))
            }
            [first, rest @ ..] if first == "server" => Err(format!(
                "put redis-server's arguments after --, got {rest:?}"
            )),
            [first, ..] => Err(format!("unknown command {first:?}")),
        }
    }
}

/// The servers started, kept until the end of `main`: dropping them kills
/// and reaps their processes.
enum Started {
    Cluster(RedisCluster),
    Server(RedisServer),
}

impl Started {
    /// Starts what `command` names. A failed start panics inside the
    /// harness (the message, with the logs, goes to standard error through
    /// the panic hook); here it becomes `None`.
    fn start(command: Command) -> Option<Self> {
        panic::catch_unwind(AssertUnwindSafe(|| match command {
            Command::Cluster => Some(Self::Cluster(RedisCluster::start())),
            Command::Server(args) => Some(Self::Server(RedisServer::start_with_args(args))),
            Command::Help => None,
        }))
        .ok()
        .flatten()
    }

    /// The `name value` lines describing the servers, `ready` last.
    fn describe(&self) -> String {
        let (url, ports, pids, dir) = match self {
            Self::Cluster(cluster) => (
                cluster.url(),
                cluster.ports(),
                cluster.pids(),
                cluster.dir(),
            ),
            Self::Server(server) => (
                server.url(),
                vec![server.port()],
                server.pid().into_iter().collect(),
                server.dir(),
            ),
        };
        let mut out = format!("url {url}\n");
        for port in ports {
            out += &format!("port {port}\n");
        }
        for pid in pids {
            out += &format!("pid {pid}\n");
        }
        out += &format!("dir {}\nready\n", dir.display());
        out
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
        Err(why) => {
            eprintln!("sluice-testkit: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("sluice-testkit: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    // The handlers go in before anything starts: a SIGTERM during the
    // seconds a cluster takes to form must not kill this process with its
    // servers still running. Tokio keeps a signal that arrives early, and
    // the wait below then ends at once.
    let handle = |kind, name| {
        let _context = runtime.enter();
        signal(kind).map_err(|e| format!("cannot handle {name}: {e}"))
    };
    let mut sigterm = handle(SignalKind::terminate(), "SIGTERM")?;
    let mut sigint = handle(SignalKind::interrupt(), "SIGINT")?;
    let mut sighup = handle(SignalKind::hangup(), "SIGHUP")?;
    let (stdin_closed, mut stdin_closed_rx) = oneshot::channel();
    // A plain thread, not a tokio blocking task: a read that never returns
    // would hold up the runtime's drop. The process ends it on exit.
    thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
        let _ = stdin_closed.send(());
    });

    let started = Started::start(command).ok_or("the Redis servers did not start")?;
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(started.describe().as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to standard output: {e}"))?;
    drop(stdout);

    let why = runtime.block_on(async {
        tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
            _ = sighup.recv() => "SIGHUP",
            _ = &mut stdin_closed_rx => "standard input closed",
        }
    });
    eprintln!("sluice-testkit: {why}: stopping the Redis servers");
    drop(started);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Command::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn commands_are_parsed() {
        assert_eq!(parse(&["cluster"]), Ok(Command::Cluster));
        assert_eq!(parse(&["server"]), Ok(Command::Server(Vec::new())));
        assert_eq!(
            parse(&["server", "--", "--loadmodule", "/m.so"]),
            Ok(Command::Server(vec!["--loadmodule".into(), "/m.so".into()]))
        );
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert!(parse(&[]).unwrap_err().contains("cluster or server"));
        assert!(
            parse(&["cluster", "x"])
                .unwrap_err()
                .contains("no arguments")
        );
        assert!(
            parse(&["server", "--port", "1"])
                .unwrap_err()
                .contains("after --")
        );
        assert!(parse(&["nodes"]).unwrap_err().contains("unknown command"));
    }
}
