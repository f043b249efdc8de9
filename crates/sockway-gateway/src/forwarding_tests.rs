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
fn trusted_proxies_are_the_listed_ranges() {
    let ranges = ["10.0.0.0/8", "::1"].map(|r| Cidr::parse(r).unwrap());
    let trusted = TrustedProxies::new(&ranges);
    assert!(trusted.trusts("10.3.3.3".parse().unwrap()));
    assert!(trusted.trusts("::1".parse().unwrap()));
    assert!(!trusted.trusts("127.0.0.1".parse().unwrap()));
    assert!(!TrustedProxies::default().trusts("127.0.0.1".parse().unwrap()));
}
