// wsgate.js — a small wsgate client (WsgateClient) as one dependency-free ES
// module for browsers and Node ≥ 18. It builds on the protocol codec in
// wire.js, as the Go SDK (package client) builds on package wire, and must
// be served beside it.
//
// It re-exports everything wire.js exports, so one import from wsgate.js
// gives the client and the codec alike; importing wire.js alone gives just
// the codec.

import {
  SUBPROTOCOL, Action, ErrorCode, CloseCode, encodeFrame, decodeFrame, frameFromJSON,
  closeCodeReconnect, closeCodeBackoff, reconnectDelay,
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

// ---- client ----

/**
 * WsgateClient keeps one full-form connection open: it correlates requests
 * and replies by id, delivers pushes (dropping duplicates, acking sequenced
 * ones), resumes after a reconnect, resubscribes its topics, and reconnects
 * with jittered backoff as the close code allows.
 *
 * States: "idle" → "connecting" ⇄ "open" → "closed". "closed" is final:
 * after close() or a terminal close code.
 *
 * url is a string, or a function returning one, called before every
 * connection attempt (so a fresh token can go in the query string).
 *
 * Options (all optional):
 *   protocols       subprotocols to offer; default ["wsgate.v1"]
 *   requestTimeout  ms before a request rejects with ConnectionError("timeout"); default 10000
 *   backoffBase     ms, cap of reconnect attempt 0; default 500
 *   backoffMax      ms, largest cap; default 30000
 *   autoAck         ack each sequenced push after onPush returns; default true
 *   onPush(push)    push = {type, action, seq, payload, gap}; gap is true when
 *                   sequenced pushes were lost (the server no longer had them)
 *   onHello(hello), onClose({code, reason, reconnect}), onStateChange(state),
 *   onError(err)    errors with no caller: id-0 error frames, failed resubscribes,
 *                   exceptions thrown by callbacks
 *   WebSocket, random, now   injectable for tests
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
  #openedAt = 0;
  #retryTimer = null;
  #beatTimer = null;
  #lastRecv = 0;
  #topics = new Set();
  #lastSeq = 0n;
  #hasSeq = false;
  #waiters = []; // connect() promises

  constructor(url, options = {}) {
    this.#url = url;
    this.#opts = {
      protocols: [SUBPROTOCOL], requestTimeout: 10000, backoffBase: 500, backoffMax: 30000,
      autoAck: true, WebSocket: globalThis.WebSocket, random: Math.random, now: Date.now,
      ...options,
    };
  }

  get state() { return this.#state; }
  /** The last hello received, or null. */
  get hello() { return this.#hello; }
  /** The highest push sequence handled (BigInt). */
  get lastSeq() { return this.#lastSeq; }

  /** Starts connecting; resolves with the hello, rejects if the client ends up closed. */
  connect() {
    if (this.#state === "closed") return Promise.reject(new ConnectionError("closed", "wsgate: client closed"));
    const p = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.#state === "open") this.#settleWaiters(this.#hello);
    else if (this.#state === "idle") this.#open();
    return p;
  }

  /** Closes for good: no reconnect; pending requests reject with ConnectionError("closed"). */
  close(code = CloseCode.NORMAL, reason = "") {
    if (this.#state === "closed") return;
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
    return new Promise((resolve, reject) => {
      const id = this.#nextID = (this.#nextID % 0xffffffff) + 1;
      this.#send({ type: "request", action, id, payload });
      const timer = Number.isFinite(timeout) ? setTimeout(() => {
        this.#pending.delete(id);
        reject(new ConnectionError("timeout", `wsgate: request ${id} timed out`));
      }, timeout) : null;
      this.#pending.set(id, { resolve, reject, timer });
    });
  }

  /** Sends a fire-and-forget request (id 0): no reply, no error. Throws if not open. */
  send(action, payload) { this.#send({ type: "request", action, id: 0, payload }); }

  /** Tells the server every sequenced push up to seq has been handled. */
  ack(seq) { this.#send({ type: "ack", seq }); }

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

  #send(frame) {
    if (this.#state !== "open" && frame.type !== "resume") {
      throw new ConnectionError("not-connected", `wsgate: not connected (${this.#state})`);
    }
    const bytes = encodeFrame(frame);
    const max = this.#hello?.maxMessage ?? 0;
    if (max > 0 && bytes.length > max) {
      throw new WsgateError(ErrorCode.TOO_LARGE, `message of ${bytes.length} bytes exceeds the server's maxMessage ${max}`);
    }
    this.#ws.send(bytes);
  }

  #open() {
    const gen = ++this.#gen;
    this.#setState("connecting");
    let ws;
    try {
      const url = typeof this.#url === "function" ? this.#url() : this.#url;
      ws = new this.#opts.WebSocket(url, this.#opts.protocols);
    } catch (err) { // a malformed URL never gets better
      this.#report(err);
      this.#terminate({ code: CloseCode.POLICY_VIOLATION, reason: String(err), reconnect: false });
      return;
    }
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => gen === this.#gen && this.#onOpen();
    ws.onmessage = (ev) => gen === this.#gen && this.#onMessage(ev.data);
    ws.onclose = (ev) => gen === this.#gen && this.#onClose(ev.code, ev.reason);
    ws.onerror = () => {}; // a close event always follows
  }

  #onOpen() {
    this.#lastRecv = this.#opts.now();
    if (this.#ws.protocol !== SUBPROTOCOL) { // this client speaks the binary full form only
      this.#abort(CloseCode.UNSUPPORTED_VERSION, `server chose subprotocol "${this.#ws.protocol}"`);
      return;
    }
    if (this.#hasSeq) this.#send({ type: "resume", seq: this.#lastSeq });
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
        if (f.id === 0) return this.#report(new WsgateError(f.code, f.message));
        return this.#settle(f.id, (p) => p.reject(new WsgateError(f.code, f.message)));
      case "push": return this.#onPush(f);
    }
    this.#abort(CloseCode.PROTOCOL_ERROR, `unexpected ${f.type} frame from server`);
  }

  #onHello(hello) {
    this.#hello = hello;
    this.#openedAt = this.#opts.now();
    if (!this.#hasSeq) {
      // A fresh client starts from the hello's sequence, and says so at once:
      // the server holds pushes for a few seconds waiting for a resume.
      this.#lastSeq = hello.seq;
      this.#hasSeq = true;
      this.#send({ type: "resume", seq: hello.seq });
    }
    this.#setState("open");
    this.#startHeartbeat(hello.heartbeat);
    for (const topic of this.#topics) {
      this.request(Action.SUBSCRIBE, topic).catch((err) => this.#report(err));
    }
    this.#call("onHello", hello);
    this.#settleWaiters(hello);
  }

  #onPush(push) {
    if (push.seq !== 0n) {
      if (this.#hasSeq && push.seq <= this.#lastSeq) return; // duplicate after a resume
      push.gap = this.#hasSeq && push.seq > this.#lastSeq + 1n;
      this.#lastSeq = push.seq;
      this.#hasSeq = true;
    } else {
      push.gap = false;
    }
    this.#call("onPush", push);
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
    const reconnect = closeCodeReconnect(code);
    if (this.#openedAt && this.#opts.now() - this.#openedAt >= this.#opts.backoffMax) this.#attempt = 0;
    this.#openedAt = 0;
    this.#call("onClose", { code, reason, reconnect });
    if (this.#state === "closed") return; // close() was called from a callback
    if (!reconnect) {
      this.#terminate({ code, reason, reconnect });
      return;
    }
    const { backoffBase: base, backoffMax: max, random } = this.#opts;
    const attempt = closeCodeBackoff(code) ? this.#attempt++ : 0;
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
    this.#beatTimer = this.#retryTimer = null;
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
    this.#call("onStateChange", state);
  }

  #report(err) { this.#call("onError", err); }

  // #call runs a user callback; its exceptions go to onError, never into
  // the client's own bookkeeping.
  #call(name, arg) {
    const fn = this.#opts[name];
    if (!fn) return;
    try {
      fn(arg);
    } catch (err) {
      if (name !== "onError") this.#report(err);
    }
  }
}
