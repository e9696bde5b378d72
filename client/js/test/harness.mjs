// The JS side of gateway_test.go, the same in Node and in Chromium: it
// runs one WsgateClient as the Go test commands and reports every event.
// Commands are objects {cmd, ...}; events are objects {event, ...} passed
// to emit. BigInts are sent as numbers (the tests stay far below 2^53).
//
// harness is self-contained (no imports, no closures over this module)
// because the Chromium driver ships its source text into the page.
export function harness(mod, emit) {
  const dec = new TextDecoder();
  let client = null;
  const state = () => ({
    state: client?.state, attempts: client?.attempts,
    epoch: Number(client?.position?.epoch ?? 0), seq: Number(client?.position?.seq ?? 0),
  });
  const commands = {
    start({ url, tokenURL, backoffBase = 100, backoffMax = 2000 }) {
      const getToken = tokenURL ? async () => {
        const r = await fetch(tokenURL);
        if (!r.ok) throw new Error(`token endpoint: HTTP ${r.status}`);
        return r.text();
      } : undefined;
      client = new mod.WsgateClient(url, { getToken, backoffBase, backoffMax });
      client.on("state", (s) => emit({ event: "state", state: s }));
      client.on("hello", (h) => emit({ event: "hello", conn: h.conn, seq: Number(h.seq), epoch: Number(h.epoch) }));
      client.on("push", (p) => emit({ event: "push", seq: Number(p.seq), payload: dec.decode(p.payload), gap: p.gap }));
      client.on("close", (c) => emit({ event: "close", code: c.code, reason: c.reason, reconnect: c.reconnect }));
      client.on("pushesLost", (reason) => emit({ event: "pushesLost", reason }));
      client.on("tokenRefreshed", () => emit({ event: "tokenRefreshed" }));
      client.on("error", (e) => emit({ event: "error", message: String(e?.message ?? e) }));
      client.connect().catch((e) => emit({ event: "connectFailed", message: String(e?.message ?? e) }));
      return {};
    },
    startSimple({ url }) {
      client = new mod.SimpleClient(url, { backoffBase: 100, backoffMax: 2000 });
      client.on("state", (s) => emit({ event: "state", state: s }));
      client.on("message", (m) => emit({ event: "message", action: m.action, payload: dec.decode(m.payload) }));
      client.on("close", (c) => emit({ event: "close", code: c.code, reason: c.reason, reconnect: c.reconnect }));
      client.on("error", (e) => emit({ event: "error", message: String(e?.message ?? e) }));
      return client.connect().then(() => ({ opened: true }), (e) => ({ failed: String(e?.message ?? e) }));
    },
    async request({ action, payload }) {
      try {
        return { reply: dec.decode(await client.request(action, payload)) };
      } catch (e) {
        return { failed: String(e?.message ?? e) };
      }
    },
    stats() { return state(); },
    close() { client?.close(); return state(); },
  };
  return async (cmd) => {
    const out = await commands[cmd.cmd](cmd);
    emit({ event: "done", cmd: cmd.cmd, ...out });
  };
}
