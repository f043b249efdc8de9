// Helpers for the SignalR client scenarios (signalr_client.js): bounded waits, a logger for
// the official client that writes to stderr, a protocol wrapper that records every message
// the client parses, an inbox of client-method calls, and a loopback TCP proxy whose
// connections the test can cut to drop a transport under a live hub connection.
"use strict";

const net = require("net");
const signalR = require("@microsoft/signalr");

/** Default bound of one wait: generous, CI is a loaded 2-core machine. */
const STEP_MS = 20000;

/** Resolves after `ms` milliseconds. */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Awaits `promise`, failing with "LABEL: timed out after N ms" when it takes longer. */
async function bounded(promise, label, ms = STEP_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `predicate` until it holds; fails with `label` (and `describe()`) after `ms`. */
async function waitUntil(predicate, label, describe = () => "", ms = STEP_MS) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) {
      const state = describe();
      throw new Error(`${label}: not seen within ${ms} ms${state ? ` (${state})` : ""}`);
    }
    await sleep(10);
  }
}

/** Throws `message` (with both values) unless `actual` deep-equals `expected`. */
function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new Error(`${message}: expected ${e}, got ${a}`);
  }
}

/** Throws `message` unless `condition` holds. */
function assert(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/** The official client's log level named by SIGNALR_LOG (default Warning). */
function logLevel() {
  const name = process.env.SIGNALR_LOG || "Warning";
  const level = signalR.LogLevel[name];
  return level === undefined ? signalR.LogLevel.Warning : level;
}

/** An ILogger for connection `label`: lines at or above SIGNALR_LOG go to stderr. */
function stderrLogger(label) {
  const min = logLevel();
  return {
    log(level, message) {
      if (level >= min) {
        process.stderr.write(`[${label}] ${signalR.LogLevel[level]}: ${message}\n`);
      }
    },
  };
}

/**
 * Wraps a hub protocol instance so that every message it parses (before the client's own
 * duplicate filtering and dispatch) is appended to `seen`. The scenarios use it to see what
 * the server actually sent, e.g. stream items after a cancel that the client drops silently.
 */
function tapProtocol(protocol, seen) {
  const parse = protocol.parseMessages.bind(protocol);
  protocol.parseMessages = (input, logger) => {
    const messages = parse(input, logger);
    for (const message of messages) {
      seen.push(message);
    }
    return messages;
  };
  return protocol;
}

/** Records every call of the client methods `names` on `connection` as argument arrays. */
class Inbox {
  constructor(connection, names) {
    this.calls = {};
    for (const name of names) {
      this.calls[name] = [];
      connection.on(name, (...args) => {
        this.calls[name].push(args);
      });
    }
  }

  /** The argument arrays of every call of `name` so far. */
  of(name) {
    return this.calls[name];
  }

  /** Waits until a call of `name` has exactly the arguments `args`; returns its index. */
  async waitFor(name, args, label) {
    const wanted = JSON.stringify(args);
    const find = () => this.calls[name].findIndex((a) => JSON.stringify(a) === wanted);
    await waitUntil(
      () => find() >= 0,
      `${label}: ${name}${wanted}`,
      () => `received ${name}: ${JSON.stringify(this.calls[name].slice(-5))}`,
    );
    return find();
  }
}

/**
 * A loopback TCP proxy to `host:port`. A connection that goes through it can be dropped at
 * any time with `cut()`, which resets both halves of every open pair (the server sees its
 * socket die without a close frame, the client sees an abnormal closure), as a network
 * failure would; new connections are still accepted afterwards, so a client can reconnect.
 */
class CuttableProxy {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.pairs = new Set();
    this.accepted = 0;
    this.server = net.createServer((client) => this.relay(client));
  }

  /** Starts listening on 127.0.0.1 (port 0); resolves to the proxy's port. */
  listen() {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve(this.server.address().port));
    });
  }

  relay(client) {
    this.accepted += 1;
    const upstream = net.connect(this.port, this.host);
    const pair = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.setNoDelay(true);
      socket.on("error", end);
      socket.on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Drops every open connection (TCP RST both ways); returns how many pairs were cut. */
  cut() {
    const pairs = [...this.pairs];
    this.pairs.clear();
    for (const pair of pairs) {
      for (const socket of pair) {
        if (typeof socket.resetAndDestroy === "function" && socket._handle) {
          socket.resetAndDestroy();
        } else {
          socket.destroy();
        }
      }
    }
    return pairs.length;
  }

  /** Stops accepting and drops whatever is still open. */
  close() {
    this.cut();
    this.server.close();
  }
}

module.exports = {
  STEP_MS,
  sleep,
  bounded,
  waitUntil,
  assert,
  assertEqual,
  stderrLogger,
  tapProtocol,
  Inbox,
  CuttableProxy,
};
