//! Three hub servers sharing one Redis: every target of the hub API reaches each intended
//! connection exactly once, on whichever server holds it; groups across servers; group
//! channels heard only while a server has a member; client results across servers; sends to
//! a connection no server holds fail with a clear error.

mod scaleout_support;

use std::collections::HashMap;

use serde_json::json;
use sockway_hub::backplane::RedisOptions;

use scaleout_support::{fleet, negotiate, HubClient, RedisServer};

fn options() -> RedisOptions {
    RedisOptions::new("redis://unused/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_reaches_each_intended_connection_once_across_three_servers() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let mut c0 = HubClient::connect(&servers[0], Some("alice")).await;
    let mut c1 = HubClient::connect(&servers[1], Some("alice")).await;
    let mut c2 = HubClient::connect(&servers[2], Some("bob")).await;
    let mut c3 = HubClient::connect(&servers[0], None).await;
    let mut c4 = HubClient::connect(&servers[1], Some("carol")).await;
    let mut c5 = HubClient::connect(&servers[2], None).await;
    let ids = [&c0, &c1, &c2, &c3, &c4, &c5].map(|client| client.id.clone());

    for client in [&mut c1, &mut c2, &mut c3] {
        client.ok("Join", json!(["g1"])).await;
    }
    c2.ok("Join", json!(["g2"])).await;
    c0.ok("Join", json!(["g2"])).await;
    c0.ok("AddOther", json!([ids[5], "g2"])).await;

    let sends = [
        ("ToAll", json!(["all"]), "all", vec![0, 1, 2, 3, 4, 5]),
        (
            "ToAllExcept",
            json!([[ids[1], ids[5]], "allx"]),
            "allx",
            vec![0, 2, 3, 4],
        ),
        ("ToOthers", json!(["others"]), "others", vec![1, 2, 3, 4, 5]),
        ("ToClient", json!([ids[2], "remote"]), "remote", vec![2]),
        ("ToClient", json!([ids[3], "local"]), "local", vec![3]),
        (
            "ToClients",
            json!([[ids[1], ids[3], ids[5], ids[5]], "clients"]),
            "clients",
            vec![1, 3, 5],
        ),
        ("ToGroup", json!(["g1", "group"]), "group", vec![1, 2, 3]),
        (
            "ToGroups",
            json!([["g1", "g2", "g1"], "groups"]),
            "groups",
            vec![0, 1, 2, 3, 5],
        ),
        (
            "ToGroupExcept",
            json!(["g1", [ids[2]], "groupx"]),
            "groupx",
            vec![1, 3],
        ),
        (
            "ToOthersInGroup",
            json!(["g2", "ingroup"]),
            "ingroup",
            vec![2, 5],
        ),
        ("ToUser", json!(["alice", "user"]), "user", vec![0, 1]),
        (
            "ToUsers",
            json!([["alice", "bob", "alice"], "users"]),
            "users",
            vec![0, 1, 2],
        ),
    ];
    let mut expected: HashMap<usize, Vec<String>> = HashMap::new();
    for (method, arguments, text, receivers) in sends {
        c0.ok(method, arguments).await;
        for receiver in receivers {
            expected.entry(receiver).or_default().push(text.to_owned());
        }
    }
    c0.ok("RemoveOther", json!([ids[5], "g2"])).await;
    c0.ok("ToGroup", json!(["g2", "after-remove"])).await;
    for receiver in [0, 2] {
        expected
            .entry(receiver)
            .or_default()
            .push("after-remove".to_owned());
    }
    c0.ok("ToAll", json!(["END"])).await;

    let clients = [&mut c0, &mut c1, &mut c2, &mut c3, &mut c4, &mut c5];
    for (index, client) in clients.into_iter().enumerate() {
        let got = client.receive_until("END").await;
        let want = expected.remove(&index).unwrap_or_default();
        assert_eq!(got, want, "client c{index} (in order, each once)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_published_once_however_many_remote_receivers() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let mut sender = HubClient::connect(&servers[0], None).await;
    let mut members = Vec::new();
    for index in 0..6 {
        let mut member = HubClient::connect(&servers[1 + index % 2], None).await;
        member.ok("Join", json!(["crowd"])).await;
        members.push(member);
    }
    let before = servers[0].manager.stats().published;
    let heard = [1, 2].map(|server| servers[server].manager.stats().received);
    sender.ok("ToGroup", json!(["crowd", "once"])).await;
    sender.ok("ToGroup", json!(["crowd", "END"])).await;
    for member in &mut members {
        assert_eq!(member.receive_until("END").await, vec!["once".to_owned()]);
    }
    servers[0]
        .until("both publishes are confirmed", |stats| {
            stats.published >= before + 2
        })
        .await;
    assert_eq!(servers[0].manager.stats().published - before, 2);
    for (slot, server) in [1, 2].into_iter().enumerate() {
        let received = servers[server].manager.stats().received - heard[slot];
        assert_eq!(received, 2, "server {server} heard each message once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_hears_a_group_channel_only_while_it_has_a_member_there() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 2, options()).await;
    let channel = "sockway-hub:group:solo";
    let mut first = HubClient::connect(&servers[1], None).await;
    let mut second = HubClient::connect(&servers[1], None).await;
    let mut elsewhere = HubClient::connect(&servers[0], None).await;
    assert_eq!(redis.subscribers(channel).await, 0);
    first.ok("Join", json!(["solo"])).await;
    assert_eq!(redis.subscribers(channel).await, 1);
    second.ok("Join", json!(["solo"])).await;
    assert_eq!(redis.subscribers(channel).await, 1);
    elsewhere.ok("AddOther", json!([first.id, "solo"])).await;
    elsewhere.ok("RemoveOther", json!([first.id, "solo"])).await;
    assert_eq!(redis.subscribers(channel).await, 1);
    second.ok("Leave", json!(["solo"])).await;
    assert_eq!(redis.subscribers(channel).await, 0);

    second.ok("Join", json!(["solo"])).await;
    drop(second);
    let gone = async {
        while redis.subscribers(channel).await != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(scaleout_support::WAIT, gone)
        .await
        .expect("a server that lost its last member stops hearing the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_results_cross_servers_both_ways() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let mut asker = HubClient::connect(&servers[0], None).await;
    let mut answerer = HubClient::connect(&servers[2], None).await;

    for (answer, check) in [
        (json!({"result": "hello from afar"}), "result"),
        (json!({"error": "no message for you"}), "error"),
    ] {
        asker
            .send(json!({"type": 1, "invocationId": "ask", "target": "Ask", "arguments": [answerer.id]}))
            .await;
        let invocation = answerer.next().await;
        assert_eq!(invocation["type"], 1);
        assert_eq!(invocation["target"], "GetMessage");
        let id = invocation["invocationId"]
            .as_str()
            .expect("an invocation id");
        let mut completion = json!({"type": 3, "invocationId": id});
        for (key, value) in answer.as_object().unwrap() {
            completion[key] = value.clone();
        }
        answerer.send(completion).await;
        let done = asker.next().await;
        assert_eq!(done["invocationId"], "ask");
        match check {
            "result" => assert_eq!(done["result"], "hello from afar", "{done}"),
            _ => assert!(
                done["error"]
                    .as_str()
                    .is_some_and(|error| error.contains("no message for you")),
                "{done}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_no_server_holds_is_a_clear_error() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 2, options()).await;
    let mut client = HubClient::connect(&servers[0], None).await;
    let other = HubClient::connect(&servers[1], None).await;
    let gone = other.id.clone();
    drop(other);
    for (method, arguments) in [
        ("ToClient", json!(["nobody", "hi"])),
        ("AddOther", json!(["nobody", "g"])),
        ("RemoveOther", json!(["nobody", "g"])),
        ("Ask", json!(["nobody"])),
    ] {
        let completion = client.call(method, arguments).await;
        let error = completion["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("Connection 'nobody' does not exist on any server."),
            "{method}: {completion}"
        );
    }
    let closed = async {
        loop {
            let completion = client.call("ToClient", json!([gone, "hi"])).await;
            if completion.get("error").is_some() {
                return completion;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let completion = tokio::time::timeout(scaleout_support::WAIT, closed)
        .await
        .expect("a closed connection's channel goes away");
    assert!(completion["error"]
        .as_str()
        .unwrap()
        .contains("does not exist on any server"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_group_members_and_user_connections_on_every_server() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let mut members = Vec::new();
    for (index, user) in ["dora", "dora", "eli", "dora"].into_iter().enumerate() {
        let mut client = HubClient::connect(&servers[index % 3], Some(user)).await;
        if user == "dora" {
            client.ok("Join", json!(["room"])).await;
        }
        members.push(client);
    }
    let mut room: Vec<String> = [0, 1, 3].map(|index| members[index].id.clone()).to_vec();
    room.sort();
    for server in &servers {
        let presence = server.manager.group_presence("room").await;
        assert!(presence.is_complete(), "{presence:?}");
        assert_eq!(presence.servers_expected, 3);
        assert_eq!(presence.connections, room);
        let dora = server.manager.user_presence("dora").await;
        assert_eq!(dora.connections, room);
        let eli = server.manager.user_presence("eli").await;
        assert_eq!(eli.connections, vec![members[2].id.clone()]);
        assert_eq!(server.manager.group_presence("empty").await.count(), 0);
    }
    let from_hub = members[2].ok("Members", json!(["room"])).await;
    assert_eq!(
        from_hub["result"],
        json!(room),
        "Groups::members in a hub method"
    );
    let from_hub = members[2].ok("UserConnections", json!(["eli"])).await;
    assert_eq!(from_hub["result"], json!([members[2].id]));
    members[1].ok("Leave", json!(["room"])).await;
    let presence = servers[2].manager.group_presence("room").await;
    assert_eq!(presence.count(), 2);
    assert!(!presence.connections.contains(&members[1].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_negotiated_on_one_server_runs_on_another_and_is_reached_from_a_third() {
    let redis = RedisServer::start().await;
    let servers = fleet(&redis, 3, options()).await;
    let (id, token) = negotiate(&servers[0]).await;
    let mut client = HubClient::open(&servers[1], &format!("?id={token}")).await;
    assert_eq!(
        client.id, id,
        "the connection keeps the id negotiated elsewhere"
    );
    let mut sender = HubClient::connect(&servers[2], None).await;
    sender.ok("ToClient", json!([id, "found you"])).await;
    assert_eq!(client.receive().await, "found you");
    sender.ok("AddOther", json!([id, "met"])).await;
    sender.ok("ToGroup", json!(["met", "in the group"])).await;
    assert_eq!(client.receive().await, "in the group");
}
