use super::*;

fn forged() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        (X_FORWARDED_FOR, "10.0.0.1"),
        (X_FORWARDED_FOR, "10.0.0.2"),
        (X_FORWARDED_HOST, "admin.internal"),
        (X_FORWARDED_PROTO, "https"),
        (X_FORWARDED_PORT, "443"),
        (X_REAL_IP, "10.9.9.9"),
        ("forwarded", "for=10.0.0.1;proto=https"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

fn hop(host: &HeaderValue) -> Hop<'_> {
    Hop {
        peer: "192.0.2.7:5000".parse().unwrap(),
        scheme: "http",
        port: 8080,
        host: Some(host),
    }
}

#[test]
fn an_untrusted_peer_s_forwarding_headers_are_replaced() {
    let mut h = forged();
    let host = HeaderValue::from_static("a.example:8080");
    apply(&mut h, hop(&host), false);
    assert_eq!(h[X_FORWARDED_FOR], "192.0.2.7");
    assert_eq!(h.get_all(X_FORWARDED_FOR).iter().count(), 1);
    assert_eq!(h[X_FORWARDED_HOST], "a.example:8080");
    assert_eq!(h[X_FORWARDED_PROTO], "http");
    assert_eq!(h[X_FORWARDED_PORT], "8080");
    assert_eq!(h[X_REAL_IP], "192.0.2.7");
    assert_eq!(
        h[FORWARDED],
        "for=192.0.2.7;proto=http;host=\"a.example:8080\""
    );
    assert_eq!(h[X_ORIGINAL_HOST], "a.example:8080");
}

#[test]
fn a_trusted_peer_s_lists_are_extended_and_its_values_kept() {
    let mut h = forged();
    let host = HeaderValue::from_static("a.example");
    apply(&mut h, hop(&host), true);
    assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 10.0.0.2, 192.0.2.7");
    assert_eq!(
        h[FORWARDED],
        "for=10.0.0.1;proto=https, for=192.0.2.7;proto=http;host=a.example"
    );
    assert_eq!(h[X_FORWARDED_HOST], "admin.internal");
    assert_eq!(h[X_FORWARDED_PROTO], "https");
    assert_eq!(h[X_FORWARDED_PORT], "443");
    assert_eq!(h[X_REAL_IP], "10.9.9.9");
}

#[test]
fn a_trusted_peer_without_headers_gets_the_gateway_s() {
    let mut h = HeaderMap::new();
    let host = HeaderValue::from_static("a.example");
    apply(&mut h, hop(&host), true);
    assert_eq!(h[X_FORWARDED_FOR], "192.0.2.7");
    assert_eq!(h[X_FORWARDED_PROTO], "http");
    assert_eq!(h[X_REAL_IP], "192.0.2.7");
}

#[test]
fn ipv6_peers_are_quoted_in_forwarded() {
    let mut h = HeaderMap::new();
    let unused = HeaderValue::from_static("x");
    let mut hop = hop(&unused);
    hop.peer = "[2001:db8::1]:443".parse().unwrap();
    hop.host = None;
    apply(&mut h, hop, false);
    assert_eq!(h[FORWARDED], "for=\"[2001:db8::1]\";proto=http");
    assert_eq!(h[X_FORWARDED_FOR], "2001:db8::1");
    assert!(!h.contains_key(X_FORWARDED_HOST));
}

#[test]
fn cidr_ranges_match_by_prefix() {
    let net = Cidr::parse("10.1.0.0/16").unwrap();
    assert!(net.contains("10.1.200.3".parse().unwrap()));
    assert!(!net.contains("10.2.0.1".parse().unwrap()));
    assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
    let odd = Cidr::parse("192.168.0.0/23").unwrap();
    assert!(odd.contains("192.168.1.255".parse().unwrap()));
    assert!(!odd.contains("192.168.2.0".parse().unwrap()));
    let one = Cidr::parse("127.0.0.1").unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(!one.contains("127.0.0.2".parse().unwrap()));
    let v6 = Cidr::parse("2001:db8::/32").unwrap();
    assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
    assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
    for bad in ["10.0.0.0/33", "10.0.0/8", "x", "::/129", "10.0.0.0/-1"] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
    let trusted = TrustedProxies::new(&["10.0.0.0/8".into(), "::1".into()]);
    assert!(trusted.trusts("10.3.3.3".parse().unwrap()));
    assert!(trusted.trusts("::1".parse().unwrap()));
    assert!(!trusted.trusts("127.0.0.1".parse().unwrap()));
    assert!(!TrustedProxies::default().trusts("127.0.0.1".parse().unwrap()));
}
