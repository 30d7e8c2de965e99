//! A real `sluice serve` process for the tests: started on a free loopback
//! port, its log collected, stopped when dropped; and, in [`app`], the same
//! HTTP API in-process over a store on a fake clock.
#![allow(dead_code)]

pub mod app;
pub mod envoy_examples;
pub mod envoy_services;
pub mod scenarios;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long anything a test waits for may take before the test fails; far
/// above what it takes, so a slow machine does not fail a test.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `sluice serve`.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Serve {
    /// Starts `sluice serve --listen 127.0.0.1:0 <args>` with only the
    /// `SLUICE_*` variables in `env`, and waits for its start-up line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.arg("serve");
        let listen_given =
            args.contains(&"--listen") || env.iter().any(|(n, _)| *n == "SLUICE_LISTEN");
        if !listen_given {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with("SLUICE_") {
                command.env_remove(name);
            }
        }
        command.env("SLUICE_LOG", "info");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the sluice binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (lines, changed) = &*sink;
                lines.lock().unwrap().push(line);
                changed.notify_all();
            }
        });
        let mut serve = Serve {
            child,
            base: String::new(),
            log,
        };
        let line = serve.wait_for_log("listening");
        // The text format writes `address=…`, the JSON one `"address":"…"`.
        let address = line
            .split([' ', ','])
            .find_map(|field| {
                let value = field
                    .strip_prefix("address=")
                    .or_else(|| field.strip_prefix("\"address\":"))?;
                Some(value.trim_matches('"'))
            })
            .unwrap_or_else(|| panic!("no address in the start-up line {line:?}"))
            .to_owned();
        serve.base = format!("http://{address}");
        serve
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The first log line containing `needle`, waiting for it; panics with
    /// the whole log if it does not come.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_log_after(0, needle)
    }

    /// Like [`Serve::wait_for_log`], looking only at lines after the first `skip`.
    pub fn wait_for_log_after(&self, skip: usize, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let (lines, changed) = &*self.log;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(line) = guard.iter().skip(skip).find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no log line with {needle:?}; the log:\n{}",
                guard.join("\n")
            );
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// How many lines have been logged so far.
    pub fn log_len(&self) -> usize {
        self.log.0.lock().unwrap().len()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        self.log.0.lock().unwrap().join("\n")
    }

    /// Sends the signal `name` (`HUP`, `TERM`, `INT`) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory now, in bytes (`VmRSS` in
    /// `/proc/<pid>/status`).
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"));
        kib * 1024
    }

    /// Waits for the process to exit and returns how it did.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// An HTTP client that keeps no connection idle between tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// A response's status, headers and JSON body (`Null` when empty).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// The header `name` as text; panics when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

/// Sends `request` and reads the answer.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    };
    Answer {
        status,
        headers,
        json,
        text,
    }
}

/// `POST /v1/check` with `body`.
pub async fn check(serve: &Serve, body: serde_json::Value) -> Answer {
    send(client().post(serve.url("/v1/check")).json(&body)).await
}

/// The text of `GET /metrics`.
pub async fn metrics(serve: &Serve) -> String {
    let response = client().get(serve.url("/metrics")).send().await;
    response.expect("the server answers").text().await.unwrap()
}
