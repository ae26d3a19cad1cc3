#!/usr/bin/env node
// An echo server on Node's `ws` package: the peer for wscore's interop client.
//
//   node interop/node_echo_server.js [--host 127.0.0.1] [--port 9221] [--no-compression | --tight-compression]
//
// Every text and binary message is echoed unchanged, as the same kind (messages up to 64 MiB);
// ws answers pings and echoes the client's close frame (code and reason) by itself.
// permessage-deflate is accepted when the client offers it, unless --no-compression is given;
// --tight-compression imposes no context takeover on both sides and 9-bit windows, and
// compresses every message however small.
// Prints one line once listening, then runs until killed.
'use strict';

const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const host = option('--host', '127.0.0.1');
const port = Number(option('--port', '9221'));
const tight = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  serverMaxWindowBits: 9,
  clientMaxWindowBits: 9,
  threshold: 0,
};
const compression = args.includes('--no-compression') ? false : args.includes('--tight-compression') ? tight : true;

const wss = new WebSocketServer({ host, port, perMessageDeflate: compression, maxPayload: 64 << 20 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', (err) => console.error(`connection error: ${err.message}`));
});
wss.on('listening', () => console.log(`listening on ${host}:${port} (compression: ${JSON.stringify(compression)})`));
wss.on('error', (err) => {
  console.error(`cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
