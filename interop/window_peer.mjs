// Window-size interop peer: Node's ws with permessage-deflate window bits.
//
//   node window_peer.mjs server BITS      echo server on 127.0.0.1, a free port;
//                                         grants client_max_window_bits=BITS and
//                                         compresses with server_max_window_bits=BITS.
//                                         Prints {"port":N}, serves until stdin ends.
//   node window_peer.mjs client URL BITS  offers server_max_window_bits=BITS, echoes
//                                         the messages of windowMessages() through URL
//                                         and checks them; exit status 0 when all match.
//
// Driven by deflatewindow_test.go.
import { WebSocketServer, WebSocket } from 'ws';

const [mode, ...args] = process.argv.slice(2);
const TIMEOUT_MS = 20000;
setTimeout(() => { console.error('watchdog'); process.exit(3); }, 120000).unref();

// windowMessages: compressible JSON-like text with repeats near and far,
// and incompressible binary.
function windowMessages() {
  const out = [];
  for (const n of [1 << 10, 20 << 10, 100 << 10]) {
    let s = '';
    for (let i = 0; s.length < n; i++) s += `{"id":${i},"topic":"prices.${i % 9}","price":${(i * 7919) % 2000}.${i % 100}},`;
    out.push({ data: Buffer.from(s.slice(0, n)), binary: false });
  }
  const b = Buffer.alloc(64 << 10);
  let x = 0x9E3779B9;
  for (let i = 0; i < b.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  out.push({ data: b, binary: true });
  return out;
}

if (mode === 'server') {
  const bits = Number(args[0]);
  const wss = new WebSocketServer({
    host: '127.0.0.1', port: 0, maxPayload: 32 << 20,
    perMessageDeflate: { threshold: 0, clientMaxWindowBits: bits, serverMaxWindowBits: bits },
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  wss.on('listening', () => console.log(JSON.stringify({ port: wss.address().port })));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
} else if (mode === 'client') {
  const [url, bitsArg] = args;
  const bits = Number(bitsArg);
  const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0, serverMaxWindowBits: bits }, maxPayload: 32 << 20 });
  const fail = (msg) => { console.error(msg); process.exit(1); };
  setTimeout(() => fail('timeout'), TIMEOUT_MS).unref();
  let ext = '';
  ws.on('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] || ''; });
  ws.on('error', (err) => fail(`error: ${err.message}`));
  ws.on('open', () => {
    const want = `server_max_window_bits=${bits}`;
    if (!ext.includes(want)) fail(`got Sec-WebSocket-Extensions ${JSON.stringify(ext)}, want ${want}`);
    const msgs = windowMessages();
    let i = 0;
    ws.on('message', (data, isBinary) => {
      const m = msgs[i++];
      if (isBinary !== m.binary || !Buffer.from(data).equals(m.data)) fail(`echo ${i - 1}: got ${data.length} bytes, want ${m.data.length}`);
      if (i === msgs.length) ws.close(1000);
    });
    ws.on('close', () => { if (i === msgs.length) process.exit(0); fail(`closed after ${i} echoes`); });
    for (const m of msgs) ws.send(m.data, { binary: m.binary });
  });
} else {
  console.error('usage: window_peer.mjs server BITS | client URL BITS');
  process.exit(2);
}
