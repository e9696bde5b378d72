// Drives the test page (static/index.html) in headless Chromium.
//
// Usage: NODE_PATH=interop/node_modules node page_test.mjs 'http://127.0.0.1:PORT/?token=T' EXPIRED_TOKEN [simple-only]
//
// Run by page_test.go against a real gateway, whose action 110 replies
// "added <payload>". The script loads the page, checks the URL field and
// the hidden token field it derives from the page's ?token=, and for each
// protocol form (and the WsgateClient mode) connects, sends an action frame
// and a text message, waits for the replies in #log, disconnects and checks
// the close code. Then it connects with EXPIRED_TOKEN and checks that the
// page shows the gateway's close reason; with SCREENSHOT=path it saves a
// screenshot of that. "simple-only" skips the forms that need the gateway's
// epoch hello. It prints one JSON line per step {"step","ok"[,"error"]} and
// exits non-zero when a step failed.
//
// playwright-core comes from interop/node_modules through NODE_PATH, which
// only CommonJS resolution honours, hence createRequire.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// The machine's network is closed: without the background-networking flags
// Chromium keeps trying to reach Google's hosts.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const STEP_TIMEOUT_MS = 10000;
const WATCHDOG_MS = 90000;

const pageURL = process.argv[2];
const expiredToken = process.argv[3];
const simpleOnly = process.argv[4] === 'simple-only';
if (!pageURL) {
  console.error("usage: node page_test.mjs 'http://host:port/?token=T'");
  process.exit(2);
}
setTimeout(() => {
  console.log(JSON.stringify({ step: 'watchdog', ok: false, error: `no result after ${WATCHDOG_MS} ms` }));
  process.exit(3);
}, WATCHDOG_MS).unref();

let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    console.log(JSON.stringify({ step: name, ok: true }));
  } catch (e) {
    failed++;
    console.log(JSON.stringify({ step: name, ok: false, error: String(e && e.message || e) }));
  }
}

// waitForLog waits until a line of #log contains text.
async function waitForLog(page, text) {
  await page.waitForFunction(
    (t) => document.getElementById('log').textContent.includes(t), text, { timeout: STEP_TIMEOUT_MS },
  ).catch(async () => {
    const log = await page.textContent('#log');
    throw new Error(`#log never showed ${JSON.stringify(text)}; it holds:\n${log}`);
  });
}

async function waitForStatus(page, text) {
  await page.waitForFunction(
    (t) => document.getElementById('status').textContent === t, text, { timeout: STEP_TIMEOUT_MS },
  ).catch(async () => {
    throw new Error(`#status never became ${JSON.stringify(text)}: it is ${JSON.stringify(await page.textContent('#status'))}`);
  });
}

// The three forms and what their replies look like in the log.
const FORMS = [
  { value: '', action: 'action=110 payload "added bob"', text: '"type":"reply","id":1,"text":"added carol"' },
  { value: 'wsgate.v1', hello: 'hello conn=', action: 'reply id=1 payload "added bob"', text: '"type":"reply","id":1,"text":"added carol"' },
  { value: 'wsgate.v1.json', hello: '"type":"hello"', action: '"type":"reply","id":1,"text":"added bob"', text: '"type":"reply","id":1,"text":"added carol"' },
];

// launch gives the browser a fresh temporary profile of its own.
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

  await step('load', async () => {
    await page.goto(pageURL, { timeout: STEP_TIMEOUT_MS });
    const token = new URL(pageURL).searchParams.get('token');
    const want = `ws://${new URL(pageURL).host}/ws`;
    const got = await page.inputValue('#url');
    if (got !== want) throw new Error(`#url: got ${got}, want ${want}`);
    if (await page.inputValue('#token') !== token) throw new Error('#token does not hold the page\'s token');
    if (await page.getAttribute('#token', 'type') !== 'password') throw new Error('the token is shown by default');
  });

  for (const form of FORMS.filter((f) => !simpleOnly || !f.value)) {
    const name = form.value || 'simple';
    await step(`${name}: connect`, async () => {
      await page.selectOption('#protocol', form.value);
      await page.click('#connect');
      await waitForStatus(page, 'open');
      if (form.hello) await waitForLog(page, form.hello);
    });
    await step(`${name}: action frame`, async () => {
      await page.fill('#action', '110');
      await page.fill('#payload', 'bob');
      await page.click('#send-action');
      await waitForLog(page, form.action);
    });
    await step(`${name}: text`, async () => {
      await page.fill('#text', '{"type":"request","id":1,"action":110,"text":"carol"}');
      await page.click('#send-text');
      await waitForLog(page, form.text);
    });
    await step(`${name}: disconnect`, async () => {
      await page.click('#disconnect');
      await waitForStatus(page, 'closed 1000');
      // The server answers the page's close with the same code.
      await waitForLog(page, 'closed code=1000');
      await page.click('#clear');
    });
  }

  if (!simpleOnly) {
    await step('client: connect, request, disconnect', async () => {
      await page.selectOption('#protocol', 'client');
      await page.click('#connect');
      await waitForStatus(page, 'open');
      await waitForLog(page, 'hello conn=');
      await page.fill('#action', '110');
      await page.fill('#payload', 'dora');
      await page.click('#send-action');
      await waitForLog(page, 'reply to request 1 payload "added dora"');
      await page.click('#disconnect');
      await waitForStatus(page, 'closed');
      await page.click('#clear');
    });
  }

  await step('expired token: the close reason is shown', async () => {
    await page.selectOption('#protocol', 'client');
    await page.fill('#token', expiredToken);
    await page.click('#connect');
    await waitForStatus(page, 'closed 4500');
    await page.waitForFunction(
      () => document.getElementById('reason').textContent === '4500: wsgate: token expired', null, { timeout: STEP_TIMEOUT_MS },
    ).catch(async () => { throw new Error(`#reason: ${JSON.stringify(await page.textContent('#reason'))}`); });
    await waitForLog(page, 'state closed');
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  });

  await step('no page errors', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
} finally {
  await browser.close();
}
console.log(JSON.stringify({ summary: true, failed }));
process.exit(failed ? 1 : 0);
