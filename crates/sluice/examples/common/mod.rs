//! What the memory examples share: this process's resident memory, and
//! the output of a memory store's future.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// This process's resident set size, from `VmRSS` in `/proc/self/status`.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("a VmRSS line in kB");
    kb * 1024
}

/// Polls `f` once: the memory store's futures are ready at once.
pub fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a memory store future was not ready at the first poll"),
    }
}
