// Typed usage of @wsgate/client, compiled (not run) by `tsc -p test` in CI
// to check wsgate.d.ts and wire.d.ts: what an application writes compiles,
// and the @ts-expect-error lines prove the types reject misuse.
import {
  WsgateClient, SimpleClient, WsgateError, ConnectionError, CloseCode, ErrorCode, Action,
  type Push, type CloseInfo, type Position, type HelloFrame,
} from "@wsgate/client";
import { decodeFrame, encodeFrame, frameToJSON, resumeParam, type Frame } from "@wsgate/client/wire";

async function app(): Promise<void> {
  let saved: Position | null = null;
  const client = new WsgateClient("wss://gateway.example/ws", {
    getToken: async () => "jwt",
    position: { epoch: 1n, seq: 41n },
    onPush: (p: Push) => console.log(p.action, p.seq + 1n, p.gap),
    backoffMax: 10_000,
  });
  const offState = client.on("state", (s) => { if (s === "closed") saved = client.position; });
  client.on("close", (c: CloseInfo) => console.log(c.code === CloseCode.UNAUTHORIZED, c.reason, c.reconnect));
  client.on("pushesLost", (reason: string) => console.warn(reason));
  client.on("tokenRefreshed", (token) => token.toUpperCase());
  const hello: HelloFrame = await client.connect();
  console.log(hello.epoch > 0n, hello.conn, saved);
  const reply: Uint8Array = await client.request(110, "hi", { timeout: 2000 });
  console.log(reply.byteLength);
  await client.subscribe("news");
  await client.refreshToken();
  client.send(Action.MIN_APP, new Uint8Array([1, 2]));
  client.ack(5n);
  try {
    await client.request(999);
  } catch (err) {
    if (err instanceof WsgateError && err.code === ErrorCode.UNKNOWN_ACTION) console.log(err.serverMessage);
    if (err instanceof ConnectionError) console.log(err.kind === "timeout");
  }
  offState();
  client.close(CloseCode.NORMAL, "bye");

  const f: Frame = decodeFrame(encodeFrame({ type: "refresh", id: 1, token: "t" }));
  if (f.type === "hello") console.log(f.epoch.toString());
  console.log(frameToJSON({ type: "ack", seq: 3n }), resumeParam(1n, 2n));

  const simple = new SimpleClient("ws://x/ws", { getToken: () => "t" });
  await simple.connect();
  const echoed: Uint8Array = await simple.request(Action.PING, "hi");
  simple.on("message", (m) => console.log(m.action, m.payload.byteLength, echoed));
  // @ts-expect-error: a simple client has no pushesLost
  simple.on("pushesLost", () => {});
  simple.close();

  // @ts-expect-error: no such event
  client.on("message", () => {});
  // @ts-expect-error: the pushesLost listener gets a string
  client.on("pushesLost", (n: number) => n);
  // @ts-expect-error: form is "binary" or "json"
  new WsgateClient("ws://x", { form: "simple" });
  // @ts-expect-error: requests need an action number
  await client.request("110");
}
void app;
