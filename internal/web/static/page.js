// The test page's behaviour. In the three raw modes it is a plain WebSocket
// (like wscat) whose traffic is decoded with wsgate.js for display, so that
// people see every frame, close code and reason as the server sent them. In
// the "client" mode it runs WsgateClient from the same package, and logs
// its events. The token lives in a password field and goes into the URL
// only when connecting.
import {
  SUBPROTOCOL, SUBPROTOCOL_JSON, decodeFrame, decodeSimple, encodeFrame, encodeSimple,
  frameFromJSON, frameToJSON, SIMPLE_ERROR_BIT, WsgateClient, CloseCode,
} from "./wsgate.js";

const $ = (id) => document.getElementById(id);
const utf8 = new TextDecoder("utf-8", { fatal: true });
const MAX_LOG_LINES = 2000;

let ws = null;
let client = null; // the WsgateClient in "client" mode
let nextID = 1;

// defaultURL points at this server's /ws; the page's ?token= goes to the
// token field instead, hidden.
function defaultURL() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

// withToken returns url with the token field's value as ?token=.
function withToken(url) {
  const token = $("token").value.trim();
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set("token", token);
  return u.toString();
}

// redact hides a token in a URL shown in the log.
function redact(url) {
  const token = $("token").value.trim();
  return token && !$("show-token").checked ? url.replace(encodeURIComponent(token), "…").replace(token, "…") : url;
}

// showClose puts a close code and its reason next to the status.
function showClose(code, reason) {
  setStatus(`closed ${code}`, "closed");
  $("reason").textContent = reason ? `${code}: ${reason}` : code === 1000 ? "" : `${code}: (no reason given)`;
}

function timestamp() {
  const d = new Date();
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function log(kind, text) {
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = `${timestamp()} ${text}`;
  const box = $("log");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.appendChild(line);
  while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// showBytes renders a payload as quoted text when it is UTF-8, else as hex.
function showBytes(b) {
  if (b.length === 0) return "(empty)";
  try {
    return JSON.stringify(utf8.decode(b));
  } catch {
    return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
}

// describeFrame renders a decoded full-form frame.
function describeFrame(f) {
  switch (f.type) {
    case "hello": return `hello conn=${f.conn} user=${JSON.stringify(f.user)} seq=${f.seq} maxMessage=${f.maxMessage} heartbeat=${f.heartbeat}s`;
    case "reply": return `reply id=${f.id} payload ${showBytes(f.payload)}`;
    case "error": return `error id=${f.id} code=${f.code} message ${JSON.stringify(f.message)}`;
    case "push": return `push action=${f.action} seq=${f.seq} payload ${showBytes(f.payload)}`;
    case "request": return `request id=${f.id} action=${f.action} payload ${showBytes(f.payload)}`;
    default: return `${f.type} seq=${f.seq}`;
  }
}

// describeBinary decodes a received binary message for the negotiated form.
function describeBinary(b, protocol) {
  try {
    if (protocol === SUBPROTOCOL || protocol === SUBPROTOCOL_JSON) return describeFrame(decodeFrame(b));
    const m = decodeSimple(b);
    if (m.error) {
      const action = (m.action & ~SIMPLE_ERROR_BIT) >>> 0;
      return `error reply to action=${action} message ${showBytes(m.payload)}`;
    }
    return `action=${m.action} payload ${showBytes(m.payload)}`;
  } catch (e) {
    return `undecodable (${e.message}) ${showBytes(b)}`;
  }
}

function describeText(text) {
  try {
    return `${describeFrame(frameFromJSON(text))}  ${text}`;
  } catch {
    return JSON.stringify(text);
  }
}

function setConnected(open) {
  $("connect").disabled = open;
  $("disconnect").disabled = !open;
  $("send-text").disabled = !open;
  $("send-action").disabled = !open;
  $("url").disabled = open;
  $("protocol").disabled = open;
}

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = cls;
}

function connect() {
  const protocol = $("protocol").value;
  $("reason").textContent = "";
  if (protocol === "client") {
    connectClient();
    return;
  }
  const url = withToken($("url").value.trim());
  try {
    ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
  } catch (e) {
    log("bad", `cannot connect: ${e.message}`);
    return;
  }
  ws.binaryType = "arraybuffer";
  nextID = 1; // request ids are per connection
  setConnected(true);
  setStatus("connecting", "");
  log("info", `connecting to ${redact(url)}` + (protocol ? ` offering ${protocol}` : ""));
  const sock = ws;
  sock.onopen = () => {
    setStatus("open", "open");
    log("info", `open; subprotocol ${sock.protocol ? JSON.stringify(sock.protocol) : "none (simple form)"}`);
  };
  sock.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      log("in", `← text ${new TextEncoder().encode(ev.data).length} B  ${describeText(ev.data)}`);
    } else {
      const b = new Uint8Array(ev.data);
      log("in", `← binary ${b.length} B  ${describeBinary(b, sock.protocol)}`);
    }
  };
  sock.onerror = () => log("bad", "error (the browser gives no detail; see the close code)");
  sock.onclose = (ev) => {
    log(ev.code === 1000 ? "info" : "bad", `closed code=${ev.code} reason=${JSON.stringify(ev.reason)} clean=${ev.wasClean}`);
    showClose(ev.code, ev.reason);
    if (ws === sock) ws = null;
    setConnected(false);
  };
}

// connectClient runs WsgateClient: it reconnects with backoff, resumes,
// answers the gateway's token-expiry warning with the token field's value,
// and stops on terminal close codes.
function connectClient() {
  const url = $("url").value.trim();
  const c = new WsgateClient(url, { getToken: () => $("token").value.trim() });
  client = c;
  nextID = 1;
  setConnected(true);
  log("info", `WsgateClient connecting to ${url}`);
  c.on("state", (s) => {
    if (s === "open") setStatus("open", "open");
    else if (s === "connecting") setStatus("connecting", "");
    if (s === "closed") {
      if ($("status").textContent === "open") setStatus("closed", "closed");
      if (client === c) client = null;
      setConnected(false);
    }
    log("info", `state ${s}`);
  });
  c.on("hello", (f) => log("in", `← ${describeFrame(f)}`));
  c.on("push", (p) => log("in", `← push action=${p.action} seq=${p.seq}${p.gap ? " (gap)" : ""} payload ${showBytes(p.payload)}`));
  c.on("close", (e) => {
    log(e.code === CloseCode.NORMAL ? "info" : "bad", `closed code=${e.code} reason=${JSON.stringify(e.reason)} ${!e.reconnect ? "(final)" : e.code === CloseCode.UNAUTHORIZED ? "(final unless the token field changes)" : "(reconnecting)"}`);
    showClose(e.code, e.reason);
  });
  c.on("pushesLost", (reason) => log("bad", `pushes lost: ${reason}`));
  c.on("tokenRefreshed", () => log("info", "token refreshed"));
  c.on("error", (e) => log("bad", `error: ${e.message}`));
  c.connect().catch((e) => log("bad", e.message));
}

function send(data, description) {
  if (client) {
    log("bad", "WsgateClient mode: use Send action (text frames are for the raw modes)");
    return;
  }
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    log("bad", "not connected");
    return;
  }
  ws.send(data);
  log("out", `→ ${description}`);
}

function sendText() {
  const text = $("text").value;
  send(text, `text ${new TextEncoder().encode(text).length} B  ${JSON.stringify(text)}`);
}

// sendAction sends the action frame in the connection's form: simple
// (action + payload), a binary request with an id, or its JSON text.
function sendAction() {
  const action = Number($("action").value);
  if (!Number.isInteger(action) || action < 1 || action > 0x7fffffff) {
    log("bad", `action must be an integer from 1 to 2147483647, got ${$("action").value}`);
    return;
  }
  const payload = $("payload").value;
  const shown = `action=${action} payload ${JSON.stringify(payload)}`;
  if (client) {
    const id = nextID++;
    log("out", `→ request ${shown}`);
    client.request(action, payload).then(
      (reply) => log("in", `← reply to request ${id} payload ${showBytes(reply)}`),
      (err) => log("bad", `← request ${id} failed: ${err.message}`));
    return;
  }
  switch (ws && ws.protocol) {
    case SUBPROTOCOL: {
      const b = encodeFrame({ type: "request", action, id: nextID++, payload });
      send(b, `binary ${b.length} B  request id=${nextID - 1} ${shown}`);
      break;
    }
    case SUBPROTOCOL_JSON: {
      const text = frameToJSON({ type: "request", action, id: nextID++, payload });
      send(text, `text ${text.length} B  ${text}`);
      break;
    }
    default: {
      const b = encodeSimple(action, payload);
      send(b, `binary ${b.length} B  ${shown}`);
    }
  }
}

$("url").value = defaultURL();
$("token").value = new URLSearchParams(location.search).get("token") ?? "";
$("show-token").addEventListener("change", () => { $("token").type = $("show-token").checked ? "text" : "password"; });
$("connect").addEventListener("click", connect);
$("disconnect").addEventListener("click", () => {
  if (client) client.close(1000, "bye from the test page");
  else if (ws) ws.close(1000, "bye from the test page");
});
$("send-text").addEventListener("click", sendText);
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter") sendText(); });
$("send-action").addEventListener("click", sendAction);
$("payload").addEventListener("keydown", (e) => { if (e.key === "Enter") sendAction(); });
$("clear").addEventListener("click", () => { $("log").textContent = ""; });
