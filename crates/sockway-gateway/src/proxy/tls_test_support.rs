//! rustls sessions for tests: a throwaway certificate, and a client and a server
//! handshaken in memory.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, RootCertStore, ServerConfig, ServerConnection,
};

/// A self-signed certificate for `localhost`, its key, and roots that trust it.
pub(crate) fn localhost() -> (
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
    RootCertStore,
) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = CertificateDer::from(key.cert.der().to_vec());
    let private = PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    (cert, private, roots)
}

/// A client and a server connection with the handshake done between them in memory, and
/// what either had to send after it delivered.
pub(crate) fn handshaken(
    client: ClientConfig,
    server: ServerConfig,
) -> (ClientConnection, ServerConnection) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(Arc::new(client), name).unwrap();
    let mut s = ServerConnection::new(Arc::new(server)).unwrap();
    while c.is_handshaking() || s.is_handshaking() || c.wants_write() || s.wants_write() {
        deliver(&mut c, &mut s);
        deliver(&mut s, &mut c);
    }
    (c, s)
}

/// What `from` has to send, written out.
pub(crate) fn sent<T>(from: &mut ConnectionCommon<T>) -> Vec<u8> {
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut wire).unwrap();
    }
    wire
}

/// What `from` has to send, read and processed by `to`.
fn deliver<A, B>(from: &mut ConnectionCommon<A>, to: &mut ConnectionCommon<B>) {
    let wire = sent(from);
    let mut rd = &wire[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).unwrap();
        to.process_new_packets().unwrap();
    }
}
