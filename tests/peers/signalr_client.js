#!/usr/bin/env node
// Runs the official SignalR JavaScript client (npm @microsoft/signalr, with
// @microsoft/signalr-protocol-msgpack for MessagePack) against the sample chat hub of
// `sockway hub`, scenario by scenario, and prints one JSON line per scenario:
//   {"scenario":"echo","transport":"WebSockets","protocol":"json","skipNegotiation":false,
//    "statefulReconnect":false,"ok":true,"detail":{...}}
// or, on failure, "ok":false and "error":"<what was expected and what came>".
//
// Usage: node signalr_client.js HUB_URL [--transport WebSockets|ServerSentEvents|LongPolling]
//          [--protocol json|messagepack] [--skip-negotiation] [--stateful-reconnect]
//          [--only NAME,NAME...]
//   HUB_URL               e.g. http://127.0.0.1:5000/chatHub
//   --skip-negotiation    connect the WebSocket straight to the hub (no POST negotiate);
//                         peers whose connection id a scenario needs still negotiate
//   --stateful-reconnect  every connection asks for stateful reconnect; adds the
//                         stateful_reconnect and stateful_cuts scenarios and leaves out
//                         auto_reconnect
// Env:   SIGNALR_LOG  the client's log level on stderr (Trace..None, default Warning)
//        SOCKWAY_HUB_PID  the server's process id, for the server_shutdown scenario
// Exit:  0 when every scenario passed; 1 (the failures summed up on stderr) otherwise;
//        2 on bad usage.
//
// Dropping a live transport: the connection under test goes through a loopback TCP proxy
// (signalr_support.js, CuttableProxy) whose open connections are reset on demand. The server
// sees its socket (or SSE response, or pending poll) die without a close frame and the client
// sees an abnormal closure, as with a network failure; the proxy keeps accepting, so the
// client's reconnect goes through it again.
"use strict";

const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");
const support = require("./signalr_support");
const scenarios = require("./signalr_scenarios");

const USAGE =
  "usage: node signalr_client.js HUB_URL [--transport WebSockets|ServerSentEvents|LongPolling] " +
  "[--protocol json|messagepack] [--skip-negotiation] [--stateful-reconnect] [--only NAME,...]";

/** The whole run may not take longer than this (each wait inside is bounded too). */
const RUN_LIMIT_MS = 240000;

function usage(reason) {
  console.error(`signalr_client: ${reason}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = {
    hubUrl: null,
    transport: "WebSockets",
    protocol: "json",
    skipNegotiation: false,
    statefulReconnect: false,
    only: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === "--transport") options.transport = value();
    else if (arg === "--protocol") options.protocol = value();
    else if (arg === "--skip-negotiation") options.skipNegotiation = true;
    else if (arg === "--stateful-reconnect") options.statefulReconnect = true;
    else if (arg === "--only") options.only = value().split(",").filter(Boolean);
    else if (arg.startsWith("--")) usage(`unknown option ${arg}`);
    else if (options.hubUrl === null) options.hubUrl = arg;
    else usage(`unexpected argument ${arg}`);
  }
  if (!options.hubUrl) usage("HUB_URL is missing");
  if (signalR.HttpTransportType[options.transport] === undefined) {
    usage(`unknown transport ${options.transport}`);
  }
  if (!["json", "messagepack"].includes(options.protocol)) {
    usage(`unknown protocol ${options.protocol}`);
  }
  if (options.protocol === "messagepack" && options.transport === "ServerSentEvents") {
    usage("Server-Sent Events carry text only: MessagePack needs WebSockets or LongPolling");
  }
  if (options.skipNegotiation && options.transport !== "WebSockets") {
    usage("--skip-negotiation needs --transport WebSockets");
  }
  if (options.statefulReconnect && options.transport !== "WebSockets") {
    usage("the JavaScript client reconnects statefully over WebSockets only");
  }
  if (options.statefulReconnect && options.skipNegotiation) {
    usage("stateful reconnect needs the connection token from negotiate");
  }
  return options;
}

/**
 * What every scenario gets: `connect(label, opts)` opens a hub connection with the run's
 * transport, protocol and flags (opts: `url` to go elsewhere, e.g. through a proxy;
 * `negotiate: true` to negotiate even in skip-negotiation mode; `transport` to use another
 * transport than the run's (with the run's protocol); `reconnect: true` for
 * withAutomaticReconnect; `methods` to record in an Inbox), and every connection it opened
 * is stopped when the scenario ends.
 */
function makeContext(options) {
  const opened = [];
  const url = new URL(options.hubUrl);
  const context = {
    options,
    hubUrl: options.hubUrl,
    target: { host: url.hostname, port: Number(url.port || 80) },
    proxies: [],
    viaProxy(proxyPort) {
      const through = new URL(options.hubUrl);
      through.port = String(proxyPort);
      return through.toString();
    },
    async proxy() {
      const proxy = new support.CuttableProxy(context.target.host, context.target.port);
      const port = await proxy.listen();
      context.proxies.push(proxy);
      return { proxy, url: context.viaProxy(port) };
    },
    async connect(label, opts = {}) {
      const skip = options.skipNegotiation && !opts.negotiate;
      const seen = [];
      const protocol =
        options.protocol === "messagepack" ? new MessagePackHubProtocol() : new signalR.JsonHubProtocol();
      const builder = new signalR.HubConnectionBuilder()
        .withUrl(opts.url || options.hubUrl, {
          transport: signalR.HttpTransportType[opts.transport || options.transport],
          skipNegotiation: skip,
        })
        .withHubProtocol(support.tapProtocol(protocol, seen))
        .configureLogging(support.stderrLogger(label));
      if (opts.reconnect) {
        builder.withAutomaticReconnect([0, 250, 1000, 2000, 4000, 8000]);
      }
      if (options.statefulReconnect) {
        builder.withStatefulReconnect();
      }
      const connection = builder.build();
      const inbox = new support.Inbox(connection, opts.methods || []);
      const closed = [];
      connection.onclose((error) => closed.push(error ? String(error) : "closed"));
      opened.push(connection);
      await support.bounded(connection.start(), `${label}: start()`);
      return { connection, inbox, seen, closed, label };
    },
    async cleanup() {
      await Promise.allSettled(opened.map((c) => support.bounded(c.stop(), "stop()", 10000)));
      for (const proxy of context.proxies) proxy.close();
    },
  };
  return context;
}

/**
 * The scenarios this run executes, in order. Run only when named with --only:
 * `idle_keepalive` (35 s of silence) and `server_shutdown` (sends SIGTERM to the server).
 */
function selected(options) {
  if (options.only) {
    for (const name of options.only) {
      if (!scenarios.ALL[name]) usage(`unknown scenario ${name}`);
    }
    return options.only;
  }
  const names = [
    "send_message",
    "groups",
    "stream_counter",
    "stream_cancel",
    "upload_stream",
    "client_result",
    "echo",
    "unknown_method",
    "invocation_errors",
    "burst_order",
    "concurrent_large",
    "oversize_message",
  ];
  names.push(...(options.statefulReconnect ? ["stateful_reconnect", "stateful_cuts"] : ["auto_reconnect"]));
  return names;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const limit = setTimeout(() => {
    console.error(`signalr_client: the whole run exceeded ${RUN_LIMIT_MS} ms`);
    process.exit(1);
  }, RUN_LIMIT_MS);
  const failed = [];
  for (const name of selected(options)) {
    const context = makeContext(options);
    const line = {
      scenario: name,
      transport: options.transport,
      protocol: options.protocol,
      skipNegotiation: options.skipNegotiation,
      statefulReconnect: options.statefulReconnect,
    };
    const started = Date.now();
    try {
      const detail = await support.bounded(scenarios.ALL[name](context), name, 60000);
      Object.assign(line, { ok: true, detail: detail || {} });
    } catch (error) {
      failed.push(name);
      Object.assign(line, { ok: false, error: error && error.message ? error.message : String(error) });
    }
    line.ms = Date.now() - started;
    await context.cleanup();
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  clearTimeout(limit);
  if (failed.length > 0) {
    console.error(`signalr_client: ${failed.length} scenario(s) failed: ${failed.join(", ")}`);
    process.exit(1);
  }
  process.exit(0);
}

process.on("unhandledRejection", (reason) => {
  process.stderr.write(`signalr_client: unhandled rejection: ${reason && reason.stack ? reason.stack : reason}\n`);
});

main().catch((error) => {
  console.error(`signalr_client: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
