#![no_main]
//! Arbitrary bytes parsed as an HTTP request head and as a response head, then checked by the
//! handshake rules of both roles.
use libfuzzer_sys::fuzz_target;
use sockway_proto::handshake::{validate_request, validate_response, RequestKind};

fn header_map(headers: &[httparse::Header<'_>]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for header in headers {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(header.name.as_bytes()), http::HeaderValue::from_bytes(header.value))
        {
            map.append(name, value);
        }
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    if let Ok(httparse::Status::Complete(_)) = request.parse(data) {
        let method = request.method.and_then(|m| http::Method::from_bytes(m.as_bytes()).ok()).unwrap_or_default();
        let map = header_map(request.headers);
        let _ = validate_request(&method, http::Version::HTTP_11, &map, None);
        let _ = validate_request(&method, http::Version::HTTP_2, &map, Some("websocket"));
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    if let Ok(httparse::Status::Complete(_)) = response.parse(data) {
        let status = response.code.and_then(|c| http::StatusCode::from_u16(c).ok()).unwrap_or_default();
        let map = header_map(response.headers);
        let offered = ["chat".to_owned()];
        let _ = validate_response(RequestKind::Upgrade, status, &map, "dGhlIHNhbXBsZSBub25jZQ==", &offered, &["permessage-deflate"]);
    }
});
