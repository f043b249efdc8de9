//! Header grammar shared by both roles: tokens, comma-separated token lists, and the
//! `Sec-WebSocket-Extensions` grammar (RFC 6455 section 9.1).
//!
//! Lists follow the HTTP list rule (RFC 9110 section 5.6.1): a field may be split over several
//! header lines, each line holds whole elements, elements are separated by commas with optional
//! whitespace (OWS, RFC 9110 section 5.6.3) around them, and empty elements are ignored. All
//! functions work on raw header bytes, so non-UTF-8 or non-ASCII values are simply rejected,
//! never a cause of panics.

use std::fmt;

use http::header::{AsHeaderName, HeaderMap, SEC_WEBSOCKET_EXTENSIONS};

/// Whether `b` is a `tchar` (RFC 9110 section 5.6.2): the characters allowed in a token.
const fn is_tchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

/// Whether `b` is optional whitespace, `OWS = *( SP / HTAB )` (RFC 9110 section 5.6.3).
const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing OWS.
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// Whether `s` is a non-empty HTTP token (RFC 9110 section 5.6.2). Subprotocol names
/// (RFC 6455 section 4.1 item 10), extension names and parameters (section 9.1) must be tokens.
pub fn is_token(s: &str) -> bool {
    is_token_bytes(s.as_bytes())
}

/// Byte version of [`is_token`].
pub(crate) fn is_token_bytes(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The non-empty elements of the comma-separated list in every line of header `name`, trimmed
/// of OWS, in order (RFC 9110 section 5.6.1). Quoted commas are not special: this is for lists
/// of tokens only (`Connection`, `Upgrade`, `Sec-WebSocket-Protocol`).
pub(crate) fn list_elements(
    headers: &HeaderMap,
    name: impl AsHeaderName,
) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(trim_ows)
        .filter(|element| !element.is_empty())
}

/// Whether header `name` lists `token`, compared ASCII case-insensitively, in any of its lines.
///
/// This is how RFC 6455 checks `Upgrade: websocket` and `Connection: Upgrade` (section 4.1
/// items 5 and 6 for the request, section 4.1 items 2 and 3 of the response checks, section
/// 4.2.1 items 3 and 4): the field is a list (RFC 9110 sections 7.6.1 and 7.8), so
/// `Connection: keep-alive, Upgrade` and a second `Connection` line both count, while
/// `Connection: upgrades` does not.
pub fn header_has_token(headers: &HeaderMap, name: impl AsHeaderName, token: &str) -> bool {
    list_elements(headers, name).any(|element| element.eq_ignore_ascii_case(token.as_bytes()))
}

/// Parses a token list such as `Sec-WebSocket-Protocol` (RFC 6455 section 4.1 item 10, section
/// 11.3.4) across all lines. Empty elements are skipped; the first element that is not a token is
/// returned as the error (lossily decoded, for diagnostics only).
pub(crate) fn parse_token_list(
    headers: &HeaderMap,
    name: impl AsHeaderName,
) -> Result<Vec<String>, String> {
    list_elements(headers, name)
        .map(|element| match std::str::from_utf8(element) {
            Ok(s) if is_token(s) => Ok(s.to_owned()),
            _ => Err(String::from_utf8_lossy(element).into_owned()),
        })
        .collect()
}

/// One element of a `Sec-WebSocket-Extensions` list: an extension name and its parameters, in
/// the order written (RFC 6455 section 9.1).
///
/// The same type serves offers (client to server) and responses (server to client); a client may
/// offer one extension several times with different parameters, in order of preference
/// (RFC 7692 section 5), so lists of these keep order and duplicates. Parameter semantics
/// (duplicates, allowed values) belong to the extension, e.g. permessage-deflate
/// (RFC 7692 section 7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionOffer {
    /// The extension token, e.g. `permessage-deflate` (RFC 6455 section 9.1, `extension-token`).
    pub name: String,
    /// `(name, value)` pairs; `None` for a parameter written without `=` (RFC 6455 section 9.1,
    /// `extension-param`). Values are stored unquoted and unescaped.
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionOffer {
    /// An extension element without parameters, to be completed with [`Self::with_param`].
    pub fn new(name: impl Into<String>) -> Self {
        ExtensionOffer {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// Appends a parameter (RFC 6455 section 9.1 `extension-param`), builder style.
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.params.push((name.into(), value.map(str::to_owned)));
        self
    }

    /// The parameters named `name`, in order: `Some(None)` for a valueless parameter. Extensions
    /// such as permessage-deflate refuse duplicated parameters (RFC 7692 section 7), so callers
    /// can count the returned items.
    pub fn params_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Option<&'a str>> {
        self.params
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// Serializes this element for `Sec-WebSocket-Extensions`: `name; param; param=value`
    /// (RFC 6455 section 9.1). Values that are tokens are written bare; any other value is written
    /// as a quoted-string (RFC 9110 section 5.6.4) so the output stays a single element, although
    /// [`parse_extension_list`] will refuse it because RFC 6455 requires unquoted values to be
    /// tokens. For token-only offers, parsing the output gives back `self`.
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ExtensionOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            write!(f, "; {name}")?;
            match value {
                Some(v) if is_token(v) => write!(f, "={v}")?,
                Some(v) => {
                    f.write_str("=\"")?;
                    for c in v.chars() {
                        if c == '"' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"")?;
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// Joins several elements into one `Sec-WebSocket-Extensions` value, `a; x, b` (RFC 6455 section
/// 9.1 `extension-list`); the order is preserved, as it expresses preference (RFC 7692 section 5).
pub fn extensions_to_header_value(offers: &[ExtensionOffer]) -> String {
    let mut out = String::new();
    for (i, offer) in offers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&offer.to_header_value());
    }
    out
}

/// What is wrong in a malformed `Sec-WebSocket-Extensions` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionErrorReason {
    /// A list element does not start with a token (RFC 6455 section 9.1 `extension-token`).
    #[error("expected an extension name (a token)")]
    ExpectedName,
    /// A `;` is not followed by a parameter name; this includes trailing and doubled semicolons.
    #[error("expected a parameter name (a token) after ';'")]
    ExpectedParamName,
    /// An `=` is not followed by a token or a quoted-string.
    #[error("expected a parameter value (a token or a quoted-string) after '='")]
    ExpectedParamValue,
    /// A quoted-string has no closing quote (RFC 9110 section 5.6.4).
    #[error("unterminated quoted-string")]
    UnterminatedQuote,
    /// A quoted-string holds a character not allowed even in quoted-strings (a control byte).
    #[error("invalid character in quoted-string")]
    InvalidQuotedChar,
    /// A quoted value is not a token once unescaped, which RFC 6455 section 9.1 requires.
    #[error("quoted parameter value is not a token")]
    QuotedValueNotToken,
    /// Something other than `;`, `,` or the end of the line follows a name or a value.
    #[error("unexpected character")]
    UnexpectedChar,
}

/// A malformed `Sec-WebSocket-Extensions` header (RFC 6455 section 9.1): where and why parsing
/// stopped. The message does not echo the header, so it is safe as a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed Sec-WebSocket-Extensions header: {reason} (line {line}, byte {offset})")]
pub struct ExtensionError {
    /// What is wrong.
    pub reason: ExtensionErrorReason,
    /// Zero-based index of the header line, for values split over several lines.
    pub line: usize,
    /// Zero-based byte offset within that line.
    pub offset: usize,
}

/// Parses every `Sec-WebSocket-Extensions` line of `headers` (RFC 6455 section 9.1 and 11.3.2),
/// keeping the elements in order across and within lines. An absent header, or one with only
/// empty list elements, gives an empty list.
///
/// The grammar is strict because permessage-deflate negotiation (RFC 7692 section 5) builds on
/// it: names and parameter names are tokens; a value follows `=` and is a token or a
/// quoted-string whose unescaped content is a token; OWS is allowed around `,`, `;` and `=`
/// (RFC 6455 uses the RFC 2616 implied-whitespace rule); anything else, including a trailing or
/// doubled `;` and non-ASCII bytes, is an [`ExtensionError`].
pub fn parse_extensions(headers: &HeaderMap) -> Result<Vec<ExtensionOffer>, ExtensionError> {
    let mut out = Vec::new();
    for (line, value) in headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter().enumerate() {
        parse_line(value.as_bytes(), line, &mut out)?;
    }
    Ok(out)
}

/// Parses one `Sec-WebSocket-Extensions` value with the rules of [`parse_extensions`]. Use it to
/// check an offer or response string before sending it; errors report line 0.
pub fn parse_extension_list(value: &str) -> Result<Vec<ExtensionOffer>, ExtensionError> {
    let mut out = Vec::new();
    parse_line(value.as_bytes(), 0, &mut out)?;
    Ok(out)
}

/// A cursor over one header line.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    fn error(&self, reason: ExtensionErrorReason) -> ExtensionError {
        ExtensionError {
            reason,
            line: self.line,
            offset: self.pos,
        }
    }

    /// Consumes a token; `None` (and nothing consumed) when none starts here.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        let token = self.bytes.get(start..self.pos)?;
        if token.is_empty() {
            return None;
        }
        // tchar is ASCII, so this cannot fail; refusing is still the no-panic path.
        std::str::from_utf8(token).ok()
    }

    /// Consumes a quoted-string (RFC 9110 section 5.6.4) whose opening quote is at `pos`, and
    /// returns its unescaped content, which must be a token (RFC 6455 section 9.1).
    fn quoted_token(&mut self) -> Result<String, ExtensionError> {
        let start = self.pos;
        self.pos += 1; // the opening quote
        let mut content = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error(ExtensionErrorReason::UnterminatedQuote));
            };
            match b {
                b'"' => break,
                b'\\' => {
                    self.pos += 1;
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    match self.peek() {
                        Some(e) if e == b'\t' || (e >= 0x20 && e != 0x7f) => content.push(e),
                        Some(_) => return Err(self.error(ExtensionErrorReason::InvalidQuotedChar)),
                        None => return Err(self.error(ExtensionErrorReason::UnterminatedQuote)),
                    }
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => content.push(b),
                _ => return Err(self.error(ExtensionErrorReason::InvalidQuotedChar)),
            }
            self.pos += 1;
        }
        self.pos += 1; // the closing quote
        match std::str::from_utf8(&content) {
            Ok(s) if is_token(s) => Ok(s.to_owned()),
            _ => Err(ExtensionError {
                reason: ExtensionErrorReason::QuotedValueNotToken,
                line: self.line,
                offset: start,
            }),
        }
    }
}

/// Parses one header line (a whole number of list elements) into `out`.
fn parse_line(
    bytes: &[u8],
    line: usize,
    out: &mut Vec<ExtensionOffer>,
) -> Result<(), ExtensionError> {
    let mut cur = Cursor {
        bytes,
        pos: 0,
        line,
    };
    loop {
        cur.skip_ows();
        match cur.peek() {
            None => return Ok(()),
            // An empty list element (RFC 9110 section 5.6.1): ignored.
            Some(b',') => {
                cur.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = cur
            .token()
            .ok_or_else(|| cur.error(ExtensionErrorReason::ExpectedName))?;
        let mut offer = ExtensionOffer::new(name);
        loop {
            cur.skip_ows();
            match cur.peek() {
                None => {
                    out.push(offer);
                    return Ok(());
                }
                Some(b',') => {
                    cur.pos += 1;
                    out.push(offer);
                    break;
                }
                Some(b';') => {
                    cur.pos += 1;
                    cur.skip_ows();
                    let param = cur
                        .token()
                        .ok_or_else(|| cur.error(ExtensionErrorReason::ExpectedParamName))?;
                    cur.skip_ows();
                    let value = if cur.peek() == Some(b'=') {
                        cur.pos += 1;
                        cur.skip_ows();
                        Some(match cur.peek() {
                            Some(b'"') => cur.quoted_token()?,
                            _ => cur
                                .token()
                                .ok_or_else(|| cur.error(ExtensionErrorReason::ExpectedParamValue))?
                                .to_owned(),
                        })
                    } else {
                        None
                    };
                    offer.params.push((param.to_owned(), value));
                }
                Some(_) => return Err(cur.error(ExtensionErrorReason::UnexpectedChar)),
            }
        }
    }
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
