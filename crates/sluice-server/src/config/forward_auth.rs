//! `forward_auth` and `trusted_proxies`: how `/v1/forward-auth` answers a
//! gateway (nginx's `auth_request`, Caddy's `forward_auth`, Traefik's
//! `ForwardAuth`), which policy each of the gateway's requests falls under,
//! and whose word it takes for the client's address.

use axum::http::StatusCode;
use ipnet::IpNet;
use marked_yaml::Node;
use sluice_tower::ProxyHeader;

use super::envoy::matching::wildcard_match;
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
    /// `routes`: the policies of the requests a trusted proxy describes by
    /// their path and method, first match first; `policy` for the rest.
    pub routes: Vec<ForwardAuthRoute>,
}

/// One entry of `forward_auth.routes`: the requests it applies to, and
/// their policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardAuthRoute {
    /// The path, where each `*` stands for any run of characters
    /// (`/api/*/uploads`); matched against the original request's path,
    /// without its query string.
    pub path: String,
    /// The methods, in upper case; empty for every method.
    pub methods: Vec<String>,
    /// The policy of the requests it matches.
    pub policy: String,
}

impl ForwardAuthRoute {
    /// Whether the original request, its `path` and `method` as the
    /// gateway gives them, is one of this route's.
    fn matches(&self, path: &str, method: Option<&str>) -> bool {
        let method_fits = self.methods.is_empty()
            || method.is_some_and(|m| self.methods.iter().any(|r| r.eq_ignore_ascii_case(m)));
        method_fits && wildcard_match(&self.path, path)
    }
}

impl ForwardAuthSettings {
    /// The policy of the original request whose path (the query string is
    /// ignored) and method a trusted gateway gave, if it did: the first
    /// route that matches it, else `policy`.
    pub fn policy_for(&self, uri: Option<&str>, method: Option<&str>) -> &str {
        let Some(uri) = uri else {
            return &self.policy;
        };
        let path = uri.split(['?', '#']).next().unwrap_or(uri);
        (self.routes.iter())
            .find(|r| r.matches(path, method))
            .map_or(&self.policy, |r| &r.policy)
    }
}

impl Default for ForwardAuthSettings {
    /// The `default` policy, 429, `X-Forwarded-For`, and no trusted proxy.
    fn default() -> ForwardAuthSettings {
        ForwardAuthSettings {
            policy: "default".to_owned(),
            deny_status: StatusCode::TOO_MANY_REQUESTS,
            client_header: ProxyHeader::XForwardedFor,
            trusted_proxies: Vec::new(),
            routes: Vec::new(),
        }
    }
}

pub(super) const FIELDS: &[&str] = &["policy", "deny_status", "client_header", "routes"];
pub(super) const ROUTE_FIELDS: &[&str] = &["path", "methods", "policy"];

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
    if let Some(node) = map.get_node("policy")
        && let Some(s) = w.scalar(node, "forward_auth.policy", "a policy name")
    {
        settings.policy = s.as_str().to_owned();
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
    if let Some(node) = map.get_node("routes") {
        settings.routes = routes(w, node);
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

/// Reads the `forward_auth.routes` list at `node`.
fn routes(w: &mut Walker<'_>, node: &Node) -> Vec<ForwardAuthRoute> {
    let path = join("forward_auth", "routes");
    let Some(list) = w.sequence(node, &path, "a list of routes") else {
        return Vec::new();
    };
    let mut routes = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = index(&path, i);
        let Some(map) = w.mapping(item, &at, ROUTE_FIELDS) else {
            continue;
        };
        let mut route = ForwardAuthRoute {
            path: String::new(),
            methods: Vec::new(),
            policy: String::new(),
        };
        let mut complete = true;
        match map.get_node("path") {
            None => {
                w.error(
                    item.span(),
                    &join(&at, "path"),
                    "missing; a path such as /api/*",
                );
                complete = false;
            }
            Some(node) => match w.scalar(node, &join(&at, "path"), "a path such as /api/*") {
                Some(s) if s.as_str().starts_with('/') => route.path = s.as_str().to_owned(),
                Some(s) => {
                    let message = format!("must start with /, got {:?}", s.as_str());
                    w.error(s.span(), &join(&at, "path"), message);
                    complete = false;
                }
                None => complete = false,
            },
        }
        match map.get_node("policy") {
            None => {
                w.error(item.span(), &join(&at, "policy"), "missing; a policy name");
                complete = false;
            }
            Some(node) => match w.scalar(node, &join(&at, "policy"), "a policy name") {
                Some(s) => route.policy = s.as_str().to_owned(),
                None => complete = false,
            },
        }
        if let Some(node) = map.get_node("methods") {
            let methods_path = join(&at, "methods");
            if let Some(list) = w.sequence(node, &methods_path, "a list of methods such as [GET]") {
                for (j, item) in list.iter().enumerate() {
                    let method_path = index(&methods_path, j);
                    let Some(s) = w.scalar(item, &method_path, "a method such as GET") else {
                        complete = false;
                        continue;
                    };
                    let method = s.as_str();
                    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                        let message = format!("must be a method such as GET, got {method:?}");
                        w.error(s.span(), &method_path, message);
                        complete = false;
                    } else {
                        route.methods.push(method.to_ascii_uppercase());
                    }
                }
            }
        }
        if complete {
            routes.push(route);
        }
    }
    routes
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
