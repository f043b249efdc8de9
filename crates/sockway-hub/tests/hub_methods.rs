//! Hub methods end to end through a linked connection: the sample chat hub's methods, typed
//! binding and its errors, streams both ways, client results, targets, groups, hooks.

mod hub_support;

use std::sync::{Arc, Mutex};

use futures_util::stream;
use hub_support::{completion, connect, WAIT};
use serde_json::json;
use sockway_hub::sample::chat_hub;
use sockway_hub::{Hub, HubContext, HubError, HubOptions};
use tokio::sync::Notify;

#[tokio::test]
async fn echo_returns_its_argument_and_names_match_case_insensitively() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client.invoke("1", "Echo", json!(["hello"])).await;
    let done = completion(&mut client, "1").await;
    assert_eq!(done["result"], "hello");
    assert!(done.get("error").is_none());
    client.invoke("2", "echo", json!(["again"])).await;
    assert_eq!(completion(&mut client, "2").await["result"], "again");
}

#[tokio::test]
async fn send_message_reaches_every_client() {
    let hub = chat_hub();
    let mut a = connect(&hub, "a").await;
    let mut b = connect(&hub, "b").await;
    a.invoke("1", "SendMessage", json!(["ann", "hi"])).await;
    for client in [&mut a, &mut b] {
        let message = client.next().await;
        assert_eq!(message["type"], 1);
        assert_eq!(message["target"], "ReceiveMessage");
        assert_eq!(message["arguments"], json!(["ann", "hi"]));
        assert!(message.get("invocationId").is_none());
    }
    let done = completion(&mut a, "1").await;
    assert!(done.get("result").is_none() && done.get("error").is_none());
}

#[tokio::test]
async fn groups_join_send_and_leave() {
    let hub = chat_hub();
    let mut a = connect(&hub, "a").await;
    let mut b = connect(&hub, "b").await;
    a.invoke("1", "AddToGroup", json!(["g"])).await;
    let joined = a.next().await;
    assert_eq!(joined["target"], "Send");
    assert_eq!(joined["arguments"], json!(["a has joined the group g."]));
    completion(&mut a, "1").await;
    b.invoke("2", "SendMessageToGroup", json!(["g", "to the group"]))
        .await;
    completion(&mut b, "2").await;
    assert_eq!(a.next().await["arguments"], json!(["to the group"]));
    a.invoke("3", "RemoveFromGroup", json!(["g"])).await;
    completion(&mut a, "3").await;
    b.invoke("4", "Echo", json!(["marker"])).await;
    completion(&mut b, "4").await;
    b.invoke("5", "SendMessageToGroup", json!(["g", "nobody"]))
        .await;
    completion(&mut b, "5").await;
    a.invoke("6", "Echo", json!(["after"])).await;
    let next = a.next().await;
    assert_eq!(next["invocationId"], "6", "a left the group: {next}");
}

#[tokio::test]
async fn counter_streams_then_completes() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client
        .send(json!({"type": 4, "invocationId": "s", "target": "Counter", "arguments": [3, 1]}))
        .await;
    for expected in 0..3 {
        let item = client.next().await;
        assert_eq!(item["type"], 2);
        assert_eq!(item["invocationId"], "s");
        assert_eq!(item["item"], expected);
    }
    let done = client.next().await;
    assert_eq!(done["type"], 3);
    assert!(done.get("result").is_none() && done.get("error").is_none());
}

#[tokio::test]
async fn cancel_invocation_stops_a_stream_with_a_completion() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client
        .send(
            json!({"type": 4, "invocationId": "s", "target": "Counter", "arguments": [100000, 5]}),
        )
        .await;
    assert_eq!(client.next().await["type"], 2);
    client.send(json!({"type": 5, "invocationId": "s"})).await;
    loop {
        let message = client.next().await;
        if message["type"] == 3 {
            assert_eq!(message["invocationId"], "s");
            break;
        }
    }
    client.invoke("e", "Echo", json!(["still here"])).await;
    assert_eq!(completion(&mut client, "e").await["result"], "still here");
}

#[tokio::test]
async fn upload_stream_counts_the_items() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client
        .send(json!({"type": 1, "invocationId": "u", "target": "UploadStream", "arguments": [], "streamIds": ["1"]}))
        .await;
    for item in ["x", "y", "z"] {
        client
            .send(json!({"type": 2, "invocationId": "1", "item": item}))
            .await;
    }
    client.send(json!({"type": 3, "invocationId": "1"})).await;
    assert_eq!(completion(&mut client, "u").await["result"], 3);
}

#[tokio::test]
async fn upload_stream_beyond_the_buffer_capacity_is_consumed_in_order() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let hub = Hub::builder()
        .method(
            "Collect",
            move |_ctx: HubContext, (mut items,): (sockway_hub::ClientStream<u32>,)| {
                let record = record.clone();
                async move {
                    use futures_util::StreamExt;
                    while let Some(item) = items.next().await {
                        record.lock().unwrap().push(item?);
                    }
                    Ok::<_, HubError>(())
                }
            },
        )
        .build();
    let mut client = connect(&hub, "a").await;
    client
        .send(json!({"type": 1, "invocationId": "u", "target": "Collect", "arguments": [], "streamIds": ["s"]}))
        .await;
    for item in 0..50 {
        client
            .send(json!({"type": 2, "invocationId": "s", "item": item}))
            .await;
    }
    client.send(json!({"type": 3, "invocationId": "s"})).await;
    completion(&mut client, "u").await;
    assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<u32>>());
}

#[tokio::test]
async fn wait_for_message_gets_the_other_clients_result() {
    let hub = chat_hub();
    let mut a = connect(&hub, "a").await;
    let mut b = connect(&hub, "b").await;
    a.invoke("1", "WaitForMessage", json!(["b"])).await;
    let ask = b.next().await;
    assert_eq!(ask["type"], 1);
    assert_eq!(ask["target"], "GetMessage");
    let id = ask["invocationId"]
        .as_str()
        .expect("a client result has an id")
        .to_owned();
    b.send(json!({"type": 3, "invocationId": id, "result": "from b"}))
        .await;
    assert_eq!(completion(&mut a, "1").await["result"], "from b");
}

#[tokio::test]
async fn a_client_result_from_the_caller_itself_works_with_one_parallel_invocation() {
    let hub = chat_hub();
    let mut a = connect(&hub, "a").await;
    a.invoke("1", "WaitForMessage", json!(["a"])).await;
    let ask = a.next().await;
    let id = ask["invocationId"].as_str().unwrap().to_owned();
    a.send(json!({"type": 3, "invocationId": id, "result": "mine"}))
        .await;
    assert_eq!(completion(&mut a, "1").await["result"], "mine");
}

#[tokio::test]
async fn a_client_result_error_and_a_missing_client_become_completion_errors() {
    let hub = chat_hub();
    let mut a = connect(&hub, "a").await;
    let mut b = connect(&hub, "b").await;
    a.invoke("1", "WaitForMessage", json!(["b"])).await;
    let id = b.next().await["invocationId"].as_str().unwrap().to_owned();
    b.send(json!({"type": 3, "invocationId": id, "error": "no message"}))
        .await;
    let error = completion(&mut a, "1").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("HubException: no message"), "{error}");
    a.invoke("2", "WaitForMessage", json!(["nobody"])).await;
    let error = completion(&mut a, "2").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("Connection 'nobody' does not exist."),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_that_never_answers_times_out() {
    let options = HubOptions {
        client_result_timeout: std::time::Duration::from_millis(200),
        ..HubOptions::default()
    };
    let hub = sockway_hub::sample::chat_hub_with(options);
    let mut a = connect(&hub, "a").await;
    let mut b = connect(&hub, "b").await;
    a.invoke("1", "WaitForMessage", json!(["b"])).await;
    assert_eq!(b.next().await["target"], "GetMessage");
    let error = completion(&mut a, "1").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("did not answer 'GetMessage'"), "{error}");
}

#[tokio::test]
async fn binding_errors_say_which_argument_and_why() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client.invoke("1", "Echo", json!([])).await;
    assert_eq!(
        completion(&mut client, "1").await["error"],
        "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: \
         Invocation provides 0 argument(s) but target expects 1."
    );
    client.invoke("2", "SendMessage", json!(["ann", 5])).await;
    let error = completion(&mut client, "2").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.starts_with("Failed to invoke 'SendMessage' due to an error on the server. InvalidDataException: Error binding arguments."), "{error}");
    assert!(
        error.contains("Argument 2: invalid type: integer `5`, expected a string"),
        "{error}"
    );
    client.invoke("3", "Nope", json!([])).await;
    assert_eq!(
        completion(&mut client, "3").await["error"],
        "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist."
    );
    client.invoke("4", "Counter", json!([1, 1])).await;
    let error = completion(&mut client, "4").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("streaming 'Counter' method with a non-streaming invocation"),
        "{error}"
    );
    client
        .send(json!({"type": 4, "invocationId": "5", "target": "Echo", "arguments": ["x"]}))
        .await;
    let error = completion(&mut client, "5").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("non-streaming 'Echo' method with a streaming invocation"),
        "{error}"
    );
    client.invoke("6", "UploadStream", json!([])).await;
    let error = completion(&mut client, "6").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("Client sent 0 stream(s), Hub method expects 1."),
        "{error}"
    );
    client.invoke("7", "Echo", json!(["fine"])).await;
    assert_eq!(completion(&mut client, "7").await["result"], "fine");
}

#[tokio::test]
async fn errors_from_methods_hub_errors_and_panics() {
    let hub = Hub::builder()
        .method("Refuse", |_ctx: HubContext, (): ()| async move {
            Err::<u32, _>(HubError::new("not today"))
        })
        .method("Explode", |_ctx: HubContext, (): ()| async move {
            if true {
                panic!("secret detail");
            }
        })
        .stream("BadStream", |_ctx: HubContext, (): ()| {
            stream::iter([Ok(1), Err(HubError::new("ran dry"))])
        })
        .build();
    let mut client = connect(&hub, "a").await;
    client.invoke("1", "Refuse", json!([])).await;
    assert_eq!(
        completion(&mut client, "1").await["error"],
        "An unexpected error occurred invoking 'Refuse' on the server. HubException: not today"
    );
    client.invoke("2", "Explode", json!([])).await;
    assert_eq!(
        completion(&mut client, "2").await["error"],
        "An unexpected error occurred invoking 'Explode' on the server."
    );
    client
        .send(json!({"type": 4, "invocationId": "3", "target": "BadStream", "arguments": []}))
        .await;
    assert_eq!(client.next().await["item"], 1);
    assert_eq!(
        completion(&mut client, "3").await["error"],
        "An error occurred on the server while streaming results. HubException: ran dry"
    );
}

#[tokio::test]
async fn a_non_blocking_invocation_gets_no_completion() {
    let hub = chat_hub();
    let mut client = connect(&hub, "a").await;
    client
        .send(json!({"type": 1, "target": "Echo", "arguments": ["x"]}))
        .await;
    client
        .send(json!({"type": 1, "target": "Nope", "arguments": []}))
        .await;
    client.invoke("1", "Echo", json!(["y"])).await;
    let next = client.next().await;
    assert_eq!(next["invocationId"], "1", "{next}");
}

#[tokio::test]
async fn every_target_reaches_the_right_connections() {
    let hub = Hub::builder()
        .method("Join", |ctx: HubContext, (group,): (String,)| async move {
            ctx.groups().add(ctx.connection_id(), group).await
        })
        .method("To", |ctx: HubContext, (target,): (String,)| async move {
            let clients = ctx.clients();
            let text = (target.clone(),);
            match target.as_str() {
                "all" => clients.all().send("M", text).await,
                "others" => clients.others().send("M", text).await,
                "caller" | "mark" => clients.caller().send("M", text).await,
                "all_except_b" => clients.all_except(["b"]).send("M", text).await,
                "client_c" => clients.client("c").send("M", text).await,
                "clients_ab" => clients.clients(["a", "b", "a"]).send("M", text).await,
                "group" => clients.group("g").send("M", text).await,
                "groups" => clients.groups(["g", "h"]).send("M", text).await,
                "group_except" => clients.group_except("g", ["b"]).send("M", text).await,
                "others_in_group" => clients.others_in_group("g").send("M", text).await,
                "user" => clients.user("u1").send("M", text).await,
                "users" => clients.users(["u1", "u2"]).send("M", text).await,
                _ => Err(HubError::new("unknown target")),
            }
        })
        .build();
    let mut clients = Vec::new();
    for (id, user) in [("a", "u1"), ("b", "u2"), ("c", "u1")] {
        let mut info = hub_support::info(id, false);
        info.user = Some(user.to_owned());
        clients.push(hub_support::connect_with(&hub, info, 1024, 1).await);
    }
    for (index, group) in [(0, "g"), (1, "g"), (2, "h")] {
        clients[index].invoke("j", "Join", json!([group])).await;
        completion(&mut clients[index], "j").await;
    }
    let cases: [(&str, [bool; 3]); 12] = [
        ("all", [true, true, true]),
        ("others", [false, true, true]),
        ("caller", [true, false, false]),
        ("all_except_b", [true, false, true]),
        ("client_c", [false, false, true]),
        ("clients_ab", [true, true, false]),
        ("group", [true, true, false]),
        ("groups", [true, true, true]),
        ("group_except", [true, false, false]),
        ("others_in_group", [false, true, false]),
        ("user", [true, false, true]),
        ("users", [true, true, true]),
    ];
    for (target, expected) in cases {
        clients[0].invoke("t", "To", json!([target])).await;
        let mut got_by_caller = false;
        loop {
            let message = clients[0].next().await;
            if message["target"] == "M" {
                got_by_caller = true;
            } else if message["invocationId"] == "t" {
                assert!(message.get("error").is_none(), "{message}");
                break;
            }
        }
        for (index, client) in clients.iter_mut().enumerate() {
            client.invoke("mark", "To", json!(["mark"])).await;
            let mut got = index == 0 && got_by_caller;
            loop {
                let message = client.next().await;
                if message["target"] == "M" && message["arguments"][0] == target {
                    assert!(!got, "{target}: twice to {index}");
                    got = true;
                } else if message["target"] == "M" && message["arguments"][0] == "mark" {
                    completion(client, "mark").await;
                    break;
                }
            }
            assert_eq!(got, expected[index], "{target} to client {index}");
        }
    }
}

#[tokio::test]
async fn the_handle_sends_from_outside_and_manages_groups() {
    let hub = chat_hub();
    let handle = hub.handle();
    let mut a = connect(&hub, "a").await;
    let mut b = connect(&hub, "b").await;
    handle.groups().add("b", "news").await.unwrap();
    tokio::spawn(async move {
        handle
            .clients()
            .group("news")
            .send("Send", ("extra",))
            .await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(b.next().await["arguments"], json!(["extra"]));
    a.invoke("1", "Echo", json!(["only mine"])).await;
    assert_eq!(a.next().await["invocationId"], "1");
}

#[tokio::test]
async fn one_invocation_at_a_time_by_default_and_more_when_allowed() {
    for parallel in [1usize, 2] {
        let order = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(Notify::new());
        let (o1, o2, r) = (order.clone(), order.clone(), release.clone());
        let hub = Hub::builder()
            .options(HubOptions {
                maximum_parallel_invocations_per_client: parallel,
                ..HubOptions::default()
            })
            .method("Block", move |_ctx: HubContext, (): ()| {
                let (order, release) = (o1.clone(), r.clone());
                async move {
                    release.notified().await;
                    order.lock().unwrap().push("block");
                }
            })
            .method("Mark", move |_ctx: HubContext, (): ()| {
                let order = o2.clone();
                async move { order.lock().unwrap().push("mark") }
            })
            .build();
        let mut client = connect(&hub, "a").await;
        client.invoke("1", "Block", json!([])).await;
        client.invoke("2", "Mark", json!([])).await;
        if parallel == 1 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            release.notify_one();
            completion(&mut client, "1").await;
            completion(&mut client, "2").await;
            assert_eq!(*order.lock().unwrap(), ["block", "mark"]);
        } else {
            completion(&mut client, "2").await;
            release.notify_one();
            completion(&mut client, "1").await;
            assert_eq!(*order.lock().unwrap(), ["mark", "block"]);
        }
    }
}

#[tokio::test]
async fn hooks_run_and_client_results_are_refused_in_on_connected() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (connected, disconnected) = (events.clone(), events.clone());
    let hub = Hub::builder()
        .on_connected(move |ctx: HubContext| {
            let events = connected.clone();
            async move {
                let refused = ctx
                    .clients()
                    .caller()
                    .invoke::<String>("GetMessage", ())
                    .await
                    .unwrap_err();
                events
                    .lock()
                    .unwrap()
                    .push(format!("connected {} {refused}", ctx.connection_id()));
                if ctx.connection_id() == "bad" {
                    return Err(HubError::new("go away"));
                }
                Ok(())
            }
        })
        .on_disconnected(move |ctx: HubContext, error: Option<String>| {
            let events = disconnected.clone();
            async move {
                events
                    .lock()
                    .unwrap()
                    .push(format!("disconnected {} {error:?}", ctx.connection_id()));
            }
        })
        .build();
    let mut bad = connect(&hub, "bad").await;
    let close = bad.closed().await;
    assert_eq!(
        close["error"],
        "Connection closed with an error. HubException: go away"
    );
    tokio::time::timeout(WAIT, bad.task).await.unwrap().unwrap();
    let good = connect(&hub, "good").await;
    drop(good.inbound);
    tokio::time::timeout(WAIT, good.task)
        .await
        .unwrap()
        .unwrap();
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(
        events[0].contains("Client results inside OnConnectedAsync Hub methods are not allowed.")
    );
    assert!(events[1].starts_with(
        "disconnected bad Some(\"Connection closed with an error. HubException: go away\")"
    ));
    assert_eq!(events[3], "disconnected good None");
}

#[tokio::test]
async fn streams_do_not_hold_the_invocation_slot_but_are_limited_in_number() {
    let hub = sockway_hub::sample::chat_hub_with(HubOptions {
        maximum_streams_per_client: 2,
        ..HubOptions::default()
    });
    let mut client = connect(&hub, "a").await;
    client
        .send(json!({"type": 1, "invocationId": "u", "target": "UploadStream", "arguments": [], "streamIds": ["1"]}))
        .await;
    client
        .send(json!({"type": 4, "invocationId": "s", "target": "Counter", "arguments": [1000000, 1000]}))
        .await;
    client.invoke("e", "Echo", json!(["not blocked"])).await;
    assert_eq!(completion(&mut client, "e").await["result"], "not blocked");
    client
        .send(json!({"type": 4, "invocationId": "t", "target": "Counter", "arguments": [1, 1]}))
        .await;
    let error = completion(&mut client, "t").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("Too many streams"), "{error}");
    client.send(json!({"type": 3, "invocationId": "1"})).await;
    assert_eq!(completion(&mut client, "u").await["result"], 0);
    client
        .send(json!({"type": 4, "invocationId": "s", "target": "Counter", "arguments": [1, 1]}))
        .await;
    let error = completion(&mut client, "s").await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(error, "Invocation ID 's' is already in use.");
}

#[tokio::test]
async fn a_method_can_abort_its_connection() {
    let hub = Hub::builder()
        .method(
            "Leave",
            |ctx: HubContext, (): ()| async move { ctx.abort() },
        )
        .method("Echo", |_ctx: HubContext, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .build();
    let mut leaving = connect(&hub, "a").await;
    let mut staying = connect(&hub, "b").await;
    leaving.invoke("1", "Leave", json!([])).await;
    leaving.ended().await;
    tokio::time::timeout(WAIT, leaving.task)
        .await
        .unwrap()
        .unwrap();
    staying.invoke("1", "Echo", json!(["here"])).await;
    assert_eq!(completion(&mut staying, "1").await["result"], "here");
}

#[tokio::test]
async fn the_handle_awaits_a_client_result_from_a_background_task() {
    let hub = chat_hub();
    let handle = hub.handle();
    let mut client = connect(&hub, "a").await;
    let asking = tokio::spawn(async move {
        handle
            .clients()
            .client("a")
            .invoke::<u32>("Pick", (1, 2))
            .await
    });
    let ask = client.next().await;
    assert_eq!(ask["target"], "Pick");
    assert_eq!(ask["arguments"], json!([1, 2]));
    let id = ask["invocationId"].as_str().unwrap().to_owned();
    client
        .send(json!({"type": 3, "invocationId": id, "result": 2}))
        .await;
    let picked = tokio::time::timeout(WAIT, asking).await.unwrap().unwrap();
    assert_eq!(picked, Ok(2));
}

#[tokio::test]
async fn cancel_invocation_reaches_a_running_method() {
    let hub = Hub::builder()
        .method("Wait", |ctx: HubContext, (): ()| async move {
            ctx.cancelled().await;
            Ok::<_, HubError>(ctx.is_cancelled())
        })
        .build();
    let mut client = connect(&hub, "a").await;
    client.invoke("w", "Wait", json!([])).await;
    client.send(json!({"type": 5, "invocationId": "w"})).await;
    assert_eq!(completion(&mut client, "w").await["result"], true);
}
