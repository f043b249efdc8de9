//! Tests for HTTP/1.1 head reading: where heads end, the limits, partial heads.

use super::*;

const LIMITS: HeadLimits = HeadLimits {
    max_bytes: 64,
    max_fields: 2,
};

#[test]
fn heads_end_at_the_first_empty_line_with_any_line_ending() {
    assert_eq!(
        find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 0),
        Some(24)
    );
    assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\n", 0), Some(21));
    assert_eq!(find_head_end(b"x\n\r\n", 0), Some(4));
    assert_eq!(find_head_end(b"x\r\n\n", 0), Some(4));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    assert_eq!(find_head_end(b"x\r\n\r", 0), None);
    assert_eq!(find_head_end(b"", 0), None);
    // Searching from the middle finds the same end.
    let head = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
    assert_eq!(find_head_end(head, 20), Some(head.len()));
}

#[test]
fn the_h2_preface_reads_as_a_head_then_sm() {
    assert_eq!(find_head_end(H2_PREFACE, 0), Some(18));
    assert!(H2_PREFACE.starts_with(b"PRI * HTTP/2.0\r\n\r\n"));
}

#[test]
fn partial_heads_wait_within_the_limit_and_fail_beyond_it() {
    assert_eq!(check_head(b"GET / HT", 0, &LIMITS), Ok(None));
    assert_eq!(
        parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n", &LIMITS),
        Ok(None)
    );
    assert_eq!(
        check_head(&[b'a'; 65], 0, &LIMITS),
        Err(HeadError::TooLarge { limit: 64 })
    );
    assert_eq!(
        parse_request(&[b'a'; 65], &LIMITS),
        Err(HeadError::TooLarge { limit: 64 })
    );
    // A complete head longer than the limit is refused too.
    let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(60));
    assert_eq!(
        check_head(long.as_bytes(), 0, &LIMITS),
        Err(HeadError::TooLarge { limit: 64 })
    );
}

#[test]
fn field_counts_are_limited() {
    let many = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        check_head(many, 0, &LIMITS),
        Err(HeadError::TooManyFields { count: 3, limit: 2 })
    );
    assert!(matches!(
        parse_request(many, &LIMITS),
        Err(HeadError::TooManyFields { .. })
    ));
    let two = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_eq!(check_head(two, 0, &LIMITS), Ok(Some(two.len())));
}

#[test]
fn requests_are_parsed_with_what_follows_left_alone() {
    let input = b"GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n\x81\x80";
    let head = parse_request(input, &LIMITS).unwrap().unwrap();
    assert_eq!(head.method, Method::GET);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.target, "/chat?x=1");
    assert_eq!(head.headers["host"], "a");
    assert_eq!(head.len, input.len() - 2);
    let old = parse_request(b"GET / HTTP/1.0\r\n\r\n", &LIMITS)
        .unwrap()
        .unwrap();
    assert_eq!(old.version, Version::HTTP_10);
}

#[test]
fn malformed_heads_are_errors_not_panics() {
    for input in [
        &b"GET / HTTP/1.1\r\n\x01\r\n\r\n"[..],
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"GET / HTTP/1.1\r\nA b\r\n\r\n",
        b"\r\n\r\n",
    ] {
        assert!(
            matches!(
                parse_request(input, &LIMITS),
                Err(HeadError::Malformed(_)) | Ok(None)
            ),
            "{input:?}"
        );
    }
    assert!(matches!(
        parse_request(b"GET / HTTP/1.1\r\n\x01\r\n\r\n", &LIMITS),
        Err(HeadError::Malformed(_))
    ));
}

#[test]
fn responses_are_parsed_and_bounded() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00";
    let limits = HeadLimits::default();
    let head = parse_response(input, &limits).unwrap().unwrap();
    assert_eq!(head.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(head.headers["upgrade"], "websocket");
    assert_eq!(&input[head.len..], b"\x81\x00");
    assert_eq!(parse_response(b"HTTP/1.1 101 OK\r\n", &limits), Ok(None));
    assert!(matches!(
        parse_response(&[b'x'; 65], &LIMITS),
        Err(HeadError::TooLarge { limit: 64 })
    ));
    assert!(matches!(
        parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", &limits),
        Err(HeadError::Malformed(_))
    ));
}

#[test]
fn limit_setters_keep_their_floors() {
    let limits = HeadLimits::default().max_bytes(10).max_fields(1);
    assert_eq!(limits.max_bytes, HeadLimits::MIN_BYTES);
    assert_eq!(limits.max_fields, HeadLimits::MIN_FIELDS);
    assert_eq!(HeadLimits::default().max_bytes, 32 * 1024);
    assert_eq!(HeadLimits::default().max_fields, 100);
}
