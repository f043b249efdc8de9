//! A guard in front of hyper's HTTP/1 parser that refuses ambiguous message framing
//! (RFC 9112 section 6.3): a request with both `Content-Length` and `Transfer-Encoding`, or
//! with several different `Content-Length` values, must never reach a backend, because a
//! backend that frames it differently from the gateway would see a second, smuggled request.
//!
//! hyper itself answers conflicting lengths with a bare 400 and, for `Content-Length` plus
//! `Transfer-Encoding`, silently drops the length and goes on (chunked wins, RFC 9112 section
//! 6.1). The gateway wants a clear refusal with a body in both cases, so this wrapper reads
//! each request head before hyper does (bounded by `maxHeaderBytes`, 431 beyond), checks it,
//! and follows the body's framing (length or chunked) to find the next head. When a head is
//! refused, hyper is given a stand-in request that carries a per-connection random nonce
//! instead; the service recognizes the nonce and answers with the refusal and
//! `Connection: close`. Nothing of the refused request is passed on.
//!
//! The guard finds the end of each head with the core's
//! [`find_head_end`], exactly where httparse
//! (hyper's parser) does, with CRLF or bare LF line endings in any mix, and refuses a head whose end the two could see
//! differently: otherwise the next request hyper reads would be one the guard never checked.
//! It also refuses a request with more than one `Host` (RFC 9112 section 3.2 requires 400).
//!
//! The guard steps aside for HTTP/2 (the connection preface) and once the connection has
//! been upgraded to a WebSocket.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::StatusCode;
use sockway_proto::handshake::{find_head_end, HeadLimits, H2_PREFACE};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most header fields a request may have: the one default of every sockway server
/// ([`HeadLimits::DEFAULT`], hyper's own default), so the guard refuses with a clear 431
/// exactly what hyper behind it would refuse with a bare one.
const MAX_FIELDS: usize = HeadLimits::DEFAULT.max_fields;

/// The header carrying the nonce of a stand-in request.
pub const REFUSAL_HEADER: &str = "x-sockway-refusal";

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status to answer with.
    pub status: StatusCode,
    /// The body text.
    pub message: String,
}

/// What the guard and the service share for one connection.
#[derive(Debug)]
pub struct GuardState {
    nonce: String,
    refusal: Mutex<Option<Refusal>>,
    upgraded: AtomicBool,
}

impl GuardState {
    /// Fresh state with a random nonce.
    pub fn new() -> Arc<Self> {
        let nonce: u128 = rand::random();
        Arc::new(Self {
            nonce: format!("{nonce:032x}"),
            refusal: Mutex::new(None),
            upgraded: AtomicBool::new(false),
        })
    }

    /// The refusal behind a stand-in request, if `header` is this connection's nonce.
    pub fn refusal_for(&self, header: Option<&[u8]>) -> Option<Refusal> {
        if header? != self.nonce.as_bytes() {
            return None;
        }
        self.refusal.lock().ok()?.clone()
    }

    /// Marks the connection as upgraded (the guard then passes bytes through).
    pub fn set_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }
}

#[derive(Debug)]
enum Mode {
    Head,
    Length(u64),
    Chunked(Chunk),
    Passthrough,
    /// Deliver what is pending, then end of stream.
    Ended,
    /// Deliver the stand-in request, then nothing more (no end of stream either: hyper
    /// treats a read EOF as the client leaving and would not send the refusal).
    Refused,
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    Size {
        digits: u32,
        value: u64,
        ext: bool,
        line: usize,
    },
    Data(u64),
    DataCr,
    DataLf,
    Trailer {
        line: usize,
        total: usize,
    },
}

/// The wrapped stream.
#[derive(Debug)]
pub struct HeadGuard<S> {
    inner: S,
    state: Arc<GuardState>,
    mode: Mode,
    head: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    max_head: usize,
    at_start: bool,
}

impl<S> HeadGuard<S> {
    /// Guards `inner`; `passthrough` skips all checks (HTTP/2 negotiated by ALPN).
    pub fn new(inner: S, state: Arc<GuardState>, max_head: usize, passthrough: bool) -> Self {
        Self {
            inner,
            state,
            mode: if passthrough {
                Mode::Passthrough
            } else {
                Mode::Head
            },
            head: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            max_head,
            at_start: true,
        }
    }

    /// The stream back, with the bytes the guard read from it but has not passed on yet
    /// (they come first), for a connection that has been upgraded: the WebSocket relay then
    /// reads the socket itself instead of going through the guard. `Err(self)` when the guard
    /// is in the middle of a request body or has refused or ended the connection; the relay
    /// then keeps reading through it.
    pub fn into_upgraded(self) -> Result<(S, Vec<u8>), Self> {
        if !matches!(self.mode, Mode::Head | Mode::Passthrough) {
            return Err(self);
        }
        let mut rest = self.out[self.out_pos..].to_vec();
        if matches!(self.mode, Mode::Head) {
            rest.extend_from_slice(&self.head);
        }
        Ok((self.inner, rest))
    }

    fn refuse(&mut self, status: StatusCode, message: impl Into<String>) {
        if let Ok(mut slot) = self.state.refusal.lock() {
            *slot = Some(Refusal {
                status,
                message: message.into(),
            });
        }
        self.head.clear();
        self.out.extend_from_slice(
            format!(
                "GET / HTTP/1.1\r\nhost: refused.invalid\r\nconnection: close\r\n{REFUSAL_HEADER}: {}\r\n\r\n",
                self.state.nonce
            )
            .as_bytes(),
        );
        self.mode = Mode::Refused;
    }

    /// Runs the bytes just read through the framing state machine into `out`.
    fn process(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.mode {
                Mode::Passthrough => {
                    self.out.extend_from_slice(bytes);
                    return;
                }
                Mode::Ended | Mode::Refused => return,
                Mode::Length(n) => {
                    let take = (*n).min(bytes.len() as u64) as usize;
                    self.out.extend_from_slice(&bytes[..take]);
                    *n -= take as u64;
                    bytes = &bytes[take..];
                    if *n == 0 {
                        self.mode = Mode::Head;
                    }
                }
                Mode::Chunked(_) => {
                    let used = self.chunked(bytes);
                    self.out.extend_from_slice(&bytes[..used]);
                    bytes = &bytes[used..];
                }
                Mode::Head => {
                    if self.head.is_empty() && self.state.upgraded.load(Ordering::Acquire) {
                        self.mode = Mode::Passthrough;
                        continue;
                    }
                    if self.at_start && self.head.is_empty() && bytes.starts_with(&H2_PREFACE[..4])
                    {
                        self.mode = Mode::Passthrough;
                        continue;
                    }
                    if self.head.is_empty() && matches!(bytes[0], b'\r' | b'\n') {
                        self.out.push(bytes[0]);
                        bytes = &bytes[1..];
                        continue;
                    }
                    let from = self.head.len().saturating_sub(3);
                    let room = self.max_head + 1 - self.head.len().min(self.max_head);
                    let window = bytes.len().min(room);
                    let mut probe = self.head[from..].to_vec();
                    let tail = probe.len();
                    probe.extend_from_slice(&bytes[..window]);
                    match find_head_end(&probe, 0) {
                        Some(end) => {
                            let take = end - tail;
                            self.head.extend_from_slice(&bytes[..take]);
                            bytes = &bytes[take..];
                            self.finish_head();
                        }
                        None => {
                            self.head.extend_from_slice(&bytes[..window]);
                            bytes = &bytes[window..];
                            if self.head.len() > self.max_head {
                                let max = self.max_head;
                                self.refuse(
                                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                                    format!("the request head is larger than {max} bytes"),
                                );
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// A complete head is in `self.head`: check it and choose the body framing.
    fn finish_head(&mut self) {
        self.at_start = false;
        let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut request = httparse::Request::new(&mut headers);
        let version = match request.parse(&self.head) {
            Ok(httparse::Status::Complete(n)) if n == self.head.len() => {
                request.version.unwrap_or(1)
            }
            // `find_head_end` and httparse disagree on where the head ends: hyper would read a
            // request this guard has not checked.
            Ok(httparse::Status::Complete(_)) => {
                return self.refuse(
                    StatusCode::BAD_REQUEST,
                    "the end of the request head is ambiguous (mixed line endings)",
                )
            }
            Err(httparse::Error::TooManyHeaders) => {
                return self.refuse(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    format!("the request has more than {MAX_FIELDS} header lines"),
                )
            }
            // Malformed heads are hyper's to refuse; it never forwards them.
            _ => {
                self.out.append(&mut self.head);
                self.mode = Mode::Ended;
                return;
            }
        };
        let hosts = request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("host"))
            .count();
        if hosts > 1 {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                "the request has more than one Host header (RFC 9112 section 3.2)",
            );
        }
        let mut lengths: Vec<u64> = Vec::new();
        let mut te: Option<Vec<u8>> = None;
        for h in request.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                for part in h.value.split(|&b| b == b',') {
                    let part = part.trim_ascii();
                    let parsed =
                        (1..=19).contains(&part.len()) && part.iter().all(u8::is_ascii_digit);
                    match std::str::from_utf8(part)
                        .ok()
                        .filter(|_| parsed)
                        .and_then(|s| s.parse().ok())
                    {
                        Some(n) => lengths.push(n),
                        None => {
                            return self.refuse(
                                StatusCode::BAD_REQUEST,
                                "invalid Content-Length: it must be a decimal number",
                            )
                        }
                    }
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let all = te.get_or_insert_with(Vec::new);
                if !all.is_empty() {
                    all.push(b',');
                }
                all.extend_from_slice(h.value);
            }
        }
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                "conflicting Content-Length values: the message length is ambiguous \
                 (RFC 9112 section 6.3)",
            );
        }
        let framing = match (te, lengths.first()) {
            (Some(_), Some(_)) => {
                return self.refuse(
                    StatusCode::BAD_REQUEST,
                    "the request has both Content-Length and Transfer-Encoding: the message \
                     length is ambiguous (RFC 9112 section 6.1), so it is refused",
                )
            }
            (Some(te), None) => {
                let last = te
                    .rsplit(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .find(|p| !p.is_empty())
                    .unwrap_or_default();
                if version == 0 || !last.eq_ignore_ascii_case(b"chunked") {
                    return self.refuse(
                        StatusCode::BAD_REQUEST,
                        "Transfer-Encoding must end with chunked, in HTTP/1.1 (RFC 9112 \
                         section 6.3)",
                    );
                }
                Mode::Chunked(Chunk::Size {
                    digits: 0,
                    value: 0,
                    ext: false,
                    line: 0,
                })
            }
            (None, Some(&n)) if n > 0 => Mode::Length(n),
            _ => Mode::Head,
        };
        self.out.append(&mut self.head);
        self.mode = framing;
    }

    /// Follows chunked framing over `bytes`; returns how many belong to the body (all of
    /// them, unless the body ends inside `bytes`).
    fn chunked(&mut self, bytes: &[u8]) -> usize {
        let Mode::Chunked(mut state) = self.mode else {
            return 0;
        };
        let mut i = 0;
        let max_trailer = self.max_head;
        while i < bytes.len() {
            let b = bytes[i];
            let next = match state {
                Chunk::Data(n) => {
                    let take = n.min((bytes.len() - i) as u64);
                    i += take as usize;
                    let left = n - take;
                    state = if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left)
                    };
                    continue;
                }
                Chunk::Size {
                    digits,
                    value,
                    ext,
                    line,
                } => {
                    if line > 4096 {
                        None
                    } else if b == b'\n' {
                        match (digits, value) {
                            (0, _) => None,
                            (_, 0) => Some(Chunk::Trailer { line: 0, total: 0 }),
                            (_, n) => Some(Chunk::Data(n)),
                        }
                    } else if b == b'\r' || ext {
                        Some(Chunk::Size {
                            digits,
                            value,
                            ext,
                            line: line + 1,
                        })
                    } else if let Some(d) = (b as char).to_digit(16) {
                        (digits < 16).then(|| Chunk::Size {
                            digits: digits + 1,
                            value: value * 16 + u64::from(d),
                            ext,
                            line: line + 1,
                        })
                    } else if matches!(b, b';' | b' ' | b'\t') && digits > 0 {
                        Some(Chunk::Size {
                            digits,
                            value,
                            ext: true,
                            line: line + 1,
                        })
                    } else {
                        None
                    }
                }
                Chunk::DataCr => match b {
                    b'\r' => Some(Chunk::DataLf),
                    b'\n' => Some(new_size()),
                    _ => None,
                },
                Chunk::DataLf => (b == b'\n').then(new_size),
                Chunk::Trailer { line, total } => {
                    if total > max_trailer {
                        None
                    } else if b == b'\n' {
                        if line == 0 {
                            self.mode = Mode::Head;
                            return i + 1;
                        }
                        Some(Chunk::Trailer {
                            line: 0,
                            total: total + 1,
                        })
                    } else if b == b'\r' {
                        Some(Chunk::Trailer {
                            line,
                            total: total + 1,
                        })
                    } else {
                        Some(Chunk::Trailer {
                            line: line + 1,
                            total: total + 1,
                        })
                    }
                }
            };
            match next {
                Some(s) => state = s,
                None => {
                    // Malformed chunked body: hand over what came so far and end the stream,
                    // so hyper sees a truncated body and nothing after it is read.
                    self.mode = Mode::Ended;
                    return i;
                }
            }
            i += 1;
        }
        self.mode = Mode::Chunked(state);
        bytes.len()
    }
}

fn new_size() -> Chunk {
    Chunk::Size {
        digits: 0,
        value: 0,
        ext: false,
        line: 0,
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            match this.mode {
                Mode::Ended => return Poll::Ready(Ok(())),
                Mode::Refused => return Poll::Pending,
                Mode::Passthrough => return Pin::new(&mut this.inner).poll_read(cx, buf),
                Mode::Head if this.state.upgraded.load(Ordering::Acquire) => {
                    // Bytes held as a possible head belong to the upgraded stream.
                    this.out.append(&mut this.head);
                    this.mode = Mode::Passthrough;
                    continue;
                }
                _ => {}
            }
            let mut tmp = [0u8; 8192];
            let mut read = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let filled = read.filled();
                    if filled.is_empty() {
                        // End of stream: pass on any partial head so hyper reports it.
                        this.out.append(&mut this.head);
                        this.mode = Mode::Ended;
                        continue;
                    }
                    let bytes = filled.to_vec();
                    this.process(&bytes);
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
