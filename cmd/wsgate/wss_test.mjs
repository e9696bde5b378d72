// Drives the test page over https:// and wss:// in headless Chromium, across
// a certificate reload.
//
// Usage: NODE_PATH=interop/node_modules node wss_test.mjs 'https://127.0.0.1:PORT/?token=T' SPKI[,SPKI] SCREENSHOT.png
//
// Run by wss_test.go against "wsgate serve --tls-cert … --tls-key …" whose
// certificate comes from a CA made by the test. Chromium trusts nothing but
// the public keys named by --ignore-certificate-errors-spki-list (base64
// SHA-256 of a SubjectPublicKeyInfo): no error is ignored for any other key,
// and playwright's ignoreHTTPSErrors is not used (a browser without the flag
// must refuse the page: the first step). The script loads the page,
// connects (the page picks wss:// itself on an https:// page), sends action
// 110 and waits for its reply, and saves a screenshot. It then prints
// {"step":"ready"} and waits for a line on stdin: the test has replaced the
// certificate and sent SIGHUP. After it, the same WebSocket must still
// answer, and a second page must load and connect (with the new
// certificate). One JSON line per step {"step","ok"[,"error"|"detail"]};
// non-zero exit status when a step failed.
import { createRequire } from 'node:module';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 10000;
const WATCHDOG_MS = 120000;

const [pageURL, spki, screenshot] = process.argv.slice(2);
if (!pageURL || !spki || !screenshot) {
  console.error("usage: node wss_test.mjs 'https://host:port/?token=T' SPKI[,SPKI] out.png");
  process.exit(2);
}
setTimeout(() => {
  console.log(JSON.stringify({ step: 'watchdog', ok: false, error: `no result after ${WATCHDOG_MS} ms` }));
  process.exit(3);
}, WATCHDOG_MS).unref();

// The machine's network is closed: without the background-networking flags
// Chromium keeps trying to reach Google's hosts.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  `--ignore-certificate-errors-spki-list=${spki}`,
];

let failed = 0;
async function step(name, fn) {
  try {
    const detail = await fn();
    console.log(JSON.stringify({ step: name, ok: true, ...(detail ? { detail } : {}) }));
  } catch (e) {
    failed++;
    console.log(JSON.stringify({ step: name, ok: false, error: String(e && e.message || e) }));
  }
}

async function waitForLog(page, text) {
  await page.waitForFunction(
    (t) => document.getElementById('log').textContent.includes(t), text, { timeout: STEP_TIMEOUT_MS },
  ).catch(async () => {
    throw new Error(`#log never showed ${JSON.stringify(text)}; it holds:\n${await page.textContent('#log')}`);
  });
}

async function waitForStatus(page, text) {
  await page.waitForFunction(
    (t) => document.getElementById('status').textContent === t, text, { timeout: STEP_TIMEOUT_MS },
  ).catch(async () => {
    throw new Error(`#status never became ${JSON.stringify(text)}: it is ${JSON.stringify(await page.textContent('#status'))}`);
  });
}

// connect loads the page and opens its WebSocket in the full form.
async function connect(page) {
  const resp = await page.goto(pageURL, { timeout: STEP_TIMEOUT_MS });
  if (!resp || resp.status() !== 200) throw new Error(`GET page: status ${resp && resp.status()}`);
  const sec = await resp.securityDetails();
  if (!sec) throw new Error('page was not loaded over TLS');
  const url = await page.inputValue('#url');
  if (!url.startsWith('wss://')) throw new Error(`#url: got ${url}, want wss://`);
  await page.selectOption('#protocol', 'wsgate.v1');
  await page.click('#connect');
  await waitForStatus(page, 'open');
  await waitForLog(page, 'hello conn=');
  return `${sec.protocol}, issuer ${sec.issuer}, subject ${sec.subjectName}, ${url.split('?')[0]}`;
}

async function send(page, payload) {
  await page.fill('#action', '110');
  await page.fill('#payload', payload);
  await page.click('#send-action');
  // The log shows the reply's JSON payload quoted: {\"user\":…,\"added\":\"bob\",…}
  await waitForLog(page, `\\"added\\":\\"${payload}\\"`);
}

// nextLine resolves with the next line of stdin.
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

// Without the SPKI list the test CA is trusted by nothing: the page must
// not load, which shows that the flag is what makes the steps below work.
await step('refused without the SPKI list', async () => {
  const plain = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS.slice(0, -1) });
  try {
    const p = await plain.newPage();
    const err = await p.goto(pageURL, { timeout: STEP_TIMEOUT_MS }).then(() => null, (e) => e);
    if (!err) throw new Error('page loaded from an untrusted CA');
    if (!/ERR_CERT/.test(err.message)) throw new Error(`want a certificate error, got: ${err.message}`);
    return err.message.split('\n')[0];
  } finally {
    await plain.close();
  }
});

const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

  await step('load over https and connect over wss', () => connect(page));
  await step('action 110 over wss', () => send(page, 'bob'));
  await step('screenshot', () => page.screenshot({ path: screenshot, fullPage: true }).then(() => screenshot));

  console.log(JSON.stringify({ step: 'ready', ok: true }));
  await nextLine(); // the test has swapped the certificate and sent SIGHUP

  await step('same connection after reload', async () => {
    await send(page, 'carol');
    const status = await page.textContent('#status');
    if (status !== 'open') throw new Error(`#status: ${status}`);
  });
  await step('new connection after reload', async () => {
    const page2 = await browser.newPage();
    try {
      return await connect(page2);
    } finally {
      await page2.close();
    }
  });
  await step('no page errors', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
} finally {
  lines.close();
  await browser.close();
}
console.log(JSON.stringify({ summary: true, failed }));
process.exit(failed ? 1 : 0);
