//! Key extractors: which client a request counts against.
//!
//! A [`KeyBy`] turns a request's head into a key, or into `None` when the
//! request carries none (an *unkeyed* request, which
//! [`Unkeyed`](crate::Unkeyed) decides). Keys are plain text; an empty key
//! counts as no key.
//!
//! The peer address comes from the request's extensions: axum's
//! `ConnectInfo<SocketAddr>` (feature `axum`, on by default; serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`), or a plain
//! [`SocketAddr`], which a hyper or tonic server inserts itself.

pub(crate) mod forwarded;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderName;
/// The error of [`KeyBy::header`] for a name that is not a valid header
/// name (`http`'s, re-exported so that callers need not depend on `http`).
pub use http::header::InvalidHeaderName;
use http::request::Parts;
use ipnet::IpNet;

pub use self::forwarded::ProxyHeader;

/// Picks a request's rate-limit key. Cheap to clone.
///
/// ```
/// use std::net::SocketAddr;
/// use http::Request;
/// use sluice_tower::{KeyBy, ProxyHeader};
///
/// let (mut parts, ()) = Request::new(()).into_parts();
/// parts.extensions.insert("192.0.2.7:51000".parse::<SocketAddr>().unwrap());
/// parts.headers.insert("x-api-key", "k-123".parse().unwrap());
/// parts.headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
///
/// assert_eq!(KeyBy::peer_ip().key(&parts).as_deref(), Some("192.0.2.7"));
/// let api_key = KeyBy::header("X-API-Key").unwrap();
/// assert_eq!(api_key.key(&parts).as_deref(), Some("k-123"));
/// // The peer is not a trusted proxy: its X-Forwarded-For is ignored.
/// let proxied = KeyBy::forwarded(ProxyHeader::XForwardedFor, ["10.0.0.0/8".parse().unwrap()]);
/// assert_eq!(proxied.key(&parts).as_deref(), Some("192.0.2.7"));
/// ```
#[derive(Clone)]
pub struct KeyBy(Repr);

#[derive(Clone)]
enum Repr {
    PeerIp,
    Header(HeaderName),
    Forwarded {
        trusted: Arc<[IpNet]>,
        headers: ProxyHeader,
    },
    Custom(Arc<KeyFn>),
}

/// A custom extractor.
type KeyFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

impl KeyBy {
    /// The peer's IP address, as text: `192.0.2.7`, or IPv6 in its
    /// canonical form (`2001:db8::1`); an IPv4-mapped IPv6 peer
    /// (`::ffff:192.0.2.7`, from a dual-stack listener) is keyed as IPv4.
    /// Unkeyed when the request has no peer address.
    ///
    /// Every IPv6 address is its own key, and a client often holds a whole
    /// /64: use [`KeyBy::custom`] to key by prefix if that matters.
    pub fn peer_ip() -> KeyBy {
        KeyBy(Repr::PeerIp)
    }

    /// The value of header `name`, such as an API key: the first one if
    /// there are several. Unkeyed when it is missing, empty or not UTF-8.
    ///
    /// The value is the key as the store keeps it (in Redis too): key by a
    /// hash of it if your keys are secrets that the store must not hold.
    ///
    /// `name` is a `&str`, a `String` or an [`http::HeaderName`], in any
    /// case (header names are case-insensitive: `"X-API-Key"` reads
    /// `x-api-key`). A name that is not a valid header name (empty, or with
    /// a space, a colon or a non-ASCII character) is an
    /// [`InvalidHeaderName`] error, never a panic: a name read from a file
    /// fails when the layer is built, not on every request.
    ///
    /// ```
    /// use sluice_tower::KeyBy;
    ///
    /// assert!(KeyBy::header("x-api-key").is_ok());
    /// assert!(KeyBy::header(http::header::AUTHORIZATION).is_ok());
    /// assert!(KeyBy::header("x api key").is_err());
    /// ```
    pub fn header(name: impl AsRef<str>) -> Result<KeyBy, InvalidHeaderName> {
        let name = HeaderName::try_from(name.as_ref())?;
        Ok(KeyBy(Repr::Header(name)))
    }

    /// The client's IP address as the proxies in `trusted` report it in
    /// `header`: the one header they append to, `Forwarded` (RFC 7239
    /// `for=`) or `X-Forwarded-For`. The other header is never read,
    /// whether or not the request has the configured one: a proxy that
    /// appends to one passes the other through as the client wrote it.
    ///
    /// The header is read only when the peer is in `trusted`; otherwise
    /// the peer's address is the key, as with [`KeyBy::peer_ip`], so a
    /// client cannot pick its own key. The chain is walked from the right,
    /// past the entries that are themselves in `trusted`, and the first
    /// address that is not is the key. An entry that is not an address
    /// (`unknown`, an obfuscated name, garbage) stops the walk, and the
    /// trusted hop that reported it is the key; when every entry is
    /// trusted, the leftmost is; without the header, the peer is.
    ///
    /// Your proxies must append to `header` (nginx:
    /// `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`),
    /// never copy what the client sent in its place.
    pub fn forwarded(header: ProxyHeader, trusted: impl IntoIterator<Item = IpNet>) -> KeyBy {
        KeyBy(Repr::Forwarded {
            trusted: trusted.into_iter().collect(),
            headers: header,
        })
    }

    /// Any function of the request's head; `None` leaves it unkeyed.
    ///
    /// ```
    /// use sluice_tower::KeyBy;
    ///
    /// // One limit per tenant, from the path's first segment.
    /// let by_tenant = KeyBy::custom(|parts| {
    ///     parts.uri.path().split('/').nth(1).map(str::to_owned)
    /// });
    /// # let (parts, ()) = http::Request::get("/acme/orders").body(()).unwrap().into_parts();
    /// # assert_eq!(by_tenant.key(&parts).as_deref(), Some("acme"));
    /// ```
    pub fn custom<F>(f: F) -> KeyBy
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        KeyBy(Repr::Custom(Arc::new(f)))
    }

    /// The key of a request with head `parts`; `None` when it has none.
    pub fn key(&self, parts: &Parts) -> Option<String> {
        let key = match &self.0 {
            Repr::PeerIp => peer_ip(parts).map(|ip| ip.to_string()),
            Repr::Header(name) => {
                let value = parts.headers.get(name)?;
                std::str::from_utf8(value.as_bytes())
                    .ok()
                    .map(str::to_owned)
            }
            Repr::Forwarded { trusted, headers } => {
                let peer = peer_ip(parts)?;
                let client = forwarded::client_ip(peer, &parts.headers, trusted, *headers);
                Some(client.to_string())
            }
            Repr::Custom(f) => f(parts),
        };
        key.filter(|key| !key.is_empty())
    }
}

impl fmt::Debug for KeyBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::PeerIp => f.write_str("KeyBy::peer_ip()"),
            Repr::Header(name) => write!(f, "KeyBy::header({name:?})"),
            Repr::Forwarded { trusted, headers } => f
                .debug_struct("KeyBy::forwarded")
                .field("trusted", trusted)
                .field("headers", headers)
                .finish(),
            Repr::Custom(_) => f.write_str("KeyBy::custom(..)"),
        }
    }
}

/// The peer's address from the request's extensions: axum's
/// `ConnectInfo<SocketAddr>`, else a plain `SocketAddr`. IPv4-mapped IPv6
/// addresses are given as IPv4.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip().to_canonical());
    }
    parts
        .extensions
        .get::<SocketAddr>()
        .map(|addr| addr.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Request};

    use super::*;

    fn parts(peer: Option<&str>, headers: &[(&'static str, &[u8])]) -> Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        if let Some(peer) = peer {
            parts.extensions.insert(peer.parse::<SocketAddr>().unwrap());
        }
        for (name, value) in headers {
            parts
                .headers
                .append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        parts
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn peer_ip_is_the_address_as_text() {
        let by = KeyBy::peer_ip();
        let key = |peer| by.key(&parts(Some(peer), &[]));
        assert_eq!(key("127.0.0.1:80").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            key("[2001:DB8:0::1]:443").as_deref(),
            Some("2001:db8::1"),
            "canonical IPv6"
        );
        assert_eq!(key("[::ffff:192.0.2.7]:443").as_deref(), Some("192.0.2.7"));
        assert_eq!(by.key(&parts(None, &[])), None);
    }

    #[cfg(feature = "axum")]
    #[test]
    fn peer_ip_reads_axums_connect_info_first() {
        let mut p = parts(Some("192.0.2.1:1"), &[]);
        let connect: SocketAddr = "192.0.2.2:2".parse().unwrap();
        p.extensions.insert(axum::extract::ConnectInfo(connect));
        assert_eq!(KeyBy::peer_ip().key(&p).as_deref(), Some("192.0.2.2"));
    }

    #[test]
    fn header_missing_empty_or_not_utf8_is_unkeyed() {
        let by = KeyBy::header("x-api-key").unwrap();
        let key = |value: &'static [u8]| by.key(&parts(None, &[("x-api-key", value)]));
        assert_eq!(key(b"k-1").as_deref(), Some("k-1"));
        assert_eq!(key("clé".as_bytes()).as_deref(), Some("clé"));
        assert_eq!(key(b""), None);
        assert_eq!(key(b"\xff\xfe"), None);
        assert_eq!(by.key(&parts(None, &[])), None);
        let two = parts(None, &[("x-api-key", b"first"), ("x-api-key", b"second")]);
        assert_eq!(by.key(&two).as_deref(), Some("first"));
    }

    #[test]
    fn header_takes_a_str_in_any_case_or_a_header_name() {
        let p = parts(None, &[("x-api-key", b"k-1")]);
        for by in [
            KeyBy::header("x-api-key"),
            KeyBy::header("X-Api-KEY"),
            KeyBy::header(String::from("x-api-key")),
            KeyBy::header(HeaderName::from_static("x-api-key")),
        ] {
            assert_eq!(by.unwrap().key(&p).as_deref(), Some("k-1"));
        }
    }

    #[test]
    fn an_invalid_header_name_is_an_error_not_a_panic() {
        for bad in ["", "x api key", "x-api-key:", "clé", "x\napi"] {
            assert!(KeyBy::header(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn forwarded_needs_a_trusted_peer() {
        let xff: &[(&'static str, &[u8])] = &[("x-forwarded-for", b"203.0.113.9")];
        let trusted = KeyBy::forwarded(ProxyHeader::XForwardedFor, nets(&["127.0.0.0/8"]));
        let key = trusted.key(&parts(Some("127.0.0.1:9"), xff));
        assert_eq!(key.as_deref(), Some("203.0.113.9"));
        let untrusted = KeyBy::forwarded(ProxyHeader::XForwardedFor, nets(&["10.0.0.0/8"]));
        let key = untrusted.key(&parts(Some("127.0.0.1:9"), xff));
        assert_eq!(key.as_deref(), Some("127.0.0.1"));
        assert_eq!(trusted.key(&parts(None, xff)), None, "no peer: unkeyed");
    }

    #[test]
    fn issue_12_each_reads_only_its_header() {
        let headers: &[(&'static str, &[u8])] = &[
            ("forwarded", b"for=198.51.100.1"),
            ("x-forwarded-for", b"203.0.113.9"),
        ];
        let p = parts(Some("[::1]:9"), headers);
        let nets = nets(&["::1/128"]);
        let fwd = KeyBy::forwarded(ProxyHeader::Forwarded, nets.clone()).key(&p);
        assert_eq!(fwd.as_deref(), Some("198.51.100.1"));
        let xff = KeyBy::forwarded(ProxyHeader::XForwardedFor, nets).key(&p);
        assert_eq!(xff.as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn custom_keys_and_empty_is_unkeyed() {
        let by = KeyBy::custom(|p: &Parts| Some(p.uri.path().to_owned()));
        let (p, ()) = Request::get("/a").body(()).unwrap().into_parts();
        assert_eq!(by.key(&p).as_deref(), Some("/a"));
        let empty = KeyBy::custom(|_: &Parts| Some(String::new()));
        assert_eq!(empty.key(&p), None);
        assert_eq!(format!("{empty:?}"), "KeyBy::custom(..)");
    }
}
