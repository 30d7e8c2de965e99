//! A connection whose reads give up on a peer that has sent nothing for a
//! while.
//!
//! hyper's HTTP/2 server has no read or handshake timeout: a client that
//! opens a TCP connection to the gRPC listener and sends nothing (not even
//! the HTTP/2 preface, so the keepalive pings never start) held one of its
//! `max_connections` for ever. With keepalive pings on, a live peer always
//! sends something (a PING's answer) within the ping interval plus its
//! timeout, so [`ReadIdle`] with that sum as its timeout cuts only silent
//! peers: those that never spoke HTTP/2 and those that went away.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `io`, whose reads fail with [`io::ErrorKind::TimedOut`] once the peer
/// has sent nothing for `timeout`.
#[derive(Debug)]
pub struct ReadIdle<T> {
    io: T,
    timeout: Duration,
    /// Started when a read first waits; dropped when one returns.
    silent: Option<Pin<Box<Sleep>>>,
}

impl<T> ReadIdle<T> {
    /// Wraps `io`.
    pub fn new(io: T, timeout: Duration) -> ReadIdle<T> {
        ReadIdle {
            io,
            timeout,
            silent: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadIdle<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if polled.is_ready() {
            self.silent = None;
            return polled;
        }
        let timeout = self.timeout;
        let silent = self
            .silent
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(silent.as_mut().poll(cx));
        self.silent = None;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the peer sent nothing for {}",
                sluice::duration::display(timeout)
            ),
        )))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadIdle<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_cut_after_the_timeout() {
        let (server, _client) = duplex(16);
        let mut server = ReadIdle::new(server, TIMEOUT);
        let started = tokio::time::Instant::now();
        let error = server.read(&mut [0; 4]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_speaks_within_the_timeout_is_never_cut() {
        let (server, mut client) = duplex(16);
        let mut server = ReadIdle::new(server, TIMEOUT);
        let writer = tokio::spawn(async move {
            for byte in 0..5u8 {
                tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await;
                client.write_all(&[byte]).await.unwrap();
            }
        });
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        writer.await.unwrap();
    }
}
