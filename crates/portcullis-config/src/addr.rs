//! Listen addresses (`http.addr`, `http.debug.addr`) as Go's `net.Listen` takes them.
//!
//! With `net: tcp` (or `tcp4`, `tcp6`) an address is `HOST:PORT`, where HOST
//! may be empty (every interface), an IPv4 address, a bracketed IPv6 address,
//! or a host name: `:5000`, `0.0.0.0:5000`, `[::1]:5000`, `localhost:5000`.
//! With `net: unix` the address is the path of a socket.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP port; `host` is `None` for every interface (Go's `:5000`).
    Tcp { host: Option<String>, port: u16 },
    /// A Unix socket path.
    Unix(PathBuf),
}

/// Parses `addr` for the network `net` (`tcp`, `tcp4`, `tcp6` or `unix`).
///
/// # Errors
/// Returns a message saying what is wrong and what a valid address looks like.
pub fn parse_listen_addr(net: &str, addr: &str) -> Result<ListenAddr, String> {
    match net {
        "unix" => {
            if addr.is_empty() {
                Err("with `net: unix`, the address must be the path of a socket, such as /run/portcullis.sock".to_owned())
            } else {
                Ok(ListenAddr::Unix(PathBuf::from(addr)))
            }
        }
        "tcp" | "tcp4" | "tcp6" | "" => parse_tcp(addr),
        other => Err(format!(
            "unknown network `{other}`; use tcp, tcp4, tcp6 or unix"
        )),
    }
}

fn parse_tcp(addr: &str) -> Result<ListenAddr, String> {
    let example = "write `:5000` (every interface), `127.0.0.1:5000` or `[::1]:5000`";
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("`{addr}` has no port; {example}"));
    };
    let port: u16 = port.parse().map_err(|_| {
        format!("`{port}` in `{addr}` is not a port number from 0 to 65535; {example}")
    })?;
    let host = if host.is_empty() {
        None
    } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{inner}` in `{addr}` is not an IPv6 address; {example}"))?;
        Some(inner.to_owned())
    } else if host.contains(':') {
        return Err(format!(
            "an IPv6 address needs brackets: write `[{host}]:{port}` instead of `{addr}`"
        ));
    } else if host.parse::<Ipv4Addr>().is_ok() || is_host_name(host) {
        Some(host.to_owned())
    } else {
        return Err(format!(
            "`{host}` in `{addr}` is not an IP address or host name; {example}"
        ));
    };
    Ok(ListenAddr::Tcp { host, port })
}

fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: Option<&str>, port: u16) -> ListenAddr {
        ListenAddr::Tcp {
            host: host.map(str::to_owned),
            port,
        }
    }

    #[test]
    fn parses_go_addresses() {
        assert_eq!(parse_listen_addr("tcp", ":5000"), Ok(tcp(None, 5000)));
        assert_eq!(
            parse_listen_addr("tcp", "0.0.0.0:5000"),
            Ok(tcp(Some("0.0.0.0"), 5000))
        );
        assert_eq!(
            parse_listen_addr("tcp", "127.0.0.1:5000"),
            Ok(tcp(Some("127.0.0.1"), 5000))
        );
        assert_eq!(
            parse_listen_addr("tcp", "[::1]:5000"),
            Ok(tcp(Some("::1"), 5000))
        );
        assert_eq!(
            parse_listen_addr("tcp", "localhost:5001"),
            Ok(tcp(Some("localhost"), 5001))
        );
        assert_eq!(parse_listen_addr("tcp6", "[::]:0"), Ok(tcp(Some("::"), 0)));
        assert_eq!(
            parse_listen_addr("unix", "/run/p.sock"),
            Ok(ListenAddr::Unix("/run/p.sock".into()))
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "5000",
            ":http",
            ":70000",
            "::1:5000",
            "[::1]5000",
            "bad host:5000",
            "[zz]:1",
            "",
        ] {
            assert!(parse_listen_addr("tcp", bad).is_err(), "{bad}");
        }
        assert!(parse_listen_addr("unix", "").is_err());
        assert!(parse_listen_addr("udp", ":53").is_err());
        assert!(
            parse_listen_addr("tcp", "::1:5000")
                .unwrap_err()
                .contains("[::1]:5000")
        );
    }
}
