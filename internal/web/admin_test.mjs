// Drives the admin view (static/admin/) in headless Chromium.
//
// Usage: NODE_PATH=interop/node_modules node admin_test.mjs http://127.0.0.1:PORT API_KEY SCREENSHOT.png
//
// Run by admin_test.go against a real gateway. The script checks that the
// view refuses a browser without the key, loads it with the key (HTTP
// Basic), prints {"step":"baseline"} once the charts have a few samples —
// the Go test then starts load — and waits until the numbers show that
// load: connections, handshakes/s, pushes/s and delivered/s. It checks
// that every chart drew lines, looks up a user, and saves a screenshot.
// One JSON line per step {"step","ok"[,"error"|"detail"]}; non-zero exit
// status when a step failed.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const STEP_TIMEOUT_MS = 20000;
const WATCHDOG_MS = 100000;

const [base, key, screenshot] = process.argv.slice(2);
if (!base || !key || !screenshot) {
  console.error('usage: node admin_test.mjs http://host:port API_KEY SCREENSHOT.png');
  process.exit(2);
}
setTimeout(() => {
  console.log(JSON.stringify({ step: 'watchdog', ok: false, error: `no result after ${WATCHDOG_MS} ms` }));
  process.exit(3);
}, WATCHDOG_MS).unref();

let failed = 0;
async function step(name, fn) {
  try {
    const detail = await fn();
    console.log(JSON.stringify(detail === undefined ? { step: name, ok: true } : { step: name, ok: true, detail }));
  } catch (e) {
    failed++;
    console.log(JSON.stringify({ step: name, ok: false, error: String((e && e.message) || e) }));
  }
}

const tile = (page, id) => page.$eval(`#${id}`, (el) => Number(el.textContent.replace(/[^0-9.]/g, '')) || 0);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  await step('refused without the key', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    // Chromium either shows the 401 or, having no credentials to offer
    // for the Basic challenge, fails the navigation with this error.
    let status = 0;
    try {
      const resp = await page.goto(`${base}/admin`, { timeout: STEP_TIMEOUT_MS });
      status = resp ? resp.status() : 0;
    } catch (e) {
      if (!String(e.message).includes('ERR_INVALID_AUTH_CREDENTIALS')) throw e;
      status = 401;
    }
    await ctx.close();
    if (status !== 401) throw new Error(`GET /admin without the key: got ${status}, want 401`);
  });

  const ctx = await browser.newContext({
    httpCredentials: { username: 'admin', password: key },
    viewport: { width: 1200, height: 900 },
    deviceScaleFactor: 1,
  });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

  await step('load', async () => {
    const resp = await page.goto(`${base}/admin?interval=250`, { timeout: STEP_TIMEOUT_MS });
    if (!resp || resp.status() !== 200) throw new Error(`GET /admin: got ${resp && resp.status()}, want 200`);
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('updated'),
      null, { timeout: STEP_TIMEOUT_MS });
  });

  let before = {};
  await step('data refused without the key', async () => {
    // From the page, with its own credentials left out; the 401 it logs
    // is expected, so it is taken off the list of page errors.
    const logged = page.waitForEvent('console', { predicate: (m) => m.text().includes('401'), timeout: STEP_TIMEOUT_MS });
    const n = pageErrors.length;
    const status = await page.evaluate(async () => (await fetch('/admin/stats', { credentials: 'omit' })).status);
    if (status !== 401) throw new Error(`fetch /admin/stats without credentials: got ${status}, want 401`);
    await logged;
    pageErrors.splice(n).filter((m) => !m.includes('401')).forEach((m) => pageErrors.push(m));
  });

  await step('baseline', async () => {
    await page.waitForFunction(() => Number(document.body.dataset.samples) >= 4, null, { timeout: STEP_TIMEOUT_MS });
    before = { conns: await tile(page, 'v-conns'), pushes: await tile(page, 'v-pushes') };
    return before;
  });

  await step('numbers move under load', async () => {
    await page.waitForFunction(() => {
      const v = (id) => Number(document.getElementById(id).textContent.replace(/[^0-9.]/g, '')) || 0;
      return v('v-conns') >= 5 && v('v-handshakes') > 0 && v('v-pushes') > 0 && v('v-delivered') > 0;
    }, null, { timeout: STEP_TIMEOUT_MS, polling: 100 }).catch(async () => {
      const vals = {};
      for (const id of ['v-conns', 'v-handshakes', 'v-pushes', 'v-delivered']) vals[id] = await tile(page, id);
      throw new Error(`tiles never showed the load: ${JSON.stringify(vals)} (before: ${JSON.stringify(before)})`);
    });
    const after = { conns: await tile(page, 'v-conns'), pushes: await tile(page, 'v-pushes') };
    if (!(after.conns > before.conns && after.pushes > before.pushes)) {
      throw new Error(`no movement: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
    }
    const rows = await page.$$eval('#nodes tr', (trs) => trs.map((tr) => tr.textContent));
    if (rows.length !== 1) throw new Error(`node table: got ${rows.length} rows, want 1`);
    return after;
  });

  await step('charts draw', async () => {
    // Let a few more samples of the load arrive, so the lines have a shape.
    const n = await page.evaluate(() => Number(document.body.dataset.samples));
    await page.waitForFunction((m) => Number(document.body.dataset.samples) >= m + 8, n, { timeout: STEP_TIMEOUT_MS });
    const charts = await page.$$eval('canvas', (cs) => cs.map((c) => {
      // Count pixels of a saturated colour: the series lines, not the grey grid.
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let line = 0;
      for (let i = 0; i < d.length; i += 4) {
        const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
        if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) line++;
      }
      return { id: c.id, points: Number(c.dataset.points), line };
    }));
    if (charts.length !== 4) throw new Error(`got ${charts.length} charts, want 4`);
    for (const c of charts) {
      if (!(c.points > 2)) throw new Error(`${c.id}: ${c.points} points drawn`);
      // The slow-consumer chart may be a flat line at 0; the others must show ink.
      if (c.id !== 'c-slow' && c.line < 50) throw new Error(`${c.id}: only ${c.line} line pixels`);
    }
    return charts;
  });

  await step('user look-up', async () => {
    await page.fill('#user', 'watcher');
    await page.click('#lookup button');
    await page.waitForFunction(() => /watcher: online .*seq [1-9]/.test(document.getElementById('user-result').textContent),
      null, { timeout: STEP_TIMEOUT_MS }).catch(async () => {
      throw new Error(`#user-result: ${await page.textContent('#user-result')}`);
    });
    return await page.textContent('#user-result');
  });

  await step('screenshot', async () => {
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  await step('no page errors', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
  await ctx.close();
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
