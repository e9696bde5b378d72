// Interop client: Node's "ws" package against a wsgate echo server.
//
// Usage: node node_ws_test.mjs ws://127.0.0.1:PORT/echo
//
// Runs every case twice, once without and once with permessage-deflate, and
// prints one JSON object per line: {"client","variant","case","ok","ms"[,"error"]}
// followed by a summary line {"client","summary":true,"passed","failed"}. The
// exit status is non-zero when any case failed, so the Go test (interop_test.go)
// can assert on both.
import WebSocket from 'ws';

const CLIENT = 'node-ws';
const CASE_TIMEOUT_MS = 20000;
const WATCHDOG_MS = 150000;
const SIZES = [0, 125, 126, 65535, 65536, 1 << 20];

const url = process.argv[2];
if (!url) {
  console.error('usage: node node_ws_test.mjs ws://host:port/path');
  process.exit(2);
}

// A hung server must not hang CI: give up loudly after WATCHDOG_MS.
setTimeout(() => {
  console.log(JSON.stringify({ client: CLIENT, fatal: `watchdog: no result after ${WATCHDOG_MS} ms` }));
  process.exit(3);
}, WATCHDOG_MS).unref();

// textOf returns n bytes of ASCII text; repetitive so that deflate has work to do.
function textOf(n) {
  const line = 'The quick brown fox jumps over the lazy dog 0123456789\n';
  return line.repeat(Math.ceil(n / line.length) + 1).slice(0, n);
}

// binaryOf returns n deterministic pseudo-random bytes (xorshift32): incompressible,
// and every byte value appears, including 0x00 and 0xff.
function binaryOf(n, seed = 0x9e3779b9) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Peer wraps a ws client with a message queue so that cases can await the
// next echoed message, in order.
class Peer {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed: ${code} ${reason}`));
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data, isBinary) => {
      const msg = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(msg); else this.queue.push(msg);
    });
    ws.on('error', () => {}); // reported through 'close' (code 1006) and failed waits
  }

  next(what = 'message') {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(new Error(`connection closed: ${this.closeInfo.code}`));
    const p = new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return withTimeout(p, CASE_TIMEOUT_MS, what);
  }

  send(data, opts) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
  }
}

async function connect(deflate) {
  const ws = new WebSocket(url, {
    // threshold 0: compress every message, including the empty one.
    perMessageDeflate: deflate ? { threshold: 0 } : false,
    maxPayload: 32 << 20,
    handshakeTimeout: CASE_TIMEOUT_MS,
  });
  const peer = new Peer(ws);
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), CASE_TIMEOUT_MS, 'open');
  return peer;
}

function expectMessage(got, wantBinary, want) {
  if (got.isBinary !== wantBinary) {
    throw new Error(`got ${got.isBinary ? 'binary' : 'text'} message, want ${wantBinary ? 'binary' : 'text'}`);
  }
  const wantBuf = Buffer.isBuffer(want) ? want : Buffer.from(want, 'utf8');
  if (!got.data.equals(wantBuf)) {
    throw new Error(`got ${got.data.length} bytes (${got.data.subarray(0, 16).toString('hex')}...), ` +
      `want ${wantBuf.length} bytes (${wantBuf.subarray(0, 16).toString('hex')}...)`);
  }
}

async function echo(peer, wantBinary, payload) {
  await peer.send(payload, { binary: wantBinary });
  expectMessage(await peer.next('echo'), wantBinary, payload);
}

// buildCases returns [name, fn(getPeer)] pairs for one variant.
function buildCases(deflate) {
  const cases = [];
  cases.push([deflate ? 'extension-negotiated' : 'extension-none', async (peer) => {
    const want = deflate ? 'permessage-deflate' : '';
    if (peer.ws.extensions !== want) throw new Error(`got extensions ${JSON.stringify(peer.ws.extensions)}, want ${JSON.stringify(want)}`);
  }]);
  for (const n of SIZES) {
    cases.push([`text-${n}`, (peer) => echo(peer, false, textOf(n))]);
    cases.push([`binary-${n}`, (peer) => echo(peer, true, binaryOf(n, n + 1))]);
  }
  cases.push(['text-utf8', (peer) => echo(peer, false, 'héllo wörld ☃ 𝄞 ∑ 日本語 '.repeat(500))]);
  cases.push(['fragmented', async (peer) => {
    const parts = [textOf(1000), 'middle-', textOf(70000)];
    await peer.send(parts[0], { binary: false, fin: false });
    await peer.send(parts[1], { binary: false, fin: false });
    await peer.send(parts[2], { binary: false, fin: true });
    expectMessage(await peer.next('fragmented echo'), false, parts.join(''));
  }]);
  cases.push(['fragmented-utf8-split', async (peer) => {
    // A text message may split a code point across frames; only the whole
    // message has to be valid UTF-8 (RFC 6455 §8.1).
    const whole = Buffer.from('a€b𝄞c', 'utf8');
    await peer.send(whole.subarray(0, 2), { binary: false, fin: false }); // 'a' + first byte of '€'
    await peer.send(whole.subarray(2, 6), { binary: false, fin: false });
    await peer.send(whole.subarray(6), { binary: false, fin: true });
    expectMessage(await peer.next('fragmented utf8 echo'), false, whole);
  }]);
  cases.push(['pipelined-200', async (peer) => {
    const sent = [];
    for (let i = 0; i < 200; i++) {
      const binary = i % 2 === 1;
      const body = `#${String(i).padStart(3, '0')}:` + textOf((i * 97) % 3000);
      const payload = binary ? Buffer.concat([Buffer.from(body), binaryOf(i, i + 7)]) : body;
      sent.push([binary, payload]);
      peer.ws.send(payload, { binary }); // no await: all 200 go out back to back
    }
    for (let i = 0; i < sent.length; i++) {
      const got = await peer.next(`pipelined message ${i}`);
      try {
        expectMessage(got, sent[i][0], sent[i][1]);
      } catch (err) {
        throw new Error(`message ${i}: ${err.message}`);
      }
    }
  }]);
  cases.push(['ping-pong', async (peer) => {
    const payload = Buffer.from('interop-ping-0123456789');
    const pong = withTimeout(new Promise((resolve) => peer.ws.once('pong', resolve)), CASE_TIMEOUT_MS, 'pong');
    peer.ws.ping(payload);
    const got = await pong;
    if (!got.equals(payload)) throw new Error(`got pong payload ${JSON.stringify(got.toString())}, want ${JSON.stringify(payload.toString())}`);
    await echo(peer, false, 'after-ping'); // the connection still works after a control frame
  }]);
  if (deflate) {
    cases.push(['server-compresses', async (peer) => {
      // The echo of 1 MiB of repetitive text must arrive compressed. bytesRead
      // of the underlying socket is the only place ws exposes wire size.
      const before = peer.ws._socket.bytesRead;
      await echo(peer, false, textOf(1 << 20));
      const wire = peer.ws._socket.bytesRead - before;
      if (wire > (1 << 20) / 4) throw new Error(`got ${wire} bytes on the wire for a 1 MiB text echo, want < 262144 (compressed)`);
    }]);
  }
  cases.push(['close-1000', async (peer) => {
    peer.ws.close(1000, 'interop bye');
    const info = await withTimeout(peer.closed, CASE_TIMEOUT_MS, 'close');
    if (info.code !== 1000) throw new Error(`got close code ${info.code} reason ${JSON.stringify(info.reason)}, want 1000`);
    // RFC 6455 §5.5.1: the reply echoes the code; the reason is optional.
    if (info.reason !== '' && info.reason !== 'interop bye') {
      throw new Error(`got close reason ${JSON.stringify(info.reason)}, want "" or "interop bye"`);
    }
  }]);
  return cases;
}

async function runVariant(deflate, results) {
  const variant = deflate ? 'deflate' : 'plain';
  let peer = null;
  for (const [name, fn] of buildCases(deflate)) {
    const start = Date.now();
    const rec = { client: CLIENT, variant, case: name, ok: true };
    try {
      if (!peer) peer = await connect(deflate);
      await withTimeout(Promise.resolve(fn(peer)), CASE_TIMEOUT_MS * 2, name);
    } catch (err) {
      rec.ok = false;
      rec.error = String(err && err.message ? err.message : err);
      // Start the next case on a fresh connection: this one may be out of step.
      if (peer) peer.ws.terminate();
      peer = null;
    }
    rec.ms = Date.now() - start;
    results.push(rec);
    console.log(JSON.stringify(rec));
  }
  if (peer) peer.ws.terminate();
}

const results = [];
for (const deflate of [false, true]) {
  await runVariant(deflate, results);
}
const failed = results.filter((r) => !r.ok).length;
console.log(JSON.stringify({ client: CLIENT, summary: true, passed: results.length - failed, failed }));
process.exit(failed === 0 && results.length > 0 ? 0 : 1);
