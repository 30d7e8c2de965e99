//! Runs the built examples: `cargo test` builds every example of this
//! package before it runs the tests, into `target/<profile>/examples/`, and
//! these helpers start them there and talk HTTP/1.1 to them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The built example `name`: `target/<profile>/examples/<name>`, beside the
/// `deps/` folder that holds this test. Fails when it is missing or older
/// than its source, which happens when only this test target was built
/// (`cargo test --test …` builds no example).
pub fn program(name: &str) -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile = test.parent().and_then(|deps| deps.parent()).unwrap();
    let program = profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("{name}.rs"));
    let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match (modified(&program), modified(&source)) {
        (Some(built), Some(written)) if built >= written => program,
        _ => panic!(
            "{} is missing or older than {}: run `cargo test -p sluice-examples`, \
             which builds the examples before the tests",
            program.display(),
            source.display()
        ),
    }
}

/// A running example; killed and reaped on drop, also when a test fails.
pub struct Running {
    child: Child,
    /// Kept open so that the program never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// `127.0.0.1:PORT`, from the line the program prints at start-up.
    pub addr: String,
    /// That line.
    pub banner: String,
}

impl Running {
    /// Starts the example `name` on a free port (`LISTEN=127.0.0.1:0`),
    /// without `REDIS_URL` from the test's environment, with `env` set.
    pub fn start(name: &str, env: &[(&str, &str)]) -> Running {
        let mut command = Command::new(program(name));
        command
            .env("LISTEN", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let read = stdout.read_line(&mut banner);
        let mut running = Running {
            child,
            _stdout: stdout,
            addr: String::new(),
            banner,
        };
        read.unwrap();
        // "… listening on http://127.0.0.1:PORT[/path] …"
        running.addr = (running.banner.split("http://").nth(1))
            .and_then(|rest| rest.split(['/', ' ', '\n']).next())
            .unwrap_or_else(|| panic!("no address in the banner {:?}", running.banner))
            .to_owned();
        running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 response.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    /// The body, as text.
    pub body: String,
}

/// `GET path` on a new connection, read until the server closes it.
pub fn get(addr: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Reply {
        status: status.parse().unwrap(),
        headers,
        body: body.to_owned(),
    }
}
