#!/usr/bin/python3
"""Interop client: Python's websockets library against a wsgate echo server.

Usage: /usr/bin/python3 python_websockets.py ws://127.0.0.1:PORT/echo

Uses Debian's python3-websockets (run it with /usr/bin/python3: a python3 found
first on PATH may be a pyenv shim without the package). Runs every case twice,
with compression=None and compression="deflate", and prints one JSON object per
line: {"client","variant","case","ok","ms"[,"error"]}, then a summary line
{"client","summary":true,"passed","failed"}. The exit status is non-zero when
any case failed, so the Go test (interop_test.go) can assert on both.
"""

import asyncio
import json
import sys
import time

import websockets

CLIENT = "python-websockets"
CASE_TIMEOUT = 20.0
WATCHDOG = 150.0
SIZES = [0, 125, 126, 65535, 65536, 1 << 20]


def text_of(n):
    """n bytes of ASCII text; repetitive so that deflate has work to do."""
    line = "The quick brown fox jumps over the lazy dog 0123456789\n"
    return (line * (n // len(line) + 1))[:n]


def binary_of(n, seed=0x9E3779B9):
    """n deterministic pseudo-random bytes (xorshift32), every byte value included."""
    out = bytearray(n)
    x = seed & 0xFFFFFFFF
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def describe(v):
    kind = "text" if isinstance(v, str) else "binary"
    raw = v.encode() if isinstance(v, str) else v
    return f"{kind} {len(raw)} bytes ({raw[:16].hex()}...)"


def expect(got, want):
    if type(got) is not type(want) or got != want:
        raise AssertionError(f"got {describe(got)}, want {describe(want)}")


async def recv(ws, what="echo"):
    try:
        return await asyncio.wait_for(ws.recv(), CASE_TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"timeout after {CASE_TIMEOUT} s waiting for {what}") from None


async def echo(ws, payload):
    await ws.send(payload)
    expect(await recv(ws), payload)


def build_cases(deflate):
    """Returns (name, coroutine function taking the connection) pairs for one variant."""
    cases = []

    async def extensions(ws):
        names = [e.name for e in ws.extensions]
        want = ["permessage-deflate"] if deflate else []
        if names != want:
            raise AssertionError(f"got extensions {names}, want {want}")

    cases.append(("extension-negotiated" if deflate else "extension-none", extensions))
    for n in SIZES:
        cases.append((f"text-{n}", lambda ws, n=n: echo(ws, text_of(n))))
        cases.append((f"binary-{n}", lambda ws, n=n: echo(ws, binary_of(n, n + 1))))
    cases.append(("text-utf8", lambda ws: echo(ws, "héllo wörld ☃ 𝄞 ∑ 日本語 " * 500)))

    async def fragmented(ws):
        parts = [text_of(1000), "middle-", text_of(70000)]
        await ws.send(parts)  # an iterable is sent as one fragmented message
        expect(await recv(ws, "fragmented echo"), "".join(parts))

    cases.append(("fragmented", fragmented))

    async def pipelined(ws):
        sent = []
        for i in range(200):
            body = f"#{i:03d}:" + text_of((i * 97) % 3000)
            payload = body.encode() + binary_of(i, i + 7) if i % 2 else body
            sent.append(payload)
            await ws.send(payload)  # send does not wait for the echo: all 200 go out first
        for i, want in enumerate(sent):
            got = await recv(ws, f"pipelined message {i}")
            try:
                expect(got, want)
            except AssertionError as err:
                raise AssertionError(f"message {i}: {err}") from None

    cases.append(("pipelined-200", pipelined))

    async def ping_pong(ws):
        # websockets resolves the waiter only for a pong carrying this exact payload.
        waiter = await ws.ping(b"interop-ping-0123456789")
        try:
            await asyncio.wait_for(waiter, CASE_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError("timeout waiting for pong with the ping's payload") from None
        await echo(ws, "after-ping")

    cases.append(("ping-pong", ping_pong))

    async def close_1000(ws):
        await asyncio.wait_for(ws.close(1000, "interop bye"), CASE_TIMEOUT)
        if ws.close_code != 1000:
            raise AssertionError(f"got close code {ws.close_code} reason {ws.close_reason!r}, want 1000")
        # RFC 6455 §5.5.1: the reply echoes the code; the reason is optional.
        if ws.close_reason not in ("", "interop bye"):
            raise AssertionError(f"got close reason {ws.close_reason!r}, want '' or 'interop bye'")

    cases.append(("close-1000", close_1000))
    return cases


async def connect(url, deflate):
    return await websockets.connect(
        url,
        compression="deflate" if deflate else None,
        max_size=32 << 20,
        # Room for all 200 pipelined echoes: with the default (32) the client
        # stops reading while it is still sending, which is its own deadlock.
        max_queue=256,
        open_timeout=CASE_TIMEOUT,
        close_timeout=CASE_TIMEOUT,
    )


async def run_variant(url, deflate, results):
    variant = "deflate" if deflate else "plain"
    ws = None
    for name, fn in build_cases(deflate):
        rec = {"client": CLIENT, "variant": variant, "case": name, "ok": True}
        start = time.monotonic()
        try:
            if ws is None:
                ws = await connect(url, deflate)
            await asyncio.wait_for(fn(ws), 2 * CASE_TIMEOUT)
        except Exception as err:  # noqa: BLE001 - every failure is a reported result
            rec["ok"] = False
            rec["error"] = f"{type(err).__name__}: {err}"
            # Start the next case on a fresh connection: this one may be out of step.
            if ws is not None:
                ws.transport.abort()
            ws = None
        rec["ms"] = int((time.monotonic() - start) * 1000)
        results.append(rec)
        print(json.dumps(rec), flush=True)
    if ws is not None:
        ws.transport.abort()


async def main(url):
    results = []
    for deflate in (False, True):
        await run_variant(url, deflate, results)
    failed = sum(1 for r in results if not r["ok"])
    print(json.dumps({"client": CLIENT, "summary": True, "passed": len(results) - failed, "failed": failed}), flush=True)
    return 0 if results and failed == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python_websockets.py ws://host:port/path", file=sys.stderr)
        sys.exit(2)
    try:
        code = asyncio.run(asyncio.wait_for(main(sys.argv[1]), WATCHDOG))
    except asyncio.TimeoutError:
        print(json.dumps({"client": CLIENT, "fatal": f"watchdog: no result after {WATCHDOG} s"}), flush=True)
        code = 3
    sys.exit(code)
