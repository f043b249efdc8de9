//! A data message framed once and sent to many connections: publish/subscribe fan-out.
//!
//! A server's frames are never masked (RFC 6455 section 5.1), so one message sent to a
//! thousand clients is a thousand copies of the same bytes: header and payload. A
//! [`PreparedFrame`] is those bytes, encoded once; [`Connection::send_prepared`] queues them
//! as they are. uWebSockets' `publish` does the same (its topic tree formats the frame once
//! per publish and writes the bytes to each subscriber).
//!
//! With permessage-deflate (RFC 7692), a compressed frame can be shared only by connections
//! whose compressor starts every message afresh (`server_no_context_takeover`, section
//! 7.1.1.1): with context takeover, each connection's compressor and its peer's inflater keep
//! a window of that connection's own earlier messages, which a shared frame would put out of
//! step. So a prepared frame is compressed at most once, when it is first sent to such a
//! connection, and that form goes to every such connection whose agreed window is at least
//! the one it was compressed with (as uWebSockets' shared compressor publishes); every other
//! connection gets the uncompressed frame, which section 6 allows whatever was negotiated.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::write::Compression;
use super::Connection;
use crate::deflate::{Compressor, DeflateParams};
use crate::error::SendError;
use crate::frame::{encode_whole_frame, RSV1};
use crate::message::{Message, MessageKind};
use crate::Role;

/// A whole data message encoded once as one final, unmasked, uncompressed frame (RFC 6455
/// section 5.2), cheap to clone (the bytes are shared), for sending to many connections with
/// [`Connection::send_prepared`]. With permessage-deflate it is compressed once more, on its
/// first send to a connection whose compressor resets per message (`server_no_context_takeover`,
/// RFC 7692 section 7.1.1.1), and that form goes to every such connection whose agreed window
/// is at least the one it was compressed for; with context takeover a shared compressed frame
/// would put the connection's windows out of step, so the others get the uncompressed frame
/// (section 6 allows it).
#[derive(Debug, Clone)]
pub struct PreparedFrame {
    kind: MessageKind,
    /// Header and payload.
    frame: Bytes,
    /// Where the payload starts in `frame`.
    header_len: u8,
    /// The compressed frame, made on first need; `None` inside when compression would not
    /// make it smaller.
    deflated: Arc<OnceLock<Option<Deflated>>>,
}

/// A prepared message compressed without context (RFC 7692 section 7.2.1) and framed with
/// RSV1 set.
#[derive(Debug)]
struct Deflated {
    /// The window it was compressed for: valid for a connection that agreed to at least this.
    window_bits: u8,
    frame: Bytes,
}

impl PartialEq for PreparedFrame {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.frame == other.frame
    }
}

impl Eq for PreparedFrame {}

impl PreparedFrame {
    /// Frames `message` (text stays text, binary stays binary).
    pub fn new(message: &Message) -> Self {
        let payload: &[u8] = match message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        };
        Self::encode(message.kind(), payload)
    }

    /// Frames a text message.
    pub fn text(text: &str) -> Self {
        Self::encode(MessageKind::Text, text.as_bytes())
    }

    /// Frames a binary message.
    pub fn binary(data: &[u8]) -> Self {
        Self::encode(MessageKind::Binary, data)
    }

    fn encode(kind: MessageKind, payload: &[u8]) -> Self {
        let (frame, header_len) = server_frame(kind, 0, payload);
        Self {
            kind,
            frame,
            header_len,
            deflated: Arc::default(),
        }
    }

    /// The compressed frame for a connection that agreed to `params`, if it can share one
    /// and compression makes this message smaller. The first such connection's window and
    /// level compress it.
    fn deflated_for(&self, params: DeflateParams) -> Option<&Bytes> {
        if !params.local_no_context_takeover {
            return None;
        }
        let deflated = self.deflated.get_or_init(|| {
            let mut compressed = Vec::with_capacity(self.payload().len() / 2 + 16);
            Compressor::new(params.local_max_window_bits, true)
                .with_level(params.local_compression_level)
                .compress(self.payload(), true, &mut compressed);
            let (frame, _) = server_frame(self.kind, RSV1, &compressed);
            (frame.len() < self.frame.len()).then_some(Deflated {
                window_bits: params.local_max_window_bits,
                frame,
            })
        });
        deflated
            .as_ref()
            .filter(|d| d.window_bits <= params.local_max_window_bits)
            .map(|d| &d.frame)
    }

    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The whole frame as it goes on the wire from a server.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The message's payload.
    pub fn payload(&self) -> &[u8] {
        &self.frame[usize::from(self.header_len)..]
    }

    /// Bytes of the whole frame.
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// Always false: a frame has at least its two header bytes.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }
}

/// A final, unmasked data frame of `kind` around `payload`, with these RSV bits, and the
/// length of its header (at most 14 bytes, RFC 6455 section 5.2).
fn server_frame(kind: MessageKind, rsv: u8, payload: &[u8]) -> (Bytes, u8) {
    let (frame, header_len) = encode_whole_frame(kind.into(), rsv, payload, None);
    (Bytes::from(frame), header_len as u8)
}

impl Connection {
    /// Queues a prepared message: a server queues its frame's bytes as they are (shared, not
    /// copied, when large and the output is vectored; see
    /// [`Connection::set_vectored_output`]): the compressed form when this connection agreed
    /// to permessage-deflate without context takeover and the form fits its window, the
    /// uncompressed frame otherwise (RFC 7692 section 6; see [`PreparedFrame`]). A client
    /// must mask every frame with a fresh key (RFC 6455 section 5.3), so in that role the
    /// payload is framed anew, as [`Connection::send`] would. The same rules as
    /// [`Connection::send`] apply: the connection must be open and no fragmented message in
    /// progress (section 5.4).
    pub fn send_prepared(&mut self, prepared: &PreparedFrame) -> Result<(), SendError> {
        if self.state != super::ConnectionState::Open {
            return Err(SendError::Closed);
        }
        if self.writer.in_message() {
            return Err(SendError::MessageInProgress);
        }
        if self.role == Role::Server {
            let frame = self
                .writer
                .compression()
                .and_then(|params| prepared.deflated_for(params))
                .unwrap_or(&prepared.frame);
            self.writer.push_encoded(frame);
            return Ok(());
        }
        let message = match prepared.kind {
            MessageKind::Text => Message::Text(crate::message::TextBytes::from_validated(
                prepared.frame.slice(usize::from(prepared.header_len)..),
            )),
            MessageKind::Binary => {
                Message::Binary(prepared.frame.slice(usize::from(prepared.header_len)..))
            }
        };
        self.send_with(&message, Compression::Disabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::connection::{Delivery, Event};
    use bytes::BytesMut;

    /// Feeds everything `from` has queued to `to` and returns the events.
    fn relay(from: &mut Connection, to: &mut Connection) -> Vec<Event> {
        let mut input = from.take_output();
        let mut events = Vec::new();
        while let Some(event) = to.read_event(&mut input, Delivery::Messages).unwrap() {
            events.push(event);
        }
        events
    }

    #[test]
    fn a_prepared_frame_is_the_same_bytes_as_a_sent_message() {
        for payload in [0usize, 20, 125, 126, 70_000] {
            let message = Message::binary(vec![7u8; payload]);
            let mut sent = Connection::new(Role::Server, Config::default());
            sent.send(&message).unwrap();
            let mut prepared = Connection::new(Role::Server, Config::default());
            prepared
                .send_prepared(&PreparedFrame::new(&message))
                .unwrap();
            assert_eq!(
                prepared.take_output(),
                sent.take_output(),
                "payload {payload}"
            );
        }
    }

    #[test]
    fn large_prepared_frames_are_shared_when_the_output_is_vectored() {
        let prepared = PreparedFrame::binary(&[1u8; 16 * 1024]);
        let mut server = Connection::new(Role::Server, Config::default());
        server.set_vectored_output(true);
        server.send_text("before").unwrap();
        server.send_prepared(&prepared).unwrap();
        server.send_text("after").unwrap();
        assert_eq!(server.output_len(), 8 + prepared.len() + 7);
        let mut client = Connection::new(Role::Client, Config::default());
        let events = relay(&mut server, &mut client);
        assert_eq!(
            events,
            vec![
                Event::Message(Message::text("before")),
                Event::Message(Message::binary(vec![1u8; 16 * 1024])),
                Event::Message(Message::text("after")),
            ]
        );
    }

    #[test]
    fn own_output_copies_shared_runs_into_one() {
        let prepared = PreparedFrame::binary(&[3u8; 8 * 1024]);
        let mut server = Connection::new(Role::Server, Config::default());
        server.set_vectored_output(true);
        server.send_prepared(&prepared).unwrap();
        server.send_text("tail").unwrap();
        assert!(server.output().len() < server.output_len());
        server.own_output();
        assert_eq!(server.output().len(), server.output_len());
        assert_ne!(server.output().as_ptr(), prepared.frame().as_ptr());
        let mut client = Connection::new(Role::Client, Config::default());
        let events = relay(&mut server, &mut client);
        assert_eq!(
            events,
            vec![
                Event::Message(Message::binary(vec![3u8; 8 * 1024])),
                Event::Message(Message::text("tail")),
            ]
        );
    }

    #[test]
    fn a_client_masks_a_prepared_message_afresh() {
        let prepared = PreparedFrame::text("hello");
        let mut client = Connection::new(Role::Client, Config::default());
        client.send_prepared(&prepared).unwrap();
        assert_ne!(client.output(), &prepared.frame()[..]);
        let mut server = Connection::new(Role::Server, Config::default());
        let events = relay(&mut client, &mut server);
        assert_eq!(events, vec![Event::Message(Message::text("hello"))]);
    }

    #[test]
    fn refused_when_closing_or_inside_a_fragmented_message() {
        let prepared = PreparedFrame::text("x");
        let mut server = Connection::new(Role::Server, Config::default());
        server
            .send_fragment(MessageKind::Binary, b"part", false)
            .unwrap();
        assert_eq!(
            server.send_prepared(&prepared),
            Err(SendError::MessageInProgress)
        );
        server
            .send_fragment(MessageKind::Binary, b"", true)
            .unwrap();
        server.send_prepared(&prepared).unwrap();
        server.close(crate::CloseCode::NORMAL, "").unwrap();
        assert_eq!(server.send_prepared(&prepared), Err(SendError::Closed));
    }

    /// A server that agreed to permessage-deflate with `window` bits, with or without
    /// context takeover on its side, and the client at its other end.
    fn deflating_pair(window: u8, reset: bool) -> (Connection, Connection) {
        let server = DeflateParams {
            local_max_window_bits: window,
            local_no_context_takeover: reset,
            remote_no_context_takeover: false,
            local_compression_level: 1,
        };
        let client = DeflateParams {
            local_max_window_bits: 15,
            local_no_context_takeover: false,
            remote_no_context_takeover: reset,
            local_compression_level: 1,
        };
        let mut server = Connection::with_deflate(Role::Server, Config::default(), server);
        server.set_vectored_output(true);
        let client = Connection::with_deflate(Role::Client, Config::default(), client);
        (server, client)
    }

    /// What `server` queued, taken.
    fn queued(server: &mut Connection) -> Vec<u8> {
        server.take_output().to_vec()
    }

    #[test]
    fn connections_without_context_takeover_share_one_compressed_frame() {
        let text = "{\"room\":\"lobby\",\"says\":\"hello\"},".repeat(100);
        let prepared = PreparedFrame::text(&text);
        let (mut first, mut first_client) = deflating_pair(15, true);
        let (mut second, mut second_client) = deflating_pair(15, true);
        first.send_prepared(&prepared).unwrap();
        second.send_prepared(&prepared).unwrap();
        let (a, b) = (queued(&mut first), queued(&mut second));
        assert_eq!(a, b);
        assert_eq!(a[0], 0x80 | RSV1 << 4 | 0x1, "final, RSV1, text");
        assert!(
            a.len() < prepared.len() / 4,
            "{} of {}",
            a.len(),
            prepared.len()
        );
        // Each client inflates it; the connections' own messages before and after it, with
        // their compressor, stay readable.
        for (server, client) in [
            (&mut first, &mut first_client),
            (&mut second, &mut second_client),
        ] {
            server.send_text(&text).unwrap();
            server.send_prepared(&prepared).unwrap();
            server.send_text("after").unwrap();
            let mut input = BytesMut::from(&a[..]);
            input.extend_from_slice(&server.take_output());
            let mut events = Vec::new();
            while let Some(event) = client.read_event(&mut input, Delivery::Messages).unwrap() {
                events.push(event);
            }
            let text = Event::Message(Message::text(text.clone()));
            let after = Event::Message(Message::text("after"));
            assert_eq!(events, vec![text.clone(), text.clone(), text, after]);
        }
    }

    #[test]
    fn others_get_the_uncompressed_frame() {
        let text = "abc".repeat(1_000);
        let prepared = PreparedFrame::text(&text);
        // With context takeover: the shared frame would put its window out of step.
        let (mut keeps_context, _) = deflating_pair(15, false);
        keeps_context.send_prepared(&prepared).unwrap();
        assert_eq!(queued(&mut keeps_context), prepared.frame()[..]);
        // Compressed for a 15-bit window first: too wide for a connection that agreed to 10.
        let (mut wide, _) = deflating_pair(15, true);
        let (mut narrow, _) = deflating_pair(10, true);
        wide.send_prepared(&prepared).unwrap();
        narrow.send_prepared(&prepared).unwrap();
        assert!(queued(&mut wide).len() < prepared.len());
        assert_eq!(queued(&mut narrow), prepared.frame()[..]);
        // Compressed for 10 bits first: valid for 15 too.
        let prepared = PreparedFrame::text(&text);
        let (mut narrow, _) = deflating_pair(10, true);
        let (mut wide, _) = deflating_pair(15, true);
        narrow.send_prepared(&prepared).unwrap();
        wide.send_prepared(&prepared).unwrap();
        assert_eq!(queued(&mut narrow), queued(&mut wide));
        // A message compression would not shrink goes out as it is.
        let mut state = 0x9E37_79B9u32;
        let noise: Vec<u8> = (0..4_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let prepared = PreparedFrame::binary(&noise);
        let (mut server, _) = deflating_pair(15, true);
        server.send_prepared(&prepared).unwrap();
        assert_eq!(queued(&mut server), prepared.frame()[..]);
    }
}
