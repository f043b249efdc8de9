#!/usr/bin/env node
// Runs the official SignalR JavaScript client (npm @microsoft/signalr) against a fleet of
// `sockway hub --redis` servers sharing one Redis: on each transport, a client of the first
// server and a client of the second chat across them (SendMessage to all, a burst of
// messages that must arrive complete and in order, a group message, a client result). Behind
// a gateway without affinity the requests of one Server-Sent Events or long-polling client
// land on every server; the fleet relays them to the one holding the connection. Prints one
// JSON line per scenario:
//   {"scenario":"fleet_WebSockets","ok":true,"detail":{...}}
// or "ok":false and "error":"<what was expected and what came>".
//
// Usage: node signalr_fleet.js HUB_URL_A HUB_URL_B [TRANSPORT,...]
//   TRANSPORT,...  the transports to run (default WebSockets,ServerSentEvents,LongPolling);
//                  the two URLs may be the same (a gateway in front of the fleet)
// Exit:  0 when every scenario passed, 1 otherwise, 2 on bad usage.
"use strict";

const signalR = require("@microsoft/signalr");

/** Every wait is bounded by this; a hang fails the scenario. */
const WAIT_MS = 20000;

/** Messages in the ordered burst. */
const BURST = 20;

function within(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function connect(url, transport) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType[transport] })
    .configureLogging(signalR.LogLevel.Error)
    .build();
  await within(connection.start(), `start on ${url}`);
  return connection;
}

function expectEqual(got, want, what) {
  if (got !== want) {
    throw new Error(`${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
}

async function scenario(urlA, urlB, transport) {
  const one = await connect(urlA, transport);
  const two = await connect(urlB, transport);
  try {
    const chat = new Promise((resolve) => two.on("ReceiveMessage", (user, text) => resolve(`${user}: ${text}`)));
    one.on("ReceiveMessage", () => {});
    await within(one.invoke("SendMessage", "alice", `hello over ${transport}`), "SendMessage");
    expectEqual(await within(chat, "ReceiveMessage on the other server"), `alice: hello over ${transport}`, "chat");

    const burst = [];
    const burstDone = new Promise((resolve) => two.on("ReceiveMessage", (user, text) => {
      if (user === "burst") {
        burst.push(text);
        if (burst.length === BURST) resolve();
      }
    }));
    for (let i = 0; i < BURST; i += 1) {
      await within(one.invoke("SendMessage", "burst", `${i}`), `SendMessage ${i}`);
    }
    await within(burstDone, "the whole burst on the other client");
    const want = Array.from({ length: BURST }, (_, i) => `${i}`).join(",");
    expectEqual(burst.join(","), want, "the burst, complete and in order");

    const group = new Promise((resolve) => one.on("Send", (text) => {
      if (text === "to the room") resolve(text);
    }));
    await within(one.invoke("AddToGroup", "room"), "AddToGroup");
    await within(two.invoke("SendMessageToGroup", "room", "to the room"), "SendMessageToGroup");
    expectEqual(await within(group, "group message from the other server"), "to the room", "group");

    two.on("GetMessage", () => `answer over ${transport}`);
    const answer = await within(one.invoke("WaitForMessage", two.connectionId), "WaitForMessage");
    expectEqual(answer, `answer over ${transport}`, "client result across servers");
    return { chat: true, burst: burst.length, group: true, clientResult: answer };
  } finally {
    await Promise.allSettled([one.stop(), two.stop()]);
  }
}

async function main() {
  const [urlA, urlB, list] = process.argv.slice(2);
  const transports = (list || "WebSockets,ServerSentEvents,LongPolling").split(",");
  if (!urlA || !urlB || transports.some((name) => !(name in signalR.HttpTransportType))) {
    console.error("usage: node signalr_fleet.js HUB_URL_A HUB_URL_B [TRANSPORT,...]");
    process.exit(2);
  }
  let failed = 0;
  for (const transport of transports) {
    const name = `fleet_${transport}`;
    try {
      const detail = await scenario(urlA, urlB, transport);
      console.log(JSON.stringify({ scenario: name, ok: true, detail }));
    } catch (error) {
      failed += 1;
      console.log(JSON.stringify({ scenario: name, ok: false, error: String(error && error.message || error) }));
    }
  }
  process.exit(failed === 0 ? 0 : 1);
}

main();
