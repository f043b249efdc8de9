//! OpenSSL as the client of the gateway's TLS front: `openssl s_client` (TLS 1.3, no ALPN)
//! upgrades to a WebSocket through the gateway and asks for key updates in the middle of
//! the session, once asking for one back (`K`) and once not (`k`) (RFC 8446 section 4.6.3).
//! On Linux the relay protects this session's records itself after the handshake
//! (`proxy/tls13_records.rs`), so the gateway must follow the client's new keys and answer
//! with its own; every echo after each update must still arrive. Skipped, saying so, where
//! the `openssl` command is missing (`scripts/install-peers.sh` installs it).

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::pki::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout, Command};

/// A masked text frame carrying `payload` (at most 125 bytes), as a client sends it.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads `out` until what it printed so far contains `needle` (bounded).
async fn read_until(out: &mut ChildStdout, seen: &mut Vec<u8>, needle: &[u8]) {
    bounded("s_client's output", async {
        while !seen.windows(needle.len()).any(|w| w == needle) {
            let mut chunk = [0u8; 4096];
            let n = out.read(&mut chunk).await.expect("s_client's stdout");
            assert!(
                n > 0,
                "s_client ended before {:?}",
                String::from_utf8_lossy(needle)
            );
            seen.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
}

/// Writes `bytes` to s_client as one read of its standard input, and gives it time to act on
/// it before the next (s_client takes a read that starts with `K` or `k` as a command).
async fn type_in(stdin: &mut ChildStdin, bytes: &[u8]) {
    stdin.write_all(bytes).await.unwrap();
    stdin.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn openssl_key_updates_mid_session_are_followed_through_the_gateway() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        println!("skipped: the openssl command is missing (run scripts/install-peers.sh)");
        return;
    }
    let pki = pki("key-update");
    let backend = Backend::start("echo").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["httpListeners"] = json!([{"name": "web", "protocol": "Https", "port": port,
        "bindAddress": "127.0.0.1", "certificateFile": pki.cert, "keyFile": pki.key}]);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;

    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-tls1_3", "-servername", "localhost", "-CAfile"])
        .arg(&pki.ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run openssl s_client");
    let mut stdin = client.stdin.take().unwrap();
    let mut out = client.stdout.take().unwrap();
    let mut seen = Vec::new();
    // The session's summary ends with "---" once the handshake is done.
    read_until(&mut out, &mut seen, b"---\n").await;
    let request = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    type_in(&mut stdin, request.as_bytes()).await;
    read_until(&mut out, &mut seen, b"101 Switching Protocols").await;

    type_in(&mut stdin, &frame(b"before")).await;
    read_until(&mut out, &mut seen, b"\x81\x06before").await;
    // A key update that asks for the gateway's in return, then data under the new keys.
    type_in(&mut stdin, b"K\n").await;
    type_in(&mut stdin, &frame(b"after K")).await;
    read_until(&mut out, &mut seen, b"\x81\x07after K").await;
    // One that does not ask.
    type_in(&mut stdin, b"k\n").await;
    type_in(&mut stdin, &frame(b"after k")).await;
    read_until(&mut out, &mut seen, b"\x81\x07after k").await;

    drop(stdin);
    let _ = client.kill().await;
    gateway.shutdown().await;
}
