//! Byte compatibility with the official JavaScript client's protocol implementations
//! (`@microsoft/signalr`'s `JsonHubProtocol`, `@microsoft/signalr-protocol-msgpack`'s
//! `MessagePackHubProtocol`), run under Node without a network: what the client writes we
//! read, and what we write the client reads.
//!
//! The peers come from `SOCKWAY_PEERS_NODE_DIR` (`tests/peers` with `node_modules`, set by
//! `scripts/test-all.sh`) or the workspace's `tests/peers`; when they are not installed
//! (`scripts/install-peers.sh`) the test is skipped with a note, as the other interop tests do.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::BytesMut;
use serde_json::{json, Value as Json};

use crate::protocol::{
    Close, Completion, HubMessage, Incoming, Invocation, Outcome, Outgoing, Payload, Protocol,
    StreamItem,
};

/// How long Node may take to start and answer on a loaded machine.
const NODE_RUN: Duration = Duration::from_secs(60);

/// Writes the messages a client sends (`write`), or parses what it is given (`parse`: lines
/// of `json <base64>` / `messagepack <base64>`, one JSON array of messages out per line).
const SCRIPT: &str = r#"
const signalr = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");
const T = signalr.MessageType;
const protocols = { json: new signalr.JsonHubProtocol(), messagepack: new MessagePackHubProtocol() };
const mode = process.argv[1];
if (mode === "write") {
  const messages = [
    { type: T.Invocation, invocationId: "1", target: "Send",
      arguments: [42, "text é", { name: "n", list: [1, 2.5, null, true] }], streamIds: [] },
    { type: T.Invocation, target: "Fire", arguments: [] },
    { type: T.Invocation, invocationId: "2", target: "Upload", arguments: ["x"], streamIds: ["s1"] },
    { type: T.StreamInvocation, invocationId: "3", target: "Counter", arguments: [10, 500] },
    { type: T.StreamItem, invocationId: "s1", item: { a: -1 } },
    { type: T.Completion, invocationId: "s1" },
    { type: T.Completion, invocationId: "4", result: "r" },
    { type: T.Completion, invocationId: "5", error: "boom" },
    { type: T.CancelInvocation, invocationId: "3" },
    { type: T.Ping },
    { type: T.Close },
    { type: T.Ack, sequenceId: 5 },
    { type: T.Sequence, sequenceId: 6 },
  ];
  for (const [name, protocol] of Object.entries(protocols)) {
    const all = messages.slice();
    if (name === "messagepack") {
      all.push({ type: T.Invocation, target: "Bytes", arguments: [new Uint8Array([1, 2, 255])] });
    }
    const parts = all.map((m) => Buffer.from(protocol.writeMessage(m)));
    console.log(name + " " + Buffer.concat(parts).toString("base64"));
  }
} else {
  const lines = require("fs").readFileSync(0, "utf8").split("\n").filter((l) => l);
  for (const line of lines) {
    const [name, data] = line.split(" ");
    const bytes = Buffer.from(data, "base64");
    const input = name === "json" ? bytes.toString("utf8")
      : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    const parsed = protocols[name].parseMessages(input, signalr.NullLogger.instance);
    const keys = ["type", "invocationId", "target", "arguments", "streamIds", "item", "result",
      "error", "allowReconnect", "sequenceId"];
    const plain = parsed.map((m) => {
      const out = {};
      for (const key of keys) {
        const value = m[key];
        if (value === undefined) continue;
        if (key === "error" && value === null) continue;
        if (key === "allowReconnect" && value === false) continue;
        if (key === "streamIds" && value.length === 0) continue;
        out[key] = value;
      }
      return out;
    });
    console.log(JSON.stringify(plain));
  }
}
"#;

/// The directory whose `node_modules` has the SignalR client, if it is installed.
fn node_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SOCKWAY_PEERS_NODE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers"),
    };
    let installed = dir
        .join("node_modules/@microsoft/signalr-protocol-msgpack")
        .is_dir();
    installed.then_some(dir)
}

/// Runs the script in `mode` with `input` on stdin; its stdout lines.
fn run_node(dir: &PathBuf, mode: &str, input: &str) -> Vec<String> {
    let mut child = Command::new("node")
        .args(["-e", SCRIPT, mode])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start node: {error}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > NODE_RUN {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node did not finish within {NODE_RUN:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut errors = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut errors);
    }
    assert!(status.success(), "node failed ({status}): {errors}");
    let text = reader.join().unwrap().unwrap();
    text.lines().map(str::to_owned).collect()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A received message with its values as JSON, to compare.
fn plain(message: Incoming) -> Json {
    let bind = |value: crate::protocol::Value| value.bind::<Json>().unwrap();
    match message {
        HubMessage::Invocation(i) | HubMessage::StreamInvocation(i) => json!({
            "id": i.invocation_id, "target": i.target, "streams": i.stream_ids,
            "arguments": i.arguments.into_iter().map(bind).collect::<Vec<_>>(),
        }),
        HubMessage::StreamItem(item) => json!({"id": item.invocation_id, "item": bind(item.item)}),
        HubMessage::Completion(c) => match c.outcome {
            Outcome::Void => json!({"id": c.invocation_id}),
            Outcome::Result(result) => json!({"id": c.invocation_id, "result": bind(result)}),
            Outcome::Error(error) => json!({"id": c.invocation_id, "error": error}),
        },
        HubMessage::CancelInvocation { invocation_id } => json!({"cancel": invocation_id}),
        HubMessage::Ping => json!("ping"),
        HubMessage::Close(close) => {
            json!({"close": close.error, "reconnect": close.allow_reconnect})
        }
        HubMessage::Ack { sequence_id } => json!({"ack": sequence_id}),
        HubMessage::Sequence { sequence_id } => json!({"sequence": sequence_id}),
    }
}

#[test]
fn we_read_what_the_javascript_client_writes() {
    let Some(dir) = node_dir() else {
        eprintln!(
            "skipped: the SignalR JavaScript client is not installed (scripts/install-peers.sh)"
        );
        return;
    };
    let expected = [
        json!({"id": "1", "target": "Send", "streams": [],
               "arguments": [42, "text é", {"name": "n", "list": [1, 2.5, null, true]}]}),
        json!({"id": null, "target": "Fire", "streams": [], "arguments": []}),
        json!({"id": "2", "target": "Upload", "streams": ["s1"], "arguments": ["x"]}),
        json!({"id": "3", "target": "Counter", "streams": [], "arguments": [10, 500]}),
        json!({"id": "s1", "item": {"a": -1}}),
        json!({"id": "s1"}),
        json!({"id": "4", "result": "r"}),
        json!({"id": "5", "error": "boom"}),
        json!({"cancel": "3"}),
        json!("ping"),
        json!({"close": null, "reconnect": false}),
        json!({"ack": 5}),
        json!({"sequence": 6}),
    ];
    let lines = run_node(&dir, "write", "");
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in lines {
        let (name, data) = line.split_once(' ').unwrap();
        let protocol = Protocol::from_name(name).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let mut buffer = BytesMut::from(&bytes[..]);
        let mut read = Vec::new();
        while let Some(message) = protocol.parse(&mut buffer, 1 << 20).unwrap() {
            read.push(message);
        }
        assert!(buffer.is_empty(), "{name}");
        if protocol == Protocol::MessagePack {
            let Some(HubMessage::Invocation(bytes)) = read.pop() else {
                panic!("no Bytes invocation")
            };
            let data: serde_bytes::ByteBuf = bytes.arguments[0].clone().bind().unwrap();
            assert_eq!(data.into_vec(), vec![1, 2, 255], "a Uint8Array is bin");
        }
        let read: Vec<Json> = read.into_iter().map(plain).collect();
        assert_eq!(read, expected, "{name}");
    }
}

#[test]
fn the_javascript_client_reads_what_we_write() {
    let Some(dir) = node_dir() else {
        eprintln!(
            "skipped: the SignalR JavaScript client is not installed (scripts/install-peers.sh)"
        );
        return;
    };
    let messages: Vec<Outgoing> = vec![
        HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: "ReceiveMessage".into(),
            arguments: vec![Payload::new("user é"), Payload::new(json!({"n": [1, 2.5]}))],
            stream_ids: vec![],
        }),
        HubMessage::Invocation(Invocation {
            invocation_id: Some("7".into()),
            target: "GetAnswer".into(),
            arguments: vec![],
            stream_ids: vec![],
        }),
        HubMessage::StreamItem(StreamItem {
            invocation_id: "3".into(),
            item: Payload::new(-4),
        }),
        HubMessage::Completion(Completion {
            invocation_id: "3".into(),
            outcome: Outcome::Void,
        }),
        HubMessage::Completion(Completion {
            invocation_id: "1".into(),
            outcome: Outcome::Result(Payload::new(())),
        }),
        HubMessage::Completion(Completion {
            invocation_id: "2".into(),
            outcome: Outcome::Error("It didn't work!".into()),
        }),
        HubMessage::Ping,
        HubMessage::Close(Close {
            error: Some("Server is stopping.".into()),
            allow_reconnect: true,
        }),
        HubMessage::Ack { sequence_id: 9 },
        HubMessage::Sequence { sequence_id: 10 },
    ];
    let expected = json!([
        {"type": 1, "target": "ReceiveMessage", "arguments": ["user é", {"n": [1, 2.5]}]},
        {"type": 1, "invocationId": "7", "target": "GetAnswer", "arguments": []},
        {"type": 2, "invocationId": "3", "item": -4},
        {"type": 3, "invocationId": "3"},
        {"type": 3, "invocationId": "1", "result": null},
        {"type": 3, "invocationId": "2", "error": "It didn't work!"},
        {"type": 6},
        {"type": 7, "error": "Server is stopping.", "allowReconnect": true},
        {"type": 8, "sequenceId": 9},
        {"type": 9, "sequenceId": 10},
    ]);
    let mut input = String::new();
    for protocol in [Protocol::Json, Protocol::MessagePack] {
        let mut out = Vec::new();
        for message in &messages {
            protocol.write(message, &mut out).unwrap();
        }
        input.push_str(&format!("{} {}\n", protocol.name(), base64(&out)));
    }
    let lines = run_node(&dir, "parse", &input);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, name) in lines.iter().zip(["json", "messagepack"]) {
        let parsed: Json = serde_json::from_str(line).unwrap();
        assert_eq!(parsed, expected, "{name}");
    }
}
