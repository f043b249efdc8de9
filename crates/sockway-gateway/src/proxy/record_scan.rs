//! Where the TLS records a client sends begin and end, and its ClientHello's random, from
//! the bytes read off its socket before rustls sees them. Record headers are never
//! encrypted (RFC 8446 section 5.1), so this needs no keys: it tells the relay whether
//! rustls holds part of a record (it may take a session over only at a boundary) and which
//! key log entry is the session's (rustls' key log names sessions by client random).

/// A ClientHello's first bytes: the handshake header (4), `legacy_version` (2) and
/// `random` (32) (RFC 8446 section 4.1.2).
const HELLO_HEAD: usize = 38;
/// `hello_len` once the first record turned out not to start a ClientHello.
const NO_HELLO: u8 = u8::MAX;

/// The scan of a client's bytes so far.
#[derive(Debug)]
pub(super) struct RecordScan {
    header: [u8; 5],
    header_len: u8,
    /// Bytes of the current record's body still to come.
    left: u16,
    hello: [u8; HELLO_HEAD],
    hello_len: u8,
}

impl Default for RecordScan {
    fn default() -> Self {
        Self {
            header: [0; 5],
            header_len: 0,
            left: 0,
            hello: [0; HELLO_HEAD],
            hello_len: 0,
        }
    }
}

impl RecordScan {
    /// Follows `bytes`, the next ones read from the client.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left == 0 && usize::from(self.header_len) < 5 {
                let at = usize::from(self.header_len);
                let n = (5 - at).min(bytes.len());
                self.header[at..at + n].copy_from_slice(&bytes[..n]);
                self.header_len += n as u8;
                bytes = &bytes[n..];
                if self.header_len < 5 {
                    return;
                }
                self.left = u16::from_be_bytes([self.header[3], self.header[4]]);
                self.header_len = 0;
                // The ClientHello comes first, in handshake records (type 22).
                if usize::from(self.hello_len) < HELLO_HEAD && self.header[0] != 22 {
                    self.hello_len = NO_HELLO;
                }
                continue;
            }
            let n = usize::from(self.left).min(bytes.len());
            let have = usize::from(self.hello_len);
            if have < HELLO_HEAD {
                let take = n.min(HELLO_HEAD - have);
                self.hello[have..have + take].copy_from_slice(&bytes[..take]);
                self.hello_len += take as u8;
            }
            self.left -= n as u16;
            bytes = &bytes[n..];
        }
    }

    /// Whether the bytes so far end where a record ends.
    pub(super) fn at_boundary(&self) -> bool {
        self.left == 0 && self.header_len == 0
    }

    /// The ClientHello's random, once read.
    pub(super) fn client_random(&self) -> Option<[u8; 32]> {
        let hello = (usize::from(self.hello_len) == HELLO_HEAD && self.hello[0] == 1)
            .then_some(&self.hello)?;
        hello[6..].try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of type `kind` with `body`.
    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let len = (body.len() as u16).to_be_bytes();
        [&[kind, 3, 1, len[0], len[1]][..], body].concat()
    }

    fn hello_body() -> Vec<u8> {
        let random: Vec<u8> = (100..132).collect();
        [&[1, 0, 1, 0, 3, 3][..], &random, &[0; 40]].concat()
    }

    #[test]
    fn boundaries_and_the_random_are_found_however_the_bytes_are_cut() {
        let body = hello_body();
        // A ClientHello in one record, and again split over three records.
        let one = [record(22, &body), record(23, &[7; 300])].concat();
        let split = [
            record(22, &body[..3]),
            record(22, &body[3..20]),
            record(22, &body[20..]),
            record(23, &[7; 300]),
        ]
        .concat();
        for stream in [one, split] {
            for piece in [1, 2, 5, 7, 64, 1000] {
                let mut scan = RecordScan::default();
                let mut ends = Vec::new();
                let mut fed = 0;
                for chunk in stream.chunks(piece) {
                    scan.feed(chunk);
                    fed += chunk.len();
                    if scan.at_boundary() {
                        ends.push(fed);
                    }
                }
                assert_eq!(scan.client_random().unwrap()[0], 100, "pieces of {piece}");
                assert_eq!(scan.client_random().unwrap()[31], 131);
                assert!(scan.at_boundary());
                assert_eq!(*ends.last().unwrap(), stream.len());
                // No boundary is reported inside a record.
                let mut scan = RecordScan::default();
                scan.feed(&stream[..stream.len() - 1]);
                assert!(!scan.at_boundary());
            }
        }
    }

    #[test]
    fn no_random_without_a_client_hello_first() {
        let mut scan = RecordScan::default();
        scan.feed(&[record(23, &hello_body()), record(22, &hello_body())].concat());
        assert_eq!(scan.client_random(), None);
        let mut scan = RecordScan::default();
        let mut other = hello_body();
        other[0] = 2;
        scan.feed(&record(22, &other));
        assert_eq!(scan.client_random(), None);
        let mut scan = RecordScan::default();
        scan.feed(&record(22, &hello_body()[..20]));
        assert_eq!(scan.client_random(), None, "not all of it yet");
    }
}
