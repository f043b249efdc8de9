//! Negative controls for the harness itself: deliberately broken peers that the script runner
//! must fail, so that a green suite means the checks bite. Each control runs a script against
//! a small hand-written misbehaving server (or client) and passes only when the runner reports
//! the expected problem.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use sockway_tests::frame::{Event, Frame, FrameReader, Sender, OP_CLOSE, OP_TEXT};
use sockway_tests::http1;
use sockway_tests::peer::RawPeer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::script::{self, closed, expect, fails_fast, send, Step};

/// How a broken server misbehaves after the handshake.
#[derive(Debug, Clone, Copy)]
enum Flaw {
    /// Echoes text with its first byte changed.
    CorruptEcho,
    /// Masks the frames it sends.
    MasksFrames,
    /// Uses the 16-bit length form for short payloads.
    NonMinimalLength,
    /// Echoes text frames as text with an invalid UTF-8 byte appended.
    InvalidUtf8Echo,
    /// Answers every close with 1000, whatever was sent.
    AlwaysCloses1000,
    /// Replies to a close frame but never closes TCP.
    KeepsTcpOpen,
    /// Sends a text frame after its close reply.
    DataAfterClose,
    /// Never reacts to anything.
    Silent,
}

/// A negative control.
#[derive(Debug)]
pub struct Control {
    /// The id of the row in the report.
    pub id: &'static str,
    /// What must be caught.
    pub description: &'static str,
    flaw: Option<Flaw>,
    steps: Vec<Step>,
    /// A phrase the runner's error must contain.
    must_report: &'static str,
}

/// The controls.
pub fn controls() -> Vec<Control> {
    let echo_hello = || {
        vec![
            send(Frame::text("hello")),
            expect(Event::text("hello")),
            send(Frame::close(1000)),
            closed(1000),
        ]
    };
    let control = |id, description, flaw, steps, must_report| Control {
        id,
        description,
        flaw,
        steps,
        must_report,
    };
    vec![
        control(
            "selftest.corrupt-echo",
            "a wrong echo is caught",
            Some(Flaw::CorruptEcho),
            echo_hello(),
            "expected text",
        ),
        control(
            "selftest.masked-server",
            "a server that masks is caught",
            Some(Flaw::MasksFrames),
            echo_hello(),
            "server frame is masked",
        ),
        control(
            "selftest.non-minimal-length",
            "a non-minimal length encoding is caught",
            Some(Flaw::NonMinimalLength),
            echo_hello(),
            "not minimally encoded",
        ),
        control(
            "selftest.invalid-utf8-echo",
            "invalid UTF-8 sent by the peer is caught",
            Some(Flaw::InvalidUtf8Echo),
            echo_hello(),
            "not UTF-8",
        ),
        control(
            "selftest.wrong-close-code",
            "a wrong close code is caught",
            Some(Flaw::AlwaysCloses1000),
            vec![send(Frame::close(1003)), closed(1003)],
            "expected close(1003), got close(1000)",
        ),
        control(
            "selftest.tcp-left-open",
            "a server that does not close TCP after the close handshake is caught",
            Some(Flaw::KeepsTcpOpen),
            vec![send(Frame::close(1000)), closed(1000)],
            "did not close the TCP connection",
        ),
        control(
            "selftest.data-after-close",
            "a frame after the close frame is caught",
            Some(Flaw::DataAfterClose),
            vec![send(Frame::close(1000)), closed(1000)],
            "after the close frame",
        ),
        control(
            "selftest.not-fast",
            "a peer that does not fail before the rest of the frame is caught",
            Some(Flaw::Silent),
            vec![
                Step::SendPartialPayload(Frame::text(vec![0xC0; 10]), 1),
                fails_fast(1007),
            ],
            "nothing came",
        ),
        control(
            "selftest.client-closes-first",
            "a client that closes TCP before the server is caught",
            None,
            vec![send(Frame::close(1000)), closed(1000)],
            "did not wait for the server",
        ),
    ]
}

/// Runs a control: `Ok` when the runner caught the flaw as expected.
pub async fn run(control: &Control) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + Duration::from_millis(1500);
    let outcome = match control.flaw {
        Some(flaw) => {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let server = tokio::spawn(broken_server(listener, flaw));
            let result = async {
                let (stream, leftover) = http1::connect(addr, "/ws", &[]).await?;
                let mut peer = RawPeer::new(stream, Sender::Client, leftover);
                script::run(&control.steps, &mut peer, deadline).await
            }
            .await;
            server.abort();
            result
        }
        None => {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let client = tokio::spawn(impatient_client(addr));
            let result = async {
                let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
                let (_, leftover) = http1::accept(&mut stream, &[]).await?;
                let mut peer = RawPeer::new(stream, Sender::Server, leftover);
                script::run(&control.steps, &mut peer, deadline).await
            }
            .await;
            client.abort();
            result
        }
    };
    match outcome {
        Ok(_) => Err("the broken peer passed: the harness missed the flaw".into()),
        Err(e) if e.contains(control.must_report) => Ok(vec![format!("caught: {e}")]),
        Err(e) => Err(format!(
            "caught something else than {:?}: {e}",
            control.must_report
        )),
    }
}

/// Accepts one connection, answers the handshake, and then misbehaves as told.
async fn broken_server(listener: TcpListener, flaw: Flaw) -> Result<(), String> {
    let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let (_, mut buf) = http1::accept(&mut stream, &[]).await?;
    let reader = FrameReader {
        sender: Sender::Client,
    };
    loop {
        while let Some(frame) = reader.next_frame(&mut buf)? {
            if let Flaw::Silent = flaw {
                continue;
            }
            let mut out = Vec::new();
            match (frame.opcode, flaw) {
                (OP_TEXT, Flaw::CorruptEcho) => {
                    let mut payload = frame.payload.clone();
                    payload[0] ^= 0x20;
                    out = Frame::text(payload).encode(Sender::Server);
                }
                (OP_TEXT, Flaw::MasksFrames) => {
                    out = Frame::text(frame.payload).encode(Sender::Client)
                }
                (OP_TEXT, Flaw::NonMinimalLength) => {
                    out = vec![0x81, 126, 0, frame.payload.len() as u8];
                    out.extend_from_slice(&frame.payload);
                }
                (OP_TEXT, Flaw::InvalidUtf8Echo) => {
                    let mut payload = frame.payload.clone();
                    payload.push(0xFF);
                    out = Frame::text(payload).encode(Sender::Server);
                }
                (OP_TEXT, _) => out = Frame::text(frame.payload).encode(Sender::Server),
                (OP_CLOSE, Flaw::AlwaysCloses1000 | Flaw::KeepsTcpOpen) => {
                    out = Frame::close(1000).encode(Sender::Server);
                }
                (OP_CLOSE, Flaw::DataAfterClose) => {
                    out = Frame::close(1000).encode(Sender::Server);
                    out.extend(Frame::text("late").encode(Sender::Server));
                }
                (OP_CLOSE, _) => {
                    let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                    out = Frame::close(code).encode(Sender::Server);
                    stream.write_all(&out).await.map_err(|e| e.to_string())?;
                    let _ = stream.shutdown().await;
                    out.clear();
                }
                _ => {}
            }
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
        }
        buf.reserve(4096);
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            // Keep the connection open (the flaws never close first).
            tokio::time::sleep(Duration::from_secs(10)).await;
            return Ok(());
        }
    }
}

/// A client that answers the server's close frame and closes TCP at once, without waiting for
/// the server's FIN (RFC 6455 section 7.1.1 asks it to wait).
async fn impatient_client(addr: SocketAddr) -> Result<(), String> {
    let (mut stream, mut buf): (TcpStream, BytesMut) = http1::connect(addr, "/ws", &[]).await?;
    let reader = FrameReader {
        sender: Sender::Server,
    };
    loop {
        if let Some(frame) = reader.next_frame(&mut buf)? {
            if frame.opcode == OP_CLOSE {
                let reply = Frame::raw(OP_CLOSE, frame.payload).encode(Sender::Client);
                stream.write_all(&reply).await.map_err(|e| e.to_string())?;
                drop(stream);
                return Ok(());
            }
            continue;
        }
        buf.reserve(4096);
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Ok(());
        }
    }
}
