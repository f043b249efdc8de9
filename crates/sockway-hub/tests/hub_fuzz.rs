//! Arbitrary sequences of hub messages (valid records, wrong shapes, unknown ids, garbage)
//! never panic the connection runtime, and never disturb another connection.

mod hub_support;

use hub_support::{completion, connect_with, info, WAIT};
use proptest::prelude::*;
use serde_json::{json, Value};
use sockway_hub::sample::chat_hub;

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("1")),
        Just(json!("2")),
        Just(json!("s")),
        Just(json!(7)),
        Just(Value::Null),
    ]
}

fn argument() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("text")),
        Just(json!(3)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(null)),
        Just(json!([1, 2])),
        Just(json!({"a": 1})),
        Just(json!(1e300)),
    ]
}

fn target() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("Echo")),
        Just(json!("Counter")),
        Just(json!("UploadStream")),
        Just(json!("SendMessage")),
        Just(json!("AddToGroup")),
        Just(json!("WaitForMessage")),
        Just(json!("Nope")),
        Just(json!(5)),
    ]
}

fn record() -> impl Strategy<Value = String> {
    let message = (
        0u64..12,
        id(),
        target(),
        prop::collection::vec(argument(), 0..3),
        prop::option::of(prop::collection::vec(id(), 0..3)),
        argument(),
    )
        .prop_map(|(kind, id, target, arguments, stream_ids, item)| {
            let mut message = json!({
                "type": kind, "invocationId": id, "target": target, "arguments": arguments,
                "item": item, "result": item, "sequenceId": 1,
            });
            if let Some(stream_ids) = stream_ids {
                message["streamIds"] = json!(stream_ids);
            }
            format!("{message}\u{1e}")
        });
    prop_oneof![
        8 => message,
        1 => Just("{\"type\":1,\u{1e}".to_owned()),
        1 => Just("[]\u{1e}".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_messages_never_panic_or_disturb_others(
        records in prop::collection::vec(record(), 1..12),
        stateful in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let hub = chat_hub();
            let wild = connect_with(&hub, info("wild", stateful), 1024, 2).await;
            let mut calm = connect_with(&hub, info("calm", false), 1024, 1).await;
            for record in records {
                if wild.inbound.send(sockway_hub::link::Inbound::Data(record.into())).await.is_err() {
                    break;
                }
            }
            calm.invoke("c", "Echo", json!(["steady"])).await;
            assert_eq!(completion(&mut calm, "c").await["result"], "steady");
            drop(wild.inbound);
            drop(wild.outbound);
            tokio::time::timeout(WAIT, wild.task)
                .await
                .expect("the wild connection ends once its client is gone")
                .expect("no panic");
        });
    }
}
