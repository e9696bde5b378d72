// Interop client: headless Chromium's own WebSocket against a wsgate echo server.
//
// Usage: node chromium.mjs ws://127.0.0.1:PORT/echo
//
// playwright-core drives Debian's /usr/bin/chromium (never a downloaded browser).
// The test page is the echo server's own GET /stats: a document really served
// from the loopback origin, so the browser's Origin header matches Host (a
// default same-origin check passes) and Chromium's Local Network Access checks,
// which block ws://127.0.0.1 from about:blank or from a page faked with
// page.route (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS), allow the
// connection. Any status code will do: only the origin matters. Chromium always offers
// permessage-deflate, so there is one variant, "deflate". Output: one JSON object
// per line {"client","variant","case","ok","ms"[,"error"|"detail"]}, then a
// summary line {"client","summary":true,"passed","failed"}; non-zero exit status
// when any case failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CLIENT = 'chromium';
const CASE_TIMEOUT_MS = 20000;
const WATCHDOG_MS = 150000;
const SIZES = [0, 125, 126, 65535, 65536, 1 << 20];
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// The machine's network is closed: without the background-networking flags
// Chromium keeps trying to reach Google's hosts and logs refused connections.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const url = process.argv[2];
if (!url) {
  console.error('usage: node chromium.mjs ws://host:port/path');
  process.exit(2);
}

setTimeout(() => {
  console.log(JSON.stringify({ client: CLIENT, fatal: `watchdog: no result after ${WATCHDOG_MS} ms` }));
  process.exit(3);
}, WATCHDOG_MS).unref();

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// installHarness runs inside the page. It defines window.interop.run(name),
// which performs one case over the browser's WebSocket and resolves to
// {ok, error?, detail?}. Cases share one connection until one fails.
function installHarness({ url, sizes, timeoutMs }) {
  const line = 'The quick brown fox jumps over the lazy dog 0123456789\n';
  const textOf = (n) => line.repeat(Math.ceil(n / line.length) + 1).slice(0, n);
  const binaryOf = (n, seed) => {
    const b = new Uint8Array(n);
    let x = seed >>> 0;
    for (let i = 0; i < n; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      b[i] = x & 0xff;
    }
    return b;
  };
  const hex = (u8) => Array.from(u8.slice(0, 16), (v) => v.toString(16).padStart(2, '0')).join('');
  const describe = (v) => (typeof v === 'string'
    ? `text ${new TextEncoder().encode(v).length} bytes (${hex(new TextEncoder().encode(v))}...)`
    : `binary ${v.byteLength} bytes (${hex(new Uint8Array(v))}...)`);
  const equal = (got, want) => {
    if (typeof want === 'string') return got === want;
    if (!(got instanceof ArrayBuffer) || got.byteLength !== want.byteLength) return false;
    const g = new Uint8Array(got);
    for (let i = 0; i < g.length; i++) if (g[i] !== want[i]) return false;
    return true;
  };
  const timeout = (p, what) => Promise.race([p, new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`timeout after ${timeoutMs} ms waiting for ${what}`)), timeoutMs))]);

  const state = { ws: null, queue: [], waiters: [], closeEvent: null, closed: null };

  function connect() {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    state.ws = ws; state.queue = []; state.waiters = []; state.closeEvent = null;
    state.closed = new Promise((resolve) => {
      ws.onclose = (ev) => {
        state.closeEvent = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
        for (const w of state.waiters.splice(0)) w.reject(new Error(`connection closed: ${ev.code} ${ev.reason}`));
        resolve(state.closeEvent);
      };
    });
    ws.onmessage = (ev) => {
      const w = state.waiters.shift();
      if (w) w.resolve(ev.data); else state.queue.push(ev.data);
    };
    return timeout(new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('WebSocket error before open'));
    }), 'open');
  }
  function next(what) {
    if (state.queue.length > 0) return Promise.resolve(state.queue.shift());
    if (state.closeEvent) return Promise.reject(new Error(`connection closed: ${state.closeEvent.code}`));
    return timeout(new Promise((resolve, reject) => state.waiters.push({ resolve, reject })), what);
  }
  async function echo(payload) {
    state.ws.send(payload);
    const got = await next('echo');
    if (!equal(got, payload)) throw new Error(`got ${describe(got)}, want ${describe(payload)}`);
  }

  const cases = {
    'extension-negotiated': async () => {
      if (!state.ws.extensions.includes('permessage-deflate')) {
        throw new Error(`got extensions ${JSON.stringify(state.ws.extensions)}, want permessage-deflate`);
      }
      return state.ws.extensions;
    },
    'text-utf8': () => echo('héllo wörld ☃ 𝄞 ∑ 日本語 '.repeat(500)),
    'pipelined-200': async () => {
      const sent = [];
      for (let i = 0; i < 200; i++) {
        const body = `#${String(i).padStart(3, '0')}:` + textOf((i * 97) % 3000);
        let payload = body;
        if (i % 2 === 1) {
          const head = new TextEncoder().encode(body);
          payload = new Uint8Array(head.length + i);
          payload.set(head); payload.set(binaryOf(i, i + 7), head.length);
        }
        sent.push(payload);
        state.ws.send(payload);
      }
      for (let i = 0; i < sent.length; i++) {
        const got = await next(`pipelined message ${i}`);
        if (!equal(got, sent[i])) throw new Error(`message ${i}: got ${describe(got)}, want ${describe(sent[i])}`);
      }
    },
    'close-1000': async () => {
      state.ws.close(1000, 'interop bye');
      const ev = await timeout(state.closed, 'close event');
      if (ev.code !== 1000 || !ev.wasClean) {
        throw new Error(`got close code ${ev.code} wasClean ${ev.wasClean} reason ${JSON.stringify(ev.reason)}, want 1000 clean`);
      }
      // RFC 6455 §5.5.1: the reply usually echoes the code; the reason is
      // optional. Anything but empty or our own would be a server bug.
      if (ev.reason !== '' && ev.reason !== 'interop bye') {
        throw new Error(`got close reason ${JSON.stringify(ev.reason)}, want "" or "interop bye"`);
      }
      return `code=${ev.code} reason=${JSON.stringify(ev.reason)}`;
    },
  };
  for (const n of sizes) {
    cases[`text-${n}`] = () => echo(textOf(n));
    cases[`binary-${n}`] = () => echo(binaryOf(n, n + 1));
  }

  window.interop = {
    names: ['extension-negotiated', ...sizes.flatMap((n) => [`text-${n}`, `binary-${n}`]),
      'text-utf8', 'pipelined-200', 'close-1000'],
    async run(name) {
      try {
        if (!state.ws || state.ws.readyState !== WebSocket.OPEN) await connect();
        const detail = await cases[name]();
        return detail === undefined ? { ok: true } : { ok: true, detail: String(detail) };
      } catch (err) {
        if (state.ws) state.ws.close();
        state.ws = null;
        return { ok: false, error: String(err && err.message ? err.message : err) };
      }
    },
  };
}

async function runCases(page, results) {
  const names = await page.evaluate(() => window.interop.names);
  for (const name of names) {
    const start = Date.now();
    let rec;
    try {
      const res = await withTimeout(page.evaluate((n) => window.interop.run(n), name), CASE_TIMEOUT_MS * 2, name);
      rec = { client: CLIENT, variant: 'deflate', case: name, ...res };
    } catch (err) {
      rec = { client: CLIENT, variant: 'deflate', case: name, ok: false, error: String(err.message || err) };
    }
    rec.ms = Date.now() - start;
    results.push(rec);
    console.log(JSON.stringify(rec));
  }
}

async function main() {
  const origin = new URL(url.replace(/^ws/, 'http')).origin;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-interop-chromium-'));
  const results = [];
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: CASE_TIMEOUT_MS * 2,
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (err) => console.error(`pageerror: ${err.message}`));
    page.on('console', (msg) => console.error(`console.${msg.type()}: ${msg.text()}`));
    await page.goto(`${origin}/stats`, { timeout: CASE_TIMEOUT_MS });
    await page.evaluate(installHarness, { url, sizes: SIZES, timeoutMs: CASE_TIMEOUT_MS });
    await runCases(page, results);
  } catch (err) {
    results.push({ client: CLIENT, variant: 'deflate', case: 'browser', ok: false, error: String(err.message || err) });
    console.log(JSON.stringify(results[results.length - 1]));
  } finally {
    if (context) await withTimeout(context.close(), CASE_TIMEOUT_MS, 'browser close').catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(JSON.stringify({ client: CLIENT, summary: true, passed: results.length - failed, failed }));
  return failed === 0 && results.length > 0 ? 0 : 1;
}

process.exit(await main());
