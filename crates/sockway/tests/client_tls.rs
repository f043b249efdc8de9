//! `wss://` against in-test TLS servers with a CA made at test time: trust by CA file or PEM,
//! certificate errors with their reason, the dangerous accept-anything switch, client
//! certificates, and the server certificate in the connection information.

#![cfg(all(feature = "client", feature = "tls"))]

mod client_support;

use client_support::tls::{pki, server_config, tls_echo_server};
use client_support::*;
use sockway::client::{ClientBuilder, ClientError, ErrorStatus};
use sockway::{CloseCode, Message};
use tokio::time::timeout;

#[tokio::test]
async fn wss_with_a_ca_file_round_trips_and_exposes_the_certificate() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let addr = tls_echo_server(server_config(&pki, false)).await;
    for url in [
        format!("wss://127.0.0.1:{}/secure", addr.port()),
        format!("wss://localhost:{}/secure", addr.port()),
    ] {
        let connect = ClientBuilder::new(url.clone())
            .webpki_roots(false)
            .ca_file(&pki.ca_file)
            .resolve_to(vec![addr])
            .connect_message();
        let mut socket = timeout(STEP, connect).await.unwrap().unwrap();
        let info = socket.info();
        assert!(info.secure);
        assert_eq!(
            info.peer_certificates.first(),
            Some(&pki.server_cert_der),
            "{url}"
        );
        socket.send_text("over tls").await.unwrap();
        assert_eq!(
            socket.recv().await.unwrap(),
            Some(Message::text("over tls"))
        );
        let big = vec![0x5au8; 3 << 20];
        socket.send_binary(&big).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Message::binary(big)));
        let closed = timeout(STEP, socket.close(CloseCode::NORMAL, ""))
            .await
            .unwrap()
            .unwrap();
        assert!(closed.is_normal(), "{closed:?}");
    }
    // The CA as PEM text works the same.
    let socket = ClientBuilder::new(format!("wss://127.0.0.1:{}/", addr.port()))
        .ca_pem(pki.ca_pem.clone())
        .connect_message();
    timeout(STEP, socket).await.unwrap().unwrap();
}

#[tokio::test]
async fn unknown_issuer_and_wrong_name_are_certificate_errors() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let addr = tls_echo_server(server_config(&pki, false)).await;
    let e = ClientBuilder::new(format!("wss://127.0.0.1:{}/", addr.port()))
        .connect_message()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Certificate { reason } if reason.contains("UnknownIssuer")),
        "{e}"
    );
    assert_eq!(e.status(), ErrorStatus::CertificateError);
    assert!(e.to_string().contains("CA"), "says what to try: {e}");

    let other = pki_for_other_name();
    let addr = tls_echo_server(server_config(&other, false)).await;
    let e = ClientBuilder::new(format!("wss://127.0.0.1:{}/", addr.port()))
        .ca_file(&other.ca_file)
        .connect_message()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Certificate { reason } if reason.contains("not valid for name")),
        "{e}"
    );

    // The dangerous switch accepts both.
    let mut socket = ClientBuilder::new(format!("wss://127.0.0.1:{}/", addr.port()))
        .danger_accept_invalid_certificates()
        .connect_message()
        .await
        .unwrap();
    socket.send_text("insecure").await.unwrap();
    assert_eq!(
        socket.recv().await.unwrap(),
        Some(Message::text("insecure"))
    );
}

fn pki_for_other_name() -> client_support::tls::Pki {
    pki(&["other.example"])
}

#[tokio::test]
async fn client_certificates_for_mutual_tls() {
    let pki = pki(&["127.0.0.1"]);
    let addr = tls_echo_server(server_config(&pki, true)).await;
    let url = format!("wss://127.0.0.1:{}/", addr.port());
    let mut socket = ClientBuilder::new(url.clone())
        .ca_file(&pki.ca_file)
        .client_certificate(&pki.client_cert_file, &pki.client_key_file)
        .connect_message()
        .await
        .unwrap();
    socket.send_text("mtls").await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some(Message::text("mtls")));

    // Without a certificate the server refuses (during or right after the TLS handshake,
    // depending on the TLS version).
    let result = async {
        let mut socket = ClientBuilder::new(url.clone())
            .ca_file(&pki.ca_file)
            .connect_message()
            .await?;
        socket.send_text("x").await?;
        socket.recv().await
    };
    let e = timeout(STEP, result).await.unwrap().unwrap_err();
    assert!(
        matches!(
            e.status(),
            ErrorStatus::TlsError
                | ErrorStatus::ConnectionLost
                | ErrorStatus::InvalidResponse
                | ErrorStatus::Other
        ),
        "{e}"
    );

    let e = ClientBuilder::new(url)
        .ca_file(pki.dir.join("missing.pem"))
        .connect_message()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::InvalidSetting(_)), "{e}");
}

#[tokio::test]
async fn tls_to_a_plain_server_is_a_tls_error() {
    let addr = echo_server().await;
    let e = timeout(
        STEP,
        ClientBuilder::new(format!("wss://127.0.0.1:{}/", addr.port())).connect_message(),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(e.status(), ErrorStatus::TlsError, "{e}");
}
