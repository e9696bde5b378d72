// Runs harness.mjs inside headless Chromium, on a page of the gateway
// under test (so that its WebSocket is the browser's, with an Origin
// header, and wsgate.js is the file the gateway serves): JSON commands on
// stdin, JSON events on stdout, as node_driver.mjs. Used by gateway_test.go.
//
// Usage: NODE_PATH=interop/node_modules node chromium_driver.mjs http://127.0.0.1:PORT/
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { harness } from "./harness.mjs";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const emit = (e) => process.stdout.write(JSON.stringify(e) + "\n");
setTimeout(() => { emit({ event: "fatal", message: "watchdog" }); process.exit(3); }, 120000).unref();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// The page's CSP forbids eval; the harness arrives as source text.
const context = await browser.newContext({ bypassCSP: true });
const page = await context.newPage();
page.on("pageerror", (e) => emit({ event: "error", message: `page error: ${e.message}` }));
await page.exposeFunction("wsgateEmit", emit);
await page.goto(process.argv[2]);
await page.evaluate(async (src) => {
  const mod = await import("/wsgate.js");
  window.wsgateRun = (0, eval)(`(${src})`)(mod, (e) => window.wsgateEmit(e));
}, harness.toString());

emit({ event: "ready" });
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  page.evaluate((cmd) => window.wsgateRun(cmd), JSON.parse(line))
    .catch((e) => emit({ event: "fatal", message: String(e?.message ?? e) }));
});
lines.on("close", async () => {
  await browser.close();
  process.exit(0);
});
