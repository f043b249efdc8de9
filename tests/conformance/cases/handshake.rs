//! The server's side of the opening handshake (RFC 6455 section 4.2): a valid request gets
//! `101` with the right `Sec-WebSocket-Accept` and no subprotocol or extension it was not
//! asked for (and did not agree to); a request that is not a valid handshake is refused with
//! the status the RFC and HTTP call for, and the connection does not switch protocols.

use std::net::SocketAddr;

use sockway_tests::frame::{Event, Frame, Sender};
use sockway_tests::http1::{self, Head};
use sockway_tests::peer::RawPeer;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{then_close, Body, Case, Roles};
use crate::script::{self, expect, send};

const SECTION: &str = "handshake";

/// What the server must answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `101` with the accept key for the request's key, none of these headers, and a working
    /// WebSocket afterwards.
    Upgrade {
        /// Headers that must be absent (nothing was negotiated).
        absent: Vec<&'static str>,
    },
    /// A refusal with this status and these header values.
    Refused {
        /// The status code.
        status: u16,
        /// Headers that must be present with these values (case-insensitive compare).
        headers: Vec<(&'static str, &'static str)>,
    },
}

/// A handshake check: a request head (`{host}` and `{key}` are filled in) and the answer.
#[derive(Debug, Clone)]
pub struct Check {
    /// The request head, lines separated by CRLF, without the final blank line.
    pub request: String,
    /// The required answer.
    pub answer: Answer,
    /// Send the request one byte per write.
    pub chopped: bool,
}

fn lines(lines: &[&str]) -> String {
    lines.join("\r\n")
}

fn case(id: &str, description: &str, request: String, answer: Answer) -> Case {
    Case {
        id: format!("{SECTION}.{id}"),
        section: SECTION,
        description: description.to_owned(),
        roles: Roles::Server,
        with_handshake: Vec::new(),
        body: Body::Handshake(Check {
            request,
            answer,
            chopped: false,
        }),
    }
}

const GET: &str = "GET /ws HTTP/1.1";
const HOST: &str = "Host: {host}";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const KEY: &str = "Sec-WebSocket-Key: {key}";
const VERSION: &str = "Sec-WebSocket-Version: 13";

fn upgrade(absent: &[&'static str]) -> Answer {
    Answer::Upgrade {
        absent: absent.to_vec(),
    }
}

fn refused(status: u16, headers: &[(&'static str, &'static str)]) -> Answer {
    Answer::Refused {
        status,
        headers: headers.to_vec(),
    }
}

/// The cases of this section.
pub fn cases() -> Vec<Case> {
    let nothing_negotiated = ["Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"];
    let mut chopped = case(
        "valid.chopped",
        "a valid request sent one byte per write gets 101",
        lines(&[GET, HOST, UPGRADE, CONNECTION, KEY, VERSION]),
        upgrade(&nothing_negotiated),
    );
    if let Body::Handshake(check) = &mut chopped.body {
        check.chopped = true;
    }
    vec![
        chopped,
        case(
            "valid.whitespace",
            "header values with surrounding whitespace are accepted (the key is trimmed)",
            lines(&[
                GET,
                HOST,
                "Upgrade:   websocket  ",
                "Connection:  Upgrade ",
                "Sec-WebSocket-Key:   {key}   ",
                "Sec-WebSocket-Version:  13 ",
            ]),
            upgrade(&nothing_negotiated),
        ),
        case(
            "valid.connection-two-lines",
            "the Upgrade token in a second Connection header line is found",
            lines(&[
                GET,
                HOST,
                UPGRADE,
                "Connection: keep-alive",
                "Connection: Upgrade",
                KEY,
                VERSION,
            ]),
            upgrade(&nothing_negotiated),
        ),
        case(
            "valid",
            "a valid request gets 101 with the right accept key, then echoes",
            lines(&[GET, HOST, UPGRADE, CONNECTION, KEY, VERSION]),
            upgrade(&nothing_negotiated),
        ),
        case(
            "valid.token-lists",
            "Connection as a token list and Upgrade in another case are accepted",
            lines(&[
                GET,
                HOST,
                "Upgrade: WebSocket",
                "Connection: keep-alive, Upgrade",
                KEY,
                VERSION,
            ]),
            upgrade(&nothing_negotiated),
        ),
        case(
            "valid.subprotocol-not-spoken",
            "offered subprotocols the server does not speak: 101 without Sec-WebSocket-Protocol",
            lines(&[
                GET,
                HOST,
                UPGRADE,
                CONNECTION,
                KEY,
                VERSION,
                "Sec-WebSocket-Protocol: chat, superchat",
            ]),
            upgrade(&nothing_negotiated),
        ),
        case(
            "valid.extension-not-enabled",
            "offered extensions (unknown, and deflate while it is off): 101 without \
             Sec-WebSocket-Extensions",
            lines(&[
                GET,
                HOST,
                UPGRADE,
                CONNECTION,
                KEY,
                VERSION,
                "Sec-WebSocket-Extensions: x-sockway-test, permessage-deflate; \
                 client_max_window_bits",
            ]),
            upgrade(&nothing_negotiated),
        ),
        case(
            "missing-key",
            "a request without Sec-WebSocket-Key gets 400",
            lines(&[GET, HOST, UPGRADE, CONNECTION, VERSION]),
            refused(400, &[]),
        ),
        case(
            "bad-key",
            "a Sec-WebSocket-Key that is not 16 bytes in base64 gets 400",
            lines(&[
                GET,
                HOST,
                UPGRADE,
                CONNECTION,
                "Sec-WebSocket-Key: c2hvcnQ=",
                VERSION,
            ]),
            refused(400, &[]),
        ),
        case(
            "duplicate-key",
            "two Sec-WebSocket-Key headers get 400",
            lines(&[GET, HOST, UPGRADE, CONNECTION, KEY, KEY, VERSION]),
            refused(400, &[]),
        ),
        case(
            "bad-version",
            "Sec-WebSocket-Version 8 gets 426 with Sec-WebSocket-Version: 13",
            lines(&[
                GET,
                HOST,
                UPGRADE,
                CONNECTION,
                KEY,
                "Sec-WebSocket-Version: 8",
            ]),
            refused(426, &[("Sec-WebSocket-Version", "13")]),
        ),
        case(
            "post",
            "a POST with the handshake headers gets 405 with Allow: GET",
            lines(&[
                "POST /ws HTTP/1.1",
                HOST,
                UPGRADE,
                CONNECTION,
                KEY,
                VERSION,
                "Content-Length: 0",
            ]),
            refused(405, &[("Allow", "GET")]),
        ),
        case(
            "missing-upgrade",
            "a request without the Upgrade header gets 400",
            lines(&[GET, HOST, CONNECTION, KEY, VERSION]),
            refused(400, &[]),
        ),
        case(
            "missing-connection",
            "a request without Connection: Upgrade gets 400",
            lines(&[GET, HOST, UPGRADE, KEY, VERSION]),
            refused(400, &[]),
        ),
        case(
            "plain-get",
            "a plain GET on the WebSocket endpoint gets 400",
            lines(&[GET, HOST]),
            refused(400, &[]),
        ),
        case(
            "upgrade-other-protocol",
            "Upgrade naming another protocol gets 400",
            lines(&[GET, HOST, "Upgrade: h2c", CONNECTION, KEY, VERSION]),
            refused(400, &[]),
        ),
    ]
}

/// Runs a check against the server at `addr`.
pub async fn run(
    check: &Check,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<Vec<String>, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let key = http1::new_key();
    let request = format!(
        "{}\r\n\r\n",
        check
            .request
            .replace("{host}", &addr.to_string())
            .replace("{key}", &key)
    );
    if check.chopped {
        for byte in request.as_bytes() {
            stream
                .write_all(std::slice::from_ref(byte))
                .await
                .map_err(|e| format!("writing request: {e}"))?;
            tokio::task::yield_now().await;
        }
    } else {
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("writing request: {e}"))?;
    }
    let within = deadline.saturating_duration_since(Instant::now());
    let (head, leftover) = http1::read_head(&mut stream, within).await?;
    match &check.answer {
        Answer::Upgrade { absent } => {
            http1::check_upgrade_response(&head, &key)?;
            check_absent(&head, absent)?;
            let mut peer = RawPeer::new(stream, Sender::Client, leftover);
            let steps = then_close(vec![
                send(Frame::text("after handshake")),
                expect(Event::text("after handshake")),
            ]);
            script::run(&steps, &mut peer, deadline).await?;
            Ok(Vec::new())
        }
        Answer::Refused { status, headers } => {
            if head.status() != Some(*status) {
                return Err(format!("expected {status}, got {:?}", head.start));
            }
            for (name, value) in headers {
                match head.get(name) {
                    Some(v) if v.eq_ignore_ascii_case(value) => {}
                    other => return Err(format!("expected {name}: {value}, got {other:?}")),
                }
            }
            if head.get("Sec-WebSocket-Accept").is_some() {
                return Err("a refusal carries Sec-WebSocket-Accept".into());
            }
            Ok(Vec::new())
        }
    }
}

fn check_absent(head: &Head, absent: &[&str]) -> Result<(), String> {
    match absent.iter().find(|name| head.all(name).next().is_some()) {
        Some(name) => Err(format!("101 carries {name}, which was not negotiated")),
        None => Ok(()),
    }
}
