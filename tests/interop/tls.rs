//! `wss://` with real peers: Python `websockets` and Node `ws` clients, trusting a certificate
//! made at test time, speak to the event-loop server over TLS (rustls under the loop), plain
//! and with permessage-deflate.

use std::net::SocketAddr;

use sockway::event_loop::{EventLoopOptions, EventLoopServer, ServerTls};
use sockway::{DeflateConfig, WebSocketConfig};
use tokio::process::Command;

use super::compression::LoopEcho;
use super::{out_dir, peers, peers_script, run_peer_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_node_clients_speak_wss_to_the_event_loop_server() {
    let peers = peers();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let cert_pem = certified.cert.pem();
    let ca = out_dir().join(format!("event-loop-tls-{}.pem", std::process::id()));
    std::fs::write(&ca, &cert_pem).expect("write the certificate");
    let tls = ServerTls::from_pem(
        cert_pem.as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .expect("the certificate and key");
    let options = EventLoopOptions::default()
        .threads(2)
        .tls(tls)
        .websocket(WebSocketConfig::for_server().max_message_size(64 << 20))
        .compression(Some(DeflateConfig::default()));
    let server = EventLoopServer::new(LoopEcho, options)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("start the event-loop echo server");
    let url = format!("wss://{}/ws", server.local_addr());
    for compression in [false, true] {
        let flags: &[&str] = if compression { &["--compression"] } else { &[] };
        let mut python = Command::new(&peers.python);
        python
            .arg(peers_script("py_client.py"))
            .args(flags)
            .arg("--ca")
            .arg(&ca);
        let what = format!("python websockets client over TLS {flags:?}");
        run_peer_client(python, &what, &url).await;
        let mut node = Command::new("node");
        node.arg(peers.node_dir.join("node_client.js"))
            .args(flags)
            .arg("--ca")
            .arg(&ca);
        let what = format!("node ws client over TLS {flags:?}");
        run_peer_client(node, &what, &url).await;
    }
    server.stop();
    server.join().expect("the event-loop server stops");
    let _ = std::fs::remove_file(&ca);
}
