//! `forward_auth` and `trusted_proxies`: how `/v1/forward-auth` answers a
//! gateway (nginx's `auth_request`, Caddy's `forward_auth`, Traefik's
//! `ForwardAuth`) and whose word it takes for the client's address.

use axum::http::StatusCode;
use ipnet::IpNet;
use marked_yaml::Node;
use sluice_tower::ProxyHeader;

use super::yaml::{Walker, index, join};

/// What `/v1/forward-auth` does when the request does not say otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardAuthSettings {
    /// The policy a request is decided by unless its `?policy=` names
    /// another.
    pub policy: String,
    /// The status of a denial unless `?deny_status=` gives another: 429
    /// (Caddy, Traefik) or 403 (nginx, whose `auth_request` passes on only
    /// 401 and 403).
    pub deny_status: StatusCode,
    /// The header the trusted proxies set or append the client's address
    /// to; no other is ever read.
    pub client_header: ProxyHeader,
    /// The networks of the proxies whose `client_header` is believed (the
    /// top-level `trusted_proxies`); from any other peer, the peer's own
    /// address is the client's.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for ForwardAuthSettings {
    /// The `default` policy, 429, `X-Forwarded-For`, and no trusted proxy.
    fn default() -> ForwardAuthSettings {
        ForwardAuthSettings {
            policy: "default".to_owned(),
            deny_status: StatusCode::TOO_MANY_REQUESTS,
            client_header: ProxyHeader::XForwardedFor,
            trusted_proxies: Vec::new(),
        }
    }
}

const FIELDS: &[&str] = &["policy", "deny_status", "client_header"];

/// The `client_header` values and what they name.
const CLIENT_HEADERS: [(&str, ProxyHeader); 3] = [
    ("x_forwarded_for", ProxyHeader::XForwardedFor),
    ("forwarded", ProxyHeader::Forwarded),
    ("x_real_ip", ProxyHeader::XRealIp),
];

/// What a denial status must be, for the errors that refuse one.
pub const DENY_STATUS_EXPECTED: &str = "must be 429 or 403";

/// A denial status as a request or the file gives it: 429 (Caddy,
/// Traefik) or 403 (nginx's `auth_request`, which passes on only 401 and
/// 403; a 401 would ask the client for credentials).
pub fn deny_status(text: &str) -> Option<StatusCode> {
    match text {
        "429" => Some(StatusCode::TOO_MANY_REQUESTS),
        "403" => Some(StatusCode::FORBIDDEN),
        _ => None,
    }
}

/// Reads the `forward_auth` mapping at `node` into `settings`; invalid
/// fields are reported and keep their default.
pub(super) fn forward_auth(w: &mut Walker<'_>, node: &Node, settings: &mut ForwardAuthSettings) {
    let Some(map) = w.mapping(node, "forward_auth", FIELDS) else {
        return;
    };
    if let Some(node) = map.get_node("policy") {
        if let Some(s) = w.scalar(node, "forward_auth.policy", "a policy name") {
            settings.policy = s.as_str().to_owned();
        }
    }
    if let Some(node) = map.get_node("deny_status") {
        let path = join("forward_auth", "deny_status");
        if let Some(s) = w.scalar(node, &path, "429 or 403") {
            match deny_status(s.as_str()) {
                Some(status) => settings.deny_status = status,
                None => {
                    let message = format!("{DENY_STATUS_EXPECTED}, got {:?}", s.as_str());
                    w.error(s.span(), &path, message);
                }
            }
        }
    }
    if let Some(node) = map.get_node("client_header") {
        let path = join("forward_auth", "client_header");
        if let Some(s) = w.scalar(node, &path, "a header") {
            match CLIENT_HEADERS.iter().find(|(name, _)| *name == s.as_str()) {
                Some((_, header)) => settings.client_header = *header,
                None => {
                    let names: Vec<&str> = CLIENT_HEADERS.iter().map(|(n, _)| *n).collect();
                    let message =
                        format!("must be one of {}, got {:?}", names.join(", "), s.as_str());
                    w.error(s.span(), &path, message);
                }
            }
        }
    }
}

/// Reads the `trusted_proxies` list at `node`: networks (`10.0.0.0/8`) or
/// single addresses (`127.0.0.1`).
pub(super) fn trusted_proxies(w: &mut Walker<'_>, node: &Node) -> Vec<IpNet> {
    let mut nets = Vec::new();
    let Some(list) = w.sequence(
        node,
        "trusted_proxies",
        "a list of networks such as 10.0.0.0/8",
    ) else {
        return nets;
    };
    for (i, item) in list.iter().enumerate() {
        let path = index("trusted_proxies", i);
        let Some(s) = w.scalar(item, &path, "a network such as 10.0.0.0/8") else {
            continue;
        };
        let text = s.as_str().trim();
        let net = text
            .parse::<IpNet>()
            .ok()
            .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from));
        match net {
            Some(net) => nets.push(net),
            None => w.error(
                s.span(),
                &path,
                format!("must be a network such as 10.0.0.0/8 or an address, got {text:?}"),
            ),
        }
    }
    nets
}
