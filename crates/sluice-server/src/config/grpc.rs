//! `grpc`: where the gRPC listener (Envoy's rate limit service, health,
//! reflection) listens, and how much a client may take of it.

use std::time::Duration;

use marked_yaml::Node;

use super::yaml::{Walker, join};

/// The gRPC listener: off unless [`GrpcSettings::listen`] is set. Its
/// clients are few and long-lived (Envoy keeps one HTTP/2 connection per
/// worker thread and multiplexes every check on it), so the bounds are on
/// connections, streams per connection, message size and decision time;
/// `server.send_timeout`, `server.drain_timeout` and `server.max_header_bytes`
/// (as HTTP/2's header list size) apply to it as to the HTTP listener.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrpcSettings {
    /// `host:port` to listen on; `None`: no gRPC listener.
    pub listen: Option<String>,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Requests in flight at once on one connection (HTTP/2
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`); a client opens no more.
    pub max_concurrent_streams: u32,
    /// How long a connection may stay silent before the server pings it.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    /// A peer that sends nothing at all for the interval and this timeout
    /// together (one that never speaks HTTP/2, say) is closed too.
    pub keepalive_timeout: Duration,
    /// How long one ShouldRateLimit may take; `DEADLINE_EXCEEDED` beyond it.
    pub request_timeout: Duration,
    /// The largest request message in bytes; `OUT_OF_RANGE` beyond it.
    pub max_message_bytes: usize,
}

impl Default for GrpcSettings {
    /// Off; 256 connections (with the HTTP listener's 512, under the common
    /// 1024 file limit), 1024 streams per connection (Envoy multiplexes a
    /// worker's checks on one connection: a low bound would queue them), a
    /// ping after 60 s of silence answered within 20 s, 10 s per decision
    /// and 64 KiB per message (as the HTTP body limit; a request with a
    /// few descriptors is a few hundred bytes).
    fn default() -> GrpcSettings {
        GrpcSettings {
            listen: None,
            max_connections: 256,
            max_concurrent_streams: 1024,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }
}

/// What a listen address must look like, for errors.
pub const LISTEN_EXPECTED: &str = "an address to listen on such as 127.0.0.1:8081, \
     :8081 (every interface) or 8081 (127.0.0.1 only)";

/// The address to listen on that `text` names, or what is wrong with it:
///
/// - `host:port`: a name, an IPv4 address or a bracketed IPv6 one, and a
///   port from 0 to 65535 (0 picks a free port), as it is; the name is
///   resolved when the server binds;
/// - `:port`: every IPv4 interface, `0.0.0.0:port` (as Go's `net.Listen`
///   and envoyproxy/ratelimit read it);
/// - `port` alone: `127.0.0.1:port`, this machine only (the safe default
///   host).
///
/// ```
/// use sluice_server::config::parse_listen;
///
/// assert_eq!(parse_listen(":8080").as_deref(), Ok("0.0.0.0:8080"));
/// assert_eq!(parse_listen("8080").as_deref(), Ok("127.0.0.1:8080"));
/// assert_eq!(parse_listen("[::1]:8080").as_deref(), Ok("[::1]:8080"));
/// assert!(parse_listen("8080:").is_err());
/// ```
pub fn parse_listen(text: &str) -> Result<String, String> {
    let bad = || format!("must be {LISTEN_EXPECTED}, got {text:?}");
    let port = |p: &str| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok();
    if port(text) {
        return Ok(format!("127.0.0.1:{text}"));
    }
    let (host, port_text) = text.rsplit_once(':').ok_or_else(bad)?;
    if !port(port_text) {
        return Err(bad());
    }
    if host.is_empty() {
        return Ok(format!("0.0.0.0:{port_text}"));
    }
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.contains([':', ' ', '/']),
    };
    if host_ok {
        Ok(text.to_owned())
    } else {
        Err(bad())
    }
}

pub(super) const FIELDS: &[&str] = &[
    "listen",
    "max_connections",
    "max_concurrent_streams",
    "keepalive_interval",
    "keepalive_timeout",
    "request_timeout",
    "max_message_bytes",
];

/// Reads the `grpc` mapping at `node` over the defaults; invalid fields
/// are reported and keep their default.
pub(super) fn grpc(w: &mut Walker<'_>, node: &Node) -> GrpcSettings {
    let mut settings = GrpcSettings::default();
    let Some(map) = w.mapping(node, "grpc", FIELDS) else {
        return settings;
    };
    if let Some(node) = map.get_node("listen")
        && let Some(s) = w.scalar(node, "grpc.listen", LISTEN_EXPECTED)
    {
        match parse_listen(s.as_str()) {
            Ok(address) => settings.listen = Some(address),
            Err(e) => w.error(s.span(), "grpc.listen", e),
        }
    }
    let duration = |w: &mut Walker<'_>, name: &str, slot: &mut Duration| {
        if let Some(node) = map.get_node(name) {
            let path = join("grpc", name);
            match w.duration(node, &path) {
                Some(d) if d.is_zero() => w.error(node.span(), &path, "must be above zero, got 0s"),
                Some(d) => *slot = d,
                None => {}
            }
        }
    };
    duration(w, "keepalive_interval", &mut settings.keepalive_interval);
    duration(w, "keepalive_timeout", &mut settings.keepalive_timeout);
    duration(w, "request_timeout", &mut settings.request_timeout);
    let count = |w: &mut Walker<'_>, name: &str| {
        let node = map.get_node(name)?;
        w.positive(node, &join("grpc", name))
    };
    if let Some(n) = count(w, "max_connections") {
        settings.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = count(w, "max_concurrent_streams") {
        settings.max_concurrent_streams = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = count(w, "max_message_bytes") {
        settings.max_message_bytes = usize::try_from(n).unwrap_or(usize::MAX);
    }
    settings
}
