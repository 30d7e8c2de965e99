//! The check of the fuzz target `forwarded` in `fuzz/` (issue 12): it feeds
//! the bytes a fuzzer made to the `Forwarded` / `X-Forwarded-For` walk and
//! panics when a property fails. The target calls it, and so does
//! `tests/fuzz_corpus.rs`, which replays the kept corpus on stable with
//! `cargo test`: one definition, so the two cannot drift.
//!
//! Not an API: hidden from the docs, and free to change with the target.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::ProxyHeader;
use crate::key::forwarded::client_ip;

/// A trusted proxy, the peer when the input asks for one.
pub const TRUSTED_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// A peer that is no proxy of ours.
pub const UNTRUSTED_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
/// The address a client claims in front of the chain.
pub const SPOOFED: IpAddr = IpAddr::V4(Ipv4Addr::new(6, 6, 6, 6));

/// The input: its first byte says which header the proxies append to (bit
/// 0: `Forwarded` when set, else `X-Forwarded-For`; bit 2, over both:
/// `X-Real-IP`, which the proxies set) and whether the peer
/// is [`TRUSTED_PEER`] (bit 1) or [`UNTRUSTED_PEER`]; the rest, split at
/// each `\n`, are that header's field lines (those `http` refuses as a
/// header value are dropped, as hyper would refuse them).
///
/// Properties: an untrusted peer is the client whatever the headers say;
/// the client is the peer or an address written in the input (a textual
/// scan, independent of the parser, finds it); what a client writes left
/// of the chain (a field line [`SPOOFED`] before the others) changes
/// nothing once an untrusted client was found, and otherwise (every entry
/// trusted) can only make the spoofed address the client, never another
/// (not for `X-Real-IP`, which the proxy replaces: no client line reaches it);
/// the same lines also sent in the other header, which the proxies do not
/// write, change nothing.
pub fn forwarded(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let xff = HeaderName::from_static("x-forwarded-for");
    let (which, name, other) = if flags & 4 == 4 {
        let real_ip = HeaderName::from_static("x-real-ip");
        (ProxyHeader::XRealIp, real_ip, xff)
    } else if flags & 1 == 1 {
        (ProxyHeader::Forwarded, http::header::FORWARDED, xff)
    } else {
        (ProxyHeader::XForwardedFor, xff, http::header::FORWARDED)
    };
    let peer = if flags & 2 == 2 {
        TRUSTED_PEER
    } else {
        UNTRUSTED_PEER
    };
    let trusted: Vec<IpNet> = ["10.0.0.0/8", "127.0.0.0/8", "fd00::/8"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect();
    let lines: Vec<HeaderValue> = rest
        .split(|&b| b == b'\n')
        .filter_map(|line| HeaderValue::from_bytes(line).ok())
        .collect();
    let mut headers = HeaderMap::new();
    for line in &lines {
        headers.append(name.clone(), line.clone());
    }
    let client = client_ip(peer, &headers, &trusted, which);
    if peer == UNTRUSTED_PEER {
        assert_eq!(client, peer, "an untrusted peer's headers were believed");
    }
    assert!(
        client == peer || written_in(&lines).contains(&client),
        "{client} is neither the peer nor written in {lines:?}"
    );
    let spoof = match which {
        ProxyHeader::Forwarded => Some(HeaderValue::from_static("for=6.6.6.6")),
        ProxyHeader::XForwardedFor => Some(HeaderValue::from_static("6.6.6.6")),
        _ => None,
    };
    if let Some(spoof) = spoof {
        let mut spoofed = HeaderMap::new();
        for line in std::iter::once(&spoof).chain(&lines) {
            spoofed.append(name.clone(), line.clone());
        }
        let after = client_ip(peer, &spoofed, &trusted, which);
        let is_trusted = trusted.iter().any(|net| net.contains(&client));
        assert!(
            after == client || (is_trusted && after == SPOOFED),
            "a spoofed first entry moved the client from {client} to {after} in {lines:?}"
        );
    }
    for line in &lines {
        headers.append(other.clone(), line.clone());
    }
    assert_eq!(
        client_ip(peer, &headers, &trusted, which),
        client,
        "the header the proxies do not write changed the client"
    );
}

/// Every address written in `lines`, found without the parser: each run
/// of characters that can spell an address (hex digits, `:` and `.`), as
/// an address or as an IPv4 address and a port; IPv4-mapped addresses as
/// IPv4, as the parser gives them.
fn written_in(lines: &[HeaderValue]) -> Vec<IpAddr> {
    let spells = |b: &u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.');
    let mut found = Vec::new();
    for line in lines {
        for run in line.as_bytes().split(|b| !spells(b)) {
            let Ok(run) = std::str::from_utf8(run) else {
                continue;
            };
            if let Ok(ip) = run.parse::<IpAddr>() {
                found.push(ip.to_canonical());
            }
            if let Some((addr, _port)) = run.rsplit_once(':')
                && let Ok(ip) = addr.parse::<Ipv4Addr>()
            {
                found.push(IpAddr::V4(ip));
            }
        }
    }
    found
}
