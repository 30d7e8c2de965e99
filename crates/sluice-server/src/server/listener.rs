//! The listening socket, with a backlog deep enough for the clients that
//! wait beyond `max_connections`.
//!
//! `TcpListener::bind` (tokio's, through mio, as std's) listens with a
//! backlog of 128. Connections beyond `max_connections` are left in that
//! backlog, and once 128 wait there the kernel drops new clients' SYNs
//! (their connections stall for its retransmissions, a second and more) or,
//! under a burst, answers them with SYN cookies whose connections it resets
//! when their later segments arrive: a few hundred slow clients were enough
//! to have ordinary clients reset (issue 12).

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The listen backlog asked for: Linux's default `net.core.somaxconn`
/// since 5.4, which caps it (raise that sysctl on older kernels, whose
/// default is 128).
pub const BACKLOG: u32 = 4096;

/// Listens on `address` (`host:port`; the first of its addresses that can
/// be bound) with a backlog of [`BACKLOG`].
pub async fn bind(address: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for address in tokio::net::lookup_host(address).await? {
        match bind_one(address) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on")))
}

fn bind_one(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted server can listen again at
    // once, while its previous connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}
