//! The attackers: each [`Kind`] is one way a client abuses a connection,
//! and a [`Wave`] runs many of them at once, each reconnecting as soon as
//! the server is done with it, until the wave is stopped. Every connection
//! leaves an [`Ending`]: how long it was held and how it ended, which the
//! tests hold to the configured bounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::wire::read_answer;

/// The head a slow client sends at once, before trickling: most of the
/// 16 KiB the server allows, so that every connection it holds also holds
/// that much of its memory.
const SLOW_HEAD_BYTES: usize = 12 * 1024;
/// How often a slow client sends one more byte.
const TRICKLE: Duration = Duration::from_millis(100);
/// A churner's pause between two connections: 100 a second each. A
/// churner that does not pause fills the listen backlog (1,024) while the
/// attack's other connections hold every slot, and from then on the
/// kernel drops new clients' SYNs: their connections wait for the
/// retransmissions (seconds), or time out. That is the backlog's bound,
/// the kernel's and the gateway's to defend (SECURITY.md), not Sluice's.
const CHURN_PAUSE: Duration = Duration::from_millis(10);
/// A header line of 1 MiB.
const LONG_HEADER_BYTES: usize = 1024 * 1024;
/// How many headers a header flood sends.
const HEADER_FLOOD: usize = 1000;

/// One way of abusing a connection. (A key flood, many decision requests
/// each with a new long key, is the memory store's bound:
/// `tests/key_flood.rs`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Slowloris: 12 KiB of an unfinished head at once, then one byte
    /// every 100 ms, never ending it.
    Slowloris,
    /// Connects and sends nothing.
    Idle,
    /// Connects and leaves at once (with a reset, so that the test's own
    /// ports do not pile up in TIME_WAIT), then again 10 ms later.
    Churn,
    /// `Content-Length: 10000000000`, then the body's first bytes and one
    /// more every 100 ms: only a refusal before the body answers it at
    /// once (reading it would take the body timeout).
    HugeLength,
    /// A chunked body that never ends, as fast as it goes.
    EndlessChunks,
    /// A chunked body that never ends, one small chunk every 100 ms.
    TrickledChunks,
    /// A head of 1,000 headers.
    ManyHeaders,
    /// A head with a header line of 1 MiB.
    LongHeader,
    /// 120 requests for `/openapi.json` (49 KB each) at once, never
    /// reading an answer, with a 4 KiB receive buffer: the server's writes
    /// stall.
    SlowReader,
}

/// How an attacker's connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum How {
    /// The server closed it without answering (for a slow reader, which
    /// reads nothing: its writes failed).
    Closed,
    /// The server closed it without answering, and the close came as a
    /// reset: the kernel resets a connection closed with bytes unread, as
    /// a slow client's last byte, sent just before the cut.
    Reset,
    /// The server answered with this status (and closed, or the attacker
    /// would have gone on).
    Answered(u16),
    /// The connection broke (a reset, say) before any answer.
    Broken(String),
    /// The attacker left (churn).
    Left,
    /// Still open when the wave was stopped.
    Stopped,
}

/// One connection of an attacker, ended.
#[derive(Clone, Debug)]
pub struct Ending {
    /// Which attack it was.
    pub kind: Kind,
    /// From the moment the attacker began to connect (before the server
    /// accepted the connection and started its timers) to the moment its
    /// end was seen.
    pub held: Duration,
    /// How it ended.
    pub how: How,
}

/// Many attackers at once, each looping over connections until stopped.
pub struct Wave {
    stop: watch::Sender<bool>,
    attackers: JoinSet<Vec<Ending>>,
    /// Connections established so far, over all attackers.
    pub opened: Arc<AtomicUsize>,
    /// Attackers in the wave.
    pub size: usize,
}

impl Wave {
    /// Starts `count` attackers of each kind in `attack` against `address`.
    pub fn start(address: SocketAddr, attack: &[(Kind, usize)]) -> Wave {
        let (stop, stopped) = watch::channel(false);
        let opened = Arc::new(AtomicUsize::new(0));
        let mut attackers = JoinSet::new();
        let mut size = 0;
        for &(kind, count) in attack {
            for _ in 0..count {
                attackers.spawn(attacker(
                    kind,
                    address,
                    stopped.clone(),
                    Arc::clone(&opened),
                ));
                size += 1;
            }
        }
        Wave {
            stop,
            attackers,
            opened,
            size,
        }
    }

    /// Waits until every attacker has connected at least once (within
    /// `patience`): the attack is in force.
    pub async fn in_force(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        while self.opened.load(Ordering::Relaxed) < self.size {
            assert!(
                Instant::now() < deadline,
                "only {} of {} attackers connected within {patience:?}",
                self.opened.load(Ordering::Relaxed),
                self.size
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every attacker and returns every connection's ending, those
    /// still open marked [`How::Stopped`] with their age.
    pub async fn stop(mut self) -> Vec<Ending> {
        let _ = self.stop.send(true);
        let mut endings = Vec::new();
        while let Some(done) = self.attackers.join_next().await {
            endings.extend(done.expect("an attacker panicked"));
        }
        endings
    }
}

/// One attacker: connections of `kind`, one after another, until `stop`.
async fn attacker(
    kind: Kind,
    address: SocketAddr,
    mut stop: watch::Receiver<bool>,
    opened: Arc<AtomicUsize>,
) -> Vec<Ending> {
    let mut endings = Vec::new();
    while !*stop.borrow() {
        // Counted from before the connection exists: the server accepts it
        // (and starts its timers) after the handshake, which may be before
        // this task runs again.
        let since = Instant::now();
        let tcp = tokio::select! {
            tcp = connect(kind, address) => tcp,
            _ = stop.changed() => break,
        };
        let Ok(tcp) = tcp else {
            // Refused (the server is stopping) or out of ports: not a busy loop.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let how = tokio::select! {
            how = assault(kind, tcp) => how,
            _ = stop.changed() => How::Stopped,
        };
        if how != How::Left {
            endings.push(Ending {
                kind,
                held: since.elapsed(),
                how,
            });
        }
    }
    endings
}

/// A connection for an attacker of `kind`.
async fn connect(kind: Kind, address: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if kind == Kind::SlowReader {
        socket.set_recv_buffer_size(4096)?;
    }
    socket.connect(address).await
}

/// What an attacker of `kind` does with one connection, to its end.
async fn assault(kind: Kind, tcp: TcpStream) -> How {
    let post = |extra: &str| {
        format!(
            "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\n{extra}\r\n"
        )
        .into_bytes()
    };
    match kind {
        Kind::Slowloris => {
            let mut head = b"POST /v1/check HTTP/1.1\r\nHost: sluice\r\nX-Slow: ".to_vec();
            head.resize(head.len() + SLOW_HEAD_BYTES, b'a');
            converse(tcp, head, Some((b"a".to_vec(), TRICKLE))).await
        }
        Kind::Idle => converse(tcp, Vec::new(), None).await,
        Kind::Churn => {
            let _ = tcp.set_zero_linger();
            drop(tcp);
            tokio::time::sleep(CHURN_PAUSE).await;
            How::Left
        }
        Kind::HugeLength => {
            let mut head = post("Content-Length: 10000000000\r\n");
            head.extend_from_slice(b"{\"policy\":");
            converse(tcp, head, Some((b" ".to_vec(), TRICKLE))).await
        }
        Kind::EndlessChunks => {
            let mut chunk = b"1000\r\n".to_vec();
            chunk.resize(chunk.len() + 0x1000, b' ');
            chunk.extend_from_slice(b"\r\n");
            let head = post("Transfer-Encoding: chunked\r\n");
            converse(tcp, head, Some((chunk, Duration::ZERO))).await
        }
        Kind::TrickledChunks => {
            let head = post("Transfer-Encoding: chunked\r\n");
            converse(tcp, head, Some((b"1\r\n \r\n".to_vec(), TRICKLE))).await
        }
        Kind::ManyHeaders => {
            let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: sluice\r\n");
            for i in 0..HEADER_FLOOD {
                head.push_str(&format!("X-H{i}: v\r\n"));
            }
            head.push_str("\r\n");
            converse(tcp, head.into_bytes(), None).await
        }
        Kind::SlowReader => {
            // 5.9 MB of answers asked for at once: more than the socket
            // buffers hold (Linux grows the server's send buffer to 4 MB
            // on loopback), so the server's writes stall.
            let requests = b"GET /openapi.json HTTP/1.1\r\nHost: sluice\r\n\r\n".repeat(120);
            let mut tcp = tcp;
            let mut sent = tcp.write_all(&requests).await.is_ok();
            // Then one byte every 100 ms: a write fails once the server
            // has closed the connection (reading would drain the answers).
            while sent {
                tokio::time::sleep(TRICKLE).await;
                sent = tcp.write_all(b"a").await.is_ok();
            }
            How::Closed
        }
        Kind::LongHeader => {
            let mut head = b"GET /healthz HTTP/1.1\r\nHost: sluice\r\nX-Long: ".to_vec();
            head.resize(head.len() + LONG_HEADER_BYTES, b'a');
            head.extend_from_slice(b"\r\n\r\n");
            converse(tcp, head, None).await
        }
    }
}

/// Writes `first`, then `then`'s bytes every `then`'s interval (or as
/// fast as they go, for a zero interval) for ever, while reading what the
/// server says; ends when the server answers or closes. A write that
/// fails stops the writing only: the server's answer may still be there
/// to read.
async fn converse(tcp: TcpStream, first: Vec<u8>, then: Option<(Vec<u8>, Duration)>) -> How {
    let (mut read, mut write) = tcp.into_split();
    let writing = async move {
        if send(&mut write, &first).await
            && let Some((bytes, every)) = then
        {
            loop {
                if !every.is_zero() {
                    tokio::time::sleep(every).await;
                }
                if !send(&mut write, &bytes).await {
                    break;
                }
            }
        }
        // Keep the write half (dropping it would half-close the socket).
        std::future::pending::<()>().await;
        drop(write);
    };
    tokio::select! {
        how = outcome(&mut read) => how,
        () = writing => unreachable!("the writer never ends"),
    }
}

async fn send(write: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> bool {
    bytes.is_empty() || write.write_all(bytes).await.is_ok()
}

/// How the server ended a connection, read from its side of it.
async fn outcome(read: &mut (impl AsyncRead + Unpin)) -> How {
    let mut buf = Vec::new();
    match read_answer(read, &mut buf).await {
        Ok(Some(answer)) => How::Answered(answer.status),
        Ok(None) => How::Closed,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => How::Reset,
        Err(e) => How::Broken(e.to_string()),
    }
}
