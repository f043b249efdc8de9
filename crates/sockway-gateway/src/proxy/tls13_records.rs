//! A client's TLS 1.3 session after its handshake, as records (RFC 8446 section 5): the
//! relay decrypts what the client sends and encrypts what goes to it without rustls'
//! buffers, which copy each record's bytes three more times on the way in and once more on
//! the way out (`docs/benchmarks/gateway-3.md`, relay change 17). rustls did the handshake
//! and hands over the keys ([`TrafficKeys`]); this is the rest of the protocol a server sees
//! afterwards: application data, alerts, and the client's key updates (section 4.6.3).

use std::io;

use super::tls13_keys::{TrafficKeys, TAG_LEN};

/// `application_data`, the outer type of every protected record, and the inner type of
/// the relay's bytes (RFC 8446 section 5.1).
const APPLICATION_DATA: u8 = 23;
/// `alert` (RFC 8446 section 6).
const ALERT: u8 = 21;
/// `handshake`: after the handshake, only key updates may come from a client.
const HANDSHAKE: u8 = 22;
/// The handshake type `key_update` (RFC 8446 section 4.6.3).
const KEY_UPDATE: u8 = 24;
/// Most plaintext one record carries (RFC 8446 section 5.1).
const MAX_PLAIN: usize = 1 << 14;
/// Most bytes of a record's protected part (RFC 8446 section 5.2).
const MAX_CIPHER: usize = MAX_PLAIN + 256;
/// Records sealed with one key before the relay updates it: RFC 8446 section 5.5 allows
/// AES-GCM 2^24.5 full-size records per key; rustls updates its keys before that too.
const RECORDS_PER_KEY: u64 = 1 << 24;
/// Most bytes of handshake messages held across records (two key updates' worth; nothing
/// longer may come from a client after the handshake).
const MAX_HANDSHAKE_HELD: usize = 10;

/// The alerts the relay ends a session with (RFC 8446 section 6.2).
const UNEXPECTED_MESSAGE: u8 = 10;
const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const ILLEGAL_PARAMETER: u8 = 47;
const DECODE_ERROR: u8 = 50;
const INTERNAL_ERROR: u8 = 80;

/// What a client's bytes came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Opened {
    /// Plaintext, possibly none (a record not complete yet, or one of TLS's own).
    Data,
    /// The client sent `close_notify` (RFC 8446 section 6.1): it sends nothing more.
    Closed,
}

/// A client's session after the handshake: both directions' keys and the state of the
/// record being read.
pub(super) struct Records {
    rx: TrafficKeys,
    tx: TrafficKeys,
    /// The header of the record being read, and how much of it has come.
    header: [u8; 5],
    header_len: usize,
    /// The protected part of the record being read, when it came in more than one piece.
    body: Vec<u8>,
    /// Handshake bytes of a message that continues in the next record.
    handshake: Vec<u8>,
    /// Records of TLS's own to send before the next application data (a key update).
    replies: Vec<u8>,
    /// The client closed, or its bytes broke the session: nothing more is read.
    done: bool,
    /// The alert that ends a session the client's bytes broke.
    alert: Option<u8>,
}

impl Records {
    /// A session whose keys were taken over from rustls.
    pub(super) fn new(rx: TrafficKeys, tx: TrafficKeys) -> Self {
        Self {
            rx,
            tx,
            header: [0; 5],
            header_len: 0,
            body: Vec::new(),
            handshake: Vec::new(),
            replies: Vec::new(),
            done: false,
            alert: None,
        }
    }

    /// Decrypts `cipher`, received from the client, appending its plaintext to `plain`. An
    /// error is the client's (a record that does not authenticate, an alert, a message a
    /// client may not send): the session cannot go on.
    pub(super) fn open(&mut self, mut cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<Opened> {
        while !cipher.is_empty() {
            if self.done {
                return Ok(Opened::Closed);
            }
            if self.header_len < 5 {
                let n = (5 - self.header_len).min(cipher.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&cipher[..n]);
                self.header_len += n;
                cipher = &cipher[n..];
                if self.header_len < 5 {
                    break;
                }
                self.check_header()?;
            }
            let len = self.body_len();
            if self.body.is_empty() && cipher.len() >= len {
                // The whole record is here: decrypted where the plaintext goes.
                let start = plain.len();
                plain.extend_from_slice(&cipher[..len]);
                cipher = &cipher[len..];
                let opened = self.record(plain, start);
                if opened? == Opened::Closed {
                    return Ok(Opened::Closed);
                }
                continue;
            }
            let n = (len - self.body.len()).min(cipher.len());
            self.body.extend_from_slice(&cipher[..n]);
            cipher = &cipher[n..];
            if self.body.len() < len {
                break;
            }
            let opened = if plain.is_empty() {
                // The record's own buffer becomes the plaintext's: no copy.
                std::mem::swap(plain, &mut self.body);
                self.record(plain, 0)
            } else {
                let start = plain.len();
                plain.extend_from_slice(&self.body);
                self.body.clear();
                self.record(plain, start)
            };
            if opened? == Opened::Closed {
                return Ok(Opened::Closed);
            }
        }
        if self.body.is_empty() && self.body.capacity() > 0 {
            // The client's bytes end at a record boundary: an idle session keeps no buffer.
            self.body = Vec::new();
        }
        Ok(if self.done {
            Opened::Closed
        } else {
            Opened::Data
        })
    }

    /// The length of the protected part the header announces.
    fn body_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]))
    }

    /// A protected record's header: `application_data`, TLS 1.2's version number, a length
    /// between a tag and the limit (RFC 8446 section 5.2).
    fn check_header(&mut self) -> io::Result<()> {
        let len = self.body_len();
        if self.header[0] != APPLICATION_DATA {
            return Err(self.fail(
                UNEXPECTED_MESSAGE,
                "a record after the handshake that is not protected",
            ));
        }
        if len > MAX_CIPHER || len <= TAG_LEN {
            return Err(self.fail(
                RECORD_OVERFLOW,
                "a record of a length TLS 1.3 does not allow",
            ));
        }
        Ok(())
    }

    /// Decrypts the complete record `plain[start..]` in place and leaves there its
    /// application data (none for TLS's own content, which is handled).
    fn record(&mut self, plain: &mut Vec<u8>, start: usize) -> io::Result<Opened> {
        let header = self.header;
        self.header_len = 0;
        let Ok(inner) = self.rx.open(header, &mut plain[start..]) else {
            plain.truncate(start);
            return Err(self.fail(BAD_RECORD_MAC, "a record that does not authenticate"));
        };
        // The content type is the last byte that is not zero padding (section 5.2).
        let content = &plain[start..start + inner];
        let Some(end) = content.iter().rposition(|&b| b != 0) else {
            plain.truncate(start);
            return Err(self.fail(UNEXPECTED_MESSAGE, "a record with no content type"));
        };
        if inner > MAX_PLAIN + 1 {
            plain.truncate(start);
            return Err(self.fail(
                RECORD_OVERFLOW,
                "a record of more than 2^14 bytes of plaintext",
            ));
        }
        let kind = content[end];
        if kind == APPLICATION_DATA && self.handshake.is_empty() {
            plain.truncate(start + end);
            return Ok(Opened::Data);
        }
        let own = plain[start..start + end].to_vec();
        plain.truncate(start);
        match kind {
            HANDSHAKE if !own.is_empty() => self.handshake_bytes(&own),
            ALERT if own.len() == 2 => self.alert(own[0], own[1]),
            ALERT => Err(self.fail(DECODE_ERROR, "an alert of the wrong length")),
            _ => Err(self.fail(
                UNEXPECTED_MESSAGE,
                "a record a client may not send after the handshake",
            )),
        }
    }

    /// Handshake messages from the client: only key updates (section 4.6.3).
    fn handshake_bytes(&mut self, bytes: &[u8]) -> io::Result<Opened> {
        self.handshake.extend_from_slice(bytes);
        loop {
            let held = &self.handshake;
            if held.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes([0, held[1], held[2], held[3]]) as usize;
            if held[0] != KEY_UPDATE || len != 1 {
                return Err(self.fail(
                    UNEXPECTED_MESSAGE,
                    "a handshake message a client may not send now",
                ));
            }
            if held.len() < 5 {
                break;
            }
            let requested = match held[4] {
                0 => false,
                1 => true,
                _ => {
                    return Err(self.fail(ILLEGAL_PARAMETER, "a key update with an unknown request"))
                }
            };
            self.handshake.drain(..5);
            // Keys change at a record boundary only (section 5.1).
            if !self.handshake.is_empty() {
                return Err(self.fail(UNEXPECTED_MESSAGE, "data after a key update in its record"));
            }
            if !self.rx.update() {
                return Err(self.fail(INTERNAL_ERROR, "a key update the relay has no secret for"));
            }
            if requested {
                self.update_tx()?;
            }
        }
        if self.handshake.len() > MAX_HANDSHAKE_HELD {
            return Err(self.fail(DECODE_ERROR, "a handshake message too long"));
        }
        Ok(Opened::Data)
    }

    /// An alert from the client: `close_notify` ends its side; `user_canceled` comes before
    /// one; any other alert ends the session (RFC 8446 section 6).
    fn alert(&mut self, _level: u8, description: u8) -> io::Result<Opened> {
        match description {
            0 => {
                self.done = true;
                Ok(Opened::Closed)
            }
            90 => Ok(Opened::Data),
            _ => {
                self.done = true;
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the client sent an alert",
                ))
            }
        }
    }

    /// Marks the session broken, to be ended with `alert`, with `why` as the error.
    fn fail(&mut self, alert: u8, why: &'static str) -> io::Error {
        self.done = true;
        self.alert.get_or_insert(alert);
        io::Error::new(io::ErrorKind::InvalidData, why)
    }

    /// Appends the fatal alert that ends a session the client broke, if it has one, to
    /// `cipher` (the last record the relay sends it).
    pub(super) fn final_alert(&mut self, cipher: &mut Vec<u8>) {
        if let Some(description) = self.alert.take() {
            let _ = self.seal_record(ALERT, &[2, description], cipher);
        }
    }

    /// Sends a key update (not requesting one back) and moves the sending keys on.
    fn update_tx(&mut self) -> io::Result<()> {
        let mut replies = std::mem::take(&mut self.replies);
        let sealed = self.seal_record(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0], &mut replies);
        self.replies = replies;
        sealed?;
        if !self.tx.update() {
            return Err(io::Error::other("the relay's keys cannot be updated"));
        }
        Ok(())
    }

    /// Whether records of TLS's own wait to be sent.
    pub(super) fn wants_write(&self) -> bool {
        !self.replies.is_empty()
    }

    /// Encrypts `plain` for the client, appending the records (after any of TLS's own that
    /// wait) to `cipher`.
    pub(super) fn seal(&mut self, plain: &[u8], cipher: &mut Vec<u8>) -> io::Result<()> {
        cipher.append(&mut self.replies);
        cipher.reserve(plain.len() + (5 + 1 + TAG_LEN) * (plain.len() / MAX_PLAIN + 1));
        for chunk in plain.chunks(MAX_PLAIN) {
            if self.tx.records() >= RECORDS_PER_KEY && self.tx.can_update() {
                self.update_tx()?;
                cipher.append(&mut self.replies);
            }
            self.seal_record(APPLICATION_DATA, chunk, cipher)?;
        }
        Ok(())
    }

    /// Appends `close_notify` (RFC 8446 section 6.1) to `cipher`.
    pub(super) fn close_notify(&mut self, cipher: &mut Vec<u8>) -> io::Result<()> {
        cipher.append(&mut self.replies);
        self.seal_record(ALERT, &[1, 0], cipher)
    }

    /// Appends one record of content type `kind` with `content` to `cipher`.
    fn seal_record(&mut self, kind: u8, content: &[u8], cipher: &mut Vec<u8>) -> io::Result<()> {
        let len = (content.len() + 1 + TAG_LEN) as u16;
        let [hi, lo] = len.to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, hi, lo];
        cipher.extend_from_slice(&header);
        let start = cipher.len();
        cipher.extend_from_slice(content);
        cipher.push(kind);
        match self.tx.seal(header, &mut cipher[start..]) {
            Ok(tag) => {
                cipher.extend_from_slice(tag.as_ref());
                Ok(())
            }
            Err(_) => {
                cipher.truncate(start - 5);
                Err(io::Error::other(
                    "no more records may be sealed with this key",
                ))
            }
        }
    }
}

#[cfg(test)]
#[path = "tls13_records_tests.rs"]
mod tests;
