//! What a connection keeps for its calls, made on first use and dropped while idle
//! (docs/benchmarks/hub.md, "Idle memory per hub connection"): items stay with the
//! connection across calls, idle times and hooks, and every context (a running call's, a
//! hook's, one an application kept) sees the connection end as a cancellation.

mod hub_support;

use std::sync::{Arc, Mutex};

use hub_support::{completion, connect, TestClient, WAIT};
use serde_json::{json, Value};
use sockway_hub::{Hub, HubContext, HubError};
use tokio::sync::oneshot;

#[derive(Clone, Debug, PartialEq)]
struct Name(String);

/// Invokes `target` and returns its `Completion`'s result.
async fn call(client: &mut TestClient, id: &str, target: &str, arguments: Value) -> Value {
    client.invoke(id, target, arguments).await;
    completion(client, id).await["result"].clone()
}

#[tokio::test]
async fn items_last_across_hooks_calls_and_idle_times() {
    let seen = Arc::new(Mutex::new(None));
    let at_end = seen.clone();
    let hub = Hub::builder()
        .on_connected(|ctx: HubContext| async move {
            ctx.items().insert(Name("from the hook".into()));
            Ok(())
        })
        .method("Get", |ctx: HubContext, (): ()| async move {
            Ok::<_, HubError>(ctx.items().get::<Name>().map(|name| name.0))
        })
        .method("Set", |ctx: HubContext, (name,): (String,)| async move {
            ctx.items().insert(Name(name));
            Ok::<_, HubError>(())
        })
        .method("Clear", |ctx: HubContext, (): ()| async move {
            ctx.items().remove::<Name>();
            Ok::<_, HubError>(())
        })
        .on_disconnected(move |ctx: HubContext, _error: Option<String>| {
            let at_end = at_end.clone();
            async move {
                *at_end.lock().unwrap() = Some(ctx.items().get::<Name>());
            }
        })
        .build();
    let mut client = connect(&hub, "a").await;
    assert_eq!(
        call(&mut client, "1", "Get", json!([])).await,
        "from the hook"
    );
    // Pings between calls: the connection drops its unused call state meanwhile.
    client.send(json!({"type": 6})).await;
    call(&mut client, "2", "Set", json!(["set by a call"])).await;
    client.send(json!({"type": 6})).await;
    assert_eq!(
        call(&mut client, "3", "Get", json!([])).await,
        "set by a call"
    );
    call(&mut client, "4", "Clear", json!([])).await;
    client.send(json!({"type": 6})).await;
    assert_eq!(call(&mut client, "5", "Get", json!([])).await, json!(null));
    call(&mut client, "6", "Set", json!(["kept to the end"])).await;
    client.send(json!({"type": 7})).await;
    tokio::time::timeout(WAIT, client.task)
        .await
        .unwrap()
        .unwrap();
    let at_end = seen.lock().unwrap().clone();
    assert_eq!(at_end, Some(Some(Name("kept to the end".into()))));
}

#[tokio::test]
async fn every_context_sees_the_connection_end_as_a_cancellation() {
    let (kept_tx, kept_rx) = oneshot::channel::<HubContext>();
    let kept_tx = Arc::new(Mutex::new(Some(kept_tx)));
    let (hook_tx, hook_rx) = oneshot::channel::<bool>();
    let hook_tx = Arc::new(Mutex::new(Some(hook_tx)));
    let (running_tx, running_rx) = oneshot::channel::<bool>();
    let running_tx = Arc::new(Mutex::new(Some(running_tx)));
    let hub = Hub::builder()
        .on_connected(move |ctx: HubContext| {
            let hook_tx = hook_tx.clone();
            async move {
                assert!(!ctx.is_cancelled());
                tokio::spawn(async move {
                    ctx.cancelled().await;
                    if let Some(tx) = hook_tx.lock().unwrap().take() {
                        let _ = tx.send(ctx.is_cancelled());
                    }
                });
                Ok(())
            }
        })
        .method("Keep", move |ctx: HubContext, (): ()| {
            let kept_tx = kept_tx.clone();
            async move {
                if let Some(tx) = kept_tx.lock().unwrap().take() {
                    let _ = tx.send(ctx);
                }
                Ok::<_, HubError>(())
            }
        })
        .method("Wait", move |ctx: HubContext, (): ()| {
            let running_tx = running_tx.clone();
            async move {
                ctx.cancelled().await;
                if let Some(tx) = running_tx.lock().unwrap().take() {
                    let _ = tx.send(ctx.is_cancelled());
                }
                Ok::<_, HubError>(())
            }
        })
        .build();
    let mut client = connect(&hub, "a").await;
    call(&mut client, "1", "Keep", json!([])).await;
    let kept = tokio::time::timeout(WAIT, kept_rx).await.unwrap().unwrap();
    assert!(!kept.is_cancelled(), "a finished call's context, kept");
    client
        .send(json!({"type": 1, "target": "Wait", "arguments": []}))
        .await;
    client.send(json!({"type": 6})).await;
    drop(client.inbound);
    tokio::time::timeout(WAIT, client.task)
        .await
        .unwrap()
        .unwrap();
    let running = tokio::time::timeout(WAIT, running_rx).await.unwrap();
    assert_eq!(running, Ok(true), "a running call's context");
    let hook = tokio::time::timeout(WAIT, hook_rx).await.unwrap();
    assert_eq!(hook, Ok(true), "the on_connected hook's context");
    tokio::time::timeout(WAIT, kept.cancelled()).await.unwrap();
    assert!(kept.is_cancelled());
}
