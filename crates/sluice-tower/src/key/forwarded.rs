//! The client's address behind trusted reverse proxies, read from
//! `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//!
//! Each proxy appends the address it received the request from, so the
//! chain reads `client, proxy1, proxy2` and the peer is the last proxy. Only
//! the entries appended by proxies we trust are believable: the walk starts
//! at the peer, goes right to left over entries that are themselves trusted
//! proxies, and stops at the first address that is not. Anything to its left
//! was written by the client and is never read.
//!
//! Malformed input never lets a client choose its key:
//!
//! - an entry that is not an address (`unknown`, an obfuscated `_name`, a
//!   `Forwarded` element without exactly one `for=`, garbage, non-UTF-8)
//!   stops the walk, and the key is the trusted hop that reported it (the
//!   entry to its right, or the peer);
//! - when every entry is a trusted proxy, the key is the leftmost one;
//! - empty list elements (`a, , b`) are skipped, as RFC 9110 §5.6.1 asks.
//!
//! Elements are split at every `,` (and pairs at every `;`), even inside
//! quotes: no address contains either, and a client's unterminated quote
//! must not swallow the element that a trusted proxy appended after it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;
use http::header::FORWARDED;
use ipnet::IpNet;

/// `X-Forwarded-For`, which `http` has no constant for.
const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// `X-Real-IP`, which `http` has no constant for.
const X_REAL_IP: &str = "x-real-ip";

/// Reads the address in one list element of a proxy header.
type ParseElement = fn(&[u8]) -> Option<IpAddr>;

/// The one header your trusted proxies append the client's address to.
/// Only that header is ever read: the other one, whatever it says, was
/// written by the client (a proxy that appends to one passes the other
/// through untouched), so reading "whichever is present" would let a
/// client pick its own key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeader {
    /// `Forwarded` (RFC 7239 `for=`): Envoy with `use_remote_address`,
    /// HAProxy's `option forwarded`, Caddy can be told to.
    Forwarded,
    /// `X-Forwarded-For`: nginx's `$proxy_add_x_forwarded_for`, HAProxy's
    /// `option forwardfor`, most load balancers.
    XForwardedFor,
    /// `X-Real-IP`: one address, which the proxy sets (replacing what the
    /// client sent) to the address it received the request from, as
    /// nginx's `proxy_set_header X-Real-IP $remote_addr;` does. Believed
    /// from a trusted peer only, and as it is: there is no chain to walk.
    XRealIp,
}

/// The client's address for a request from `peer`: the peer itself unless
/// it is in `trusted`, else the first untrusted address in the proxy chain,
/// walking from the right (see the module docs for malformed entries).
pub(crate) fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    which: ProxyHeader,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let (name, parse): (&str, ParseElement) = match which {
        ProxyHeader::Forwarded => (FORWARDED.as_str(), forwarded_for),
        ProxyHeader::XForwardedFor => (X_FORWARDED_FOR, x_forwarded_for),
        ProxyHeader::XRealIp => {
            // One field line, one address; anything else is not what the
            // proxy set, and the peer is the key.
            let mut lines = headers.get_all(X_REAL_IP).iter();
            return match (lines.next(), lines.next()) {
                (Some(line), None) => x_forwarded_for(line.as_bytes()).unwrap_or(peer),
                _ => peer,
            };
        }
    };
    // Field lines in order, then elements in order, together one list
    // (RFC 9110 §5.3); walked from the end.
    let hops = headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|line| line.as_bytes().rsplit(|&b| b == b','))
        .filter(|element| !element.trim_ascii().is_empty());
    let mut nearest = peer;
    for element in hops {
        match parse(element) {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// The address in one `Forwarded` element (`for=192.0.2.60;proto=http`),
/// if it has exactly one `for` parameter holding an address.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    let element = std::str::from_utf8(element).ok()?;
    let mut found = None;
    for pair in element.split(';') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("for") {
            if found.is_some() {
                return None;
            }
            found = Some(value);
        }
    }
    node(found?)
}

/// The address in one `X-Forwarded-For` element.
fn x_forwarded_for(element: &[u8]) -> Option<IpAddr> {
    node(std::str::from_utf8(element).ok()?)
}

/// An RFC 7239 node: `192.0.2.60`, `192.0.2.60:8080`, `"[2001:db8::1]"`,
/// `"[2001:db8::1]:4711"`, quoted or not. Bare IPv6 (`2001:db8::1`) is
/// accepted too, as proxies write it in `X-Forwarded-For`. IPv4-mapped IPv6
/// addresses are given as IPv4.
fn node(value: &str) -> Option<IpAddr> {
    let value = unquote(value.trim())?;
    let ip = if let Some(rest) = value.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = value.parse::<IpAddr>() {
        ip
    } else {
        let (addr, port) = value.split_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(addr.parse::<Ipv4Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

/// `value` without its surrounding double quotes. A node never needs a
/// quoted-pair, so a quote or backslash inside, or a lone quote, is malformed.
fn unquote(value: &str) -> Option<&str> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    (!inner.contains(['"', '\\'])).then_some(inner)
}

/// A node port: a number up to 65535, or an obfuscated `_name` (RFC 7239 §6.3).
fn is_port(port: &str) -> bool {
    match port.strip_prefix('_') {
        Some(obfuscated) => {
            !obfuscated.is_empty()
                && obfuscated
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        None => {
            !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    /// The client seen from peer 10.0.0.1, with 10.0.0.0/8 trusted.
    fn client_by(which: ProxyHeader, pairs: &[(&'static str, &[u8])]) -> IpAddr {
        client_ip(
            ip("10.0.0.1"),
            &headers(pairs),
            &nets(&["10.0.0.0/8"]),
            which,
        )
    }

    /// The same, reading `X-Forwarded-For`.
    fn client(pairs: &[(&'static str, &[u8])]) -> IpAddr {
        client_by(ProxyHeader::XForwardedFor, pairs)
    }

    #[test]
    fn nodes_in_every_rfc_7239_form() {
        for (text, want) in [
            ("192.0.2.60", "192.0.2.60"),
            ("192.0.2.60:8080", "192.0.2.60"),
            ("\"192.0.2.60:8080\"", "192.0.2.60"),
            ("\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17"),
            ("\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("[2001:DB8:0:0::17]:_port-1", "2001:db8::17"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("  198.51.100.2 ", "198.51.100.2"),
            ("192.0.2.60:_hidden", "192.0.2.60"),
        ] {
            assert_eq!(node(text), Some(ip(want)), "{text}");
        }
        for garbage in [
            "",
            "unknown",
            "_hidden",
            "\"192.0.2.60",
            "192.0.2.60\"",
            "\"192.0.2\\.60\"",
            "192.0.2.60:",
            "192.0.2.60:65536",
            "192.0.2.60:http",
            "192.0.2.60:_",
            "192.0.2.256",
            "[192.0.2.60]",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[2001:db8::1]:",
            "fe80::1%eth0",
            "example.com",
            "1.2.3.4:5:6",
        ] {
            assert_eq!(node(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn forwarded_elements_need_exactly_one_for() {
        assert_eq!(
            forwarded_for(b"for=192.0.2.43;proto=https;by=203.0.113.60"),
            Some(ip("192.0.2.43"))
        );
        assert_eq!(
            forwarded_for(b" proto=http ; For=\"[2001:db8::2]:80\""),
            Some(ip("2001:db8::2"))
        );
        assert_eq!(forwarded_for(b"proto=http;by=10.0.0.1"), None);
        assert_eq!(forwarded_for(b"for=192.0.2.1;for=192.0.2.2"), None);
        assert_eq!(forwarded_for(b"for=\xff"), None);
        assert_eq!(forwarded_for(b"garbage"), None);
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_headers_say() {
        let h = headers(&[
            ("x-forwarded-for", b"203.0.113.9"),
            ("forwarded", b"for=203.0.113.9"),
            ("x-real-ip", b"203.0.113.9"),
        ]);
        let peer = ip("198.51.100.7");
        for which in [
            ProxyHeader::Forwarded,
            ProxyHeader::XForwardedFor,
            ProxyHeader::XRealIp,
        ] {
            assert_eq!(
                client_ip(peer, &h, &nets(&["10.0.0.0/8"]), which),
                peer,
                "{which:?}"
            );
            assert_eq!(client_ip(peer, &h, &[], which), peer, "{which:?}");
        }
    }

    #[test]
    fn the_walk_skips_trusted_proxies_from_the_right() {
        let xff = |v: &'static [u8]| client(&[("x-forwarded-for", v)]);
        assert_eq!(xff(b"203.0.113.9"), ip("203.0.113.9"));
        // The client's own claim (left) is never reached.
        assert_eq!(
            xff(b"1.1.1.1, 203.0.113.9, 10.1.1.1, 10.2.2.2"),
            ip("203.0.113.9")
        );
        // Several field lines are one list, in order.
        let lines = client(&[
            ("x-forwarded-for", b"1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", b"10.1.1.1"),
        ]);
        assert_eq!(lines, ip("203.0.113.9"));
        assert_eq!(xff(b"2001:db8::9, 10.0.0.2"), ip("2001:db8::9"));
        assert_eq!(xff(b"[2001:db8::9]:1234"), ip("2001:db8::9"));
        assert_eq!(xff(b"203.0.113.9,, ,"), ip("203.0.113.9"));
    }

    #[test]
    fn no_chain_or_an_all_trusted_chain() {
        assert_eq!(client(&[]), ip("10.0.0.1"), "no header: the peer");
        assert_eq!(client(&[("x-forwarded-for", b"")]), ip("10.0.0.1"));
        assert_eq!(
            client(&[("x-forwarded-for", b"10.9.9.9, 10.0.0.2")]),
            ip("10.9.9.9"),
            "all trusted: the leftmost"
        );
    }

    #[test]
    fn a_malformed_entry_keys_by_the_trusted_hop_that_reported_it() {
        let xff = |v: &'static [u8]| client(&[("x-forwarded-for", v)]);
        assert_eq!(xff(b"203.0.113.9, unknown"), ip("10.0.0.1"));
        assert_eq!(xff(b"203.0.113.9, garbage, 10.0.0.7"), ip("10.0.0.7"));
        assert_eq!(xff(b"203.0.113.9, \xff\xfe"), ip("10.0.0.1"));
        // Garbage left of the client is never reached.
        assert_eq!(xff(b"garbage, 203.0.113.9"), ip("203.0.113.9"));
        let fwd = client_by(
            ProxyHeader::Forwarded,
            &[("forwarded", b"for=203.0.113.9, proto=https")],
        );
        assert_eq!(fwd, ip("10.0.0.1"), "an element without for=");
    }

    /// Issue 12: nginx appends to `X-Forwarded-For` and passes a client's
    /// `Forwarded` through (and the other way round for a proxy that
    /// writes `Forwarded`): only the configured header is believed.
    #[test]
    fn issue_12_only_the_configured_header_is_believed() {
        let both = [
            ("x-forwarded-for", &b"198.51.100.1"[..]),
            (
                "forwarded",
                &b"for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https"[..],
            ),
        ];
        assert_eq!(
            client_by(ProxyHeader::XForwardedFor, &both),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_by(ProxyHeader::Forwarded, &both),
            ip("2001:db8:cafe::17")
        );
        // The configured header missing: the peer, never the other one.
        let spoof_fwd = [("forwarded", &b"for=1.2.3.4"[..])];
        assert_eq!(
            client_by(ProxyHeader::XForwardedFor, &spoof_fwd),
            ip("10.0.0.1")
        );
        let spoof_xff = [("x-forwarded-for", &b"1.2.3.4"[..])];
        assert_eq!(
            client_by(ProxyHeader::Forwarded, &spoof_xff),
            ip("10.0.0.1")
        );
    }

    /// Issue 12: two trusted proxies (10.0.0.2 then the peer 10.0.0.1)
    /// each append to `X-Forwarded-For`; the client sent its own entries
    /// (left) and a `Forwarded` header, and neither counts.
    #[test]
    fn issue_12_spoofed_entries_behind_several_proxies() {
        let request = [
            ("forwarded", &b"for=6.6.6.6"[..]),
            (
                "x-forwarded-for",
                &b"6.6.6.6, 7.7.7.7, 203.0.113.9, 10.0.0.2"[..],
            ),
        ];
        assert_eq!(
            client_by(ProxyHeader::XForwardedFor, &request),
            ip("203.0.113.9")
        );
        // The same through proxies that write `Forwarded`.
        let request = [
            ("x-forwarded-for", &b"6.6.6.6"[..]),
            (
                "forwarded",
                &b"for=6.6.6.6, for=7.7.7.7, for=203.0.113.9, for=10.0.0.2"[..],
            ),
        ];
        assert_eq!(
            client_by(ProxyHeader::Forwarded, &request),
            ip("203.0.113.9")
        );
    }

    /// `X-Real-IP` holds the one address the trusted proxy set; anything
    /// else (absent, garbage, a list, two lines) keys by the peer.
    #[test]
    fn x_real_ip_is_one_address_set_by_the_proxy() {
        let by = |pairs: &[(&'static str, &[u8])]| client_by(ProxyHeader::XRealIp, pairs);
        assert_eq!(by(&[("x-real-ip", b"203.0.113.9")]), ip("203.0.113.9"));
        assert_eq!(by(&[("x-real-ip", b" 2001:db8::1 ")]), ip("2001:db8::1"));
        // The proxy's own header is read, never the others.
        assert_eq!(by(&[("x-forwarded-for", b"203.0.113.9")]), ip("10.0.0.1"));
        for bad in [&b"unknown"[..], b"203.0.113.9, 198.51.100.7", b""] {
            assert_eq!(by(&[("x-real-ip", bad)]), ip("10.0.0.1"), "{bad:?}");
        }
        let two = [
            ("x-real-ip", &b"203.0.113.9"[..]),
            ("x-real-ip", b"198.51.100.7"),
        ];
        assert_eq!(by(&two), ip("10.0.0.1"));
    }

    #[test]
    fn an_unterminated_quote_cannot_swallow_the_proxys_element() {
        // The client sent `for="1.1.1.1, ` and our proxy appended its entry.
        let fwd = client_by(
            ProxyHeader::Forwarded,
            &[("forwarded", b"for=\"1.1.1.1, for=203.0.113.9")],
        );
        assert_eq!(fwd, ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_and_mapped_peers_and_networks() {
        let trusted = nets(&["fd00::/8", "127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", b"2001:db8::5, fd00::2")]);
        let v6 = client_ip(ip("fd00::1"), &h, &trusted, ProxyHeader::XForwardedFor);
        assert_eq!(v6, ip("2001:db8::5"));
        // Peers are canonicalised by the caller; a mapped chain entry is IPv4.
        let h = headers(&[("x-forwarded-for", b"203.0.113.9, ::ffff:127.0.0.2")]);
        let mapped = client_ip(ip("127.0.0.1"), &h, &trusted, ProxyHeader::XForwardedFor);
        assert_eq!(mapped, ip("203.0.113.9"));
    }
}
