//! A server's whole message written by the driver itself, ahead of the output queue: when
//! nothing is queued, the frame's header and the message's own bytes can go to the transport
//! in one write, without being copied into the output buffer and advanced past again.
//! uWebSockets likewise writes a message straight to the socket when nothing is corked
//! before it, and buffers only what the socket did not take.

use bytes::Bytes;

use super::{Connection, ConnectionState};
use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::message::MessageKind;

/// The header of a whole message's single final frame that the driver writes itself (see
/// [`Connection::direct_frame`]).
#[derive(Debug, Clone, Copy)]
pub struct DirectFrame {
    header: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl DirectFrame {
    /// The frame header's bytes (RFC 6455 section 5.2): write them, then the payload.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.len)]
    }
}

impl Connection {
    /// The header of the single final frame carrying a whole `kind` message of `len` payload
    /// bytes, when the driver may write that frame itself instead of queueing it with
    /// [`Connection::send`]: the connection is open, nothing waits to be sent (so frames keep
    /// their order), no fragmented message is being sent (section 5.4), this is a server
    /// (its frames are not masked, section 5.1) and permessage-deflate was not negotiated.
    /// The message then counts as sent: write the header and then the payload, and hand
    /// whatever the transport did not take to [`Connection::queue_unwritten`] before any
    /// other send. `None`: queue it with [`Connection::send`].
    #[inline]
    pub fn direct_frame(&self, kind: MessageKind, len: usize) -> Option<DirectFrame> {
        if self.state != ConnectionState::Open || !self.writer.may_write_direct() {
            return None;
        }
        let opcode = OpCode::from(kind);
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: len as u64,
        };
        let mut raw = [0u8; MAX_HEADER_LEN];
        let header_len = header.encode(&mut raw);
        Some(DirectFrame {
            header: raw,
            len: header_len as u8,
        })
    }

    /// Queues the rest of a frame the driver began writing itself ([`Connection::direct_frame`]
    /// for `payload`), of which the first `written` bytes went out: it is sent before
    /// anything queued after it.
    pub fn queue_unwritten(&mut self, frame: &DirectFrame, payload: &Bytes, written: usize) {
        self.writer
            .queue_unwritten(frame.header(), payload, written);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::{Config, Connection, Event, Message, MessageKind, Role};

    fn server() -> Connection {
        let mut conn = Connection::new(Role::Server, Config::default());
        conn.set_vectored_output(true);
        conn
    }

    /// What a client receives of `bytes`, as messages.
    fn received(bytes: &[u8]) -> Vec<Message> {
        let mut client = Connection::new(Role::Client, Config::default());
        let mut input = bytes::BytesMut::from(bytes);
        let mut messages = Vec::new();
        while let Ok(Some(event)) =
            client.read_event(&mut input, crate::connection::Delivery::Messages)
        {
            if let Event::Message(message) = event {
                messages.push(message);
            }
        }
        messages
    }

    fn queued(conn: &mut Connection) -> Vec<u8> {
        let mut all = Vec::new();
        while conn.has_output() {
            let run = conn.output().to_vec();
            conn.advance_output(run.len());
            all.extend_from_slice(&run);
        }
        all
    }

    #[test]
    fn the_header_is_the_one_send_would_queue() {
        for len in [0, 20, 125, 126, 65_535, 65_536] {
            let payload = Bytes::from(vec![7u8; len]);
            let mut queued_conn = server();
            queued_conn.send(&Message::binary(payload.clone())).unwrap();
            let expected = queued(&mut queued_conn);
            let frame = server().direct_frame(MessageKind::Binary, len).unwrap();
            let mut direct = frame.header().to_vec();
            direct.extend_from_slice(&payload);
            assert_eq!(direct, expected, "payload of {len} bytes");
        }
    }

    #[test]
    fn an_unwritten_rest_is_queued_whole_and_in_order() {
        for len in [20usize, 5000] {
            let payload = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
            let frame = server().direct_frame(MessageKind::Binary, len).unwrap();
            let mut wire = frame.header().to_vec();
            wire.extend_from_slice(&payload);
            for written in [0, 1, frame.header().len(), frame.header().len() + 7] {
                let mut conn = server();
                conn.queue_unwritten(&frame, &payload, written);
                conn.send_text("after").unwrap();
                let mut got = wire[..written].to_vec();
                got.extend_from_slice(&queued(&mut conn));
                let messages = received(&got);
                assert_eq!(messages.len(), 2, "{len} bytes, {written} written");
                assert_eq!(messages[0].as_bytes(), &payload[..]);
                assert_eq!(messages[1].as_bytes(), b"after");
            }
        }
    }

    #[test]
    fn refused_when_order_or_the_protocol_needs_the_queue() {
        let mut busy = server();
        busy.send_text("queued").unwrap();
        assert!(busy.direct_frame(MessageKind::Text, 3).is_none());

        let mut fragmenting = server();
        fragmenting
            .send_fragment(MessageKind::Text, b"part", false)
            .unwrap();
        let _ = queued(&mut fragmenting);
        assert!(fragmenting.direct_frame(MessageKind::Text, 3).is_none());

        let mut closed = server();
        closed.close(crate::CloseCode::NORMAL, "").unwrap();
        let _ = queued(&mut closed);
        assert!(closed.direct_frame(MessageKind::Text, 3).is_none());

        let client = Connection::new(Role::Client, Config::default());
        assert!(client.direct_frame(MessageKind::Text, 3).is_none());
    }
}
