// Runs harness.mjs in Node with its built-in WebSocket (Node ≥ 22, or
// Node 20 with --experimental-websocket): JSON commands on stdin, JSON
// events on stdout, one per line. Used by gateway_test.go.
import { createInterface } from "node:readline";
import * as mod from "../wsgate.js";
import { harness } from "./harness.mjs";

if (typeof WebSocket !== "function") {
  console.log(JSON.stringify({ event: "fatal", message: "no global WebSocket: run Node >= 22 or pass --experimental-websocket" }));
  process.exit(2);
}
const emit = (e) => process.stdout.write(JSON.stringify(e) + "\n");
const run = harness(mod, emit);
emit({ event: "ready" });
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => run(JSON.parse(line)).catch((e) => emit({ event: "fatal", message: String(e?.stack ?? e) })));
lines.on("close", () => process.exit(0));
setTimeout(() => { emit({ event: "fatal", message: "watchdog" }); process.exit(3); }, 120000).unref();
