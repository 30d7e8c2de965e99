//! HTTP/1.1 on a raw socket: what the attack tests' clients write and read.
//! A client library would refuse to misbehave (a 10 GB `Content-Length`
//! with no body, a head that never ends), and would hide how a connection
//! ended, which is what the tests look at.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The policy the regular clients ask about: a limit so high that every
/// check is admitted, so any answer but 200 is a failure.
pub const POLICY: &str = "api";

/// `POST /v1/check` for `key` under [`POLICY`], as one buffer.
pub fn check_request(key: &str) -> Vec<u8> {
    let body = format!(r#"{{"policy":"{POLICY}","key":"{key}"}}"#);
    format!(
        "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One answer read off a socket.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body, as long as its `Content-Length` said.
    pub body: Vec<u8>,
}

/// Reads one answer whole (head, then a body of its `Content-Length`) from
/// `tcp`, keeping in `buf` what was read beyond it. `Ok(None)` when the
/// server closed before sending a byte.
pub async fn read_answer(
    tcp: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> io::Result<Option<Answer>> {
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at + 4;
        }
        if !fill(tcp, buf).await? {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("closed within a head: {:?}", String::from_utf8_lossy(buf)),
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("no status: {head:?}"))
        })?;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        if !fill(tcp, buf).await? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed within a body",
            ));
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Ok(Some(Answer { status, body }))
}

/// Appends what `tcp` has to `buf`; false at the end of the stream.
async fn fill(tcp: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    let n = tcp.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
