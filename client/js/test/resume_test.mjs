// Drives wsgate.js's WsgateClient against a real gateway, with the ws
// package as its WebSocket, for resume_test.go.
//
// Usage: NODE_PATH=interop/node_modules node resume_test.mjs 'ws://127.0.0.1:PORT/ws?user=U'
//
// It prints one JSON line per event: {"hello":connID} for every hello,
// {"seq":n,"payload":text,"gap":bool} for every push handed to onPush and
// {"error":message} for server notices; it closes the client and exits when
// stdin ends. The Go test decides what happens in between.
//
// ws comes from interop/node_modules through NODE_PATH, which only CommonJS
// resolution honours, hence createRequire.
import { createRequire } from 'node:module';
import { WsgateClient } from './static/wsgate.js';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');

const url = process.argv[2];
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const dec = new TextDecoder();

const client = new WsgateClient(url, {
  WebSocket,
  backoffBase: 300, // the first reconnect waits 150–300 ms
  onHello: (h) => out({ hello: h.conn }),
  onPush: (p) => out({ seq: Number(p.seq), payload: dec.decode(p.payload), gap: p.gap }),
  onError: (e) => out({ error: String(e.message ?? e) }),
});
await client.connect();
process.stdin.resume();
process.stdin.on('end', () => {
  client.close();
  process.exit(0);
});
// A watchdog, in case the Go side never closes stdin.
setTimeout(() => { out({ error: 'watchdog' }); process.exit(2); }, 60000).unref();
