// Node `ws` echo server for sockway's comparison benchmark: `node echo.js PORT [THREADS]
// [--compression] [--tls DIR]` (TLS: an https server with DIR/cert.pem and DIR/key.pem). Echoes whole messages with their type; max message 64 MiB; no compression
// unless --compression, then permessage-deflate like sockway-echo's: window 15, context
// takeover both ways, zlib level 1 (sockway's compressor level; ws's default is zlib's 6),
// every message compressed (threshold 0; ws's default skips messages under 1 KiB). Node runs one event loop, so the THREADS argument the Rust servers take is accepted
// and ignored.
'use strict';

const fs = require('fs');
const https = require('https');
const path = require('path');
const { WebSocketServer } = require('ws');

const MAX_MESSAGE = 64 * 1024 * 1024;
const compression = process.argv.includes('--compression');
const tlsAt = process.argv.indexOf('--tls');
const tlsDir = tlsAt > 0 ? process.argv[tlsAt + 1] : undefined;
const positional = process.argv
  .slice(2)
  .filter((arg, i) => arg !== '--compression' && i + 2 !== tlsAt && i + 2 !== tlsAt + 1);
const port = Number.parseInt(positional[0] ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node echo.js PORT   (PORT 0 picks a free port)');
  process.exit(2);
}

// With TLS, the WebSocket server rides on an https server that listens in its place.
const httpsServer = tlsDir
  ? https.createServer({
      cert: fs.readFileSync(path.join(tlsDir, 'cert.pem')),
      key: fs.readFileSync(path.join(tlsDir, 'key.pem')),
    })
  : undefined;
const server = new WebSocketServer({
  ...(httpsServer ? { server: httpsServer } : { host: '127.0.0.1', port }),
  maxPayload: MAX_MESSAGE,
  perMessageDeflate: compression ? { threshold: 0, zlibDeflateOptions: { level: 1 } } : false,
  clientTracking: false,
});

server.on('connection', (socket, request) => {
  request.socket.setNoDelay(true);
  socket.on('message', (data, isBinary) => {
    socket.send(data, { binary: isBinary });
  });
  socket.on('error', () => socket.terminate());
});

const listening = httpsServer ?? server;
listening.on('listening', () => {
  const { address, port: bound } = listening.address();
  console.log(
    `node-ws-echo listening on ${address}:${bound} (node ${process.version}, ws ${require('ws/package.json').version}, ` +
      `one event loop, max message ${MAX_MESSAGE >> 20} MiB, ` +
      `${compression ? 'permessage-deflate: window 15, context takeover, level 1, every message' : 'no compression'}` +
      `${tlsDir ? `, TLS (node https) with ${tlsDir}` : ''})`,
  );
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', stop);
if (httpsServer) {
  httpsServer.listen(port, '127.0.0.1');
}
