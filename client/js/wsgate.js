// wsgate.js — the wsgate client (WsgateClient) as one dependency-free ES
// module for browsers and Node ≥ 22 (Node 20 with --experimental-websocket,
// or any WebSocket class passed as an option). It builds on the protocol
// codec in wire.js, as the Go SDK (package client) builds on package wire,
// and must be served beside it. This file is the npm package @wsgate/client
// and, embedded by the gateway, the script its test page loads.
//
// It re-exports everything wire.js exports, so one import from wsgate.js
// gives the client and the codec alike; importing wire.js alone gives just
// the codec.

import {
  SUBPROTOCOL, SUBPROTOCOL_JSON, SIMPLE_ERROR_BIT, Action, ErrorCode, CloseCode, encodeFrame, decodeFrame,
  encodeSimple, decodeSimple, frameToJSON, frameFromJSON, closeCodeReconnect, closeCodeBackoff,
  reconnectDelay, resumeParam,
} from "./wire.js";

export * from "./wire.js";

/** A request the server answered with an error frame (or refused locally as too large). */
export class WsgateError extends Error {
  constructor(code, message) {
    super(message ? `wsgate: ${message} (code ${code})` : `wsgate: error code ${code}`);
    this.name = "WsgateError";
    this.code = code;
    this.serverMessage = message;
  }
}

/** A request that got no answer. kind: not-connected, timeout, closed. */
export class ConnectionError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "ConnectionError";
    this.kind = kind;
  }
}

// Option callbacks, by event name.
const CALLBACKS = {
  state: "onStateChange", hello: "onHello", push: "onPush", close: "onClose", error: "onError",
  pushesLost: "onPushesLost", tokenRefreshed: "onTokenRefreshed",
};

/**
 * WsgateClient keeps one full-form connection open (binary frames, or JSON
 * text with form: "json"): it correlates requests and replies by id,
 * delivers pushes (dropping duplicates, acking sequenced ones), resumes
 * after a reconnect, resubscribes its topics, refreshes its token before
 * the server's deadline and reconnects with jittered backoff as the close
 * code allows. See README.md and wsgate.d.ts for every option and event.
 *
 * States: "idle" → "connecting" ⇄ "open" → "closed". "closed" is final:
 * after close() or a terminal close code.
 */
export class WsgateClient {
  #url;
  #opts;
  #ws = null;
  #gen = 0; // bumped per socket so events from an old socket are ignored
  #state = "idle";
  #hello = null;
  #nextID = 0;
  #pending = new Map(); // id → {resolve, reject, timer}
  #attempt = 0;
  #attempts = 0;
  #openedAt = 0;
  #retryTimer = null;
  #beatTimer = null;
  #lastRecv = 0;
  #topics = new Set();
  #epoch = 0n; // the position held: (epoch, seq); epoch 0 = none
  #seq = 0n;
  #ackSeq = 0n; // highest seq to ack, not yet sent
  #ackTimer = null;
  #token; // the token of the current or last connection attempt
  #refused = null; // {code, reason, token} of a 4500 close, while getToken may still help
  #listeners = new Map();
  #waiters = []; // connect() promises

  constructor(url, options = {}) {
    this.#url = url;
    const form = options.form ?? "binary";
    if (form !== "binary" && form !== "json") throw new TypeError(`wsgate: form must be "binary" or "json", got ${form}`);
    this.#opts = {
      protocols: [form === "json" ? SUBPROTOCOL_JSON : SUBPROTOCOL], requestTimeout: 10000,
      backoffBase: 500, backoffMax: 30000, autoAck: true, ackInterval: 100, tokenParam: "token",
      WebSocket: globalThis.WebSocket, random: Math.random, now: Date.now,
      ...options, form,
    };
    const pos = options.position;
    if (pos && BigInt(pos.epoch) > 0n) {
      this.#epoch = BigInt(pos.epoch);
      this.#seq = BigInt(pos.seq);
    }
  }

  get state() { return this.#state; }
  /** The last hello received, or null. */
  get hello() { return this.#hello; }
  /** The highest push sequence handled in the held epoch (BigInt). */
  get lastSeq() { return this.#seq; }
  /** The position to resume from, {epoch, seq} as BigInts, or null if none. Persist it to resume across page loads. */
  get position() { return this.#epoch === 0n ? null : { epoch: this.#epoch, seq: this.#seq }; }
  /** How many connection attempts (WebSocket objects) this client has made. */
  get attempts() { return this.#attempts; }

  /** Adds a listener for event; returns a function that removes it. */
  on(event, fn) {
    if (!Object.hasOwn(CALLBACKS, event)) throw new TypeError(`wsgate: unknown event ${event}`);
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  /** Removes a listener added with on. */
  off(event, fn) { this.#listeners.get(event)?.delete(fn); }

  /** Starts connecting; resolves with the hello, rejects if the client ends up closed. */
  connect() {
    if (this.#state === "closed") return Promise.reject(new ConnectionError("closed", "wsgate: client closed"));
    const p = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.#state === "open") this.#settleWaiters(this.#hello);
    else if (this.#state === "idle") this.#open();
    return p;
  }

  /** Closes for good: sends a pending ack, then no reconnect; pending requests reject with ConnectionError("closed"). */
  close(code = CloseCode.NORMAL, reason = "") {
    if (this.#state === "closed") return;
    this.#flushAck();
    const ws = this.#detach();
    try { ws?.close(code, reason); } catch { /* already closing */ }
    this.#setState("closed");
    this.#failAll(new ConnectionError("closed", "wsgate: client closed"));
  }

  /**
   * Sends a request; resolves with the reply payload (Uint8Array), rejects
   * with WsgateError or ConnectionError. timeout ms; Infinity waits until
   * the connection closes.
   */
  request(action, payload, { timeout = this.#opts.requestTimeout } = {}) {
    return this.#call({ type: "request", action, payload }, timeout);
  }

  /** Sends a fire-and-forget request (id 0): no reply, no error. Throws if not open. */
  send(action, payload) { this.#send({ type: "request", action, id: 0, payload }); }

  /**
   * Acknowledges every sequenced push up to seq. Acks are coalesced: at
   * most one ack frame per ackInterval ms carries the highest seq; close()
   * sends the last one.
   */
  ack(seq) {
    seq = BigInt(seq);
    if (seq <= this.#ackSeq) return;
    this.#ackSeq = seq;
    if (this.#ackTimer === null && this.#state === "open") {
      this.#ackTimer = setTimeout(() => { this.#ackTimer = null; this.#flushAck(); }, this.#opts.ackInterval);
    }
  }

  /**
   * Sends the server a new token for this connection (from getToken when
   * token is omitted), so that it stays open past the old token's expiry.
   * Resolves once the server accepted it; rejects with WsgateError if the
   * server refused it (another user, expired, invalid).
   */
  async refreshToken(token) {
    if (token === undefined) {
      if (!this.#opts.getToken) throw new TypeError("wsgate: refreshToken needs a token or the getToken option");
      token = await this.#opts.getToken();
    }
    await this.#call({ type: "refresh", token }, this.#opts.requestTimeout);
    this.#token = token;
    this.#emit("tokenRefreshed", token);
  }

  /**
   * Subscribes to a topic, and again after every hello. While not connected
   * the promise rejects with ConnectionError("not-connected") but the topic
   * is kept and subscribed on the next hello; an error frame forgets it.
   */
  async subscribe(topic) {
    this.#topics.add(topic);
    try {
      await this.request(Action.SUBSCRIBE, topic);
    } catch (err) {
      if (err instanceof WsgateError) this.#topics.delete(topic);
      throw err;
    }
  }

  /** Unsubscribes from a topic. */
  async unsubscribe(topic) {
    this.#topics.delete(topic);
    await this.request(Action.UNSUBSCRIBE, topic);
  }

  // #call sends a frame that carries a request id and waits for its answer.
  #call(frame, timeout) {
    return new Promise((resolve, reject) => {
      const id = this.#nextID = (this.#nextID % 0xffffffff) + 1;
      this.#send({ ...frame, id });
      const timer = Number.isFinite(timeout) ? setTimeout(() => {
        this.#pending.delete(id);
        reject(new ConnectionError("timeout", `wsgate: request ${id} timed out`));
      }, timeout) : null;
      this.#pending.set(id, { resolve, reject, timer });
    });
  }

  #send(frame) {
    if (this.#state !== "open") {
      throw new ConnectionError("not-connected", `wsgate: not connected (${this.#state})`);
    }
    const data = this.#opts.form === "json" ? frameToJSON(frame) : encodeFrame(frame);
    const size = typeof data === "string" ? new TextEncoder().encode(data).length : data.length;
    const max = this.#hello?.maxMessage ?? 0;
    if (max > 0 && size > max) {
      throw new WsgateError(ErrorCode.TOO_LARGE, `message of ${size} bytes exceeds the server's maxMessage ${max}`);
    }
    this.#ws.send(data);
  }

  #flushAck() {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
    if (this.#ackSeq === 0n || this.#state !== "open") return;
    const seq = this.#ackSeq;
    this.#ackSeq = 0n;
    try {
      this.#send({ type: "ack", seq });
    } catch (err) {
      this.#report(err);
    }
  }

  // #open makes one connection attempt: a fresh token from getToken, the
  // held position as ?resume=, then the WebSocket.
  async #open() {
    const gen = ++this.#gen;
    this.#setState("connecting");
    let token = this.#token;
    if (this.#opts.getToken) {
      try {
        token = await this.#opts.getToken();
      } catch (err) {
        if (gen !== this.#gen) return;
        this.#report(err);
        this.#refused = null;
        this.#retry(CloseCode.ABNORMAL); // the token service may come back
        return;
      }
      if (gen !== this.#gen) return; // closed meanwhile
    }
    const refused = this.#refused;
    this.#refused = null;
    if (refused && token === refused.token) { // getToken has nothing better: stop
      this.#terminate(refused);
      return;
    }
    this.#token = token;
    let ws;
    try {
      ws = new this.#opts.WebSocket(this.#connectURL(token), this.#opts.protocols);
    } catch (err) { // a malformed URL never gets better
      this.#report(err);
      this.#terminate({ code: CloseCode.POLICY_VIOLATION, reason: String(err), reconnect: false });
      return;
    }
    this.#attempts++;
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => gen === this.#gen && this.#onOpen();
    ws.onmessage = (ev) => gen === this.#gen && this.#onMessage(ev.data);
    ws.onclose = (ev) => gen === this.#gen && this.#onClose(ev.code, ev.reason);
    ws.onerror = () => {}; // a close event always follows
  }

  #connectURL(token) {
    const base = typeof this.#url === "function" ? this.#url() : this.#url;
    if (token === undefined && this.#epoch === 0n) return base;
    const u = new URL(base);
    if (token !== undefined) u.searchParams.set(this.#opts.tokenParam, token);
    if (this.#epoch !== 0n) u.searchParams.set("resume", resumeParam(this.#epoch, this.#seq));
    return u.toString();
  }

  #onOpen() {
    this.#lastRecv = this.#opts.now();
    if (this.#ws.protocol !== this.#opts.protocols[0]) {
      this.#abort(CloseCode.UNSUPPORTED_VERSION, `server chose subprotocol "${this.#ws.protocol}"`);
    }
  }

  #onMessage(data) {
    this.#lastRecv = this.#opts.now();
    let f;
    try {
      f = typeof data === "string" ? frameFromJSON(data) : decodeFrame(data);
    } catch (err) {
      this.#abort(CloseCode.PROTOCOL_ERROR, err.message);
      return;
    }
    switch (f.type) {
      case "hello": return this.#onHello(f);
      case "reply": return this.#settle(f.id, (p) => p.resolve(f.payload));
      case "error":
        if (f.id === 0) return this.#onNotice(f);
        return this.#settle(f.id, (p) => p.reject(new WsgateError(f.code, f.message)));
      case "push": return this.#onPush(f);
    }
    this.#abort(CloseCode.PROTOCOL_ERROR, `unexpected ${f.type} frame from server`);
  }

  // #onNotice handles an error frame not tied to a request.
  #onNotice(f) {
    switch (f.code) {
      case ErrorCode.PUSHES_LOST:
        this.#emit("pushesLost", f.message);
        return;
      case ErrorCode.TOKEN_EXPIRING:
        if (this.#opts.getToken) {
          this.refreshToken().catch((err) => this.#report(err));
          return;
        }
    }
    this.#report(new WsgateError(f.code, f.message));
  }

  #onHello(hello) {
    this.#hello = hello;
    this.#openedAt = this.#opts.now();
    if (hello.epoch !== 0n && hello.epoch !== this.#epoch) {
      // A new numbering: a fresh client starts from the hello's sequence;
      // one that held another epoch gets this epoch replayed from its start.
      this.#seq = this.#epoch === 0n ? hello.seq : 0n;
      this.#epoch = hello.epoch;
    }
    this.#ackSeq = 0n; // an ack of the old connection means nothing to this one
    this.#setState("open");
    this.#startHeartbeat(hello.heartbeat);
    for (const topic of this.#topics) {
      this.request(Action.SUBSCRIBE, topic).catch((err) => this.#report(err));
    }
    this.#emit("hello", hello);
    this.#settleWaiters(hello);
  }

  #onPush(push) {
    push.gap = false;
    if (push.seq !== 0n && this.#epoch !== 0n) {
      if (push.seq <= this.#seq) return; // already handled: a replay after a resume
      push.gap = push.seq > this.#seq + 1n;
      this.#seq = push.seq;
    }
    this.#emit("push", push);
    if (push.seq !== 0n && this.#opts.autoAck && this.#state === "open") this.ack(push.seq);
  }

  #settle(id, fn) {
    const p = this.#pending.get(id);
    if (!p) return; // timed out already, or a heartbeat ping
    this.#pending.delete(id);
    clearTimeout(p.timer);
    fn(p);
  }

  // #abort drops the socket after a client-side decision (protocol error,
  // dead heartbeat) and reconnects as if the server had closed with code:
  // a dead network would never deliver the close event.
  #abort(code, reason) {
    const ws = this.#detach();
    try { ws?.close(code, reason.slice(0, 120)); } catch { /* already closing */ }
    this.#onClose(code, reason);
  }

  #onClose(code, reason) {
    this.#detach();
    this.#failPending(new ConnectionError("closed", `wsgate: connection closed (${code})`));
    // A refused token is final unless getToken can bring a different one.
    const retryAuth = code === CloseCode.UNAUTHORIZED && !!this.#opts.getToken;
    const reconnect = closeCodeReconnect(code) || retryAuth;
    if (this.#openedAt && this.#opts.now() - this.#openedAt >= this.#opts.backoffMax) this.#attempt = 0;
    this.#openedAt = 0;
    this.#emit("close", { code, reason, reconnect });
    if (this.#state === "closed") return; // close() was called from a listener
    if (!reconnect) {
      this.#terminate({ code, reason, reconnect });
      return;
    }
    if (retryAuth) this.#refused = { code, reason, reconnect: false, token: this.#token };
    this.#retry(code);
  }

  #retry(code) {
    const { backoffBase: base, backoffMax: max, random } = this.#opts;
    const attempt = closeCodeBackoff(code) || code === CloseCode.UNAUTHORIZED ? this.#attempt++ : 0;
    this.#setState("connecting");
    this.#retryTimer = setTimeout(() => this.#open(), reconnectDelay(attempt, random(), base, max));
  }

  #terminate(info) {
    this.#setState("closed");
    this.#failAll(new ConnectionError("closed", `wsgate: connection closed for good (${info.code} ${info.reason})`));
  }

  #startHeartbeat(seconds) {
    if (!seconds) return;
    const period = seconds * 1000;
    this.#beatTimer = setInterval(() => {
      const idle = this.#opts.now() - this.#lastRecv;
      if (idle >= 2 * period) {
        this.#abort(CloseCode.IDLE_TIMEOUT, "heartbeat timeout");
      } else if (idle >= period) {
        const id = this.#nextID = (this.#nextID % 0xffffffff) + 1;
        try {
          this.#send({ type: "request", action: Action.PING, id }); // the reply only refreshes lastRecv
        } catch (err) {
          this.#report(err);
        }
      }
    }, period / 2);
  }

  // #detach forgets the current socket and its timers; returns it.
  #detach() {
    const ws = this.#ws;
    this.#gen++;
    this.#ws = null;
    clearInterval(this.#beatTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#ackTimer);
    this.#beatTimer = this.#retryTimer = this.#ackTimer = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    return ws;
  }

  #failPending(err) {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  #failAll(err) {
    this.#failPending(err);
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.reject(err);
  }

  #settleWaiters(hello) {
    for (const w of this.#waiters.splice(0)) w.resolve(hello);
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit("state", state);
  }

  #report(err) { this.#emit("error", err); }

  // #emit runs the option callback and the listeners of an event; their
  // exceptions go to the error event, never into the client's bookkeeping.
  #emit(event, arg) {
    const fns = [this.#opts[CALLBACKS[event]], ...(this.#listeners.get(event) ?? [])];
    for (const fn of fns) {
      if (!fn) continue;
      try {
        fn(arg);
      } catch (err) {
        if (event !== "error") this.#report(err);
      }
    }
  }
}

/**
 * SimpleClient speaks the simple form (no subprotocol): every message is a
 * u32 action and a payload, with no request ids, hello or sequences. The
 * gateway answers a connection's requests in order, so request() resolves
 * with the next message carrying the request's action (an error reply, the
 * action with the high bit set, rejects with WsgateError code 0). Other
 * messages are pushes, handed to the "message" event: give pushes actions
 * that requests do not use. It reconnects like WsgateClient (backoff,
 * terminal codes, getToken) but has no resume: use WsgateClient for that.
 *
 * Events: "state", "message" ({action, payload}), "close", "error".
 */
export class SimpleClient {
  #url;
  #opts;
  #ws = null;
  #gen = 0;
  #state = "idle";
  #waiting = new Map(); // action → queue of {resolve, reject, timer}
  #attempt = 0;
  #attempts = 0;
  #timer = null;
  #token;
  #refused = null;
  #listeners = new Map();

  constructor(url, options = {}) {
    this.#url = url;
    this.#opts = {
      requestTimeout: 10000, backoffBase: 500, backoffMax: 30000, tokenParam: "token",
      WebSocket: globalThis.WebSocket, random: Math.random, ...options,
    };
  }

  get state() { return this.#state; }
  get attempts() { return this.#attempts; }

  on(event, fn) {
    if (!["state", "message", "close", "error"].includes(event)) throw new TypeError(`wsgate: unknown event ${event}`);
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(fn);
    return () => this.#listeners.get(event)?.delete(fn);
  }

  /** Starts connecting; resolves once open. */
  connect() {
    return new Promise((resolve, reject) => {
      const off = this.on("state", (s) => {
        if (s === "open") { off(); resolve(); }
        if (s === "closed") { off(); reject(new ConnectionError("closed", "wsgate: client closed")); }
      });
      if (this.#state === "idle") this.#open();
      else if (this.#state === "open") { off(); resolve(); }
      else if (this.#state === "closed") { off(); reject(new ConnectionError("closed", "wsgate: client closed")); }
    });
  }

  close(code = CloseCode.NORMAL, reason = "") {
    if (this.#state === "closed") return;
    const ws = this.#ws;
    this.#drop();
    try { ws?.close(code, reason); } catch { /* already closing */ }
    this.#setState("closed");
  }

  /** Sends action + payload without waiting for anything. Throws if not open. */
  send(action, payload) {
    if (this.#state !== "open") throw new ConnectionError("not-connected", `wsgate: not connected (${this.#state})`);
    this.#ws.send(encodeSimple(action, payload));
  }

  /** Sends a request; resolves with the payload of the next message with the same action. */
  request(action, payload, { timeout = this.#opts.requestTimeout } = {}) {
    return new Promise((resolve, reject) => {
      this.send(action, payload);
      const q = this.#waiting.get(action) ?? [];
      this.#waiting.set(action, q);
      const w = { resolve, reject, timer: null };
      if (Number.isFinite(timeout)) {
        w.timer = setTimeout(() => {
          q.splice(q.indexOf(w), 1);
          reject(new ConnectionError("timeout", `wsgate: request for action ${action} timed out`));
        }, timeout);
      }
      q.push(w);
    });
  }

  async #open() {
    const gen = ++this.#gen;
    this.#setState("connecting");
    let token = this.#token;
    if (this.#opts.getToken) {
      try {
        token = await this.#opts.getToken();
      } catch (err) {
        if (gen !== this.#gen) return;
        this.#emit("error", err);
        this.#retry(CloseCode.ABNORMAL);
        return;
      }
      if (gen !== this.#gen) return;
    }
    if (this.#refused !== null && token === this.#refused) {
      this.#setState("closed");
      return;
    }
    this.#refused = null;
    this.#token = token;
    let url = typeof this.#url === "function" ? this.#url() : this.#url;
    if (token !== undefined) {
      const u = new URL(url);
      u.searchParams.set(this.#opts.tokenParam, token);
      url = u.toString();
    }
    const ws = new this.#opts.WebSocket(url);
    this.#attempts++;
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { if (gen === this.#gen) { this.#attempt = 0; this.#setState("open"); } };
    ws.onmessage = (ev) => gen === this.#gen && this.#onMessage(ev.data);
    ws.onclose = (ev) => gen === this.#gen && this.#onClose(ev.code, ev.reason);
    ws.onerror = () => {};
  }

  #onMessage(data) {
    if (typeof data === "string") { // a JSON error frame: the gateway's answer to text it could not read
      this.#emit("error", new WsgateError(ErrorCode.BAD_REQUEST, data));
      return;
    }
    let m;
    try { m = decodeSimple(data); } catch (err) { this.#emit("error", err); return; }
    const action = m.error ? (m.action & ~SIMPLE_ERROR_BIT) >>> 0 : m.action;
    const w = this.#waiting.get(action)?.shift();
    if (!w) {
      this.#emit("message", { action: m.action, payload: m.payload });
      return;
    }
    clearTimeout(w.timer);
    if (m.error) w.reject(new WsgateError(0, new TextDecoder().decode(m.payload)));
    else w.resolve(m.payload);
  }

  #onClose(code, reason) {
    this.#drop();
    const retryAuth = code === CloseCode.UNAUTHORIZED && !!this.#opts.getToken;
    const reconnect = closeCodeReconnect(code) || retryAuth;
    this.#emit("close", { code, reason, reconnect });
    if (this.#state === "closed") return;
    if (!reconnect) { this.#setState("closed"); return; }
    if (retryAuth) this.#refused = this.#token;
    this.#retry(code);
  }

  #retry(code) {
    const { backoffBase, backoffMax, random } = this.#opts;
    const attempt = closeCodeBackoff(code) || code === CloseCode.UNAUTHORIZED ? this.#attempt++ : 0;
    this.#setState("connecting");
    this.#timer = setTimeout(() => this.#open(), reconnectDelay(attempt, random(), backoffBase, backoffMax));
  }

  // #drop forgets the socket and fails every waiting request.
  #drop() {
    this.#gen++;
    clearTimeout(this.#timer);
    if (this.#ws) this.#ws.onopen = this.#ws.onmessage = this.#ws.onclose = this.#ws.onerror = null;
    this.#ws = null;
    const err = new ConnectionError("closed", "wsgate: connection closed");
    for (const q of this.#waiting.values()) for (const w of q) { clearTimeout(w.timer); w.reject(err); }
    this.#waiting.clear();
  }

  #setState(s) {
    if (this.#state === s) return;
    this.#state = s;
    this.#emit("state", s);
  }

  #emit(event, arg) {
    for (const fn of this.#listeners.get(event) ?? []) {
      try { fn(arg); } catch (err) { if (event !== "error") this.#emit("error", err); }
    }
  }
}
