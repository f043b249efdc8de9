//! Presence on one server (the in-process routing layer): a group's members and a user's
//! connections, from a hub method.

mod hub_support;

use hub_support::{completion, connect, connect_with, info};
use serde_json::json;
use sockway_hub::{Hub, HubContext};

fn hub() -> Hub {
    Hub::builder()
        .method("Join", |ctx: HubContext, (group,): (String,)| async move {
            ctx.groups().add(ctx.connection_id(), group).await
        })
        .method(
            "Members",
            |ctx: HubContext, (group,): (String,)| async move { ctx.groups().members(group).await },
        )
        .method("Mine", |ctx: HubContext, (user,): (String,)| async move {
            ctx.groups().user_connections(user).await
        })
        .build()
}

#[tokio::test]
async fn a_group_lists_its_members_and_a_user_its_connections() {
    let hub = hub();
    let mut b = connect(&hub, "b").await;
    let mut a = connect(&hub, "a").await;
    let mut with_user = info("c", false);
    with_user.user = Some("carol".into());
    let mut carol = connect_with(&hub, with_user, 64, 1).await;
    for client in [&mut a, &mut b] {
        client.invoke("1", "Join", json!(["room"])).await;
        completion(client, "1").await;
    }
    a.invoke("2", "Members", json!(["room"])).await;
    assert_eq!(completion(&mut a, "2").await["result"], json!(["a", "b"]));
    a.invoke("3", "Members", json!(["nobody here"])).await;
    assert_eq!(completion(&mut a, "3").await["result"], json!([]));
    carol.invoke("4", "Mine", json!(["carol"])).await;
    assert_eq!(completion(&mut carol, "4").await["result"], json!(["c"]));
}
