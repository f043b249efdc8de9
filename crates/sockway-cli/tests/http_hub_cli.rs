//! `sockway hub` as a process: the chat page and where it loads the SignalR client from, the
//! hub's negotiate at `/chatHub`, refusals of other routes, a bad `--signalr-js`, and a clean
//! stop on SIGTERM. (The official clients against it: `hub_clients.rs`, `hub_browser.rs`.)

mod echo_support;

use std::net::SocketAddr;

use echo_support::{spawn_logged, wait_for_line, STEP};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

/// Status and body of `METHOD target` (the server closes after it).
async fn fetch(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(STEP, exchange)
        .await
        .expect("an answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// Starts `sockway hub --listen 127.0.0.1:0 ARGS...` and returns it with its address.
async fn start(
    args: &[&str],
) -> (
    Child,
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let mut all = vec!["hub", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (child, mut log) = spawn_logged(&all);
    let line = wait_for_line(&mut log, "hub server listening").await;
    let rest = line
        .split("page=http://")
        .nth(1)
        .expect("page=http:// in the line");
    let addr = rest.split('/').next().unwrap().parse().expect("an address");
    (child, addr, log)
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn serves_the_page_a_local_client_script_and_the_hub_then_stops_on_sigterm() {
    let script = std::env::temp_dir().join(format!("sockway-hub-test-{}.js", std::process::id()));
    std::fs::write(&script, "window.signalRTestBundle = true;\n").unwrap();
    let (mut child, addr, mut log) = start(&["--signalr-js", script.to_str().unwrap()]).await;

    let (status, page) = fetch(addr, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"<script src="/js/signalr.js"></script>"#),
        "{page}"
    );
    for id in ["userInput", "messageInput", "sendButton", "messagesList"] {
        assert!(
            page.contains(&format!(r#"id="{id}""#)),
            "the page has #{id}"
        );
    }
    let (status, body) = fetch(addr, "GET", "/js/signalr.js").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "window.signalRTestBundle = true;\n")
    );
    let (status, body) = fetch(addr, "POST", "/chatHub/negotiate?negotiateVersion=1").await;
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(answer["connectionToken"].is_string(), "{answer}");
    assert_eq!(fetch(addr, "GET", "/chatHub/negotiate").await.0, 405);
    assert_eq!(fetch(addr, "GET", "/elsewhere").await.0, 404);
    assert_eq!(fetch(addr, "POST", "/").await.0, 405);

    sigterm(&child);
    let exit = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("it stops")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    wait_for_line(&mut log, "hub server stopped").await;
    let _ = std::fs::remove_file(&script);
}

#[tokio::test]
async fn without_a_local_script_the_page_loads_the_client_from_the_cdn() {
    let (_child, addr, _log) = start(&[]).await;
    let (_, page) = fetch(addr, "GET", "/").await;
    assert!(
        page.contains(
            "https://cdnjs.cloudflare.com/ajax/libs/microsoft-signalr/8.0.7/signalr.min.js"
        ),
        "{page}"
    );
    assert_eq!(fetch(addr, "GET", "/js/signalr.js").await.0, 404);
}

#[tokio::test]
async fn a_missing_script_file_is_an_error_that_names_it() {
    let (mut child, mut log) = spawn_logged(&[
        "hub",
        "--listen",
        "127.0.0.1:0",
        "--signalr-js",
        "/nonexistent/signalr.js",
    ]);
    let exit = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("it exits")
        .unwrap();
    assert!(!exit.success());
    wait_for_line(&mut log, "/nonexistent/signalr.js").await;
}
