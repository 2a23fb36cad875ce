//! Reverse proxies: which peers are believed, and what their forwarded
//! headers say.
//!
//! `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Forwarded-For` and RFC 7239
//! `Forwarded` are used only when the TCP peer is within `http.trustedproxies`.
//! From any other peer, or when the peer is unknown, they are ignored: anyone
//! could send them, and believing them would let a client choose the realm and
//! `Location` URLs other clients are sent to.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a bare address (a network of one).
    ///
    /// # Errors
    /// Says what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (ip, len) = match text.trim().split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, len })
    }

    /// Whether `ip` is in this network. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.0.0.1`) count as their IPv4 address.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `http.trustedproxies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses every entry.
    ///
    /// # Errors
    /// The first entry that is not an address or CIDR.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|s| Cidr::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether forwarded headers from `peer` are believed. An unknown peer
    /// (no `ConnectInfo`, a unix socket) is not trusted.
    #[must_use]
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.0.iter().any(|c| c.contains(ip)))
    }
}

/// What the trusted proxies say about the client's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// `http` or `https`.
    pub proto: Option<String>,
    /// The host (and port) the client asked for.
    pub host: Option<String>,
}

/// Reads the forwarded headers of a request that came from a trusted proxy.
/// RFC 7239 `Forwarded` wins over `X-Forwarded-Proto`/`-Host`, parameter by
/// parameter. Clients can only prepend to what proxies write, so: of the
/// `Forwarded` elements, the one written by the outermost of our proxies is
/// used (walking from the right past elements whose `for` is one of
/// `trusted`); of the `X-Forwarded-*` values, the right-most. Invalid values
/// are dropped.
#[must_use]
pub fn parse(headers: &HeaderMap, trusted: &TrustedProxies) -> Forwarded {
    let mut out = Forwarded::default();
    if let Some(element) = outermost_element(headers, trusted) {
        for pair in element.split(';') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "proto" => out.proto = Some(v),
                "host" => out.host = Some(v),
                _ => {}
            }
        }
    }
    let last = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_owned())
    };
    out.proto = out.proto.or_else(|| last("x-forwarded-proto"));
    out.host = out.host.or_else(|| last("x-forwarded-host"));
    out.proto = out
        .proto
        .map(|p| p.to_ascii_lowercase())
        .filter(|p| p == "http" || p == "https");
    out.host = out.host.filter(|h| valid_host(h));
    out
}

/// The `Forwarded` element our outermost proxy wrote: walking from the
/// right, the first whose `for` is not a trusted proxy (or has no usable
/// `for`); the left-most when every one is trusted.
fn outermost_element(headers: &HeaderMap, trusted: &TrustedProxies) -> Option<String> {
    let elements: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let trusted_hop = |element: &str| {
        element.split(';').any(|pair| {
            pair.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("for")
                    && matches!(hop(v), Hop::Ip(ip) if trusted.trusts(Some(ip)))
            })
        })
    };
    elements
        .iter()
        .rev()
        .find(|e| !trusted_hop(e))
        .or(elements.first())
        .map(|e| (*e).to_owned())
}

/// The scheme and host of the URL the client used: from the forwarded
/// headers when `peer` is a trusted proxy, else `http` and the `Host`
/// header. `None` when there is no usable host.
#[must_use]
pub fn origin(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &TrustedProxies,
) -> Option<String> {
    origin_on(
        headers,
        Connection {
            peer,
            ..Connection::default()
        },
        trusted,
    )
}

/// A request extension marking a connection that portcullis itself
/// terminated TLS on (inserted by the TLS accept loop).
#[derive(Debug, Clone, Copy)]
pub struct TlsConnection;

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connection<'a> {
    pub peer: Option<IpAddr>,
    /// portcullis terminated TLS on this connection.
    pub tls: bool,
    /// The request URI's authority (HTTP/2 sends `:authority`, not `Host`).
    pub authority: Option<&'a str>,
}

/// [`origin`] knowing the connection: the scheme is `https` when portcullis
/// itself serves TLS, and the host falls back to the URI's authority.
#[must_use]
pub fn origin_on(
    headers: &HeaderMap,
    conn: Connection<'_>,
    trusted: &TrustedProxies,
) -> Option<String> {
    let own_scheme = if conn.tls { "https" } else { "http" };
    let host_header = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(conn.authority)
        .filter(|h| valid_host(h))
        .map(str::to_owned);
    if trusted.trusts(conn.peer) {
        let fwd = parse(headers, trusted);
        let host = fwd.host.or(host_header)?;
        let proto = fwd.proto.unwrap_or_else(|| own_scheme.to_owned());
        return Some(format!("{proto}://{host}"));
    }
    host_header.map(|h| format!("{own_scheme}://{h}"))
}

/// The client's address for logs; `None` when the peer is unknown (a unix
/// socket).
///
/// From a peer that is not a trusted proxy, the peer's address: its
/// forwarded headers are ignored. From a trusted proxy, the forwarded chain
/// (RFC 7239 `Forwarded: for=`, or `X-Forwarded-For` when no `Forwarded`
/// element has a `for`) is read from the right, the end written by the proxy
/// nearest portcullis: each address within `http.trustedproxies` is another
/// proxy of ours and is passed over, and the first one that is not is the
/// client. Whatever stands left of it was written by that client, and could
/// be anything. An entry that is not an address stops the walk: an
/// obfuscated RFC 7239 node (`unknown`, `_hidden`) is logged as written,
/// anything else leaves the last address known to be good.
#[must_use]
pub fn client_addr(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &TrustedProxies,
) -> Option<String> {
    let peer = peer?;
    let mut client = peer.to_string();
    if !trusted.trusts(Some(peer)) {
        return Some(client);
    }
    for hop in forwarded_for(headers).into_iter().rev() {
        match hop {
            Hop::Ip(ip) => {
                client = ip.to_string();
                if !trusted.trusts(Some(ip)) {
                    break;
                }
            }
            Hop::Hidden(name) => {
                client = name;
                break;
            }
            Hop::Invalid => break,
        }
    }
    Some(client)
}

/// One entry of a forwarded chain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hop {
    Ip(IpAddr),
    /// RFC 7239's `unknown` or an obfuscated `_name`.
    Hidden(String),
    Invalid,
}

/// The forwarded chain, client first: every `Forwarded` element's `for`
/// (across all `Forwarded` lines), or, when none has one, every
/// `X-Forwarded-For` entry.
fn forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let elements = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or(","))
            .flat_map(|v| v.split(','))
            .map(|e| e.trim().to_owned())
            .collect()
    };
    let forwarded: Vec<Option<Hop>> = elements("forwarded")
        .iter()
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| hop(v))
            })
        })
        .collect();
    if forwarded.iter().any(Option::is_some) {
        // An element without `for` says nothing about who sent it.
        return forwarded
            .into_iter()
            .map(|h| h.unwrap_or(Hop::Invalid))
            .collect();
    }
    elements("x-forwarded-for").iter().map(|e| hop(e)).collect()
}

/// Reads `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`, `[2001:db8::1]`,
/// `"[2001:db8::1]:4711"`, `unknown` or `_hidden`.
fn hop(text: &str) -> Hop {
    let text = text.trim().trim_matches('"').trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Hop::Ip(ip);
    }
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Hop::Ip(addr.ip());
    }
    if let Some(ip) = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok())
    {
        return Hop::Ip(IpAddr::V6(ip));
    }
    let obfuscated = text.len() <= 64
        && text.strip_prefix('_').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if obfuscated || text.eq_ignore_ascii_case("unknown") {
        return Hop::Hidden(text.to_owned());
    }
    Hop::Invalid
}

/// A host we are willing to echo into `Location` and `Link`: a DNS name,
/// IPv4 or bracketed IPv6 address, and an optional port.
#[must_use]
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let one = Cidr::parse("192.168.1.7").unwrap();
        assert!(one.contains("192.168.1.7".parse().unwrap()));
        assert!(!one.contains("192.168.1.8".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in ["nginx", "10.0.0.0/33", "fd00::/129", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_peer_is_untrusted() {
        let t = TrustedProxies::parse(&["0.0.0.0/0".to_owned()]).unwrap();
        assert!(!t.trusts(None));
        assert!(t.trusts(ip("1.2.3.4")));
        assert!(!TrustedProxies::default().trusts(ip("127.0.0.1")));
    }

    #[test]
    fn x_forwarded_headers_take_the_right_most_value() {
        let h = headers(&[
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-host", "evil.example, registry.example.com"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.2"),
        ]);
        let f = parse(&h, &TrustedProxies::default());
        assert_eq!(f.proto.as_deref(), Some("https"));
        assert_eq!(f.host.as_deref(), Some("registry.example.com"));
    }

    #[test]
    fn rfc7239_wins_and_takes_the_element_of_the_outermost_trusted_proxy() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".to_owned()]).unwrap();
        // A client's forged element, then the one our edge proxy wrote
        // about the client, then the one an inner proxy wrote about the edge.
        let h = headers(&[
            (
                "forwarded",
                "for=6.6.6.6;proto=http;host=evil.example, for=\"[2001:db8::1]:4711\";proto=https;host=\"reg.example:8443\", for=10.0.0.2;proto=http;host=internal",
            ),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "other.example"),
        ]);
        let f = parse(&h, &t);
        assert_eq!(f.proto.as_deref(), Some("https"));
        assert_eq!(f.host.as_deref(), Some("reg.example:8443"));
        // Nothing trusted: the element nearest portcullis.
        let f = parse(&h, &TrustedProxies::default());
        assert_eq!(f.host.as_deref(), Some("internal"));
    }

    #[test]
    fn invalid_values_are_dropped() {
        let h = headers(&[
            ("x-forwarded-proto", "javascript"),
            ("x-forwarded-host", "evil.example/path?x"),
        ]);
        assert_eq!(parse(&h, &TrustedProxies::default()), Forwarded::default());
    }

    #[test]
    fn client_is_the_right_most_untrusted_hop() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "fd00::/8".to_owned()]).unwrap();
        let client =
            |peer: &str, pairs: &[(&'static str, &str)]| client_addr(&headers(pairs), ip(peer), &t);
        // The client prepended a made-up address; the proxy appended the real one.
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]).as_deref(),
            Some("203.0.113.9")
        );
        // Through two proxies of ours.
        assert_eq!(
            client(
                "10.0.0.2",
                &[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.3")]
            )
            .as_deref(),
            Some("203.0.113.9")
        );
        // Several header lines are one list.
        let mut h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        h.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(
            client_addr(&h, ip("10.0.0.2"), &t).as_deref(),
            Some("203.0.113.9")
        );
        // Everyone is ours: the one nearest the client.
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "10.9.9.9, 10.0.0.3")]).as_deref(),
            Some("10.9.9.9")
        );
        // RFC 7239, with ports and brackets; it wins over X-Forwarded-For.
        assert_eq!(
            client(
                "fd00::7",
                &[
                    (
                        "forwarded",
                        "for=198.51.100.1, for=\"[2001:db8::1]:4711\";proto=https, for=\"[fd00::3]\""
                    ),
                    ("x-forwarded-for", "192.0.2.99"),
                ]
            )
            .as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "203.0.113.9:4711")]).as_deref(),
            Some("203.0.113.9")
        );
        // `Forwarded` without `for` leaves X-Forwarded-For in charge.
        assert_eq!(
            client(
                "10.0.0.2",
                &[
                    ("forwarded", "proto=https"),
                    ("x-forwarded-for", "203.0.113.9")
                ]
            )
            .as_deref(),
            Some("203.0.113.9")
        );
        // Obfuscated nodes are logged as written; garbage stops at the last
        // good address; an element without `for` counts as garbage.
        assert_eq!(
            client("10.0.0.2", &[("forwarded", "for=_gateway, for=10.0.0.3")]).as_deref(),
            Some("_gateway")
        );
        assert_eq!(
            client(
                "10.0.0.2",
                &[("x-forwarded-for", "203.0.113.9, evil\" x=1, 10.0.0.3")]
            )
            .as_deref(),
            Some("10.0.0.3")
        );
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "")]).as_deref(),
            Some("10.0.0.2")
        );
        assert_eq!(
            client("10.0.0.2", &[("forwarded", "for=1.1.1.1, proto=https")]).as_deref(),
            Some("10.0.0.2")
        );
        // No forwarded headers: the proxy itself.
        assert_eq!(client("10.0.0.2", &[]).as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn untrusted_peers_cannot_choose_the_logged_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".to_owned()]).unwrap();
        let h = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
        ]);
        assert_eq!(
            client_addr(&h, ip("192.0.2.1"), &t).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            client_addr(&h, ip("192.0.2.1"), &TrustedProxies::default()).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(client_addr(&h, None, &t), None);
    }

    #[test]
    fn origin_follows_trust() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".to_owned()]).unwrap();
        let h = headers(&[
            ("host", "internal:5000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "registry.example.com"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            origin(&h, ip("10.0.0.2"), &t).as_deref(),
            Some("https://registry.example.com")
        );
        assert_eq!(
            origin(&h, ip("192.0.2.1"), &t).as_deref(),
            Some("http://internal:5000")
        );
        assert_eq!(
            origin(&h, None, &t).as_deref(),
            Some("http://internal:5000")
        );
        assert_eq!(
            client_addr(&h, ip("10.0.0.2"), &t).as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            client_addr(&h, ip("192.0.2.1"), &t).as_deref(),
            Some("192.0.2.1")
        );
        // Only the scheme forwarded: the Host header is the proxy's.
        let h = headers(&[
            ("host", "registry.example.com"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            origin(&h, ip("10.9.9.9"), &t).as_deref(),
            Some("https://registry.example.com")
        );
    }
}
