use super::*;
use http::StatusCode;

#[test]
fn patterns_parse_exact_and_prefix_and_refuse_inner_stars() {
    let kind = |p: &str| PathPattern::parse(p).map(|p| p.kind().clone());
    assert_eq!(kind("/Chat/*"), Ok(PathKind::Prefix("/chat/".into())));
    assert_eq!(kind("/api"), Ok(PathKind::Exact("/api".into())));
    assert_eq!(kind("/*"), Ok(PathKind::Prefix("/".into())));
    assert_eq!(PathPattern::parse("/Chat/*").unwrap().as_str(), "/Chat/*");
    for bad in ["chat/*", "/a*", "/a/*/b", "/a?x", "/a b"] {
        assert!(PathPattern::parse(bad).is_err(), "{bad:?}");
    }
    let long = format!("/{}", "a".repeat(MAX_PATH_PATTERN));
    assert_eq!(PathPattern::parse(&long), Err(InvalidValue::PathLength));
}

#[test]
fn status_ranges_parse_and_match() {
    let r = StatusRange::parse("200-399").unwrap();
    assert!(r.contains(StatusCode::OK));
    assert!(r.contains(StatusCode::from_u16(399).unwrap()));
    assert!(!r.contains(StatusCode::NOT_FOUND));
    assert_eq!(
        StatusRange::parse("204"),
        Ok(StatusRange {
            low: 204,
            high: 204
        })
    );
    for bad in [
        "",
        "2xx",
        "399-200",
        "99",
        "600",
        "200-",
        "0200",
        "200-399-500",
    ] {
        assert!(StatusRange::parse(bad).is_err(), "{bad:?}");
    }
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
}

#[test]
fn seconds_take_fractions_and_refuse_what_is_not_a_duration() {
    assert_eq!(
        Seconds::new(0.25).unwrap().duration(),
        std::time::Duration::from_millis(250)
    );
    assert_eq!(
        Seconds::new(0.0).unwrap().duration(),
        std::time::Duration::ZERO
    );
    for bad in [-1.0, f64::NAN, f64::INFINITY, MAX_SECONDS * 2.0] {
        assert!(Seconds::new(bad).is_err(), "{bad}");
    }
    let parsed: Seconds = serde_json::from_str("1.5").unwrap();
    assert_eq!(serde_json::to_string(&parsed).unwrap(), "1.5");
    assert!(serde_json::from_str::<Seconds>("-3").is_err());
}

#[test]
fn error_statuses_and_templates() {
    assert_eq!(
        ErrorStatus::parse("HttpStatus502").map(ErrorStatus::get),
        Ok(502)
    );
    assert_eq!(ErrorStatus::parse("404").map(ErrorStatus::get), Ok(404));
    for bad in ["HttpStatus200", "6000", "x"] {
        assert!(ErrorStatus::parse(bad).is_err(), "{bad}");
    }
    assert!(HeaderTemplate::parse("{var_client_ip}:{http_req_User-Agent}").is_ok());
    assert_eq!(
        HeaderTemplate::parse("{var_nope}"),
        Err(InvalidValue::TemplateVariable("var_nope".into()))
    );
    assert!(HeaderTemplate::parse("{var_host").is_err());
}

#[test]
fn values_serialize_as_written() {
    let text = r#"["/Chat/*","200-399","10.0.0.0/8","HttpStatus502"]"#;
    let (p, r, c, s): (PathPattern, StatusRange, Cidr, ErrorStatus) =
        serde_json::from_str(text).unwrap();
    let again = serde_json::to_string(&(p, r, c, s)).unwrap();
    assert_eq!(again, text);
}

#[test]
fn each_placeholder_is_a_valid_value() {
    let [path, status, address, socket, number] = placeholders();
    assert!(serde_json::from_value::<PathPattern>(path).is_ok());
    assert!(serde_json::from_value::<StatusRange>(status.clone()).is_ok());
    assert!(serde_json::from_value::<ErrorStatus>(status).is_ok());
    assert!(serde_json::from_value::<Cidr>(address.clone()).is_ok());
    assert!(serde_json::from_value::<std::net::IpAddr>(address).is_ok());
    assert!(serde_json::from_value::<std::net::SocketAddr>(socket).is_ok());
    assert!(serde_json::from_value::<Seconds>(number).is_ok());
}
