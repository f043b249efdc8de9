#!/usr/bin/env node
// Interop client built on npm `ws`.
//
// Usage:
//   node node_client.js URL [--compression [--no-context-takeover]] [--ca FILE]
//
// Connects to URL (e.g. ws://127.0.0.1:PORT/ws) and, for each payload size in
// SIZES, sends a text message (valid UTF-8 of exactly that many bytes, mixing
// ASCII with 2-, 3- and 4-byte characters when the size allows) and a binary
// message (deterministic pseudo-random bytes), waiting for each echo and
// checking it has the same type and content. Then closes with code 1000 and
// waits for the closing handshake.
//
// Output / exit status:
//   OK <n_messages>     on stdout, exit 0 (n_messages = messages echoed)
//   FAIL: <reason>      on stdout, exit 1 (mismatch, error, or 30 s timeout)
//
// --compression offers permessage-deflate (off by default) and fails unless the server
// agrees to it. Incoming messages may be up to 64 MiB in up to 2**20 fragments. --ca trusts
// the certificate(s) in FILE (PEM) for a wss:// URL instead of Node's own list.
// Requires `npm ci` in this directory (scripts/install-peers.sh does it).
'use strict';

const fs = require('fs');
const WebSocket = require('ws');

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1048576];
const TIMEOUT_MS = 30_000;
const MAX_PAYLOAD = 64 * 1024 * 1024;
// ws 8.23 rejects messages of more than 16384 fragments (close 1008) by
// default; lift that so fine fragmentation by the peer under test is allowed.
const MAX_FRAGMENTS = 1024 * 1024;

// Cycle of characters of 1, 2, 3 and 4 UTF-8 bytes used to build text payloads.
const TEXT_UNITS = ['a', 'b', 'c', '\u00e9', 'd', '\u20ac', 'e', '\u{1d11e}', 'f', 'g'];

// A string whose UTF-8 encoding is exactly `size` bytes.
function makeText(size) {
  const out = [];
  let used = 0;
  for (let i = 0; used < size; i++) {
    let unit = TEXT_UNITS[i % TEXT_UNITS.length];
    let n = Buffer.byteLength(unit, 'utf8');
    if (used + n > size) [unit, n] = ['z', 1]; // pad the tail with ASCII
    out.push(unit);
    used += n;
  }
  const text = out.join('');
  if (Buffer.byteLength(text, 'utf8') !== size) throw new Error('makeText bug');
  return text;
}

// Deterministic pseudo-random bytes (xorshift32 seeded by size).
function makeBinary(size) {
  let state = ((0x9e3779b9 ^ size) >>> 0) || 1;
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state & 0xff;
  }
  return out;
}

function fail(reason) {
  console.log(`FAIL: ${reason}`);
  process.exit(1);
}

// Resolves with the next message ({data, isBinary}); rejects on close/error.
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
    };
    const onMessage = (data, isBinary) => { cleanup(); resolve({ data, isBinary }); };
    const onClose = (code, reason) => { cleanup(); reject(new Error(`closed early: ${code} ${reason}`)); };
    const onError = (err) => { cleanup(); reject(err); };
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
  });
}

function checkEcho(kind, size, sent, got) {
  const sentBinary = kind === 'binary';
  if (got.isBinary !== sentBinary) {
    throw new Error(`${kind} message of ${size} bytes: echoed as ${got.isBinary ? 'binary' : 'text'}`);
  }
  const sentBuf = sentBinary ? sent : Buffer.from(sent, 'utf8');
  if (got.data.length !== sentBuf.length) {
    throw new Error(`${kind} message of ${size} bytes: length ${got.data.length} != ${sentBuf.length}`);
  }
  if (!got.data.equals(sentBuf)) {
    let i = 0;
    while (got.data[i] === sentBuf[i]) i++;
    throw new Error(`${kind} message of ${size} bytes: content differs at byte ${i}`);
  }
}

async function exchange(url, compression, ca) {
  const ws = new WebSocket(url, {
    ca,
    maxPayload: MAX_PAYLOAD,
    maxFragments: MAX_FRAGMENTS,
    perMessageDeflate: compression,
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  if (compression && !String(ws.extensions).includes('permessage-deflate')) {
    throw new Error(`compression offered but not agreed: ${JSON.stringify(ws.extensions)}`);
  }
  let count = 0;
  for (const size of SIZES) {
    for (const [kind, payload] of [['text', makeText(size)], ['binary', makeBinary(size)]]) {
      const reply = nextMessage(ws);
      ws.send(payload, { binary: kind === 'binary' });
      checkEcho(kind, size, payload, await reply);
      count++;
    }
  }
  const closed = new Promise((resolve) => ws.once('close', resolve));
  ws.close(1000);
  await closed;
  return count;
}

async function main() {
  const args = process.argv.slice(2);
  const caAt = args.indexOf('--ca');
  const ca = caAt >= 0 ? fs.readFileSync(args[caAt + 1]) : undefined;
  const positional = args.filter((a, i) => !a.startsWith('--') && (caAt < 0 || i !== caAt + 1));
  if (positional.length !== 1) {
    console.error('usage: node_client.js URL [--compression]');
    process.exit(2);
  }
  setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);
  try {
    const compression = args.includes('--compression');
    // --no-context-takeover: ask for a fresh compression context per message, both ways.
    const perMessageDeflate = compression && args.includes('--no-context-takeover')
      ? { serverNoContextTakeover: true, clientNoContextTakeover: true }
      : compression;
    const count = await exchange(positional[0], perMessageDeflate, ca);
    console.log(`OK ${count}`);
    process.exit(0);
  } catch (err) {
    fail(err && err.message ? err.message : String(err));
  }
}

main();
