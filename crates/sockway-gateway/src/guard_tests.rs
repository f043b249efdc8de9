use super::*;

fn run(input: &[u8], chunk: usize) -> (HeadGuard<()>, Vec<u8>) {
    let mut g = HeadGuard::new((), GuardState::new(), 8192, false);
    for piece in input.chunks(chunk) {
        g.process(piece);
    }
    let out = std::mem::take(&mut g.out);
    (g, out)
}

fn refusal(g: &HeadGuard<()>) -> Option<Refusal> {
    g.state.refusal.lock().unwrap().clone()
}

#[test]
fn good_pipelined_requests_pass_unchanged() {
    let input = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
GET /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n\
GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    for chunk in [1, 3, 7, 4096] {
        let (g, out) = run(input, chunk);
        assert_eq!(out, input, "chunk size {chunk}");
        assert!(refusal(&g).is_none());
        assert!(matches!(g.mode, Mode::Head));
    }
}

#[test]
fn content_length_with_transfer_encoding_is_refused() {
    for input in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"[..],
    ] {
        let (g, out) = run(input, 5);
        let r = refusal(&g).expect("refused");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.message.contains("both Content-Length and Transfer-Encoding"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET / HTTP/1.1\r\n"), "{text}");
        assert!(text.contains(&g.state.nonce));
        assert!(!text.contains("POST"));
    }
}

#[test]
fn conflicting_lengths_are_refused_and_equal_ones_pass() {
    let (g, _) = run(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        64,
    );
    assert!(refusal(&g).unwrap().message.contains("conflicting"));
    let (g, _) = run(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab",
        64,
    );
    assert!(refusal(&g).is_some());
    let (g, _) = run(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        64,
    );
    assert!(refusal(&g)
        .unwrap()
        .message
        .contains("invalid Content-Length"));
    let ok = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab";
    let (g, out) = run(ok, 64);
    assert!(refusal(&g).is_none());
    assert_eq!(out, ok);
}

#[test]
fn a_refusal_after_good_requests_keeps_them() {
    let good = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut input = good.to_vec();
    input.extend_from_slice(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let (g, out) = run(&input, 9);
    assert!(out.starts_with(good));
    assert!(refusal(&g).is_some());
}

#[test]
fn oversized_heads_get_431() {
    let mut input = b"GET / HTTP/1.1\r\nX: ".to_vec();
    input.extend(std::iter::repeat_n(b'a', 9000));
    let (g, out) = run(&input, 1000);
    assert_eq!(
        refusal(&g).unwrap().status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("GET / HTTP/1.1\r\n"), "{text}");
    assert!(text.contains(&g.state.nonce));
    assert!(
        !text.contains("X:"),
        "the oversized field is not passed on: {text}"
    );
    assert!(text.len() < 1000, "only the stand-in request is passed on");
}

#[test]
fn non_chunked_transfer_coding_is_refused() {
    let (g, _) = run(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        64,
    );
    assert!(refusal(&g).unwrap().message.contains("chunked"));
}

#[test]
fn http2_preface_and_upgrades_pass_through() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00";
    let (g, out) = run(preface, 4);
    assert_eq!(out, preface);
    assert!(matches!(g.mode, Mode::Passthrough));

    let mut g = HeadGuard::new((), GuardState::new(), 8192, false);
    g.process(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
    g.state.set_upgraded();
    g.process(b"\x81\x85abcd12345");
    assert!(matches!(g.mode, Mode::Passthrough));
    assert!(g.out.ends_with(b"\x81\x85abcd12345"));
}

#[test]
fn malformed_chunks_end_the_stream() {
    let (g, out) = run(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /smuggled HTTP/1.1\r\n\r\n", 64);
    assert!(matches!(g.mode, Mode::Ended));
    assert!(!String::from_utf8_lossy(&out).contains("smuggled"));
}

#[test]
fn heads_ending_in_mixed_line_endings_are_framed_as_hyper_frames_them() {
    // httparse (and so hyper) ends a head at an empty line after a bare LF too ("\n\r\n",
    // "\r\n\n"); the guard must find the same end, or the request hyper reads next is one the
    // guard never checked (here one with both Content-Length and Transfer-Encoding).
    for first in [
        &b"GET /first HTTP/1.1\nHost: x\nContent-Length: 0\n\r\n"[..],
        &b"GET /first HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\n"[..],
    ] {
        let mut input = first.to_vec();
        input.extend_from_slice(
            b"POST /hidden HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        for chunk in [1, 2, 3, 4096] {
            let (g, out) = run(&input, chunk);
            let r = refusal(&g).expect("the hidden request is checked and refused");
            assert!(r
                .message
                .contains("both Content-Length and Transfer-Encoding"));
            assert!(out.starts_with(first), "chunk size {chunk}");
            assert!(!String::from_utf8_lossy(&out).contains("/hidden"));
        }
    }
}

#[test]
fn more_than_one_host_is_refused() {
    let (g, out) = run(
        b"GET / HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n",
        64,
    );
    let r = refusal(&g).expect("refused");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message.contains("Host"), "{}", r.message);
    assert!(!String::from_utf8_lossy(&out).contains("example"));
    let (g, _) = run(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", 64);
    assert!(refusal(&g).is_none());
}
