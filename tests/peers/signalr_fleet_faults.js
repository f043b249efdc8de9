#!/usr/bin/env node
// Fault tests of a fleet of `sockway hub --redis` servers with the official SignalR JavaScript
// client (npm @microsoft/signalr).
//
// kill: one server is killed (SIGKILL) while clients are connected. Clients:
//   - "direct" clients on two servers that survive (one of them also sends);
//   - "gateway" clients through `sockway gateway` (round-robin over every server, so some of
//     them land on the one killed), with the client's automatic reconnect, half of them with
//     stateful reconnect as well; each rejoins the group in `onreconnected`, since a new
//     connection starts in no group (as in ASP.NET Core SignalR).
// Every client is in group "room". The sender sends numbered messages ("seq N") to all
// (ReceiveMessage) and to the group (Send). After the kill it keeps sending until every client
// has received the same number on both targets, then sends TAIL more. Checked:
//   - every client's numbers are strictly increasing on both targets (order, no duplicates);
//   - every client got the TAIL last numbers exactly (count and order);
//   - the direct clients got every number (the other servers' clients are not disturbed: no
//     reconnect, nothing missed);
//   - at least one gateway client was disturbed (the test killed a server that held some);
//   - no client closed for good.
//
// flood: while a slow subscriber (the test's raw client that stopped reading) sits in group
// "room" on the server of SAME_URL, a client there and one on OTHER_URL join the group and a
// sender on OTHER_URL sends COUNT numbered messages of SIZE bytes to it; both clients must get
// every one, in order, once (the slow one stalls nobody).
//
// Prints one JSON line: {"scenario":"kill_one_server"|"flood","ok":true,"detail":{...}} or
// "ok":false and "error".
//
// Usage: node signalr_fleet_faults.js kill GATEWAY_HUB_URL DIRECT_HUB_URL_1 DIRECT_HUB_URL_2 PID
//          PID  the process id of the server to kill (behind the gateway, not a direct one)
//        node signalr_fleet_faults.js flood SAME_URL OTHER_URL COUNT SIZE
// Exit:  0 when the scenario passed, 1 otherwise, 2 on bad usage.
"use strict";

const signalR = require("@microsoft/signalr");

/** Every wait is bounded by this; a hang fails the scenario. */
const WAIT_MS = 30000;
/** How many gateway clients: two per server under round-robin. */
const GATEWAY_CLIENTS = 6;
/** Numbers sent before the kill, and after every client is receiving again. */
const BEFORE = 10;
const TAIL = 10;
/** The gap between automatic reconnect attempts, for as long as WAIT_MS. */
const RETRY_MS = 300;

function within(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Resolves once `check()` holds (polled), or rejects after `ms`. */
async function until(check, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${ms} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const retry = {
  nextRetryDelayInMilliseconds: (context) => (context.elapsedMilliseconds < WAIT_MS ? RETRY_MS : null),
};

/** A client and what it saw. */
async function client(name, url, { gateway, stateful }) {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.None);
  if (gateway) {
    builder = builder.withAutomaticReconnect(retry);
  }
  if (stateful) {
    builder = builder.withStatefulReconnect();
  }
  const connection = builder.build();
  const seen = {
    name, gateway, stateful, connection, all: [], group: [], ids: [],
    reconnecting: 0, reconnected: 0, closed: null, rejoinErrors: [],
  };
  connection.on("ReceiveMessage", (user, text) => {
    if (user === "seq") seen.all.push(Number(text));
  });
  connection.on("Send", (text) => {
    const match = /^seq (\d+)( |$)/.exec(text);
    if (match) seen.group.push(Number(match[1]));
  });
  connection.onreconnecting(() => { seen.reconnecting += 1; });
  connection.onreconnected(async (id) => {
    seen.reconnected += 1;
    seen.ids.push(id);
    try {
      await connection.invoke("AddToGroup", "room");
    } catch (error) {
      seen.rejoinErrors.push(String(error && error.message || error));
    }
  });
  connection.onclose((error) => { seen.closed = String(error && error.message || error || "closed"); });
  await within(connection.start(), `start ${name} on ${url}`);
  seen.ids.push(connection.connectionId);
  await within(connection.invoke("AddToGroup", "room"), `${name} joins the group`);
  return seen;
}

function last(list) {
  return list.length === 0 ? -1 : list[list.length - 1];
}

function increasing(list) {
  return list.every((n, i) => i === 0 || n > list[i - 1]);
}

function range(from, to) {
  const out = [];
  for (let n = from; n < to; n += 1) out.push(n);
  return out;
}

function same(a, b) {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

async function send(sender, n) {
  await within(sender.connection.invoke("SendMessage", "seq", String(n)), `SendMessage ${n}`);
  await within(sender.connection.invoke("SendMessageToGroup", "room", `seq ${n}`), `SendMessageToGroup ${n}`);
}

function got(seen, n) {
  return seen.all.includes(n) && seen.group.includes(n);
}

async function killOne(gatewayUrl, directOne, directTwo, pid) {
  const sender = await client("sender", directOne, {});
  const direct = [sender, await client("direct-2", directTwo, {})];
  const gateway = [];
  for (let i = 0; i < GATEWAY_CLIENTS; i += 1) {
    gateway.push(await client(`gateway-${i}`, gatewayUrl, { gateway: true, stateful: i % 2 === 0 }));
  }
  const everyone = direct.concat(gateway);
  try {
    for (let n = 0; n < BEFORE; n += 1) await send(sender, n);
    await until(() => everyone.every((seen) => got(seen, BEFORE - 1)), "every client receives before the kill");

    process.kill(pid, "SIGKILL");
    const killedAt = Date.now();
    let n = BEFORE;
    let settled = null;
    while (settled === null) {
      if (Date.now() - killedAt > 2 * WAIT_MS) {
        throw new Error(`some clients receive nothing after the kill: ${summary(everyone)}`);
      }
      await send(sender, n);
      try {
        await until(() => everyone.every((seen) => got(seen, n)), `number ${n}`, 1000);
        settled = n;
      } catch {
        n += 1;
      }
    }
    const tail = range(settled + 1, settled + 1 + TAIL);
    for (const m of tail) await send(sender, m);
    const end = tail[tail.length - 1];
    await until(() => everyone.every((seen) => last(seen.all) >= end && last(seen.group) >= end),
      `every client receives up to ${end}`);

    const problems = [];
    for (const seen of everyone) {
      for (const target of ["all", "group"]) {
        const list = seen[target];
        if (!increasing(list)) problems.push(`${seen.name} ${target}: out of order or twice: ${list}`);
        if (!same(list.filter((m) => m > settled), tail)) {
          problems.push(`${seen.name} ${target}: the tail ${tail} expected, got ${list.filter((m) => m > settled)}`);
        }
      }
      if (seen.closed !== null) problems.push(`${seen.name} closed: ${seen.closed}`);
      if (seen.rejoinErrors.length > 0) problems.push(`${seen.name} could not rejoin: ${seen.rejoinErrors}`);
    }
    for (const seen of direct) {
      const every = range(0, end + 1);
      if (!same(seen.all, every) || !same(seen.group, every) || seen.reconnecting > 0) {
        problems.push(`${seen.name} (on a surviving server) was disturbed: ${describe(seen)}`);
      }
    }
    const disturbed = gateway.filter((seen) => seen.reconnecting > 0 || !same(seen.all, range(0, end + 1)));
    if (disturbed.length === 0) problems.push("no gateway client was on the killed server");
    if (problems.length > 0) throw new Error(`${problems.join("; ")} | ${summary(everyone)}`);
    return {
      settledAfterMs: Date.now() - killedAt,
      sentAfterKill: end + 1 - BEFORE,
      disturbed: disturbed.map(describe),
      undisturbed: gateway.filter((seen) => !disturbed.includes(seen)).map((seen) => seen.name),
    };
  } finally {
    await Promise.allSettled(everyone.map((seen) => seen.connection.stop()));
  }
}

function describe(seen) {
  return {
    name: seen.name,
    stateful: Boolean(seen.stateful),
    reconnecting: seen.reconnecting,
    reconnected: seen.reconnected,
    ids: seen.ids,
    missedAll: range(0, last(seen.all) + 1).filter((m) => !seen.all.includes(m)).length,
    missedGroup: range(0, last(seen.group) + 1).filter((m) => !seen.group.includes(m)).length,
  };
}

function summary(everyone) {
  return JSON.stringify(everyone.map((seen) => ({
    ...describe(seen), lastAll: last(seen.all), lastGroup: last(seen.group), closed: seen.closed,
    state: seen.connection.state,
  })));
}

async function flood(sameUrl, otherUrl, count, size) {
  const sender = await client("sender", otherUrl, {});
  const receivers = [await client("same-server", sameUrl, {}), await client("other-server", otherUrl, {})];
  const padding = "x".repeat(size);
  const started = Date.now();
  try {
    for (let n = 0; n < count; n += 1) {
      await within(sender.connection.invoke("SendMessageToGroup", "room", `seq ${n} ${padding}`), `send ${n}`);
    }
    await until(() => receivers.every((seen) => last(seen.group) >= count - 1), `every receiver gets ${count}`);
    const problems = receivers
      .filter((seen) => !same(seen.group, range(0, count)) || seen.closed !== null)
      .map((seen) => `${seen.name}: ${JSON.stringify(describe(seen))} closed: ${seen.closed}`);
    if (problems.length > 0) throw new Error(problems.join("; "));
    return { count, size, ms: Date.now() - started };
  } finally {
    await Promise.allSettled([sender, ...receivers].map((seen) => seen.connection.stop()));
  }
}

async function run(name, body) {
  try {
    const detail = await body();
    console.log(JSON.stringify({ scenario: name, ok: true, detail }));
    process.exit(0);
  } catch (error) {
    console.log(JSON.stringify({ scenario: name, ok: false, error: String(error && error.message || error) }));
    process.exit(1);
  }
}

function usage() {
  console.error("usage: node signalr_fleet_faults.js kill GATEWAY_HUB_URL DIRECT_HUB_URL_1 DIRECT_HUB_URL_2 PID");
  console.error("       node signalr_fleet_faults.js flood SAME_URL OTHER_URL COUNT SIZE");
  process.exit(2);
}

function main() {
  const [mode, first, second, third, fourth] = process.argv.slice(2);
  if (mode === "kill") {
    const pid = Number(fourth);
    if (!first || !second || !third || !Number.isInteger(pid) || pid <= 0) usage();
    return run("kill_one_server", () => killOne(first, second, third, pid));
  }
  if (mode === "flood") {
    const count = Number(third);
    const size = Number(fourth);
    if (!first || !second || !Number.isInteger(count) || count <= 0 || !Number.isInteger(size) || size < 0) usage();
    return run("flood", () => flood(first, second, count, size));
  }
  return usage();
}

main();
