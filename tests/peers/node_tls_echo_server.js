#!/usr/bin/env node
// TLS echo server built on npm `ws` over Node's `https`, for the client's
// wss:// interop tests.
//
// Usage:
//   node node_tls_echo_server.js CERT KEY PORT_FILE
//
// CERT and KEY are PEM files (server certificate chain and private key).
// Listens on 127.0.0.1 with an OS-chosen port and echoes every message back
// with the same type. Any request path is accepted.
//
// - PORT_FILE: the chosen port is written there as decimal text and a
//   newline, atomically (temp file + rename), once the server is listening.
//
// Runs until killed (SIGTERM/SIGINT), until its parent process dies, or --
// when stdin is a pipe or socket -- until stdin reaches EOF, so a test that
// spawns it with a piped stdin (handle kept alive) cannot leak it.
// Requires `npm ci` in this directory (scripts/install-peers.sh does it).
'use strict';

const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const MAX_PAYLOAD = 64 * 1024 * 1024;

function writePortAtomically(path, port) {
  const tmp = `${path}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, `${port}\n`);
  fs.renameSync(tmp, path);
}

function stdinIsPipe() {
  try {
    const st = fs.fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

function main() {
  const argv = process.argv.slice(2);
  if (argv.length !== 3) {
    console.error('usage: node_tls_echo_server.js CERT KEY PORT_FILE');
    process.exit(2);
  }
  const [certFile, keyFile, portFile] = argv;
  const server = https.createServer({
    cert: fs.readFileSync(certFile),
    key: fs.readFileSync(keyFile),
  });
  const wss = new WebSocketServer({ server, maxPayload: MAX_PAYLOAD, perMessageDeflate: false });

  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });

  server.listen(0, '127.0.0.1', () => writePortAtomically(portFile, server.address().port));

  const stop = () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  if (stdinIsPipe()) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }

  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 500).unref();
}

main();
