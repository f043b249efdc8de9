// The scenarios of signalr_client.js: each takes the run's context (connect, proxy) and
// exercises one behaviour of the sample chat hub of `sockway hub` with the official client,
// throwing an Error that says what was expected and what came, or returning details that
// signalr_client.js prints with the result.
//
// The hub's methods are those of the ASP.NET Core SignalR docs' samples (issue #16):
// SendMessage(user, message) -> ReceiveMessage(user, message) to all; AddToGroup /
// RemoveFromGroup(group) -> Send("{connectionId} has joined|left the group {group}.") to the
// group; SendMessageToGroup(group, message) -> Send(message) to the group; Counter(count,
// delay) streams 0..count-1; UploadStream(stream) returns the item count; WaitForMessage(id)
// returns what that client's GetMessage handler answers; Echo(message) returns it.
"use strict";

const crypto = require("crypto");
const signalR = require("@microsoft/signalr");
const { bounded, waitUntil, sleep, assert, assertEqual } = require("./signalr_support");

/** A short random tag, so that no two runs (or scenarios) share group names or texts. */
function nonce() {
  return crypto.randomUUID().slice(0, 8);
}

/** Invokes `method(...args)` on `peer` and awaits its completion (bounded). */
function invoke(peer, method, ...args) {
  return bounded(peer.connection.invoke(method, ...args), `${peer.label}: invoke ${method}`);
}

/** How many calls of client method `name` with exactly `args` `peer` has received. */
function count(peer, name, args) {
  const wanted = JSON.stringify(args);
  return peer.inbox.of(name).filter((a) => JSON.stringify(a) === wanted).length;
}

/** The messages of type `type` the server sent to `peer` (before the client filtered them). */
function seenOfType(peer, type) {
  return peer.seen.filter((m) => m.type === type);
}

/** SendMessage from one connection reaches every connection (the caller too), once. */
async function sendMessage(ctx) {
  const methods = ["ReceiveMessage"];
  const a = await ctx.connect("A", { methods });
  const b = await ctx.connect("B", { methods });
  const first = `hello ${nonce()} from A: ünïcödé ✓ 🌍`;
  await invoke(a, "SendMessage", "alice", first);
  await a.inbox.waitFor("ReceiveMessage", ["alice", first], "A");
  await b.inbox.waitFor("ReceiveMessage", ["alice", first], "B");
  const second = `hi ${nonce()} from B, sent without an invocation id`;
  await bounded(b.connection.send("SendMessage", "bob", second), "B: send SendMessage");
  await a.inbox.waitFor("ReceiveMessage", ["bob", second], "A");
  await b.inbox.waitFor("ReceiveMessage", ["bob", second], "B");
  for (const peer of [a, b]) {
    assertEqual(count(peer, "ReceiveMessage", ["alice", first]), 1, `${peer.label}: copies of the first message`);
    assertEqual(count(peer, "ReceiveMessage", ["bob", second]), 1, `${peer.label}: copies of the second message`);
  }
  return { received: a.inbox.of("ReceiveMessage").length };
}

/**
 * Waits for `peer` to get Send("{id} has joined|left the group {group}.") and returns the id:
 * `id` when it is known, or the one the text names (a skip-negotiation connection has no
 * connectionId on the client).
 */
async function waitForGroupNotice(peer, id, verb, group) {
  if (id) {
    await peer.inbox.waitFor("Send", [`${id} has ${verb} the group ${group}.`], peer.label);
    return id;
  }
  const suffix = ` has ${verb} the group ${group}.`;
  const find = () => peer.inbox.of("Send").find((a) => typeof a[0] === "string" && a[0].endsWith(suffix));
  await waitUntil(
    () => find() !== undefined,
    `${peer.label}: Send("<id>${suffix}")`,
    () => JSON.stringify(peer.inbox.of("Send")),
  );
  const named = find()[0].slice(0, -suffix.length);
  assert(named.length > 0 && !/\s/.test(named), `${peer.label}: no connection id in ${JSON.stringify(find()[0])}`);
  return named;
}

/** AddToGroup, SendMessageToGroup and RemoveFromGroup, with the sample's exact texts. */
async function groups(ctx) {
  const methods = ["Send", "ReceiveMessage"];
  const group = `group-${nonce()}`;
  const a = await ctx.connect("A", { methods });
  const b = await ctx.connect("B", { methods, negotiate: true });
  const outsider = await ctx.connect("C", { methods, negotiate: true });
  const idB = b.connection.connectionId;
  assert(idB, "B: no connectionId after negotiate");

  await invoke(a, "AddToGroup", group);
  const idA = await waitForGroupNotice(a, a.connection.connectionId, "joined", group);
  await invoke(b, "AddToGroup", group);
  await waitForGroupNotice(a, idB, "joined", group);
  await waitForGroupNotice(b, idB, "joined", group);

  const toGroup = `to the group ${nonce()}`;
  await invoke(a, "SendMessageToGroup", group, toGroup);
  await a.inbox.waitFor("Send", [toGroup], "A");
  await b.inbox.waitFor("Send", [toGroup], "B");

  await invoke(b, "RemoveFromGroup", group);
  await waitForGroupNotice(a, idB, "left", group);
  const afterLeave = `after B left ${nonce()}`;
  await invoke(a, "SendMessageToGroup", group, afterLeave);
  await a.inbox.waitFor("Send", [afterLeave], "A");

  // Messages to one connection keep their order: once this broadcast is in, anything the
  // group send had wrongly addressed to B or C would be in too.
  const marker = `marker ${nonce()}`;
  await invoke(a, "SendMessage", "marker", marker);
  await b.inbox.waitFor("ReceiveMessage", ["marker", marker], "B");
  await outsider.inbox.waitFor("ReceiveMessage", ["marker", marker], "C");
  assertEqual(count(b, "Send", [afterLeave]), 0, "B got a group message after RemoveFromGroup");
  assertEqual(outsider.inbox.of("Send"), [], "C, never in the group, got group messages");
  assertEqual(count(a, "Send", [toGroup]), 1, "A: copies of the group message");
  return { group, idA, idB };
}

/** Counter(5, 10) streams 0, 1, 2, 3, 4 and completes. */
async function streamCounter(ctx) {
  const a = await ctx.connect("A");
  const items = [];
  await bounded(
    new Promise((resolve, reject) => {
      a.connection.stream("Counter", 5, 10).subscribe({ next: (i) => items.push(i), complete: resolve, error: reject });
    }),
    "Counter(5, 10) stream",
  );
  assertEqual(items, [0, 1, 2, 3, 4], "Counter(5, 10) items");
  return { items };
}

/**
 * Disposing a subscription mid-stream sends CancelInvocation; the server stops the stream.
 * Counter(1000, 50) would go on sending about 30 items every 1.5 s; after the cancel (and a
 * second for it to arrive and for what was in flight) no more come in the next 1.5 s. The
 * connection keeps working.
 */
async function streamCancel(ctx) {
  const a = await ctx.connect("A");
  const items = [];
  let ended = null;
  const subscription = a.connection.stream("Counter", 1000, 50).subscribe({
    next: (i) => items.push(i),
    complete: () => (ended = "complete"),
    error: (e) => (ended = String(e)),
  });
  await waitUntil(() => items.length >= 3, "Counter(1000, 50): 3 items", () => JSON.stringify(items));
  subscription.dispose();
  const sent = () => seenOfType(a, signalR.MessageType.StreamItem).length;
  const atCancel = sent();
  await sleep(1000);
  const settled = sent();
  await sleep(1500);
  const late = sent() - settled;
  assert(late === 0, `the server kept streaming after CancelInvocation: ${late} items 1 to 2.5 s after it`);
  assertEqual(await invoke(a, "Echo", "after cancel"), "after cancel", "Echo after a cancelled stream");
  const completions = seenOfType(a, signalR.MessageType.Completion).length;
  return { itemsBeforeCancel: items.length, inFlight: settled - atCancel, clientEnd: ended, completions };
}

/** UploadStream with a client stream (signalR.Subject) of three strings returns 3. */
async function uploadStream(ctx) {
  const a = await ctx.connect("A");
  const subject = new signalR.Subject();
  const result = a.connection.invoke("UploadStream", subject);
  for (const item of ["one", "two", "three"]) {
    subject.next(item);
    await sleep(20);
  }
  subject.complete();
  assertEqual(await bounded(result, "A: UploadStream result"), 3, "UploadStream result");
  return { result: 3 };
}

/** WaitForMessage(B's id) returns what B's GetMessage handler (a client result) answered. */
async function clientResult(ctx) {
  const b = await ctx.connect("B", { negotiate: true });
  const reply = `reply ${nonce()} from B`;
  let asked = 0;
  b.connection.on("GetMessage", async () => {
    asked += 1;
    await sleep(50);
    return reply;
  });
  const a = await ctx.connect("A");
  const got = await invoke(a, "WaitForMessage", b.connection.connectionId);
  assertEqual(got, reply, "WaitForMessage result");
  assertEqual(asked, 1, "times B's GetMessage was called");
  return { result: got };
}

/** Echo returns its argument: ASCII, non-ASCII, empty, and 10,000 characters. */
async function echo(ctx) {
  const a = await ctx.connect("A");
  const values = ["hello", "héllo ✓ 🌍 \u0000 \"quoted\" \\", "", "x".repeat(10000)];
  for (const value of values) {
    assertEqual(await invoke(a, "Echo", value), value, `Echo of ${value.length} characters`);
  }
  return { values: values.length };
}

/** An unknown method is refused with the server's error, which names it; nothing breaks. */
async function unknownMethod(ctx) {
  const a = await ctx.connect("A");
  let error = null;
  try {
    await invoke(a, "NoSuchMethod", 1);
  } catch (e) {
    error = e;
  }
  assert(error, "invoking NoSuchMethod succeeded");
  assert(!/timed out/.test(error.message), `no Completion for NoSuchMethod: ${error.message}`);
  assert(error.message.includes("NoSuchMethod"), `the error does not name the method: ${error.message}`);
  assertEqual(await invoke(a, "Echo", "still here"), "still here", "Echo after the refusal");
  assertEqual(a.closed, [], "the connection closed");
  return { error: error.message };
}

/** Awaits `promise`, which must reject; returns the error's message. */
async function rejection(promise, what) {
  try {
    await bounded(promise, what);
  } catch (error) {
    assert(!/timed out/.test(error.message), `${what}: no answer: ${error.message}`);
    return error.message;
  }
  throw new Error(`${what} succeeded`);
}

/** Awaits a stream to its end (bounded); resolves to its items or rejects with its error. */
function streamed(connection, method, ...args) {
  return new Promise((resolve, reject) => {
    const items = [];
    connection.stream(method, ...args).subscribe({ next: (i) => items.push(i), complete: () => resolve(items), error: reject });
  });
}

/**
 * Wrong calls are refused with a Completion error that names the method, as the reference
 * does, and the connection keeps working: too few and too many arguments, a wrong argument
 * type, a streaming method invoked without streaming and the other way round.
 */
async function invocationErrors(ctx) {
  const a = await ctx.connect("A");
  const errors = {
    tooFew: await rejection(a.connection.invoke("Echo"), "Echo()"),
    tooMany: await rejection(a.connection.invoke("Echo", "x", "y"), "Echo(x, y)"),
    wrongType: await rejection(streamed(a.connection, "Counter", "five", 10), 'Counter("five", 10)'),
    streamInvoked: await rejection(a.connection.invoke("Counter", 3, 10), "invoke Counter"),
    invokeStreamed: await rejection(streamed(a.connection, "Echo", "x"), "stream Echo"),
  };
  for (const [what, message] of Object.entries(errors)) {
    const method = what === "wrongType" || what === "streamInvoked" ? "Counter" : "Echo";
    assert(message.includes(`'${method}'`), `${what}: the error does not name '${method}': ${message}`);
  }
  assertEqual(await invoke(a, "Echo", "still here"), "still here", "Echo after the refusals");
  assertEqual(a.closed, [], "the connection closed");
  return errors;
}

/**
 * 200 SendMessage sent without waiting (the client batches what queues up into one frame or
 * POST): the other connection gets all of them, once each, in order.
 */
async function burstOrder(ctx) {
  const a = await ctx.connect("A");
  const b = await ctx.connect("B", { methods: ["ReceiveMessage"] });
  const tag = nonce();
  const sent = [];
  const sends = [];
  for (let i = 0; i < 200; i++) {
    sent.push(`${i} ${tag}`);
    sends.push(a.connection.send("SendMessage", "burst", sent[i]));
  }
  await bounded(Promise.all(sends), "A: 200 sends");
  await b.inbox.waitFor("ReceiveMessage", ["burst", sent[sent.length - 1]], "B");
  assertEqual(textsFrom(b, "burst"), sent, "what B got, in order");
  return { messages: sent.length };
}

/**
 * Ten concurrent Echo invocations of 5,000 characters: each message is far under the 32 KiB
 * limit on one hub message, though the client sends them together (one frame or POST).
 */
async function concurrentLarge(ctx) {
  const a = await ctx.connect("A");
  const values = [...Array(10).keys()].map((i) => `${i} `.padEnd(5000, "x"));
  const echoed = await bounded(Promise.all(values.map((v) => a.connection.invoke("Echo", v))), "10 Echo calls");
  assertEqual(echoed.map((v) => v.slice(0, 3)), values.map((v) => v.slice(0, 3)), "the echoes");
  assert(echoed.every((v, i) => v === values[i]), "an echo differs from its argument");
  return { invocations: values.length, size: 5000 };
}

/**
 * One message over the hub's 32 KiB limit (an Echo of 40,000 characters): the server closes
 * that connection with a Close whose error names the limit, as the reference does
 * (`InvalidDataException`); another connection is not disturbed.
 */
async function oversizeMessage(ctx) {
  const a = await ctx.connect("A");
  const b = await ctx.connect("B");
  const message = await rejection(a.connection.invoke("Echo", "y".repeat(40000)), "Echo of 40,000 characters");
  await waitUntil(() => a.closed.length > 0, "A: onclose", () => `state ${a.connection.state}`);
  assert(/32768|32 ?KiB/.test(a.closed[0]), `the close does not name the 32 KiB limit: ${a.closed[0]}`);
  assertEqual(await invoke(b, "Echo", "B is fine"), "B is fine", "B's Echo after A's oversize message");
  return { invocationError: message, closed: a.closed[0] };
}

/**
 * A connection that sends nothing for 35 s (longer than the hub's 30 s client timeout and the
 * client's own 30 s server timeout) is still up: the server's keep-alive pings reach the
 * client, and the server does not time out a client that pings as its transport requires
 * (the JS client pings over WebSockets and SSE, not over long polling, whose polls keep the
 * connection alive).
 */
async function idleKeepalive(ctx) {
  const a = await ctx.connect("A");
  await sleep(35000);
  assertEqual(a.closed, [], "A's onclose calls while idle");
  assertEqual(await invoke(a, "Echo", "after 35 s"), "after 35 s", "Echo after 35 s idle");
  const pings = seenOfType(a, signalR.MessageType.Ping).length;
  if (ctx.options.transport !== "LongPolling") {
    assert(pings >= 1, "no keep-alive Ping from the server in 35 s (it pings every 15 s)");
  }
  return { pings };
}

/**
 * withAutomaticReconnect: the connection's transport is dropped (proxy cut); the client
 * reconnects as a new hub connection (new connection id) and gets broadcasts again.
 */
async function autoReconnect(ctx) {
  const { proxy, url } = await ctx.proxy();
  const a = await ctx.connect("A", { url, reconnect: true, methods: ["ReceiveMessage"] });
  const b = await ctx.connect("B", { methods: ["ReceiveMessage"] });
  const events = [];
  a.connection.onreconnecting((e) => events.push({ event: "reconnecting", error: String(e) }));
  a.connection.onreconnected((id) => events.push({ event: "reconnected", id: id || null }));
  const before = a.connection.connectionId;
  const cut = proxy.cut();
  assert(cut >= 1, "no open connection through the proxy to cut");
  await waitUntil(
    () => events.some((e) => e.event === "reconnected"),
    "A: onreconnected",
    () => `events ${JSON.stringify(events)}, closed ${JSON.stringify(a.closed)}`,
    30000,
  );
  assertEqual(a.connection.state, signalR.HubConnectionState.Connected, "A's state after reconnecting");
  const after = a.connection.connectionId;
  if (before) {
    assert(after && after !== before, `a reconnect is a new connection: id ${before} -> ${after}`);
  }
  const text = `after reconnect ${nonce()}`;
  await invoke(b, "SendMessage", "bob", text);
  await a.inbox.waitFor("ReceiveMessage", ["bob", text], "A after reconnecting");
  assertEqual(await invoke(a, "Echo", text), text, "Echo after reconnecting");
  return { before: before || null, after: after || null, events, proxied: proxy.accepted };
}

/** The texts `peer` received from `user` through ReceiveMessage, in order. */
function textsFrom(peer, user) {
  return peer.inbox
    .of("ReceiveMessage")
    .filter((a) => a[0] === user)
    .map((a) => a[1]);
}

/**
 * withStatefulReconnect across a dropped socket: B broadcasts 20 messages, A's socket is cut,
 * A sends 10 while its socket is down or coming back, B sends 20 more. A reconnects with the
 * same token (same connection id, no onreconnecting or onclose), and each side gets every
 * message exactly once and in order (sequence ids, acks and replay; duplicates dropped).
 */
async function statefulReconnect(ctx) {
  const { proxy, url } = await ctx.proxy();
  const methods = ["ReceiveMessage"];
  const a = await ctx.connect("A", { url, methods });
  const b = await ctx.connect("B", { methods });
  const agreed = a.connection.connection && a.connection.connection.features;
  assert(agreed && agreed.reconnect === true, "negotiate did not agree to stateful reconnect (no useStatefulReconnect)");
  const events = [];
  a.connection.onreconnecting((e) => events.push(`reconnecting: ${e}`));
  const id = a.connection.connectionId;
  const tag = nonce();
  const fromB = [];
  for (let i = 0; i < 20; i++) {
    fromB.push(`b${i} ${tag}`);
    await invoke(b, "SendMessage", "B", fromB[i]);
  }
  const cut = proxy.cut();
  assert(cut >= 1, "no open connection through the proxy to cut");
  const fromA = [];
  for (let i = 0; i < 10; i++) {
    fromA.push(`a${i} ${tag}`);
    await bounded(a.connection.send("SendMessage", "A", fromA[i]), `A: send a${i}`);
  }
  for (let i = 20; i < 40; i++) {
    fromB.push(`b${i} ${tag}`);
    await invoke(b, "SendMessage", "B", fromB[i]);
  }
  // Markers sent last: anything replayed twice would arrive before them.
  await bounded(a.connection.invoke("SendMessage", "A", `end ${tag}`), "A: invoke after the reconnect", 30000);
  await invoke(b, "SendMessage", "B", `end ${tag}`);
  await a.inbox.waitFor("ReceiveMessage", ["B", `end ${tag}`], "A");
  await b.inbox.waitFor("ReceiveMessage", ["A", `end ${tag}`], "B");
  assertEqual(textsFrom(a, "B"), [...fromB, `end ${tag}`], "what A got from B");
  assertEqual(textsFrom(a, "A"), [...fromA, `end ${tag}`], "what A got from itself");
  assertEqual(textsFrom(b, "A"), [...fromA, `end ${tag}`], "what B got from A");
  assertEqual(a.connection.connectionId, id, "A's connection id after the stateful reconnect");
  assertEqual(events, [], "onreconnecting calls");
  assertEqual(a.closed, [], "A's onclose calls");
  assert(proxy.accepted >= 2, `A did not reconnect through the proxy (${proxy.accepted} connection)`);
  // More invocations on the wire than handed to A's handlers: the server replayed what A had
  // not acknowledged, and the client dropped the copies by sequence id.
  const onTheWire = seenOfType(a, signalR.MessageType.Invocation).length;
  return { connectionId: id, proxied: proxy.accepted, onTheWire, handled: a.inbox.of("ReceiveMessage").length };
}

/**
 * Stateful reconnect under traffic: B invokes 300 broadcasts and A sends 300 while A's socket
 * is cut again and again (up to five times; each cut waits until A is back and has received
 * something over its new socket, as the client tries one reconnect per drop). Every message
 * reaches every connection once, in order, and A never sees onclose.
 */
async function statefulCuts(ctx) {
  const { proxy, url } = await ctx.proxy();
  const methods = ["ReceiveMessage"];
  const a = await ctx.connect("A", { url, methods });
  const b = await ctx.connect("B", { methods });
  const tag = nonce();
  const texts = [...Array(300).keys()].map((i) => `${i} ${tag}`);
  let sending = true;
  let cuts = 0;
  const fromB = (async () => {
    for (const text of texts) await invoke(b, "SendMessage", "B", text);
  })();
  const fromA = (async () => {
    for (const text of texts) {
      await bounded(a.connection.send("SendMessage", "A", text), "A: send");
      await sleep(2);
    }
  })();
  const cutter = (async () => {
    for (let k = 0; k < 5 && sending; k++) {
      await sleep(100);
      const accepted = proxy.accepted;
      const received = a.inbox.of("ReceiveMessage").length;
      cuts += proxy.cut();
      await waitUntil(
        () => !sending || (proxy.accepted > accepted && a.inbox.of("ReceiveMessage").length > received),
        `A back after cut ${k + 1}`,
      );
    }
  })();
  await bounded(Promise.all([fromB, fromA]), "300 messages each way across the cuts", 60000);
  sending = false;
  await cutter;
  await bounded(a.connection.invoke("SendMessage", "A", `end ${tag}`), "A: invoke after the cuts", 30000);
  await invoke(b, "SendMessage", "B", `end ${tag}`);
  await a.inbox.waitFor("ReceiveMessage", ["B", `end ${tag}`], "A");
  await b.inbox.waitFor("ReceiveMessage", ["A", `end ${tag}`], "B");
  const all = [...texts, `end ${tag}`];
  assertEqual(textsFrom(a, "B"), all, "what A got from B");
  assertEqual(textsFrom(a, "A"), all, "what A got from itself");
  assertEqual(textsFrom(b, "A"), all, "what B got from A");
  assertEqual(a.closed, [], "A's onclose calls");
  assert(cuts >= 2, `only ${cuts} cut(s) happened during the traffic`);
  return { cuts, proxied: proxy.accepted, onTheWire: seenOfType(a, signalR.MessageType.Invocation).length };
}

/**
 * The server is stopped (SIGTERM to SOCKWAY_HUB_PID) with a connection open on each
 * transport: every one of them ends (onclose), the WebSocket with its close frame, the SSE
 * stream and the pending poll answered, as the reference closes every connection when the
 * application stops. (How long the server takes is checked on its log by the caller.)
 */
async function serverShutdown(ctx) {
  const pid = Number(process.env.SOCKWAY_HUB_PID);
  assert(pid > 0, "SOCKWAY_HUB_PID is not set");
  const peers = [];
  for (const transport of ["WebSockets", "ServerSentEvents", "LongPolling"]) {
    peers.push(await ctx.connect(transport, { transport }));
  }
  process.kill(pid, "SIGTERM");
  await waitUntil(
    () => peers.every((p) => p.closed.length > 0),
    "every connection ended after SIGTERM",
    () => peers.map((p) => `${p.label}: ${p.connection.state}`).join(", "),
    30000,
  );
  return Object.fromEntries(peers.map((p) => [p.label, p.closed[0]]));
}

/** Every scenario by name. */
const ALL = {
  send_message: sendMessage,
  groups,
  stream_counter: streamCounter,
  stream_cancel: streamCancel,
  upload_stream: uploadStream,
  client_result: clientResult,
  echo,
  unknown_method: unknownMethod,
  invocation_errors: invocationErrors,
  burst_order: burstOrder,
  concurrent_large: concurrentLarge,
  oversize_message: oversizeMessage,
  idle_keepalive: idleKeepalive,
  auto_reconnect: autoReconnect,
  stateful_reconnect: statefulReconnect,
  stateful_cuts: statefulCuts,
  server_shutdown: serverShutdown,
};

module.exports = { ALL };
