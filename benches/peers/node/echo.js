// Node `ws` echo server for sockway's comparison benchmark: `node echo.js PORT`.
// Echoes whole messages with their type; max message 64 MiB; no compression. Node runs one
// event loop, so the THREADS argument the Rust servers take is accepted and ignored.
'use strict';

const { WebSocketServer } = require('ws');

const MAX_MESSAGE = 64 * 1024 * 1024;
const port = Number.parseInt(process.argv[2] ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node echo.js PORT   (PORT 0 picks a free port)');
  process.exit(2);
}

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  maxPayload: MAX_MESSAGE,
  perMessageDeflate: false,
  clientTracking: false,
});

server.on('connection', (socket, request) => {
  request.socket.setNoDelay(true);
  socket.on('message', (data, isBinary) => {
    socket.send(data, { binary: isBinary });
  });
  socket.on('error', () => socket.terminate());
});

server.on('listening', () => {
  const { address, port: bound } = server.address();
  console.log(
    `node-ws-echo listening on ${address}:${bound} (node ${process.version}, ws ${require('ws/package.json').version}, ` +
      `one event loop, max message ${MAX_MESSAGE >> 20} MiB, no compression)`,
  );
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', stop);
