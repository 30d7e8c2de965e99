//! Faults caused to real Redis processes, and waits for what the kernel
//! shows of them (`kill` returns once a signal is sent, not once it has
//! taken effect).

use std::process::Command;
use std::time::Duration;

/// Sends signal `name` (`-STOP`, `-CONT`, `-KILL`) to process `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {name} {pid}");
}

/// Blocks until process `pid` is stopped.
pub fn wait_until_stopped(pid: u32) {
    let stat = format!("/proc/{pid}/stat");
    wait_for("Redis to stop", || {
        let text = std::fs::read_to_string(&stat).unwrap_or_default();
        // The state follows the parenthesised command name.
        text.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T'))
    });
}

/// Blocks until some connection to loopback `port` holds bytes its server
/// has not read yet: a command written to a stopped Redis, waiting for it.
pub fn wait_until_unread_bytes(port: u16) {
    let port = format!("{port:04X}");
    wait_for("a command waiting in Redis's socket", || {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .map(|(_, p)| p);
            let unread = fields
                .get(4)
                .and_then(|q| q.rsplit_once(':'))
                .map(|(_, rx)| rx);
            local_port == Some(port.as_str())
                && unread.is_some_and(|rx| rx.bytes().any(|digit| digit != b'0'))
        })
    });
}

/// Polls `ready` every millisecond for up to 10 s.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 10 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
