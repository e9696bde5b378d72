// wire.js — the wsgate wire protocol (docs/PROTOCOL.md) as one
// dependency-free ES module for browsers and Node ≥ 20: its constants, the
// codecs of its three forms (binary full, simple, JSON) and the close-code
// table with the reconnect backoff every client obeys. It is the JavaScript
// twin of the Go package github.com/wsgate/wsgate/wire; the client in
// wsgate.js builds on it and re-exports all of it.
//
// The codec is checked against the Go package's golden vectors
// (wire/testdata) by test/unit_test.mjs. Frames are plain objects named by
// their JSON form:
//
//   {type: "request", action, id, payload}
//   {type: "reply",   id, payload}
//   {type: "error",   id, code, message}
//   {type: "push",    action, seq, payload}
//   {type: "ack",     seq}
//   {type: "hello",   conn, user, seq, epoch, maxMessage, heartbeat}
//   {type: "refresh", id, token}
//
// payload is a Uint8Array (a view into the received message); when encoding
// it may also be a string (sent as UTF-8), an ArrayBuffer or any typed
// array. seq and epoch are BigInts, because they are 64-bit. Type 7 (the
// old resume frame) is reserved: a position to resume from now goes in the
// handshake, as the query parameter resume=<epoch>.<seq> (resumeParam).

export const SUBPROTOCOL = "wsgate.v1";
export const SUBPROTOCOL_JSON = "wsgate.v1.json";

export const FrameType = Object.freeze({
  REQUEST: 1, REPLY: 2, ERROR: 3, PUSH: 4, ACK: 5, HELLO: 6, REFRESH: 8,
});
const TYPE_NAMES = ["request", "reply", "error", "push", "ack", "hello", null, "refresh"];

export const Action = Object.freeze({
  SUBSCRIBE: 1, // payload: topic (UTF-8, 1–255 bytes); reply: empty
  UNSUBSCRIBE: 2, // payload: topic; reply: empty
  PRESENCE: 3, // payload: user id; reply: u32 BE live connection count
  PING: 4, // payload: any bytes; reply: the same bytes
  MAX_SYSTEM: 99,
  MIN_APP: 100,
});
export const SIMPLE_ERROR_BIT = 0x80000000;

export const ErrorCode = Object.freeze({
  UNKNOWN_ACTION: 1, BAD_REQUEST: 2, FORBIDDEN: 3, INTERNAL: 4, UNAVAILABLE: 5,
  TIMEOUT: 6, RATE_LIMITED: 7, TOO_LARGE: 8, NOT_SUBSCRIBED: 9, LIMIT_EXCEEDED: 10,
  PUSHES_LOST: 11, // id-0 error after a resume: sequenced pushes are no longer retained
  TOKEN_EXPIRING: 12, // id-0 notice: the token expires soon; send a refresh frame
  MIN_APP: 1000,
});

export const CloseCode = Object.freeze({
  NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL_ERROR: 1002, UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005, ABNORMAL: 1006, INVALID_PAYLOAD: 1007, POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009, INTERNAL_ERROR: 1011, SERVICE_RESTART: 1012, TRY_AGAIN_LATER: 1013,
  SLOW_CONSUMER: 4000, IDLE_TIMEOUT: 4001, RATE_LIMITED: 4002, DRAINING: 4003, TOKEN_EXPIRED: 4004,
  UNAUTHORIZED: 4500, FORBIDDEN: 4501, UNSUPPORTED_VERSION: 4502, REPLACED: 4503,
});

/** A message that does not decode or encode. kind: short, unknown-type, trailing, too-long, bad-json. */
export class WireError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "WireError";
    this.kind = kind;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder(); // replaces invalid UTF-8 with U+FFFD
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

// ---- binary full form ----

const HEADER = { request: 9, reply: 5, error: 7, push: 13, refresh: 5 };

/** Encodes a frame object to its binary form. Throws RangeError/TypeError on bad fields. */
export function encodeFrame(f) {
  switch (f.type) {
    case "request": return withHeader(1, f.payload, (v) => {
      v.setUint32(1, u32(f.action, "action"));
      v.setUint32(5, u32(f.id ?? 0, "id"));
    });
    case "reply": return withHeader(2, f.payload, (v) => v.setUint32(1, u32(f.id ?? 0, "id")));
    case "error": return withHeader(3, f.message ?? "", (v) => {
      v.setUint32(1, u32(f.id ?? 0, "id"));
      v.setUint16(5, u16(f.code ?? 0, "code"));
    });
    case "push": return withHeader(4, f.payload, (v) => {
      v.setUint32(1, u32(f.action, "action"));
      v.setBigUint64(5, u64(f.seq ?? 0));
    });
    case "ack": {
      const b = new Uint8Array(9);
      b[0] = 5;
      view(b).setBigUint64(1, u64(f.seq ?? 0));
      return b;
    }
    case "refresh": return withHeader(8, f.token ?? "", (v) => v.setUint32(1, u32(f.id ?? 0, "id")));
    case "hello": return encodeHello(f);
  }
  throw new WireError("unknown-type", "wsgate: unknown frame type");
}

function withHeader(type, payload, fill) {
  const p = toBytes(payload);
  const n = HEADER[TYPE_NAMES[type - 1]];
  const b = new Uint8Array(n + p.length);
  b[0] = type;
  fill(view(b));
  b.set(p, n);
  return b;
}

// hello: type, seq u64, epoch u64, maxMessage u32, heartbeat u16,
// conn length u16, conn, user length u16, user.
const HELLO_MIN = 27;

function encodeHello(f) {
  const conn = encoder.encode(f.conn ?? "");
  const user = encoder.encode(f.user ?? "");
  if (conn.length > 0xffff || user.length > 0xffff) throw new WireError("too-long", "wsgate: field too long");
  const b = new Uint8Array(HELLO_MIN + conn.length + user.length);
  const v = view(b);
  b[0] = 6;
  v.setBigUint64(1, u64(f.seq ?? 0));
  v.setBigUint64(9, u64(f.epoch ?? 0, "epoch"));
  v.setUint32(17, u32(f.maxMessage ?? 0, "maxMessage"));
  v.setUint16(21, u16(f.heartbeat ?? 0, "heartbeat"));
  v.setUint16(23, conn.length);
  b.set(conn, 25);
  v.setUint16(25 + conn.length, user.length);
  b.set(user, HELLO_MIN + conn.length);
  return b;
}

/** Decodes one binary full-form message. Payloads are views into data. Throws WireError. */
export function decodeFrame(data) {
  const b = toBytes(data);
  const v = view(b);
  switch (b[0]) {
    case 1:
      need(b, 9);
      return { type: "request", action: v.getUint32(1), id: v.getUint32(5), payload: b.subarray(9) };
    case 2:
      need(b, 5);
      return { type: "reply", id: v.getUint32(1), payload: b.subarray(5) };
    case 3:
      need(b, 7);
      return { type: "error", id: v.getUint32(1), code: v.getUint16(5), message: decoder.decode(b.subarray(7)) };
    case 4:
      need(b, 13);
      return { type: "push", action: v.getUint32(1), seq: v.getBigUint64(5), payload: b.subarray(13) };
    case 5:
      need(b, 9);
      noTrailing(b, 9);
      return { type: "ack", seq: v.getBigUint64(1) };
    case 6: return decodeHello(b, v);
    case 8:
      need(b, 5);
      return { type: "refresh", id: v.getUint32(1), token: decoder.decode(b.subarray(5)) };
    case undefined: throw short();
  }
  throw new WireError("unknown-type", "wsgate: unknown frame type");
}

function decodeHello(b, v) {
  need(b, HELLO_MIN);
  const c = v.getUint16(23);
  need(b, HELLO_MIN + c);
  const u = v.getUint16(25 + c);
  need(b, HELLO_MIN + c + u);
  noTrailing(b, HELLO_MIN + c + u);
  return {
    type: "hello",
    conn: decoder.decode(b.subarray(25, 25 + c)),
    user: decoder.decode(b.subarray(HELLO_MIN + c, HELLO_MIN + c + u)),
    seq: v.getBigUint64(1),
    epoch: v.getBigUint64(9),
    maxMessage: v.getUint32(17),
    heartbeat: v.getUint16(21),
  };
}

function short() { return new WireError("short", "wsgate: frame truncated"); }
function need(b, n) { if (b.length < n) throw short(); }
function noTrailing(b, n) {
  if (b.length > n) throw new WireError("trailing", "wsgate: trailing bytes after frame");
}

// ---- simple form ----

/** Encodes a simple-form message: u32 action + payload. */
export function encodeSimple(action, payload) {
  const p = toBytes(payload);
  const b = new Uint8Array(4 + p.length);
  view(b).setUint32(0, u32(action, "action"));
  b.set(p, 4);
  return b;
}

/** Encodes the simple-form error reply to action: action|0x80000000 + UTF-8 message. */
export function encodeSimpleError(action, message) {
  return encodeSimple((u32(action, "action") | SIMPLE_ERROR_BIT) >>> 0, message);
}

/**
 * Decodes a simple-form message into {action, payload, error}. action keeps
 * the error bit; error is true for an error reply. Throws WireError("short").
 */
export function decodeSimple(data) {
  const b = toBytes(data);
  if (b.length < 4) throw new WireError("short", "wsgate: message shorter than 4 bytes");
  const action = view(b).getUint32(0);
  return { action, payload: b.subarray(4), error: action >= SIMPLE_ERROR_BIT };
}

// ---- JSON form ----

/** Returns the canonical JSON form of a frame, byte for byte what the Go encoder writes. */
export function frameToJSON(f) {
  const id = () => `,"id":${u32(f.id ?? 0, "id")}`;
  const action = () => `,"action":${u32(f.action, "action")}`;
  const seq = () => `,"seq":${u64(f.seq ?? 0)}`;
  const str = (k) => `,"${k}":${JSON.stringify(f[k] ?? "")}`;
  let s = `{"type":"${f.type}"`;
  switch (f.type) {
    case "request": s += id() + action() + jsonPayload(f.payload); break;
    case "reply": s += id() + jsonPayload(f.payload); break;
    case "error": s += id() + `,"code":${u16(f.code ?? 0, "code")}` + str("message"); break;
    case "push": s += action() + seq() + jsonPayload(f.payload); break;
    case "ack": s += seq(); break;
    case "refresh": s += id() + str("token"); break;
    case "hello":
      s += str("conn") + str("user") + seq() + `,"epoch":${u64(f.epoch ?? 0, "epoch")}` +
        `,"maxMessage":${u32(f.maxMessage ?? 0, "maxMessage")},"heartbeat":${u16(f.heartbeat ?? 0, "heartbeat")}`;
      break;
    default: throw new WireError("unknown-type", "wsgate: unknown frame type");
  }
  return s + "}";
}

function jsonPayload(payload) {
  const p = toBytes(payload);
  if (p.length === 0) return "";
  let text = null;
  try { text = strictDecoder.decode(p); } catch { /* not UTF-8: data */ }
  if (text !== null && isCompactJSON(text)) return `,"json":${text}`;
  if (text !== null && isText(p)) return `,"text":${JSON.stringify(text)}`;
  return `,"data":"${toBase64(p)}"`;
}

function isCompactJSON(text) {
  try { JSON.parse(text); } catch { return false; }
  let inString = false, escaped = false;
  for (const c of text) {
    if (escaped) escaped = false;
    else if (inString && c === "\\") escaped = true;
    else if (c === '"') inString = !inString;
    else if (!inString && (c === " " || c === "\t" || c === "\n" || c === "\r")) return false;
  }
  return true;
}

function isText(p) {
  return p.every((c) => (c >= 0x20 || c === 9 || c === 10 || c === 13) && c !== 0x7f);
}

const JSON_FIELDS = {
  request: ["id", "action", "data", "json", "text"],
  reply: ["id", "data", "json", "text"],
  error: ["id", "code", "message"],
  push: ["action", "seq", "data", "json", "text"],
  ack: ["seq"],
  hello: ["conn", "user", "seq", "epoch", "maxMessage", "heartbeat"],
  refresh: ["id", "token"],
};

/**
 * Decodes a JSON-form frame exactly as the Go decoder does: exact keys, only
 * the type's fields, integers in plain decimal and in range (seq exact, as a
 * BigInt), canonical base64, a json payload's text kept verbatim. Throws
 * WireError ("bad-json" or "unknown-type").
 */
export function frameFromJSON(text) {
  const fields = rawFields(text);
  if (!fields.has("type")) throw badJSON('missing "type"');
  const type = rawString(fields, "type");
  const allowed = Object.hasOwn(JSON_FIELDS, type) ? JSON_FIELDS[type] : null;
  if (!allowed) throw new WireError("unknown-type", `wsgate: unknown frame type ${JSON.stringify(type)}`);
  for (const k of fields.keys()) {
    if (k !== "type" && !allowed.includes(k)) {
      throw badJSON(`field ${JSON.stringify(k)} not allowed in ${type} frame`);
    }
  }
  const f = { type };
  for (const k of allowed) {
    if (k === "seq" || k === "epoch") f[k] = rawUint(fields, k, 0xffffffffffffffffn);
    else if (k === "id" || k === "action" || k === "maxMessage") f[k] = Number(rawUint(fields, k, 0xffffffffn));
    else if (k === "code" || k === "heartbeat") f[k] = Number(rawUint(fields, k, 0xffffn));
    else if (k === "message" || k === "conn" || k === "user" || k === "token") f[k] = rawString(fields, k);
  }
  if (allowed.includes("data")) f.payload = rawPayload(fields);
  return f;
}

function badJSON(why) { return new WireError("bad-json", `wsgate: malformed json frame: ${why}`); }

// rawFields maps each top-level key of a JSON object to its value's source
// text (last duplicate wins, as in Go). JSON.parse vouches for the syntax
// first, so the scanner only has to find where values end.
function rawFields(text) {
  let o;
  try { o = JSON.parse(text); } catch (e) { throw badJSON(e.message); }
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw badJSON("not an object");
  const fields = new Map();
  let i = text.indexOf("{") + 1;
  const ws = () => { while (" \t\n\r".includes(text[i])) i++; };
  for (ws(); text[i] !== "}"; ws()) {
    const keyStart = i;
    i = skipValue(text, i);
    const key = JSON.parse(text.slice(keyStart, i));
    ws();
    i++; // the colon
    ws();
    const valueStart = i;
    i = skipValue(text, i);
    fields.set(key, text.slice(valueStart, i));
    ws();
    if (text[i] === ",") i++;
    ws();
  }
  return fields;
}

// skipValue returns the index just past the valid JSON value at text[i].
function skipValue(text, i) {
  let depth = 0;
  do {
    const c = text[i];
    if (c === '"') {
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
      i++;
    } else if (c === "{" || c === "[") {
      depth++; i++;
    } else if (c === "}" || c === "]") {
      depth--; i++;
    } else if (depth > 0) {
      i++;
    } else {
      while (i < text.length && !",}] \t\n\r".includes(text[i])) i++;
    }
  } while (depth > 0);
  return i;
}

function rawUint(fields, k, max) {
  if (!fields.has(k)) return 0n;
  const raw = fields.get(k);
  if (!/^(0|[1-9][0-9]*)$/.test(raw) || BigInt(raw) > max) {
    throw badJSON(`"${k}" is not an unsigned integer in range`);
  }
  return BigInt(raw);
}

function rawString(fields, k) {
  if (!fields.has(k)) return "";
  const raw = fields.get(k);
  if (raw[0] !== '"') throw badJSON(`"${k}" is not a string`);
  return JSON.parse(raw);
}

function rawPayload(fields) {
  const present = ["data", "json", "text"].filter((k) => fields.has(k));
  if (present.length > 1) throw badJSON('more than one of "data", "json", "text"');
  switch (present[0]) {
    case "json": return encoder.encode(fields.get("json"));
    case "text": return encoder.encode(rawString(fields, "text"));
    case "data": return fromBase64(rawString(fields, "data"));
  }
  return new Uint8Array(0);
}

function toBase64(p) {
  let s = "";
  for (let i = 0; i < p.length; i += 0x8000) s += String.fromCharCode(...p.subarray(i, i + 0x8000));
  return btoa(s);
}

// fromBase64 accepts only the canonical encoding, like the Go decoder.
function fromBase64(s) {
  let bin;
  try { bin = atob(s); } catch { throw badJSON('"data" is not canonical base64'); }
  if (btoa(bin) !== s) throw badJSON('"data" is not canonical base64');
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

// ---- helpers ----

function toBytes(x) {
  if (x === undefined || x === null) return new Uint8Array(0);
  if (x instanceof Uint8Array) return x;
  if (typeof x === "string") return encoder.encode(x);
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError("wsgate: payload must be bytes or a string");
}

function view(b) { return new DataView(b.buffer, b.byteOffset, b.byteLength); }

function u32(v, name) { return checkUint(v, 0xffffffff, name); }
function u16(v, name) { return checkUint(v, 0xffff, name); }
function checkUint(v, max, name) {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`wsgate: ${name} ${v} out of range`);
  return v;
}
function u64(v, name = "seq") {
  const n = BigInt(v); // throws for fractions and non-numbers
  if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`wsgate: ${name} ${v} out of range`);
  return n;
}

// ---- resume position (PROTOCOL.md, resume) ----

/**
 * Returns the value of the handshake's resume query parameter for a client
 * holding position {epoch, seq}: "<epoch>.<seq>" in decimal. Throws
 * RangeError for values outside u64.
 */
export function resumeParam(epoch, seq) {
  return `${u64(epoch, "epoch")}.${u64(seq)}`;
}

// ---- close codes and backoff (PROTOCOL.md §6) ----

/** Reports whether to reconnect after the server closed with code (4004 included: with a fresh token). */
export function closeCodeReconnect(code) {
  return code !== CloseCode.POLICY_VIOLATION && (code < 4500 || code > 4999);
}

/** Reports whether the reconnect counts as a failure (backoff grows); false for draining. */
export function closeCodeBackoff(code) {
  return closeCodeReconnect(code) && code !== CloseCode.DRAINING;
}

/** Delay in ms before attempt (0-based): floor(cap/2 + random·cap/2), cap = min(max, base·2^attempt). */
export function reconnectDelay(attempt, random, base = 500, max = 30000) {
  attempt = Number.isNaN(attempt) ? 0 : Math.min(Math.max(Math.trunc(attempt), 0), 62);
  if (!(random >= 0)) random = 0;
  random = Math.min(random, 1);
  const cap = Math.min(base * 2 ** attempt, max);
  return Math.floor(cap / 2 + (random * cap) / 2);
}
