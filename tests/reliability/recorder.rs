//! A recording HTTP/1.1 backend for the gateway tests: a raw TCP server on loopback that
//! frames requests itself (head by `httparse`, body by `Content-Length` or its own chunked
//! decoder), keeps every request it receives verbatim, and answers each with
//! `200 recorded <method> <target>`. Judging the gateway by the bytes that reach a backend
//! shows whether anything could be parsed differently there.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The most a request (head and body) may take here.
const MAX_REQUEST: usize = 1024 * 1024;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The head's bytes, up to and including the empty line.
    pub head: Vec<u8>,
    /// The request line's method.
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// Header fields in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Recorded {
    /// All values of header `name` (case-insensitive).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Ways in which this request could be read differently by another parser; empty for a
    /// clean request: CRLF line endings only, no folded lines, an origin-form target, exactly
    /// one `Host`, and at most one framing header (`Content-Length`, or `Transfer-Encoding:
    /// chunked` alone).
    pub fn ambiguities(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (i, &b) in self.head.iter().enumerate() {
            if b == b'\n' && (i == 0 || self.head[i - 1] != b'\r') {
                found.push("a bare LF line ending".to_owned());
                break;
            }
        }
        if self
            .head
            .windows(3)
            .any(|w| w[..2] == *b"\r\n" && matches!(w[2], b' ' | b'\t'))
        {
            found.push("a folded header line".to_owned());
        }
        if !self.target.starts_with('/') {
            found.push(format!("a target not in origin form: {:?}", self.target));
        }
        let hosts = self.all("host");
        if hosts.len() != 1 {
            found.push(format!("{} Host fields: {hosts:?}", hosts.len()));
        }
        let lengths = self.all("content-length");
        let codings = self.all("transfer-encoding");
        if !lengths.is_empty() && !codings.is_empty() {
            found.push("both Content-Length and Transfer-Encoding".to_owned());
        }
        if lengths.len() > 1 {
            found.push(format!("several Content-Length fields: {lengths:?}"));
        }
        if !codings.is_empty() && codings != ["chunked"] {
            found.push(format!("Transfer-Encoding {codings:?}"));
        }
        found
    }
}

/// What the backend saw: complete requests, and anything it could not frame.
#[derive(Debug, Default)]
pub struct Log {
    /// Requests received in full.
    pub requests: Vec<Recorded>,
    /// Connections that ended inside a request, or sent what is not HTTP/1.1: the bytes left.
    pub broken: Vec<String>,
}

/// A running recording backend; stops when dropped.
pub struct Recorder {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Starts a recorder on `127.0.0.1` with an OS-chosen port.
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Recorder { addr, log, task }
    }

    /// The requests received so far whose target is not `exclude` (the health probe's).
    pub fn requests(&self, exclude: &str) -> Vec<Recorded> {
        let log = self.log.lock().expect("log");
        log.requests
            .iter()
            .filter(|r| r.target != exclude)
            .cloned()
            .collect()
    }

    /// What the recorder could not frame.
    pub fn broken(&self) -> Vec<String> {
        self.log.lock().expect("log").broken.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection: frames requests, records them, answers each.
async fn serve(mut stream: TcpStream, log: Arc<Mutex<Log>>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match frame(&buf) {
            Framed::Complete(request, used) => {
                buf.drain(..used);
                let answer = format!("recorded {} {}\n", request.method, request.target);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                log.lock().expect("log").requests.push(request);
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Framed::Invalid(why) => {
                log.lock()
                    .expect("log")
                    .broken
                    .push(format!("{why}: {:?}", String::from_utf8_lossy(&buf)));
                return;
            }
            Framed::Partial if buf.len() > MAX_REQUEST => {
                log.lock()
                    .expect("log")
                    .broken
                    .push("request too large".into());
                return;
            }
            Framed::Partial => {}
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    log.lock().expect("log").broken.push(format!(
                        "connection ended inside a request: {:?}",
                        String::from_utf8_lossy(&buf[..buf.len().min(512)])
                    ));
                }
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The framing of the bytes received so far.
enum Framed {
    /// A whole request, and how many bytes it took.
    Complete(Recorded, usize),
    /// More bytes are needed.
    Partial,
    /// Not HTTP/1.1 as a backend would accept it.
    Invalid(String),
}

fn frame(buf: &[u8]) -> Framed {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Framed::Partial,
        Err(e) => return Framed::Invalid(format!("unparseable head ({e})")),
    };
    let fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect();
    let mut recorded = Recorded {
        head: buf[..head_len].to_vec(),
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        headers: fields,
        body: Vec::new(),
    };
    let rest = &buf[head_len..];
    if recorded
        .all("transfer-encoding")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("chunked"))
    {
        return match dechunk(rest) {
            Ok(Some((body, used))) => {
                recorded.body = body;
                Framed::Complete(recorded, head_len + used)
            }
            Ok(None) => Framed::Partial,
            Err(why) => Framed::Invalid(why),
        };
    }
    let length = match recorded.all("content-length").first() {
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => return Framed::Invalid(format!("Content-Length {v:?}")),
        },
        None => 0,
    };
    if rest.len() < length {
        return Framed::Partial;
    }
    recorded.body = rest[..length].to_vec();
    Framed::Complete(recorded, head_len + length)
}

/// Decodes a chunked body strictly (hex sizes of at most 8 digits, CRLF everywhere); returns
/// the body and the bytes used, or `None` if it is not complete yet.
fn dechunk(mut bytes: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let total = bytes.len();
    let mut body = Vec::new();
    loop {
        let Some(line_end) = bytes.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&bytes[..line_end]).map_err(|_| "chunk size line")?;
        let digits = line.split(';').next().unwrap_or_default().trim();
        if digits.is_empty() || digits.len() > 8 {
            return Err(format!("chunk size {line:?}"));
        }
        let size = usize::from_str_radix(digits, 16).map_err(|_| format!("chunk size {line:?}"))?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                bytes = &bytes[end + 2..];
                if end == 0 {
                    return Ok(Some((body, total - bytes.len())));
                }
            }
        }
        if bytes.len() < size + 2 {
            return Ok(None);
        }
        if &bytes[size..size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}
