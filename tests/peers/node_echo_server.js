#!/usr/bin/env node
// Echo server built on npm `ws`, for interop tests.
//
// Usage:
//   node node_echo_server.js PORT_FILE [--compression [--no-context-takeover]]
//                            [--tls CERT KEY]
//
// Listens on 127.0.0.1 with an OS-chosen port and echoes every message back
// with the same type (text stays text, binary stays binary). Any request path
// is accepted; tests use ws://127.0.0.1:PORT/ws.
//
// - PORT_FILE: the chosen port is written there as decimal text followed by a
//   newline, atomically (temp file + rename), once the server is listening.
//   Poll until the file exists.
// - --compression: negotiate permessage-deflate (off by default).
// - --tls CERT KEY: serve wss:// over Node's `https` with these PEM files
//   (server certificate chain and private key).
//
// Runs until killed (SIGTERM/SIGINT), until its parent process dies, or --
// when stdin is a pipe or socket -- until stdin reaches EOF, so a test that
// spawns it with a piped stdin (handle kept alive) cannot leak it. Stdin that
// is /dev/null, a file or a terminal is ignored (it would hit EOF at once).
//
// Messages up to 64 MiB in up to 2**20 fragments are accepted (the ws
// default of 16384 fragments is lifted).
// Requires `npm ci` in this directory (scripts/install-peers.sh does it).
'use strict';

const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const MAX_PAYLOAD = 64 * 1024 * 1024;
// ws 8.23 rejects messages of more than 16384 fragments (close 1008) by
// default; lift that so fine fragmentation by the peer under test is allowed.
const MAX_FRAGMENTS = 1024 * 1024;

function parseArgs(argv) {
  const tlsAt = argv.indexOf('--tls');
  const tls = tlsAt >= 0 ? argv.slice(tlsAt + 1, tlsAt + 3) : null;
  const rest = tlsAt >= 0 ? [...argv.slice(0, tlsAt), ...argv.slice(tlsAt + 3)] : argv;
  const positional = rest.filter((a) => !a.startsWith('--'));
  if (positional.length !== 1 || (tls && tls.length !== 2)) {
    console.error('usage: node_echo_server.js PORT_FILE [--compression] [--tls CERT KEY]');
    process.exit(2);
  }
  const compression = argv.includes('--compression');
  // --no-context-takeover: both sides reset their compression context per message.
  const perMessageDeflate = compression && argv.includes('--no-context-takeover')
    ? { serverNoContextTakeover: true, clientNoContextTakeover: true }
    : compression;
  return { portFile: positional[0], compression: perMessageDeflate, tls };
}

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
  const args = parseArgs(process.argv.slice(2));
  const listen = args.tls
    ? {
        server: https.createServer({
          cert: fs.readFileSync(args.tls[0]),
          key: fs.readFileSync(args.tls[1]),
        }),
      }
    : { host: '127.0.0.1', port: 0 };
  const wss = new WebSocketServer({
    ...listen,
    maxPayload: MAX_PAYLOAD,
    maxFragments: MAX_FRAGMENTS,
    perMessageDeflate: args.compression,
  });

  wss.on('connection', (ws) => {
    // `isBinary` preserves the frame type: text is echoed as text.
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {}); // a misbehaving peer must not crash the server
  });

  wss.on('listening', () => writePortAtomically(args.portFile, wss.address().port));
  // ws forwards an external server's 'listening'; it only listens by itself without one.
  if (listen.server) listen.server.listen(0, '127.0.0.1');

  const stop = () => {
    for (const client of wss.clients) client.terminate();
    wss.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  if (stdinIsPipe()) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume(); // discard input; we only care about EOF
  }

  // Exit if reparented (our parent died without closing our stdin).
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 500).unref();
}

main();
