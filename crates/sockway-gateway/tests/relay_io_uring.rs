//! `limits.relayIoUring` through the whole gateway: a session relayed on io_uring echoes
//! small and large messages (the large ones after the hand-back to the splice path) and
//! closes normally; an idle one is closed by the gateway with 1001 (RFC 6455 section
//! 7.4.1). Where the kernel refuses io_uring the gateway relays with epoll and these still
//! hold.

mod support;

use std::time::Duration;

use serde_json::json;
use sockway::CloseCode;
use support::*;

fn config(port: u16, backend: &Backend, settings: serde_json::Value) -> serde_json::Value {
    let mut doc = basic_config(port, &[backend], settings, None);
    doc["limits"]["relayIoUring"] = json!(true);
    doc
}

async fn sessions_end(gateway: &sockway_gateway::Gateway) {
    bounded("sessions end", async {
        while gateway.sessions() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_on_the_ring_echoes_and_closes() {
    let backend = Backend::start("b1").await;
    let port = free_port();
    let gateway = start_gateway(&config(port, &backend, json!({"requestTimeout": 60}))).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = bounded("connect", ws_connect(port, "/chat", ""))
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(ask(&mut ws, "hello").await, "hello");
    }
    assert_eq!(ask(&mut ws, "whoami").await, "b1");
    for len in [20usize, 4_000, 70_000, 1 << 20] {
        let big: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        bounded("binary echo", async {
            ws.send_binary(&big).await.unwrap();
            match ws.recv().await.unwrap() {
                Some(sockway::Message::Binary(b)) => assert!(b[..] == big[..], "{len} B changed"),
                other => panic!("{other:?}"),
            }
        })
        .await;
    }
    assert_eq!(ask(&mut ws, "after").await, "after");
    let info = bounded("close", ws.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap();
    assert_eq!(u16::from(info.code), 1000);
    sessions_end(&gateway).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_on_the_ring_is_closed_with_1001() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let settings = json!({"requestTimeout": 1, "webSocketKeepAlive": false});
    let gateway = start_gateway(&config(port, &backend, settings)).await;
    wait_healthy(&gateway, 1).await;
    let (mut ws, _) = bounded("connect", ws_connect(port, "/", "")).await.unwrap();
    assert_eq!(ask(&mut ws, "hello").await, "hello");
    let end = bounded("idle close", ws.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    let info = ws.close_info().expect("a close frame from the gateway");
    assert_eq!(u16::from(info.code), 1001);
    sessions_end(&gateway).await;
    gateway.shutdown().await;
}
