//! A client's TLS session on an io_uring loop: the loop receives and sends the encrypted
//! bytes, and these steps turn them into the relay's plaintext and back, through the
//! session's records layer once the loop took a TLS 1.3 session over from rustls
//! (`tls13_records.rs`), or else through its rustls connection (its buffered API, as
//! `tokio_rustls` drives it, so that the session can go back to `tokio_rustls` at any
//! point in between).

use std::io::{self, BufRead};

use rustls::ServerConnection;

pub(super) use super::super::super::tls13_records::Opened;
use super::super::super::tls13_records::Records;

/// The client's TLS session as the loop drives it.
pub(super) enum Cipher<'a> {
    /// rustls' connection (TLS 1.2, or a session not taken over).
    Rustls(&'a mut ServerConnection),
    /// The records layer of a TLS 1.3 session taken over.
    Records(&'a mut Records),
}

impl Cipher<'_> {
    /// Decrypts `cipher`, received from the client, appending its plaintext to `plain`; an
    /// error is the client's.
    pub(super) fn open(&mut self, cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<Opened> {
        match self {
            Cipher::Rustls(conn) => open(conn, cipher, plain),
            Cipher::Records(records) => records.open(cipher, plain),
        }
    }

    /// Encrypts `plain` for the client, appending the records (after any of TLS's own that
    /// wait) to `cipher`.
    pub(super) fn seal(&mut self, plain: &[u8], cipher: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Cipher::Rustls(conn) => seal(conn, plain, cipher),
            Cipher::Records(records) => records.seal(plain, cipher),
        }
    }

    /// Whether records of TLS's own wait to be sent.
    pub(super) fn wants_write(&self) -> bool {
        match self {
            Cipher::Rustls(conn) => conn.wants_write(),
            Cipher::Records(records) => records.wants_write(),
        }
    }
}

/// Decrypts `cipher`, received from the client, appending its plaintext to `plain`. An
/// error is the client's (a bad record, an alert): the connection has queued its alert.
pub(super) fn open(
    conn: &mut ServerConnection,
    mut cipher: &[u8],
    plain: &mut Vec<u8>,
) -> io::Result<Opened> {
    while !cipher.is_empty() {
        let read = conn.read_tls(&mut cipher)?;
        let state = conn.process_new_packets().map_err(io::Error::other)?;
        decrypted(conn, plain)?;
        if read == 0 || state.peer_has_closed() {
            return Ok(Opened::Closed);
        }
    }
    Ok(Opened::Data)
}

/// Appends the plaintext the connection has decrypted and nobody has read yet to `plain`
/// (copied once, from the connection's own buffers). Also what `tokio_rustls` had read
/// from the socket and hyper not from the stream when the loop took the session over.
pub(super) fn decrypted(conn: &mut ServerConnection, plain: &mut Vec<u8>) -> io::Result<()> {
    let mut reader = conn.reader();
    loop {
        match reader.fill_buf() {
            Ok([]) => return Ok(()),
            Ok(chunk) => {
                let n = chunk.len();
                plain.extend_from_slice(chunk);
                reader.consume(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Encrypts `plain` for the client, appending the records (after anything the connection
/// had queued of its own) to `cipher`.
pub(super) fn seal(
    conn: &mut ServerConnection,
    mut plain: &[u8],
    cipher: &mut Vec<u8>,
) -> io::Result<()> {
    queued(conn, cipher)?;
    // Records of at most 16 KiB of plaintext, 22 bytes more each (TLS 1.3's header, content
    // type and tag; TLS 1.2's AES-GCM adds 29).
    cipher.reserve(plain.len() + 29 * (plain.len() / 16384 + 1));
    while !plain.is_empty() {
        let n = io::Write::write(&mut conn.writer(), plain)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        plain = &plain[n..];
        queued(conn, cipher)?;
    }
    Ok(())
}

/// Appends what the connection has queued to send on its own (a reply to a key update,
/// an alert) to `cipher`.
pub(super) fn queued(conn: &mut ServerConnection, cipher: &mut Vec<u8>) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(cipher)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    use rustls::{ClientConfig, ClientConnection, ServerConfig};

    use super::super::super::super::tls_test_support::{handshaken, localhost};

    /// A client and a server connection handshaken in memory.
    fn connected() -> (ClientConnection, ServerConnection) {
        let (cert, private, roots) = localhost();
        let server = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], private)
            .unwrap();
        let client = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        handshaken(client, server)
    }

    #[test]
    fn plaintext_crosses_both_ways_in_any_slicing() {
        let (mut c, mut s) = connected();
        let message: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        io::Write::write_all(&mut c.writer(), &message).unwrap();
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        let mut plain = Vec::new();
        for piece in wire.chunks(1000) {
            assert_eq!(open(&mut s, piece, &mut plain).unwrap(), Opened::Data);
        }
        assert_eq!(plain, message);

        let mut cipher = Vec::new();
        seal(&mut s, &message, &mut cipher).unwrap();
        let mut rd = &cipher[..];
        let mut got = Vec::new();
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            let n = c.process_new_packets().unwrap().plaintext_bytes_to_read();
            let start = got.len();
            got.resize(start + n, 0);
            c.reader().read_exact(&mut got[start..]).unwrap();
        }
        assert_eq!(got, message);
    }

    #[test]
    fn a_close_notify_closes_and_garbage_is_an_error_with_an_alert() {
        let (mut c, mut s) = connected();
        io::Write::write_all(&mut c.writer(), b"last").unwrap();
        c.send_close_notify();
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        let mut plain = Vec::new();
        assert_eq!(open(&mut s, &wire, &mut plain).unwrap(), Opened::Closed);
        assert_eq!(plain, b"last");

        let (c, mut s) = connected();
        let garbage = [23u8, 3, 3, 0, 5, 1, 2, 3, 4, 5];
        assert!(open(&mut s, &garbage, &mut Vec::new()).is_err());
        let mut alert = Vec::new();
        queued(&mut s, &mut alert).unwrap();
        let mut c = c;
        c.read_tls(&mut &alert[..]).unwrap();
        assert!(
            c.process_new_packets().is_err(),
            "the client hears an alert"
        );
    }

    #[test]
    fn plaintext_decrypted_before_the_takeover_is_kept() {
        let (mut c, mut s) = connected();
        io::Write::write_all(&mut c.writer(), b"early").unwrap();
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        s.read_tls(&mut &wire[..]).unwrap();
        s.process_new_packets().unwrap();
        let mut plain = Vec::new();
        decrypted(&mut s, &mut plain).unwrap();
        assert_eq!(plain, b"early");
    }
}
