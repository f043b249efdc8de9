//! Reading a request's query string: the first value of a parameter, percent-decoded as
//! `application/x-www-form-urlencoded`. A leaf: negotiate, the transports and the access-token
//! lookup of `auth` read their parameters with it.

/// The first value of query parameter `key` (ignoring ASCII case), percent-decoded as
/// `application/x-www-form-urlencoded` (`+` is a space). Invalid escapes stay as they are.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        decode(name)
            .eq_ignore_ascii_case(key)
            .then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}
