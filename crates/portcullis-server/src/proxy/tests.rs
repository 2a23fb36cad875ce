//! Unit tests of forwarded-header parsing, trusted proxies and origins.

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

fn local(addr: &str, sni: Option<&str>) -> LocalEnd {
    LocalEnd {
        addr: addr.parse().unwrap(),
        sni: sni.map(str::to_owned),
    }
}

#[test]
fn a_host_header_is_believed_only_when_it_names_this_server() {
    let lo = local("127.0.0.1:5000", None);
    for host in ["127.0.0.1:5000", "localhost:5000", "LOCALHOST:5000"] {
        assert!(lo.is_named_by(host, false), "{host}");
    }
    for host in [
        "evil.example:5000",
        "127.0.0.1:5001",
        "127.0.0.2:5000",
        "localhost",
    ] {
        assert!(!lo.is_named_by(host, false), "{host}");
    }
    let v6 = local("[2001:db8::7]:443", Some("registry.example"));
    assert!(v6.is_named_by("[2001:db8::7]", true));
    assert!(v6.is_named_by("[2001:db8::7]:443", true));
    assert!(!v6.is_named_by("[2001:db8::8]:443", true));
    // The name the TLS client verified our certificate for, on any port (a
    // load balancer may map ports).
    assert!(v6.is_named_by("registry.example:8443", true));
    assert!(!v6.is_named_by("localhost:443", true));
}

#[test]
fn a_forged_host_gives_way_to_the_connection_address() {
    let end = local("198.18.0.2:5000", None);
    let conn = |h: &'static str| {
        let hm = headers(&[("host", h)]);
        origin_on(
            &hm,
            Connection {
                peer: ip("198.18.0.1"),
                local: Some(&end),
                ..Connection::default()
            },
            &TrustedProxies::default(),
        )
    };
    assert_eq!(
        conn("198.18.0.2:5000").as_deref(),
        Some("http://198.18.0.2:5000")
    );
    assert_eq!(
        conn("evil.example").as_deref(),
        Some("http://198.18.0.2:5000")
    );
}

#[test]
fn the_chain_names_the_client_first_and_the_peer_last_only_through_trusted_proxies() {
    let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
    let h = headers(&[("x-forwarded-for", "6.6.6.6, 192.0.2.7, 10.0.0.9")]);
    assert_eq!(
        client_chain(&h, ip("10.0.0.2"), &t),
        Some((
            "192.0.2.7".to_owned(),
            vec!["192.0.2.7".into(), "10.0.0.9".into(), "10.0.0.2".into()]
        ))
    );
    assert_eq!(
        client_chain(&h, ip("192.0.2.1"), &t),
        Some(("192.0.2.1".to_owned(), Vec::new()))
    );
}
