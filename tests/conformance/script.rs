//! Scripted cases: what the test end sends and what it must see back, written once and run in
//! either role. The test end is a [`RawPeer`]; in the server role it is the client (its frames
//! masked), in the client role the server (unmasked). Every frame the implementation sends is
//! checked against the sender's rules, and events are compared at message level, so an echo
//! may fragment as it likes but must mean exactly the same thing.

use std::time::Duration;

use sockway_tests::frame::{is_valid_close_payload, Event, Frame, Masking, Sender, OP_CLOSE};
use sockway_tests::peer::{PeerError, RawPeer};
use tokio::time::Instant;

/// How long a peer may take to fail the connection once the offending bytes are out, when the
/// rest of the frame is deliberately never sent ("fail fast").
pub const FAST: Duration = Duration::from_millis(2000);

/// How long the test server watches for a client that closes TCP before the server does
/// (RFC 6455 section 7.1.1: the client should wait for the server's FIN).
pub const CLIENT_PATIENCE: Duration = Duration::from_millis(25);

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these frames in one write, each as the test end's role writes it.
    Send(Vec<Frame>),
    /// Send these frames in writes of this many bytes (1: byte by byte).
    SendChopped(Vec<Frame>, usize),
    /// Send the frame's header and only the first `n` bytes of its payload; the rest never
    /// follows (with `n == 0`, only the header, announcing the declared length).
    SendPartialPayload(Frame, usize),
    /// The next event must be exactly this.
    Expect(Event),
    /// The peer closes: its next event is a close frame with this status (`None`: empty
    /// payload), then the TCP connection ends the way the roles require (the server closes
    /// first; the client waits for it). With `within`, the close must come that fast.
    Closed {
        /// The status code expected in the peer's close frame.
        code: Option<u16>,
        /// A tighter deadline than the case's for the close frame.
        within: Option<Duration>,
    },
    /// Client role: the client's close frame with this status, and then the test server
    /// neither replies nor closes TCP; the client must close TCP itself once its close
    /// timeout passes (section 7.1.1 allows it "if it has not received a TCP Close from the
    /// server in a reasonable time period").
    ClosedServerStalls(u16),
    /// Wait a little (lets a peer act on what was sent before the next step).
    Pause(Duration),
    /// Every frame the client sent so far had its own masking key (section 5.3: a fresh,
    /// unpredictable key per frame). Client role only.
    DistinctMaskKeys,
    /// The test end closes TCP without a close frame: the peer must close its side too,
    /// sending nothing more (the closing handshake can no longer happen), and a client
    /// application sees an abnormal closure (1006, section 7.1.5).
    Hangup,
}

/// The peer must close with `code` (after the test end closed, or when it fails).
pub fn closed(code: u16) -> Step {
    Step::Closed {
        code: Some(code),
        within: None,
    }
}

/// The peer must fail the connection with `code` within [`FAST`], before the rest of a frame
/// it has only partly received.
pub fn fails_fast(code: u16) -> Step {
    Step::Closed {
        code: Some(code),
        within: Some(FAST),
    }
}

/// Send a frame.
pub fn send(frame: Frame) -> Step {
    Step::Send(vec![frame])
}

/// Send frames in one write.
pub fn send_all(frames: Vec<Frame>) -> Step {
    Step::Send(frames)
}

/// Send frames one byte per write.
pub fn send_bytewise(frames: Vec<Frame>) -> Step {
    Step::SendChopped(frames, 1)
}

/// Send only a frame's header.
pub fn send_header(frame: Frame) -> Step {
    Step::SendPartialPayload(frame, 0)
}

/// Expect an event.
pub fn expect(event: Event) -> Step {
    Step::Expect(event)
}

/// The orderly ending: the test end closes with 1000 and the peer replies with 1000.
pub fn close_normally() -> Vec<Step> {
    vec![send(Frame::close(1000)), closed(1000)]
}

/// What the client under test must report when a script ends (client role only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEnd {
    /// A clean close handshake started by the test end; the application sees this status.
    Clean(u16),
    /// The client failed the connection with this code.
    Failed(u16),
}

/// What a script run showed.
#[derive(Debug, Default)]
pub struct ScriptReport {
    /// How the client application must have ended (set by the final `Closed` step).
    pub app_end: Option<AppEnd>,
    /// Remarks for the detail column.
    pub notes: Vec<String>,
}

/// Runs `steps` on `peer` until `deadline`.
pub async fn run(
    steps: &[Step],
    peer: &mut RawPeer,
    deadline: Instant,
) -> Result<ScriptReport, String> {
    let me = peer.role();
    let mut report = ScriptReport::default();
    // The close frame the test end sent, if it was a valid one (so the peer must echo it).
    let mut our_close: Option<Option<u16>> = None;
    let mut ended = false;
    for (i, step) in steps.iter().enumerate() {
        let at = |e: String| format!("step {}: {e}", i + 1);
        if ended {
            return Err(at("script continues after the connection ended".into()));
        }
        match step {
            Step::Send(frames) | Step::SendChopped(frames, _) => {
                for frame in frames {
                    if our_close.is_none() && is_valid_close(frame) {
                        our_close = Some(close_code(&frame.payload));
                    }
                }
                if let Step::SendChopped(_, chunk) = step {
                    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode(me)).collect();
                    peer.send_chopped(&bytes, *chunk).await
                } else {
                    peer.send(frames).await
                }
                .map_err(|e| at(format!("sending: {e}")))?;
            }
            Step::SendPartialPayload(frame, n) => {
                let bytes = frame.encode(me);
                let end = (frame.header_len(me) + n).min(bytes.len());
                peer.send_bytes(&bytes[..end])
                    .await
                    .map_err(|e| at(format!("sending: {e}")))?;
            }
            Step::Pause(d) => tokio::time::sleep(*d).await,
            Step::ClosedServerStalls(code) => {
                if me != Sender::Server {
                    return Err(at("ClosedServerStalls is a client-role step".into()));
                }
                match peer.next_event(deadline).await {
                    Ok(Event::Close(Some(c), _)) if c == *code => {}
                    Ok(other) => return Err(at(format!("expected close({code}), got {other}"))),
                    Err(e) => return Err(at(format!("expected close({code}): {e}"))),
                }
                peer.expect_quiet(CLIENT_PATIENCE).await.map_err(|e| {
                    at(format!(
                        "client did not wait for the server's TCP close: {e}"
                    ))
                })?;
                match peer.next_event(deadline).await {
                    Ok(Event::Eof) => {}
                    Ok(other) => return Err(at(format!("expected the TCP close, got {other}"))),
                    Err(e) => {
                        return Err(at(format!(
                            "client never closed TCP while the server stalled: {e}"
                        )))
                    }
                }
                report.app_end = Some(match our_close {
                    Some(Some(c)) if c == *code => AppEnd::Clean(c),
                    _ => AppEnd::Failed(*code),
                });
                ended = true;
            }
            Step::DistinctMaskKeys => {
                let keys = peer.mask_keys();
                let mut unique = keys.to_vec();
                unique.sort_unstable();
                unique.dedup();
                if keys.len() < 2 || unique.len() != keys.len() {
                    return Err(at(format!(
                        "{} masking keys for {} frames: {keys:02x?}",
                        unique.len(),
                        keys.len()
                    )));
                }
            }
            Step::Hangup => {
                peer.shutdown_write()
                    .await
                    .map_err(|e| at(format!("shutting down: {e}")))?;
                match peer.next_event(deadline).await {
                    Ok(Event::Eof) => {}
                    Ok(other) => return Err(at(format!("expected the TCP close, got {other}"))),
                    Err(e) => return Err(at(format!("expected the TCP close: {e}"))),
                }
                report.app_end = Some(AppEnd::Failed(1006));
                ended = true;
            }
            Step::Expect(want) => {
                let got = peer
                    .next_event(deadline)
                    .await
                    .map_err(|e| at(format!("expected {want}: {e}")))?;
                if got != *want {
                    return Err(at(format!("expected {want}, got {got}")));
                }
            }
            Step::Closed { code, within } => {
                let close_deadline = within.map_or(deadline, |w| deadline.min(Instant::now() + w));
                let got = peer.next_event(close_deadline).await.map_err(|e| {
                    let what = describe_close(*code);
                    match (e, within) {
                        (PeerError::Timeout, Some(w)) => {
                            at(format!("expected {what} within {w:?}: nothing came"))
                        }
                        (e, _) => at(format!("expected {what}: {e}")),
                    }
                })?;
                match got {
                    Event::Close(c, _) if c == *code => {}
                    other => {
                        return Err(at(format!(
                            "expected {}, got {other}",
                            describe_close(*code)
                        )))
                    }
                }
                if let Some(n) = peer.unfinished_at_close() {
                    report
                        .notes
                        .push(format!("peer dropped its unfinished echo ({n} B) on close"));
                }
                finish_close(peer, me, our_close.is_none(), *code, deadline)
                    .await
                    .map_err(at)?;
                report.app_end = Some(match our_close {
                    Some(c) if c == *code => AppEnd::Clean(c.unwrap_or(1005)),
                    _ => AppEnd::Failed(code.unwrap_or(1005)),
                });
                ended = true;
            }
        }
    }
    if !ended {
        return Err("script ended without a close".into());
    }
    Ok(report)
}

/// Whether `frame` is a close frame a correct peer must echo (rather than fail on).
fn is_valid_close(frame: &Frame) -> bool {
    frame.opcode == OP_CLOSE
        && frame.fin
        && frame.rsv == 0
        && frame.masking == Masking::Auto
        && frame.declared_len.is_none()
        && is_valid_close_payload(&frame.payload)
}

fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

fn describe_close(code: Option<u16>) -> String {
    match code {
        Some(c) => format!("close({c})"),
        None => "close(no status)".into(),
    }
}

/// After the peer's close frame: in the server role the server must close TCP at once; in the
/// client role the client must wait for the test server, which replies (if it had not sent a
/// close frame) and then closes, after which the client must close too.
async fn finish_close(
    peer: &mut RawPeer,
    me: Sender,
    reply: bool,
    code: Option<u16>,
    deadline: Instant,
) -> Result<(), String> {
    if me == Sender::Server {
        peer.expect_quiet(CLIENT_PATIENCE)
            .await
            .map_err(|e| format!("client did not wait for the server's TCP close: {e}"))?;
        if reply {
            let frame = code.map_or_else(Frame::close_empty, Frame::close);
            // The client may already have stopped reading frames; a failed write is fine.
            let _ = peer.send(&[frame]).await;
        }
        peer.shutdown_write()
            .await
            .map_err(|e| format!("shutting down: {e}"))?;
    }
    match peer.next_event(deadline).await {
        Ok(Event::Eof) => Ok(()),
        Ok(other) => Err(format!("expected the TCP close, got {other}")),
        Err(PeerError::Timeout) => Err(match me {
            Sender::Client => "server did not close the TCP connection".into(),
            Sender::Server => "client did not close the TCP connection after the server".into(),
        }),
        Err(e) => Err(format!("expected the TCP close: {e}")),
    }
}
