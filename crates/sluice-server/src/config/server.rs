//! `server`: how long and how much a client may take of the HTTP listener,
//! and how long a shutdown may drain.

use std::time::Duration;

use marked_yaml::Node;

use super::yaml::{Walker, join};

/// The listener's bounds on connections, time and request heads, and the
/// drain deadline. The defaults let a few hundred slow or idle clients
/// come and go without starving the others: each is cut after
/// [`ServerSettings::header_timeout`], and never more than
/// [`ServerSettings::max_connections`] are served at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSettings {
    /// How long a client may take to send a request's line and headers,
    /// counted from when the connection opens or its previous answer is
    /// sent: so it is also how long an idle keep-alive connection is kept
    /// (hyper starts this timer whenever it waits for a request).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body; 408 beyond it.
    pub body_timeout: Duration,
    /// How long writing an answer may wait on a client that reads nothing;
    /// the connection is closed beyond it. Counted between two writes that
    /// go through, not over a whole answer (as nginx's `send_timeout`).
    pub send_timeout: Duration,
    /// The largest request head (line and headers) in bytes; 431 beyond it.
    pub max_header_bytes: usize,
    /// The most headers a request may have; 431 beyond it.
    pub max_headers: usize,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before closing
    /// their connections.
    pub drain_timeout: Duration,
}

impl Default for ServerSettings {
    /// 10 s for a head or a body (a decision request is a few hundred
    /// bytes) or for a client to read, 16 KiB and 100 headers per head (hyper's own count), 512
    /// connections (under the common 1024 file limit, with room for the
    /// store's own sockets), and a 10 s drain (well under the 30 s
    /// Kubernetes waits after SIGTERM before it kills).
    fn default() -> ServerSettings {
        ServerSettings {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_connections: 512,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

pub(super) const FIELDS: &[&str] = &[
    "header_timeout",
    "body_timeout",
    "send_timeout",
    "max_header_bytes",
    "max_headers",
    "max_connections",
    "drain_timeout",
];

/// Reads the `server` mapping at `node` over the defaults; invalid fields
/// are reported and keep their default.
pub(super) fn server(w: &mut Walker<'_>, node: &Node) -> ServerSettings {
    let mut settings = ServerSettings::default();
    let Some(map) = w.mapping(node, "server", FIELDS) else {
        return settings;
    };
    let duration = |w: &mut Walker<'_>, name: &str, slot: &mut Duration| {
        if let Some(node) = map.get_node(name) {
            let path = join("server", name);
            match w.duration(node, &path) {
                Some(d) if d.is_zero() => w.error(node.span(), &path, "must be above zero, got 0s"),
                Some(d) => *slot = d,
                None => {}
            }
        }
    };
    duration(w, "header_timeout", &mut settings.header_timeout);
    duration(w, "body_timeout", &mut settings.body_timeout);
    duration(w, "send_timeout", &mut settings.send_timeout);
    duration(w, "drain_timeout", &mut settings.drain_timeout);
    let count = |w: &mut Walker<'_>, name: &str, slot: &mut usize| {
        if let Some(node) = map.get_node(name)
            && let Some(n) = w.positive(node, &join("server", name))
        {
            *slot = usize::try_from(n).unwrap_or(usize::MAX);
        }
    };
    count(w, "max_header_bytes", &mut settings.max_header_bytes);
    count(w, "max_headers", &mut settings.max_headers);
    count(w, "max_connections", &mut settings.max_connections);
    settings
}
