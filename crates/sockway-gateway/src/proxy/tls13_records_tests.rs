//! The record layer against rustls: a session handshaken by rustls in memory, the server's
//! keys taken over, and records crossing both ways, key updates included.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use rustls::{ClientConfig, ClientConnection, KeyLog, ServerConfig};

use super::super::tls_test_support::{handshaken, localhost, sent};

use super::super::tls13_keys::{Secret, TrafficKeys};
use super::*;

/// The secrets a key log was given, by label.
#[derive(Debug, Default)]
struct Logged(Mutex<HashMap<String, Vec<u8>>>);

impl KeyLog for Logged {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        self.0.lock().unwrap().insert(label.into(), secret.to_vec());
    }
}

impl Logged {
    fn get(&self, label: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(label).cloned()
    }
}

/// A client and server handshaken in memory with `suite`, and the server's records layer
/// taken over from its connection (secrets from its key log unless `no_secrets`).
fn session(
    suite: Option<rustls::SupportedCipherSuite>,
    no_secrets: bool,
) -> (ClientConnection, Records) {
    let (cert, private, roots) = localhost();
    let mut provider = (*sockway::crypto_provider()).clone();
    if let Some(suite) = suite {
        provider.cipher_suites = vec![suite];
    }
    let provider = Arc::new(provider);
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .unwrap();
    let logged = Arc::new(Logged::default());
    server.key_log = logged.clone();
    server.enable_secret_extraction = true;
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (c, s) = handshaken(client, server);
    let secrets = s.dangerous_extract_secrets().unwrap();
    let secret = |label: &str| (!no_secrets).then(|| logged.get(label)).flatten();
    let client_secret = secret("CLIENT_TRAFFIC_SECRET_0");
    let server_secret = secret("SERVER_TRAFFIC_SECRET_0");
    let rx = TrafficKeys::new(
        secrets.rx.0,
        secrets.rx.1,
        client_secret.map(|s| Secret::new(&s)),
    );
    let tx = TrafficKeys::new(
        secrets.tx.0,
        secrets.tx.1,
        server_secret.map(|s| Secret::new(&s)),
    );
    let (rx, tx) = (rx.unwrap(), tx.unwrap());
    (c, Records::new(rx, tx))
}

/// What the client's connection decrypts of `cipher`.
fn client_reads(c: &mut ClientConnection, cipher: &[u8]) -> Vec<u8> {
    let mut rd = cipher;
    let mut got = Vec::new();
    while !rd.is_empty() {
        c.read_tls(&mut rd).unwrap();
        c.process_new_packets().unwrap();
        let mut chunk = Vec::new();
        let _ = c.reader().read_to_end(&mut chunk);
        got.extend_from_slice(&chunk);
    }
    got
}

/// The client's records for `plain`.
fn client_writes(c: &mut ClientConnection, mut plain: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    loop {
        let n = c.writer().write(plain).unwrap();
        plain = &plain[n..];
        wire.extend_from_slice(&sent(c));
        if plain.is_empty() {
            return wire;
        }
    }
}

fn message(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn records_cross_both_ways_with_every_suite_in_any_slicing() {
    use rustls::crypto::aws_lc_rs::cipher_suite as suites;
    for suite in [
        suites::TLS13_AES_128_GCM_SHA256,
        suites::TLS13_AES_256_GCM_SHA384,
        suites::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let (mut c, mut r) = session(Some(suite), false);
        for (len, piece) in [
            (0, 1),
            (1, 1),
            (20, 3),
            (1024, 100),
            (40_000, 1000),
            (40_000, 16_384),
            (70_000, 70_100),
        ] {
            let wire = client_writes(&mut c, &message(len));
            let mut plain = Vec::new();
            for chunk in wire.chunks(piece) {
                assert_eq!(r.open(chunk, &mut plain).unwrap(), Opened::Data);
            }
            assert_eq!(
                plain,
                message(len),
                "{suite:?}, {len} bytes in pieces of {piece}"
            );

            let mut cipher = Vec::new();
            r.seal(&message(len), &mut cipher).unwrap();
            assert_eq!(client_reads(&mut c, &cipher), message(len));
        }
    }
}

#[test]
fn the_clients_key_updates_are_followed_and_answered() {
    let (mut c, mut r) = session(None, false);
    c.refresh_traffic_keys().unwrap();
    let wire = client_writes(&mut c, b"after the update");
    let mut plain = Vec::new();
    assert_eq!(r.open(&wire, &mut plain).unwrap(), Opened::Data);
    assert_eq!(plain, b"after the update");
    // rustls asks for an update back: it goes out before the next data, and the client
    // reads that data with its next receiving keys.
    assert!(r.wants_write());
    let mut cipher = Vec::new();
    r.seal(b"reply", &mut cipher).unwrap();
    assert!(!r.wants_write());
    assert_eq!(client_reads(&mut c, &cipher), b"reply");

    // A key update that asks for one back: the next records carry it first.
    let mut update = Vec::new();
    let mut client_side = client_keys(&mut c, &mut r);
    client_side
        .seal_record(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 1], &mut update)
        .unwrap();
    assert!(client_side.tx.update());
    let mut plain = Vec::new();
    r.open(&update, &mut plain).unwrap();
    assert!(r.wants_write());
    let mut cipher = Vec::new();
    r.seal(b"answer", &mut cipher).unwrap();
    // The reply (under the old keys) moves the client's receiving keys on, and the data
    // after it opens under the new ones.
    let mut got = Vec::new();
    client_side.open(&cipher, &mut got).unwrap();
    assert_eq!(got, b"answer");
}

/// A records layer for the client's side of `r`'s session, made from `r`'s own keys (its
/// receiving keys are the client's sending ones), for messages rustls would not send.
fn client_keys(_c: &mut ClientConnection, r: &mut Records) -> ClientSide {
    ClientSide {
        rx: r.tx.clone_for_test(),
        tx: r.rx.clone_for_test(),
    }
}

/// The client's keys, from the server's.
struct ClientSide {
    rx: TrafficKeys,
    tx: TrafficKeys,
}

impl ClientSide {
    fn seal_record(&mut self, kind: u8, content: &[u8], cipher: &mut Vec<u8>) -> io::Result<()> {
        let mut records = Records::new(self.rx.clone_for_test(), self.tx.clone_for_test());
        records.seal_record(kind, content, cipher)?;
        self.tx = records.tx;
        Ok(())
    }

    fn open(&mut self, cipher: &[u8], plain: &mut Vec<u8>) -> io::Result<Opened> {
        let mut records = Records::new(self.rx.clone_for_test(), self.tx.clone_for_test());
        let opened = records.open(cipher, plain);
        self.rx = records.rx;
        opened
    }
}

#[test]
fn close_notify_ends_and_what_follows_is_not_read() {
    let (mut c, mut r) = session(None, false);
    c.writer().write_all(b"last").unwrap();
    c.send_close_notify();
    let mut wire = sent(&mut c);
    wire.extend_from_slice(&[23, 3, 3, 0, 20]);
    let mut plain = Vec::new();
    assert_eq!(r.open(&wire, &mut plain).unwrap(), Opened::Closed);
    assert_eq!(plain, b"last");
}

#[test]
fn the_servers_close_notify_and_key_update_reach_the_client() {
    let (mut c, mut r) = session(None, false);
    r.update_tx().unwrap();
    let mut cipher = Vec::new();
    r.seal(b"with new keys", &mut cipher).unwrap();
    r.close_notify(&mut cipher).unwrap();
    assert_eq!(client_reads(&mut c, &cipher), b"with new keys");
    assert!(c.process_new_packets().unwrap().peer_has_closed());
}

#[test]
fn bad_records_are_errors_and_end_the_session() {
    let cases: [(&str, Vec<u8>); 5] = [
        ("not protected", vec![22, 3, 3, 0, 20]),
        ("too long", vec![23, 3, 3, 0x41, 0x11]),
        ("shorter than a tag", vec![23, 3, 3, 0, 16]),
        (
            "does not authenticate",
            [vec![23, 3, 3, 0, 20], vec![0; 20]].concat(),
        ),
        ("change_cipher_spec", vec![20, 3, 3, 0, 1, 1]),
    ];
    for (what, bytes) in cases {
        let (_c, mut r) = session(None, false);
        let mut plain = Vec::new();
        assert!(r.open(&bytes, &mut plain).is_err(), "{what}");
        assert!(plain.is_empty(), "{what}");
        assert_eq!(
            r.open(&bytes, &mut plain).unwrap(),
            Opened::Closed,
            "{what}: ended"
        );
    }
}

#[test]
fn messages_a_client_may_not_send_are_refused() {
    let cases: [(&str, u8, &[u8]); 6] = [
        ("an alert other than close_notify", ALERT, &[2, 40]),
        ("a short alert", ALERT, &[1]),
        ("a new session ticket", HANDSHAKE, &[4, 0, 0, 1, 0]),
        (
            "a key update with an unknown request",
            HANDSHAKE,
            &[KEY_UPDATE, 0, 0, 1, 2],
        ),
        (
            "data after a key update in one record",
            HANDSHAKE,
            &[KEY_UPDATE, 0, 0, 1, 0, KEY_UPDATE],
        ),
        ("an unknown content type", 99, b"x"),
    ];
    for (what, kind, content) in cases {
        let (mut c, mut r) = session(None, false);
        let mut client_side = client_keys(&mut c, &mut r);
        let mut wire = Vec::new();
        client_side.seal_record(kind, content, &mut wire).unwrap();
        assert!(r.open(&wire, &mut Vec::new()).is_err(), "{what}");
    }
}

#[test]
fn a_key_update_split_over_records_is_followed() {
    let (mut c, mut r) = session(None, false);
    let mut client_side = client_keys(&mut c, &mut r);
    let mut wire = Vec::new();
    client_side
        .seal_record(HANDSHAKE, &[KEY_UPDATE, 0], &mut wire)
        .unwrap();
    client_side
        .seal_record(HANDSHAKE, &[0, 1, 0], &mut wire)
        .unwrap();
    assert!(client_side.tx.update());
    client_side
        .seal_record(APPLICATION_DATA, b"new", &mut wire)
        .unwrap();
    let mut plain = Vec::new();
    assert_eq!(r.open(&wire, &mut plain).unwrap(), Opened::Data);
    assert_eq!(plain, b"new");
}

#[test]
fn without_the_secret_a_key_update_is_refused_and_nothing_else_changes() {
    let (mut c, mut r) = session(None, true);
    let wire = client_writes(&mut c, b"before");
    let mut plain = Vec::new();
    r.open(&wire, &mut plain).unwrap();
    assert_eq!(plain, b"before");
    c.refresh_traffic_keys().unwrap();
    let wire = client_writes(&mut c, b"after");
    assert!(r.open(&wire, &mut Vec::new()).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever follows a valid record, in whatever pieces, the records layer never panics:
    /// the valid record's plaintext comes out, and once an error was returned nothing more
    /// is read.
    #[test]
    fn arbitrary_bytes_after_a_record_never_panic(
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        piece in 1usize..700,
        header in proptest::prelude::any::<bool>(),
    ) {
        let (mut c, mut r) = session(None, false);
        let mut wire = client_writes(&mut c, b"valid");
        if header {
            // A plausible header in front of the garbage.
            wire.extend_from_slice(&[23, 3, 3, (tail.len() >> 8) as u8, tail.len() as u8]);
        }
        wire.extend_from_slice(&tail);
        let mut plain = Vec::new();
        let mut failed = false;
        for chunk in wire.chunks(piece) {
            match r.open(chunk, &mut plain) {
                Ok(Opened::Closed) => proptest::prop_assert!(failed),
                Ok(Opened::Data) => proptest::prop_assert!(!failed),
                Err(_) => failed = true,
            }
        }
        proptest::prop_assert_eq!(&plain[..], b"valid");
    }
}
