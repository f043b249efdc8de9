//! A data message framed once and sent to many connections: publish/subscribe fan-out.
//!
//! A server's frames are never masked (RFC 6455 section 5.1), so one message sent to a
//! thousand clients is a thousand copies of the same bytes: header and payload. A
//! [`PreparedFrame`] is those bytes, encoded once; [`Connection::send_prepared`] queues them
//! as they are. uWebSockets' `publish` does the same (its topic tree formats the frame once
//! per publish and writes the bytes to each subscriber).
//!
//! The frame is uncompressed: permessage-deflate keeps a compression context per
//! connection, so a compressed frame cannot be shared, and RFC 7692 section 6 lets an
//! endpoint send any message uncompressed (RSV1 clear) even when the extension was
//! negotiated.

use bytes::{Bytes, BytesMut};

use super::write::Compression;
use super::Connection;
use crate::error::SendError;
use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::message::{Message, MessageKind};
use crate::Role;

/// A whole data message encoded once as one final, unmasked, uncompressed frame (RFC 6455
/// section 5.2), cheap to clone (the bytes are shared), for sending to many connections with
/// [`Connection::send_prepared`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedFrame {
    kind: MessageKind,
    /// Header and payload.
    frame: Bytes,
    /// Where the payload starts in `frame`.
    header_len: u8,
}

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
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: match kind {
                MessageKind::Text => OpCode::Text,
                MessageKind::Binary => OpCode::Binary,
            },
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut raw = [0u8; MAX_HEADER_LEN];
        let header_len = header.encode(&mut raw);
        let mut frame = BytesMut::with_capacity(header_len + payload.len());
        frame.extend_from_slice(&raw[..header_len]);
        frame.extend_from_slice(payload);
        Self {
            kind,
            frame: frame.freeze(),
            // A header is at most 14 bytes (section 5.2).
            header_len: header_len as u8,
        }
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

impl Connection {
    /// Queues a prepared message: a server queues its frame's bytes as they are (shared, not
    /// copied, when large and the output is vectored; see
    /// [`Connection::set_vectored_output`]), uncompressed even when permessage-deflate was
    /// negotiated (RFC 7692 section 6). A client must mask every frame with a fresh key
    /// (RFC 6455 section 5.3), so in that role the payload is framed anew, as
    /// [`Connection::send`] would. The same rules as [`Connection::send`] apply: the
    /// connection must be open and no fragmented message in progress (section 5.4).
    pub fn send_prepared(&mut self, prepared: &PreparedFrame) -> Result<(), SendError> {
        if self.state != super::ConnectionState::Open {
            return Err(SendError::Closed);
        }
        if self.writer.in_message() {
            return Err(SendError::MessageInProgress);
        }
        if self.role == Role::Server {
            self.writer.push_encoded(&prepared.frame);
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
}
