//! A connection whose writes give up on a client that stops reading.
//!
//! hyper has no write timeout: a client that sends requests (pipelined,
//! say) and never reads the answers leaves the server's write pending for
//! ever once the socket buffers are full, and while it writes, hyper does
//! not wait for a head, so `header_timeout` never starts. `max_connections`
//! such clients held every connection the server serves, for good
//! (issue 12). [`SendTimeout`] fails a write that has made no progress for
//! its timeout (as nginx's `send_timeout`: between two successful writes,
//! not over a whole answer), and hyper then closes the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `io`, whose writes, flushes and shutdown fail with
/// [`io::ErrorKind::TimedOut`] once one has waited `timeout` without
/// progress.
#[derive(Debug)]
pub struct SendTimeout<T> {
    io: T,
    timeout: Duration,
    /// Started when a write first waits; dropped when one goes through.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> SendTimeout<T> {
    /// Wraps `io`.
    pub fn new(io: T, timeout: Duration) -> SendTimeout<T> {
        SendTimeout {
            io,
            timeout,
            stalled: None,
        }
    }

    /// What a write of `io` answered, with the clock of the stall.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stalled.as_mut().poll(cx));
        self.stalled = None;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client read nothing for {}",
                sluice::duration::display(timeout)
            ),
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_fails_after_the_timeout() {
        let (server, _client) = duplex(16);
        let mut server = SendTimeout::new(server, TIMEOUT);
        let started = tokio::time::Instant::now();
        server.write_all(&[0; 16]).await.unwrap();
        let error = server.write_all(b"more").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_reading_is_never_cut() {
        let (server, mut client) = duplex(16);
        let mut server = SendTimeout::new(server, TIMEOUT);
        let reader = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let mut read = 0;
            // One byte every 9 s: each write waits less than the timeout,
            // though the whole takes far longer.
            while client.read_exact(&mut byte).await.is_ok() {
                read += 1;
                tokio::time::sleep(TIMEOUT - Duration::from_secs(1)).await;
            }
            read
        });
        let started = tokio::time::Instant::now();
        server.write_all(&[7; 64]).await.unwrap();
        server.flush().await.unwrap();
        assert!(started.elapsed() > TIMEOUT * 4);
        drop(server);
        assert_eq!(reader.await.unwrap(), 64);
    }
}
