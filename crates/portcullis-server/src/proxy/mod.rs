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

/// A request extension: this server's end of a TCP connection (inserted by
/// the accept loop), and the name a TLS client asked for (SNI).
#[derive(Debug, Clone)]
pub struct LocalEnd {
    pub addr: std::net::SocketAddr,
    pub sni: Option<String>,
}

impl LocalEnd {
    /// Whether `host` (a `Host` header: `name[:port]`) names this end: its
    /// IP address and port, `localhost` on a loopback address, or the name
    /// the TLS client verified our certificate for.
    #[must_use]
    pub fn is_named_by(&self, host: &str, tls: bool) -> bool {
        let (name, port) = split_host(host);
        let port = match port {
            Some(p) => p.parse::<u16>().ok(),
            None => Some(if tls { 443 } else { 80 }),
        };
        if self
            .sni
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
        {
            return true;
        }
        if port != Some(self.addr.port()) {
            return false;
        }
        let ip = self.addr.ip();
        name.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|n| n == ip)
            || (ip.is_loopback() && name.eq_ignore_ascii_case("localhost"))
    }
}

/// `name` and `port` of `name:port`, `[v6]:port`, `name` or `[v6]`.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        return match host.split_once("]:") {
            Some((name, port)) => (&host[..name.len() + 1], Some(port)),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    }
}

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connection<'a> {
    pub peer: Option<IpAddr>,
    /// portcullis terminated TLS on this connection.
    pub tls: bool,
    /// The request URI's authority (HTTP/2 sends `:authority`, not `Host`).
    pub authority: Option<&'a str>,
    /// This server's end of the connection, when known.
    pub local: Option<&'a LocalEnd>,
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
    // Without `http.host`, a client's `Host` is believed only when it names
    // this server; anything else (a forged header, to steer the token realm
    // elsewhere) gives way to the address the client actually connected to.
    match (host_header, conn.local) {
        (Some(h), Some(local)) if !local.is_named_by(&h, conn.tls) => {
            tracing::debug!(host = %h, local = %local.addr, "Host names another server; using the connection's address (set http.host)");
            Some(format!("{own_scheme}://{}", local.addr))
        }
        (Some(h), _) => Some(format!("{own_scheme}://{h}")),
        (None, Some(local)) => Some(format!("{own_scheme}://{}", local.addr)),
        (None, None) => None,
    }
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
    client_chain(headers, peer, trusted).map(|(client, _)| client)
}

/// The client (as [`client_addr`] finds it) and the chain that led to it
/// when the peer is a trusted proxy: the client first, then each trusted
/// proxy, the peer last. Empty from any other peer.
#[must_use]
pub fn client_chain(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &TrustedProxies,
) -> Option<(String, Vec<String>)> {
    let peer = peer?;
    if !trusted.trusts(Some(peer)) {
        return Some((peer.to_string(), Vec::new()));
    }
    let mut chain = vec![peer.to_string()];
    for hop in forwarded_for(headers).into_iter().rev() {
        match hop {
            Hop::Ip(ip) => {
                chain.push(ip.to_string());
                if !trusted.trusts(Some(ip)) {
                    break;
                }
            }
            Hop::Hidden(name) => {
                chain.push(name);
                break;
            }
            Hop::Invalid => break,
        }
    }
    chain.reverse();
    Some((chain[0].clone(), chain))
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
mod tests;
