// Tests for wsgate.js: every golden vector in wire/testdata (shared with the
// Go tests, so the two codecs cannot drift) and the client against a fake
// WebSocket. Run: node --test client/js/test/unit_test.mjs
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  SUBPROTOCOL, Action, CloseCode, ErrorCode, WireError, WsgateError, ConnectionError, WsgateClient, SimpleClient,
  encodeFrame, decodeFrame, encodeSimple, encodeSimpleError, decodeSimple, frameToJSON, frameFromJSON,
  closeCodeReconnect, closeCodeBackoff, reconnectDelay, resumeParam, SUBPROTOCOL_JSON,
} from "../wsgate.js";

const testdata = new URL("../../../wire/testdata/", import.meta.url);
const enc = new TextEncoder();
const dec = new TextDecoder();

function lines(name) {
  const text = readFileSync(new URL(name, testdata), "utf8");
  const out = text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  assert.ok(out.length > 0, `${name}: no vectors`);
  return out;
}
function unhex(s) {
  const h = s.replaceAll(" ", "");
  return Uint8Array.from({ length: h.length / 2 }, (_, i) => parseInt(h.slice(2 * i, 2 * i + 2), 16));
}
const hex = (b) => Buffer.from(b).toString("hex");

// vectorFrame turns a vector's field spelling into this module's frame shape.
function vectorFrame(v) {
  const f = { type: v.type };
  switch (v.type) {
    case "request": Object.assign(f, { action: v.action, id: v.id, payload: unhex(v.payload) }); break;
    case "reply": Object.assign(f, { id: v.id, payload: unhex(v.payload) }); break;
    case "error": Object.assign(f, { id: v.id, code: v.code, message: dec.decode(unhex(v.payload)) }); break;
    case "push": Object.assign(f, { action: v.action, seq: BigInt(v.seq), payload: unhex(v.payload) }); break;
    case "ack": f.seq = BigInt(v.seq); break;
    case "refresh": Object.assign(f, { id: v.id, token: dec.decode(unhex(v.payload)) }); break;
    case "hello": Object.assign(f, { conn: v.conn, user: v.user, seq: BigInt(v.seq), epoch: BigInt(v.epoch ?? 0), maxMessage: v.maxMessage, heartbeat: v.heartbeat }); break;
    default: assert.fail(`vector type ${v.type}`);
  }
  return f;
}
// comparable replaces payload bytes by hex so deepStrictEqual compares contents.
const comparable = (f) => ("payload" in f ? { ...f, payload: hex(f.payload) } : { ...f });

const isWireError = (kind) => (e) => e instanceof WireError && e.kind === kind;

// The hello layout with an epoch and the removal of the resume frame
// (protocol-epoch, issue 8) come with regenerated vectors from the Go side.
// Until those are in wire/testdata, vectors of the old hello and of resume
// cannot match this codec and are skipped, loudly.
const epochVectors = lines("frames.jsonl").some((v) => v.frame?.type === "hello" && "epoch" in v.frame);
const oldLayout = (v) => !epochVectors && (/^hello|^resume|heartbeat-overflow|conn-not-string/.test(v.name) ||
  ["hello", "resume"].includes(v.frame?.type) || /^0[67]/.test(v.hex ?? ""));
if (!epochVectors) console.log("# SKIPPING hello/resume golden vectors: wire/testdata predates the epoch hello (protocol-epoch.md)");

test("golden frames", () => {
  let checked = 0;
  for (const v of lines("frames.jsonl").filter((v) => !oldLayout(v))) {
    const b = unhex(v.hex);
    if (v.error) {
      assert.throws(() => decodeFrame(b), isWireError(v.error), v.name);
      checked++;
      continue;
    }
    const want = vectorFrame(v.frame);
    assert.deepStrictEqual(comparable(decodeFrame(b)), comparable(want), `${v.name}: decode`);
    assert.equal(hex(encodeFrame(want)), hex(b), `${v.name}: encode`);
    assert.equal(frameToJSON(want), v.json, `${v.name}: frameToJSON`);
    assert.deepStrictEqual(comparable(frameFromJSON(v.json)), comparable(want), `${v.name}: frameFromJSON`);
    checked++;
  }
  assert.ok(checked >= (epochVectors ? 50 : 40), `checked ${checked} vectors`);
});

test("truncated golden frames fail unless the payload absorbs the cut", () => {
  const header = { 1: 9, 2: 5, 3: 7, 4: 13, 8: 5 };
  for (const v of lines("frames.jsonl").filter((v) => !v.error && !oldLayout(v))) {
    const full = unhex(v.hex);
    for (let i = 0; i < full.length; i++) {
      const cut = full.slice(0, i);
      const n = header[full[0]];
      if (n !== undefined && i >= n) {
        assert.doesNotThrow(() => decodeFrame(cut), `${v.name}[:${i}]`);
      } else {
        assert.throws(() => decodeFrame(cut), WireError, `${v.name}[:${i}]`);
      }
    }
  }
});

test("golden simple messages", () => {
  for (const v of lines("simple.jsonl")) {
    const b = unhex(v.hex);
    if (v.error) {
      assert.throws(() => decodeSimple(b), (e) => isWireError("short")(e) && e.message === "wsgate: message shorter than 4 bytes", v.name);
      continue;
    }
    const got = decodeSimple(b);
    assert.equal(got.action, v.action, v.name);
    assert.equal(hex(got.payload), v.payload, v.name);
    assert.equal(got.error, v.action >= 0x80000000, v.name);
    const again = got.error
      ? encodeSimpleError(got.action - 0x80000000, dec.decode(got.payload))
      : encodeSimple(got.action, got.payload);
    assert.equal(hex(again), hex(b), `${v.name}: encode`);
  }
});

test("golden JSON inputs", () => {
  for (const v of lines("json.jsonl").filter((v) => !oldLayout(v))) {
    if (v.error) {
      assert.throws(() => frameFromJSON(v.input), isWireError(v.error), v.name);
      continue;
    }
    assert.equal(hex(encodeFrame(frameFromJSON(v.input))), hex(unhex(v.hex)), v.name);
  }
});

test("golden close codes and backoff", () => {
  for (const v of lines("close_codes.jsonl")) {
    assert.equal(closeCodeReconnect(v.code), v.reconnect, `reconnect ${v.code}`);
    assert.equal(closeCodeBackoff(v.code), v.backoff, `backoff ${v.code}`);
  }
  for (const v of lines("backoff.jsonl")) {
    assert.equal(reconnectDelay(v.attempt, v.random), v.ms, `delay(${v.attempt}, ${v.random})`);
  }
});

test("encoder rejects out-of-range fields", () => {
  assert.throws(() => encodeFrame({ type: "request", action: -1, id: 1 }), RangeError);
  assert.throws(() => encodeFrame({ type: "request", action: 1, id: 2 ** 32 }), RangeError);
  assert.throws(() => encodeFrame({ type: "ack", seq: 2n ** 64n }), RangeError);
  assert.throws(() => encodeFrame({ type: "error", id: 1, code: 65536 }), RangeError);
  assert.throws(() => encodeFrame({ type: "bogus" }), isWireError("unknown-type"));
  assert.throws(() => encodeFrame({ type: "hello", conn: "x".repeat(65536) }), isWireError("too-long"));
  assert.equal(encodeFrame({ type: "hello", conn: "x".repeat(65535) }).length, 27 + 65535);
  assert.throws(() => encodeFrame({ type: "hello", epoch: 2n ** 64n }), RangeError);
  assert.throws(() => encodeFrame({ type: "resume", seq: 1n }), isWireError("unknown-type"));
});

test("epoch hello layout and refresh frame", () => {
  const hello = { type: "hello", conn: "c1", user: "alice", seq: 42n, epoch: 7n, maxMessage: 65536, heartbeat: 25 };
  const b = encodeFrame(hello);
  assert.equal(hex(b), "06" + "000000000000002a" + "0000000000000007" + "00010000" + "0019" + "0002" + "6331" + "0005" + "616c696365");
  assert.deepStrictEqual(decodeFrame(b), hello);
  assert.equal(frameToJSON(hello), '{"type":"hello","conn":"c1","user":"alice","seq":42,"epoch":7,"maxMessage":65536,"heartbeat":25}');
  assert.deepStrictEqual(frameFromJSON(frameToJSON(hello)), hello);
  assert.throws(() => decodeFrame(b.subarray(0, 26)), isWireError("short"));
  assert.throws(() => decodeFrame(unhex("07 0000000000000029")), isWireError("unknown-type"));
  assert.throws(() => frameFromJSON('{"type":"resume","seq":1}'), isWireError("unknown-type"));
  assert.equal(hex(encodeFrame({ type: "refresh", id: 9, token: "tok-1" })), "08" + "00000009" + "746f6b2d31");
  assert.equal(frameToJSON({ type: "refresh", id: 9, token: "tok-1" }), '{"type":"refresh","id":9,"token":"tok-1"}');
  assert.equal(resumeParam(1733241600123456n, 42n), "1733241600123456.42");
  assert.throws(() => resumeParam(-1n, 0n), RangeError);
});

// ---- client ----

// fakeSocketClass returns a WebSocket stand-in class whose instances the
// test drives from the server side.
function fakeSocketClass() {
  return class FakeSocket {
    static instances = [];
    constructor(url, protocols) {
      Object.assign(this, { url, protocols, sent: [], protocol: "", closedWith: null });
      FakeSocket.instances.push(this);
    }
    send(data) { this.sent.push(typeof data === "string" ? frameFromJSON(data) : decodeFrame(data)); }
    close(code, reason) { this.closedWith = { code, reason }; }
    accept(protocol = SUBPROTOCOL) { this.protocol = protocol; this.onopen?.({}); }
    deliver(frame) { this.onmessage?.({ data: this.protocol === SUBPROTOCOL_JSON ? frameToJSON(frame) : encodeFrame(frame).buffer }); }
    drop(code, reason = "") { this.onclose?.({ code, reason }); }
  };
}

const HELLO = { type: "hello", conn: "c1", user: "alice", seq: 0n, epoch: 5n, maxMessage: 1 << 16, heartbeat: 0 };

// until polls cond for at most 2 s.
async function until(cond, what) {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

async function connected(options = {}) {
  const Fake = fakeSocketClass();
  const events = { pushes: [], closes: [], errors: [] };
  const client = new WsgateClient("ws://gateway.test/ws", {
    WebSocket: Fake, backoffBase: 10, random: () => 0, ackInterval: 5,
    onPush: (p) => events.pushes.push(p), onClose: (c) => events.closes.push(c), onError: (e) => events.errors.push(e),
    ...options,
  });
  const ready = client.connect();
  await until(() => Fake.instances.length === 1, "a socket");
  const sock = Fake.instances[0];
  assert.deepStrictEqual(sock.protocols, [options.form === "json" ? SUBPROTOCOL_JSON : SUBPROTOCOL]);
  assert.ok(!sock.url.includes("resume="), "a fresh client holds no position");
  sock.accept(sock.protocols[0]);
  const hello = { ...HELLO, ...options.hello };
  sock.deliver(hello);
  assert.equal((await ready).conn, "c1");
  assert.equal(client.state, "open");
  assert.deepStrictEqual(client.position, { epoch: hello.epoch, seq: hello.seq });
  assert.equal(sock.sent.length, 0, "nothing is sent before the application asks");
  return { client, Fake, sock, events };
}

test("client correlates replies by id", { timeout: 5000 }, async () => {
  const { client, sock } = await connected();
  const a = client.request(110, "a");
  const b = client.request(111, enc.encode("b"));
  assert.deepStrictEqual(sock.sent.map((f) => [f.action, f.id]), [[110, 1], [111, 2]]);
  sock.deliver({ type: "reply", id: 2, payload: "B" });
  sock.deliver({ type: "reply", id: 1, payload: "A" });
  assert.equal(dec.decode(await a), "A");
  assert.equal(dec.decode(await b), "B");
  client.send(120, "x");
  assert.equal(sock.sent.at(-1).id, 0);
  client.close();
});

test("client rejects with the error frame's code", { timeout: 5000 }, async () => {
  const { client, sock, events } = await connected();
  const r = client.request(999, "");
  sock.deliver({ type: "error", id: 1, code: ErrorCode.UNKNOWN_ACTION, message: "unknown action 999" });
  await assert.rejects(r, (e) => e instanceof WsgateError && e.code === 1 && e.serverMessage === "unknown action 999");
  sock.deliver({ type: "error", id: 0, code: ErrorCode.RATE_LIMITED, message: "slow down" });
  assert.equal(events.errors[0].code, ErrorCode.RATE_LIMITED);
  client.close();
});

test("client request timeout, not connected, too large", { timeout: 5000 }, async () => {
  const idle = new WsgateClient("ws://x", { WebSocket: fakeSocketClass() });
  await assert.rejects(idle.request(110, ""), (e) => e instanceof ConnectionError && e.kind === "not-connected");
  const { client, sock } = await connected({ hello: { maxMessage: 20 } });
  await assert.rejects(client.request(110, "", { timeout: 5 }), (e) => e instanceof ConnectionError && e.kind === "timeout");
  const forever = client.request(110, "", { timeout: Infinity }); // id 2
  await new Promise((r) => setTimeout(r, 10));
  sock.deliver({ type: "reply", id: 2, payload: "eventually" });
  assert.equal(dec.decode(await forever), "eventually");
  sock.deliver({ type: "reply", id: 1, payload: "late" }); // ignored
  await assert.rejects(client.request(110, "x".repeat(12)), (e) => e instanceof WsgateError && e.code === ErrorCode.TOO_LARGE);
  client.close();
  await assert.rejects(client.connect(), (e) => e.kind === "closed");
});

test("client delivers pushes, drops duplicates, flags gaps, acks", { timeout: 5000 }, async () => {
  const { client, sock, events } = await connected({ hello: { seq: 10n } });
  sock.deliver({ type: "push", action: 120, seq: 11n, payload: "a" });
  sock.deliver({ type: "push", action: 120, seq: 11n, payload: "dup" });
  sock.deliver({ type: "push", action: 120, seq: 14n, payload: "b" });
  sock.deliver({ type: "push", action: 121, seq: 0n, payload: "topic" });
  assert.deepStrictEqual(events.pushes.map((p) => [p.seq, p.gap, dec.decode(p.payload)]),
    [[11n, false, "a"], [14n, true, "b"], [0n, false, "topic"]]);
  // Acks are coalesced: one frame with the highest seq.
  await until(() => sock.sent.length > 0, "an ack");
  assert.deepStrictEqual(sock.sent.map((f) => [f.type, f.seq]), [["ack", 14n]]);
  assert.equal(client.lastSeq, 14n);
  sock.deliver({ type: "push", action: 120, seq: 15n, payload: "c" });
  client.close(); // flushes the pending ack
  assert.deepStrictEqual(sock.sent.map((f) => [f.type, f.seq]), [["ack", 14n], ["ack", 15n]]);
});

test("client JSON form speaks JSON text", { timeout: 5000 }, async () => {
  const { client, sock } = await connected({ form: "json" });
  const r = client.request(110, "a");
  assert.deepStrictEqual(sock.sent[0], { type: "request", id: 1, action: 110, payload: enc.encode("a") });
  sock.deliver({ type: "reply", id: 1, payload: "A" });
  assert.equal(dec.decode(await r), "A");
  client.close();
});

test("client resumes in its epoch, restarts numbering on a new epoch, reports pushes lost", { timeout: 5000 }, async () => {
  const { client, Fake, sock, events } = await connected({ hello: { seq: 3n, epoch: 77n } });
  const lost = [];
  const off = client.on("pushesLost", (reason) => lost.push(reason));
  sock.deliver({ type: "push", action: 120, seq: 4n, payload: "a" });
  sock.drop(CloseCode.GOING_AWAY);
  await until(() => Fake.instances.length === 2, "a second socket");
  const sock2 = Fake.instances[1];
  assert.equal(new URL(sock2.url).searchParams.get("resume"), "77.4");
  sock2.accept();
  sock2.deliver({ ...HELLO, seq: 9n, epoch: 78n }); // the broker lost its state: a new numbering
  sock2.deliver({ type: "error", id: 0, code: ErrorCode.PUSHES_LOST, message: "history lost" });
  assert.deepStrictEqual(client.position, { epoch: 78n, seq: 0n });
  sock2.deliver({ type: "push", action: 120, seq: 1n, payload: "b" }); // would be a duplicate in epoch 77
  assert.deepStrictEqual(events.pushes.map((p) => [p.seq, dec.decode(p.payload)]), [[4n, "a"], [1n, "b"]]);
  assert.deepStrictEqual(lost, ["history lost"]);
  assert.equal(events.errors.length, 0, "pushes lost is an event, not an error");
  off();
  client.close();
});

test("client on/off listeners and a position given up front", { timeout: 5000 }, async () => {
  const Fake = fakeSocketClass();
  const client = new WsgateClient("ws://x/ws?a=1", { WebSocket: Fake, position: { epoch: 9n, seq: 41n } });
  const states = [];
  const off = client.on("state", (s) => states.push(s));
  client.connect();
  assert.equal(Fake.instances[0].url, "ws://x/ws?a=1&resume=9.41");
  Fake.instances[0].accept();
  Fake.instances[0].deliver({ ...HELLO, seq: 50n, epoch: 9n });
  assert.deepStrictEqual(client.position, { epoch: 9n, seq: 41n }, "same epoch: the position stands");
  off();
  client.close();
  assert.deepStrictEqual(states, ["connecting", "open"]);
  assert.throws(() => client.on("bogus", () => {}), TypeError);
});

test("client getToken: called before each connect; 4500 stops unless it gives a new token", { timeout: 5000 }, async () => {
  const Fake = fakeSocketClass();
  const tokens = ["t1", "t2", "t2"];
  let calls = 0;
  const closes = [];
  const client = new WsgateClient("ws://x/ws", {
    WebSocket: Fake, backoffBase: 10, random: () => 0,
    getToken: async () => tokens[calls++], onClose: (c) => closes.push(c),
  });
  const ready = client.connect();
  await until(() => Fake.instances.length === 1, "socket 1");
  assert.equal(new URL(Fake.instances[0].url).searchParams.get("token"), "t1");
  Fake.instances[0].accept();
  Fake.instances[0].drop(CloseCode.UNAUTHORIZED, "wsgate: token expired");
  await until(() => Fake.instances.length === 2, "socket 2 with a new token");
  assert.equal(new URL(Fake.instances[1].url).searchParams.get("token"), "t2");
  Fake.instances[1].accept();
  Fake.instances[1].drop(CloseCode.UNAUTHORIZED, "wsgate: token expired");
  await assert.rejects(ready, (e) => e instanceof ConnectionError && e.kind === "closed" && e.message.includes("token expired"));
  assert.equal(client.state, "closed");
  assert.equal(Fake.instances.length, 2, "the same token is not tried again");
  assert.equal(calls, 3);
  assert.deepStrictEqual(closes.map((c) => [c.code, c.reason]), [[4500, "wsgate: token expired"], [4500, "wsgate: token expired"]]);
});

test("client refreshes its token when the server says it is expiring", { timeout: 5000 }, async () => {
  let n = 0;
  const refreshed = [];
  const { client, sock, events } = await connected({ getToken: () => `tok-${++n}`, onTokenRefreshed: (t) => refreshed.push(t) });
  sock.deliver({ type: "error", id: 0, code: ErrorCode.TOKEN_EXPIRING, message: "token expires in 5s" });
  await until(() => sock.sent.length === 1, "a refresh frame");
  assert.deepStrictEqual(sock.sent[0], { type: "refresh", id: 1, token: "tok-2" });
  sock.deliver({ type: "reply", id: 1, payload: "" });
  await until(() => refreshed.length === 1, "tokenRefreshed");
  assert.deepStrictEqual(refreshed, ["tok-2"]);
  const bad = client.refreshToken("forged");
  sock.deliver({ type: "error", id: 2, code: ErrorCode.FORBIDDEN, message: "wsgate: refresh for another user" });
  await assert.rejects(bad, (e) => e instanceof WsgateError && e.code === ErrorCode.FORBIDDEN);
  assert.equal(events.errors.length, 0);
  client.close();
});

test("client reconnects after 4000, resumes and resubscribes", { timeout: 5000 }, async () => {
  const { client, Fake, sock, events } = await connected();
  const sub = client.subscribe("news");
  sock.deliver({ type: "reply", id: 1, payload: "" });
  await sub;
  sock.deliver({ type: "push", action: 120, seq: 5n, payload: "p" });
  const pending = client.request(110, "lost");
  sock.drop(CloseCode.SLOW_CONSUMER, "queue full");
  await assert.rejects(pending, (e) => e instanceof ConnectionError && e.kind === "closed");
  assert.deepStrictEqual(events.closes, [{ code: 4000, reason: "queue full", reconnect: true }]);
  assert.equal(client.state, "connecting");
  await until(() => Fake.instances.length === 2, "a second socket");
  const sock2 = Fake.instances[1];
  assert.equal(new URL(sock2.url).searchParams.get("resume"), "5.5", "the position goes in the handshake");
  sock2.accept();
  sock2.deliver({ ...HELLO, seq: 9n });
  assert.equal(client.state, "open");
  const resub = sock2.sent[0];
  assert.equal(resub.action, Action.SUBSCRIBE);
  assert.equal(dec.decode(resub.payload), "news");
  client.close();
});

test("client stops after terminal close codes", { timeout: 5000 }, async () => {
  for (const code of [CloseCode.UNAUTHORIZED, CloseCode.REPLACED, CloseCode.POLICY_VIOLATION]) {
    const { client, Fake, sock, events } = await connected();
    sock.drop(code, "bye");
    assert.equal(client.state, "closed");
    assert.equal(events.closes[0].reconnect, false);
    await new Promise((r) => setTimeout(r, 40)); // four times the backoff base
    assert.equal(Fake.instances.length, 1, `reconnected after ${code}`);
    await assert.rejects(client.connect(), ConnectionError);
  }
});

test("client refuses a server that did not choose wsgate.v1", { timeout: 5000 }, async () => {
  const Fake = fakeSocketClass();
  const client = new WsgateClient(() => "ws://x/?token=t", { WebSocket: Fake, backoffBase: 10 });
  const ready = client.connect();
  Fake.instances[0].accept("");
  await assert.rejects(ready, ConnectionError);
  assert.equal(Fake.instances[0].closedWith.code, CloseCode.UNSUPPORTED_VERSION);
  assert.equal(Fake.instances[0].url, "ws://x/?token=t");
  assert.equal(client.state, "closed");
});

test("client backoff grows, draining costs nothing, protocol errors reconnect", { timeout: 5000 }, async () => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  try {
    const Fake = fakeSocketClass();
    const client = new WsgateClient("ws://x", { WebSocket: Fake, backoffBase: 100, random: () => 0 });
    const ready = client.connect();
    const step = (ms) => mock.timers.tick(ms);
    // Each failed attempt doubles the wait: 50, 100, 200 ms (random 0 = half the cap).
    for (const [i, wait] of [[0, 50], [1, 100], [2, 200]]) {
      Fake.instances[i].drop(CloseCode.ABNORMAL);
      step(wait - 1);
      assert.equal(Fake.instances.length, i + 1, `attempt ${i} came early`);
      step(1);
      assert.equal(Fake.instances.length, i + 2, `attempt ${i} did not come after ${wait} ms`);
    }
    // Draining waits delay(0) and does not advance the attempt counter.
    Fake.instances[3].drop(CloseCode.DRAINING);
    step(50);
    assert.equal(Fake.instances.length, 5);
    // A malformed frame makes the client close with 1002 and reconnect (attempt 3: 400 ms).
    const s = Fake.instances[4];
    s.accept();
    s.onmessage({ data: new Uint8Array([9]).buffer });
    assert.equal(s.closedWith.code, CloseCode.PROTOCOL_ERROR);
    step(399);
    assert.equal(Fake.instances.length, 5);
    step(1);
    assert.equal(Fake.instances.length, 6);
    client.close();
    await assert.rejects(ready, (e) => e instanceof ConnectionError && e.kind === "closed");
  } finally {
    mock.timers.reset();
  }
});

test("client heartbeat pings when idle and gives up after twice the period", { timeout: 5000 }, async () => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  try {
    let now = 0;
    const Fake = fakeSocketClass();
    const closes = [];
    const client = new WsgateClient("ws://x", { WebSocket: Fake, now: () => now, onClose: (c) => closes.push(c) });
    client.connect();
    const sock = Fake.instances[0];
    sock.accept();
    sock.deliver({ ...HELLO, heartbeat: 1 });
    const advance = (ms) => { now += ms; mock.timers.tick(ms); };
    advance(500);
    assert.equal(sock.sent.length, 0, "pinged while traffic was recent");
    advance(500);
    assert.equal(sock.sent.at(-1)?.action, Action.PING, "no ping after a silent period");
    sock.deliver({ type: "reply", id: sock.sent.at(-1).id, payload: "" }); // the pong refreshes
    advance(1500);
    assert.equal(sock.closedWith, null);
    advance(500);
    assert.equal(sock.closedWith?.code, CloseCode.IDLE_TIMEOUT);
    assert.deepStrictEqual(closes.map((c) => [c.code, c.reconnect]), [[4001, true]]);
    client.close();
  } finally {
    mock.timers.reset();
  }
});

test("client callbacks that throw are reported, not fatal", { timeout: 5000 }, async () => {
  const errors = [];
  const { client, sock } = await connected({
    onPush: () => { throw new Error("app bug"); }, onError: (e) => errors.push(e),
  });
  sock.deliver({ type: "push", action: 120, seq: 1n, payload: "" });
  assert.equal(errors[0].message, "app bug");
  await until(() => sock.sent.length === 1, "the ack");
  assert.deepStrictEqual(sock.sent.at(-1), { type: "ack", seq: 1n });
  client.close();
});

test("SimpleClient matches replies by action, reports pushes, stops on terminal codes", { timeout: 5000 }, async () => {
  const Fake = fakeSocketClass();
  Fake.prototype.send = function (data) { this.sent.push(decodeSimple(data)); };
  const client = new SimpleClient("ws://x/ws", { WebSocket: Fake, backoffBase: 10, random: () => 0, getToken: () => "t1" });
  const messages = [];
  client.on("message", (m) => messages.push([m.action, dec.decode(m.payload)]));
  const ready = client.connect();
  await until(() => Fake.instances.length === 1, "a socket");
  const sock = Fake.instances[0];
  assert.deepStrictEqual(sock.protocols, undefined, "the simple form offers no subprotocol");
  assert.equal(new URL(sock.url).searchParams.get("token"), "t1");
  sock.onopen({});
  await ready;
  const a = client.request(4, "ping");
  const b = client.request(999, "");
  const deliver = (bytes) => sock.onmessage({ data: bytes.buffer });
  deliver(encodeSimple(120, "a push"));
  deliver(encodeSimpleError(999, "unknown action 999"));
  deliver(encodeSimple(4, "ping"));
  assert.equal(dec.decode(await a), "ping");
  await assert.rejects(b, (e) => e instanceof WsgateError && e.serverMessage === "unknown action 999");
  assert.deepStrictEqual(messages, [[120, "a push"]]);
  assert.deepStrictEqual(sock.sent.map((m) => m.action), [4, 999]);
  sock.onclose({ code: CloseCode.UNAUTHORIZED, reason: "wsgate: token expired" });
  await until(() => client.state === "closed", "closed: getToken gave the same token");
  assert.equal(Fake.instances.length, 1);
});
