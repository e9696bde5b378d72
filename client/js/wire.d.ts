// Types of wire.js, the wsgate protocol codec (docs/PROTOCOL.md).

export declare const SUBPROTOCOL: "wsgate.v1";
export declare const SUBPROTOCOL_JSON: "wsgate.v1.json";

export declare const FrameType: Readonly<{
  REQUEST: 1; REPLY: 2; ERROR: 3; PUSH: 4; ACK: 5; HELLO: 6; REFRESH: 8;
}>;

export declare const Action: Readonly<{
  SUBSCRIBE: 1; UNSUBSCRIBE: 2; PRESENCE: 3; PING: 4; MAX_SYSTEM: 99; MIN_APP: 100;
}>;
export declare const SIMPLE_ERROR_BIT: 0x80000000;

export declare const ErrorCode: Readonly<{
  UNKNOWN_ACTION: 1; BAD_REQUEST: 2; FORBIDDEN: 3; INTERNAL: 4; UNAVAILABLE: 5;
  TIMEOUT: 6; RATE_LIMITED: 7; TOO_LARGE: 8; NOT_SUBSCRIBED: 9; LIMIT_EXCEEDED: 10;
  PUSHES_LOST: 11; TOKEN_EXPIRING: 12; MIN_APP: 1000;
}>;

export declare const CloseCode: Readonly<{
  NORMAL: 1000; GOING_AWAY: 1001; PROTOCOL_ERROR: 1002; UNSUPPORTED_DATA: 1003;
  NO_STATUS: 1005; ABNORMAL: 1006; INVALID_PAYLOAD: 1007; POLICY_VIOLATION: 1008;
  MESSAGE_TOO_BIG: 1009; INTERNAL_ERROR: 1011; SERVICE_RESTART: 1012; TRY_AGAIN_LATER: 1013;
  SLOW_CONSUMER: 4000; IDLE_TIMEOUT: 4001; RATE_LIMITED: 4002; DRAINING: 4003; TOKEN_EXPIRED: 4004;
  UNAUTHORIZED: 4500; FORBIDDEN: 4501; UNSUPPORTED_VERSION: 4502; REPLACED: 4503;
}>;

/** Bytes accepted wherever a payload is encoded. */
export type PayloadInput = Uint8Array | ArrayBuffer | ArrayBufferView | string;

export type WireErrorKind = "short" | "unknown-type" | "trailing" | "too-long" | "bad-json";

/** A message that does not decode or encode. */
export declare class WireError extends Error {
  constructor(kind: WireErrorKind, message: string);
  readonly kind: WireErrorKind;
}

export interface RequestFrame { type: "request"; action: number; id: number; payload: Uint8Array }
export interface ReplyFrame { type: "reply"; id: number; payload: Uint8Array }
export interface ErrorFrame { type: "error"; id: number; code: number; message: string }
export interface PushFrame { type: "push"; action: number; seq: bigint; payload: Uint8Array }
export interface AckFrame { type: "ack"; seq: bigint }
export interface HelloFrame {
  type: "hello"; conn: string; user: string;
  /** The user's last push sequence in epoch. */
  seq: bigint;
  /** The numbering the sequence belongs to; 0n = the connection is not sequenced. */
  epoch: bigint;
  maxMessage: number; heartbeat: number;
}
export interface RefreshFrame { type: "refresh"; id: number; token: string }
/** A decoded full-form frame. */
export type Frame = RequestFrame | ReplyFrame | ErrorFrame | PushFrame | AckFrame | HelloFrame | RefreshFrame;

/** A frame to encode: payloads may be any PayloadInput, numbers may be omitted (0). */
export type FrameInput =
  | { type: "request"; action: number; id?: number; payload?: PayloadInput }
  | { type: "reply"; id?: number; payload?: PayloadInput }
  | { type: "error"; id?: number; code?: number; message?: string }
  | { type: "push"; action: number; seq?: bigint | number; payload?: PayloadInput }
  | { type: "ack"; seq?: bigint | number }
  | { type: "hello"; conn?: string; user?: string; seq?: bigint | number; epoch?: bigint | number; maxMessage?: number; heartbeat?: number }
  | { type: "refresh"; id?: number; token?: string };

export declare function encodeFrame(f: FrameInput): Uint8Array;
export declare function decodeFrame(data: ArrayBuffer | ArrayBufferView): Frame;
export declare function encodeSimple(action: number, payload?: PayloadInput): Uint8Array;
export declare function encodeSimpleError(action: number, message: string): Uint8Array;
export interface SimpleMessage { action: number; payload: Uint8Array; error: boolean }
export declare function decodeSimple(data: ArrayBuffer | ArrayBufferView): SimpleMessage;
export declare function frameToJSON(f: FrameInput): string;
export declare function frameFromJSON(text: string): Frame;
/** The handshake's resume query value, "<epoch>.<seq>". */
export declare function resumeParam(epoch: bigint | number, seq: bigint | number): string;
export declare function closeCodeReconnect(code: number): boolean;
export declare function closeCodeBackoff(code: number): boolean;
export declare function reconnectDelay(attempt: number, random: number, base?: number, max?: number): number;
