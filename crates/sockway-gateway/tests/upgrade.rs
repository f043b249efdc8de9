//! Issue 19 item 10: a second gateway started with the same file takes the listening sockets
//! over; a client connecting in a loop across the upgrade sees no error, and the old
//! gateway's WebSocket session goes on until its drain closes it with 1001; the admin
//! socket moves too.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sockway_gateway::reload::Hangup;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn try_get(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    if text.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answer: {text}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_takes_over_without_refusing_a_connection() {
    let backend = Backend::start("b").await;
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sockway-gw-upgrade-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.json");
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["limits"] = json!({"closeGrace": 0.5, "shutdownTimeout": 3});
    let admin_port = free_port();
    doc["admin"] = json!({"address": format!("127.0.0.1:{admin_port}")});
    std::fs::write(&path, doc.to_string()).unwrap();

    let (stop_old, stopped_old) = tokio::sync::oneshot::channel::<()>();
    let old = tokio::spawn({
        let path = path.clone();
        async move {
            sockway_gateway::run_until(&path, Hangup::install(), async move {
                let _ = stopped_old.await;
            })
            .await
        }
    });
    bounded("the first gateway serves", async {
        while try_get(port).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (mut ws, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut ws, "before").await, "before");

    let stop_loop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn({
        let stop_loop = stop_loop.clone();
        async move {
            let (mut ok, mut errors) = (0usize, Vec::new());
            while !stop_loop.load(Ordering::Acquire) {
                match tokio::time::timeout(LIMIT, try_get(port)).await {
                    Ok(Ok(())) => ok += 1,
                    Ok(Err(e)) => errors.push(e),
                    Err(_) => errors.push("no answer in time".into()),
                }
                // Bounded: a few hundred connections, not a flood of TIME_WAIT sockets.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, errors)
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (stop_new, stopped_new) = tokio::sync::oneshot::channel::<()>();
    let new = tokio::spawn({
        let path = path.clone();
        async move {
            sockway_gateway::run_until(&path, Hangup::install(), async move {
                let _ = stopped_new.await;
            })
            .await
        }
    });
    // The old gateway keeps relaying its session while it drains.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ask(&mut ws, "during").await, "during");
    let code = bounded("the drain closes the old session", async {
        while let Ok(Some(_)) = ws.recv().await {}
        ws.close_info().map(|c| u16::from(c.code))
    })
    .await;
    assert_eq!(code, Some(1001));
    let exited = bounded("the old gateway exits by itself", old).await;
    exited.unwrap().expect("the gateway exits cleanly");
    drop(stop_old);

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_loop.store(true, Ordering::Release);
    let (ok, errors) = bounded("client loop", client).await.unwrap();
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    assert!(ok > 0);
    let health = get(admin_port, "/healthz", "").await;
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "the admin socket moved too: {health}"
    );
    let (mut fresh, _) = ws_connect(port, "/", "").await.unwrap();
    assert_eq!(ask(&mut fresh, "after").await, "after");
    drop(fresh);
    let _ = stop_new.send(());
    let exited = bounded("the new gateway stops", new).await;
    exited.unwrap().expect("the gateway exits cleanly");
    assert!(
        !sockway_gateway::handover::socket_path(&path).exists(),
        "a gateway that stops removes its hand-over socket"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
