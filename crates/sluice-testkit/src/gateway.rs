//! [`Gateway`]: a real nginx or Caddy on a free loopback port, started
//! from a site configuration as a user would write it.
//!
//! The site configuration names three addresses, which the gateway's
//! start replaces with the test's: `127.0.0.1:8000` (where the gateway
//! listens), `127.0.0.1:8080` (Sluice) and `127.0.0.1:9000` (the API). The
//! process-wide parts (nginx's pid file, temporary paths and log, Caddy's
//! admin endpoint and data directories) are the harness's, in the
//! gateway's own temporary directory.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Which gateway program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayKind {
    /// Debian's `nginx` (with `auth_request`).
    Nginx,
    /// Debian's `caddy`.
    Caddy,
}

/// A running gateway. Dropping it kills the process (SIGKILL), reaps it
/// and deletes its directory.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    port: u16,
    kind: GatewayKind,
    dir: TempDir,
}

impl Gateway {
    /// Starts `kind` with the site configuration `site`, listening on a
    /// free loopback port, asking Sluice at `sluice` and proxying to
    /// `upstream`; waits (up to 10 s) until it accepts connections.
    ///
    /// # Panics
    ///
    /// If the program is not installed (the message says how to install
    /// it), or if it does not come up (the message holds its log).
    pub fn start(
        kind: GatewayKind,
        site: &str,
        sluice: SocketAddr,
        upstream: SocketAddr,
    ) -> Gateway {
        let name = match kind {
            GatewayKind::Nginx => "nginx",
            GatewayKind::Caddy => "caddy",
        };
        let program = find(name).unwrap_or_else(|| {
            panic!(
                "{name} is not installed (on PATH or in /usr/sbin); the gateway tests need it \
                 (Debian: apt-get install {name}; scripts/test installs it when run as root)"
            )
        });
        let program = program.as_path();
        let dir = tempfile::Builder::new()
            .prefix("sluice-gateway-")
            .tempdir()
            .expect("cannot create a temporary directory for the gateway");
        let port = free_port();
        let site = site
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:8080", &sluice.to_string())
            .replace("127.0.0.1:9000", &upstream.to_string());
        let log = std::fs::File::create(dir.path().join("gateway.log"))
            .expect("cannot create the gateway's log");
        let mut command = Command::new(program);
        match kind {
            GatewayKind::Nginx => {
                let config = dir.path().join("nginx.conf");
                std::fs::write(&config, nginx_config(dir.path(), &site))
                    .expect("cannot write nginx.conf");
                command
                    .args(["-e", "stderr", "-p"])
                    .arg(dir.path())
                    .arg("-c")
                    .arg(&config);
            }
            GatewayKind::Caddy => {
                let config = dir.path().join("Caddyfile");
                let global = "{\n\tadmin off\n\tauto_https off\n}\n";
                std::fs::write(&config, format!("{global}{site}"))
                    .expect("cannot write the Caddyfile");
                command
                    .args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(&config)
                    .env("HOME", dir.path())
                    .env("XDG_DATA_HOME", dir.path().join("data"))
                    .env("XDG_CONFIG_HOME", dir.path().join("config"));
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a second handle on the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut gateway = Gateway {
            child,
            port,
            kind,
            dir,
        };
        gateway.wait_until_listening();
        gateway
    }

    /// The port the gateway listens on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{:?} exited ({status}) at start:\n{}",
                    self.kind,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen on {address} within 10 s:\n{}",
                self.kind,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole nginx configuration around the `site` (a `server` block): in
/// the foreground, one process, every file in `dir`.
fn nginx_config(dir: &Path, site: &str) -> String {
    let dir = dir.display();
    // One process, no master: killing it (by pid, on drop) leaves no
    // worker behind; a killed master's worker lived on, orphaned.
    // As root, nginx would switch to `nobody`, who cannot write `dir`.
    let user = if is_root() { "user root;\n" } else { "" };
    format!(
        "{user}daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log stderr;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {dir}/client_body;\n\
         proxy_temp_path {dir}/proxy;\n\
         fastcgi_temp_path {dir}/fastcgi;\n\
         uwsgi_temp_path {dir}/uwsgi;\n\
         scgi_temp_path {dir}/scgi;\n\
         {site}\n}}\n"
    )
}

/// The program `name` on `PATH`, or in the `sbin` folders (where Debian
/// puts nginx, and which a user's `PATH` often lacks).
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// A loopback port free now (bound and released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("cannot bind 127.0.0.1:0 to pick a free port")
        .port()
}
