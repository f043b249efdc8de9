//! The sample chat hub of the ASP.NET Core SignalR documentation's samples, under the same
//! method names, shared by `sockway hub` and the tests.

use std::time::Duration;

use futures_util::{stream, Stream, StreamExt};

use crate::{ClientStream, Hub, HubBuilder, HubContext, HubError, HubOptions};

/// The chat hub with the default options (see [`chat_hub_with`]).
pub fn chat_hub() -> Hub {
    chat_hub_with(HubOptions::default())
}

/// The chat hub:
///
/// - `SendMessage(user, message)`: every client gets `ReceiveMessage(user, message)`;
/// - `AddToGroup(groupName)` / `RemoveFromGroup(groupName)`: the group gets `Send` with
///   "{connectionId} has joined the group {groupName}." / "... has left the group ...";
/// - `SendMessageToGroup(groupName, message)`: the group gets `Send(message)`;
/// - `Counter(count, delay)`: streams the integers `0..count`, one every `delay` ms;
/// - `UploadStream(stream)`: counts the strings the client streams and returns the count;
/// - `WaitForMessage(connectionId)`: asks that client's `GetMessage` for a string (a client
///   result) and returns it;
/// - `Echo(message)`: returns its argument.
///
/// `WaitForMessage` needs no more than one parallel invocation: the waiting method gives its
/// slot up, as ASP.NET Core 8 does.
pub fn chat_hub_with(options: HubOptions) -> Hub {
    chat_hub_builder(options).build()
}

/// The chat hub's builder (the methods of [`chat_hub_with`]), for a caller that sets more
/// before building, such as a backplane's routing layer (`sockway hub --redis`).
pub fn chat_hub_builder(options: HubOptions) -> HubBuilder {
    Hub::builder()
        .options(options)
        .method(
            "SendMessage",
            |ctx: HubContext, (user, message): (String, String)| async move {
                ctx.clients()
                    .all()
                    .send("ReceiveMessage", (user, message))
                    .await
            },
        )
        .method(
            "AddToGroup",
            |ctx: HubContext, (group,): (String,)| async move {
                ctx.groups()
                    .add(ctx.connection_id(), group.as_str())
                    .await?;
                let text = format!("{} has joined the group {group}.", ctx.connection_id());
                ctx.clients().group(group).send("Send", (text,)).await
            },
        )
        .method(
            "RemoveFromGroup",
            |ctx: HubContext, (group,): (String,)| async move {
                ctx.groups()
                    .remove(ctx.connection_id(), group.as_str())
                    .await?;
                let text = format!("{} has left the group {group}.", ctx.connection_id());
                ctx.clients().group(group).send("Send", (text,)).await
            },
        )
        .method(
            "SendMessageToGroup",
            |ctx: HubContext, (group, message): (String, String)| async move {
                ctx.clients().group(group).send("Send", (message,)).await
            },
        )
        .stream("Counter", |_ctx: HubContext, (count, delay): (u32, u64)| {
            counter(count, Duration::from_millis(delay))
        })
        .method(
            "UploadStream",
            |_ctx: HubContext, (mut items,): (ClientStream<String>,)| async move {
                let mut count = 0u64;
                while let Some(item) = items.next().await {
                    item?;
                    count += 1;
                }
                Ok::<_, HubError>(count)
            },
        )
        .method(
            "WaitForMessage",
            |ctx: HubContext, (connection_id,): (String,)| async move {
                ctx.clients()
                    .client(connection_id)
                    .invoke::<String>("GetMessage", ())
                    .await
            },
        )
        .method(
            "Echo",
            |_ctx: HubContext, (message,): (String,)| async move { Ok::<_, HubError>(message) },
        )
}

/// `0..count`: the first at once, each next one `delay` later, and the end `delay` after the
/// last, as the documentation's `Counter` (`yield return i; await Task.Delay(delay)`).
fn counter(count: u32, delay: Duration) -> impl Stream<Item = Result<u32, HubError>> {
    stream::unfold(0, move |next| async move {
        if next > 0 {
            tokio::time::sleep(delay).await;
        }
        if next >= count {
            return None;
        }
        Some((Ok(next), next + 1))
    })
}
