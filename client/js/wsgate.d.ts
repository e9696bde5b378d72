// Types of wsgate.js, the wsgate client. It re-exports the codec (wire.js).

import type { HelloFrame, PayloadInput, PushFrame } from "./wire.js";

export * from "./wire.js";

/** A request the server answered with an error frame (or refused locally as too large). */
export declare class WsgateError extends Error {
  constructor(code: number, message?: string);
  readonly code: number;
  readonly serverMessage: string | undefined;
}

/** A request that got no answer. */
export declare class ConnectionError extends Error {
  constructor(kind: "not-connected" | "timeout" | "closed", message: string);
  readonly kind: "not-connected" | "timeout" | "closed";
}

export type ClientState = "idle" | "connecting" | "open" | "closed";

/** A push handed to the application; gap is true when sequenced pushes before it were lost. */
export interface Push extends PushFrame { gap: boolean }

export interface CloseInfo {
  /** The close code: the server's, 1006 when the connection dropped or was refused without one. */
  code: number;
  /** The server's reason, e.g. "wsgate: token expired". */
  reason: string;
  /** Whether the client will connect again. */
  reconnect: boolean;
}

/** A resume position: the epoch of the numbering and the last sequence handled in it. */
export interface Position { epoch: bigint; seq: bigint }

export interface ClientEvents {
  state: ClientState;
  hello: HelloFrame;
  push: Push;
  close: CloseInfo;
  error: Error;
  /** The server no longer had pushes this client missed; the reason says which. */
  pushesLost: string;
  /** The server accepted a refreshed token. */
  tokenRefreshed: string;
}

/** Anything shaped like the browser's WebSocket constructor. */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: ArrayBuffer | string }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /** "binary" (wsgate.v1, default) or "json" (wsgate.v1.json, JSON text frames). */
  form?: "binary" | "json";
  /** Subprotocols to offer; default the form's. */
  protocols?: string[];
  /** ms before a request rejects with ConnectionError("timeout"); default 10000. */
  requestTimeout?: number;
  /** ms, cap of reconnect attempt 0; default 500. */
  backoffBase?: number;
  /** ms, largest cap; default 30000. */
  backoffMax?: number;
  /** Ack each sequenced push after the push listeners return; default true. */
  autoAck?: boolean;
  /** ms over which acks are coalesced into one frame; default 100. */
  ackInterval?: number;
  /**
   * Called before every connection attempt and when the server says the
   * token is expiring; its token goes in the URL query (tokenParam) and in
   * refresh frames. After a 4500 close the client reconnects only if it
   * returns a different token.
   */
  getToken?: () => string | Promise<string>;
  /** Query parameter that carries the token; default "token". */
  tokenParam?: string;
  /** A position saved earlier (client.position), to resume from on the first connect. */
  position?: { epoch: bigint | number | string; seq: bigint | number | string };
  onPush?: (push: Push) => void;
  onHello?: (hello: HelloFrame) => void;
  onClose?: (info: CloseInfo) => void;
  onStateChange?: (state: ClientState) => void;
  onError?: (err: Error) => void;
  onPushesLost?: (reason: string) => void;
  onTokenRefreshed?: (token: string) => void;
  /** Injectable for tests and old runtimes; default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  random?: () => number;
  now?: () => number;
}

export declare class WsgateClient {
  /** url: a ws:// or wss:// URL, or a function returning one, called before every attempt. */
  constructor(url: string | (() => string), options?: ClientOptions);
  readonly state: ClientState;
  readonly hello: HelloFrame | null;
  readonly lastSeq: bigint;
  readonly position: Position | null;
  readonly attempts: number;
  on<E extends keyof ClientEvents>(event: E, fn: (arg: ClientEvents[E]) => void): () => void;
  off<E extends keyof ClientEvents>(event: E, fn: (arg: ClientEvents[E]) => void): void;
  connect(): Promise<HelloFrame>;
  close(code?: number, reason?: string): void;
  request(action: number, payload?: PayloadInput, options?: { timeout?: number }): Promise<Uint8Array>;
  send(action: number, payload?: PayloadInput): void;
  ack(seq: bigint | number): void;
  refreshToken(token?: string): Promise<void>;
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
}

export interface SimpleMessage { action: number; payload: Uint8Array }

export interface SimpleClientEvents {
  state: ClientState;
  /** A message that answers no waiting request: a push. */
  message: SimpleMessage;
  close: CloseInfo;
  error: Error;
}

export interface SimpleClientOptions {
  requestTimeout?: number;
  backoffBase?: number;
  backoffMax?: number;
  getToken?: () => string | Promise<string>;
  tokenParam?: string;
  WebSocket?: WebSocketConstructor;
  random?: () => number;
}

/**
 * A client of the simple form (no subprotocol): u32 action + payload, no
 * ids, no hello, no resume. request() resolves with the next message of the
 * same action.
 */
export declare class SimpleClient {
  constructor(url: string | (() => string), options?: SimpleClientOptions);
  readonly state: ClientState;
  readonly attempts: number;
  on<E extends keyof SimpleClientEvents>(event: E, fn: (arg: SimpleClientEvents[E]) => void): () => void;
  connect(): Promise<void>;
  close(code?: number, reason?: string): void;
  send(action: number, payload?: PayloadInput): void;
  request(action: number, payload?: PayloadInput, options?: { timeout?: number }): Promise<Uint8Array>;
}
