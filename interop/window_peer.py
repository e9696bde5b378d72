#!/usr/bin/python3
"""Window-size interop peer: Python's websockets with permessage-deflate window bits.

  window_peer.py server BITS      echo server on 127.0.0.1, a free port; grants
                                  client_max_window_bits=BITS and compresses with
                                  server_max_window_bits=BITS (9 for BITS=8: zlib
                                  cannot compress with 8). Prints {"port": N},
                                  serves until stdin ends.
  window_peer.py client URL BITS  offers server_max_window_bits=BITS, echoes the
                                  messages of window_messages() through URL and
                                  checks them; exit status 0 when all match.

Driven by deflatewindow_test.go; run with Debian's /usr/bin/python3.
"""

import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

TIMEOUT = 20.0


def window_messages():
    out = []
    for n in (1 << 10, 20 << 10, 100 << 10):
        s, i = "", 0
        while len(s) < n:
            s += '{"id":%d,"topic":"prices.%d","price":%d.%d},' % (i, i % 9, (i * 7919) % 2000, i % 100)
            i += 1
        out.append(s[:n])
    b, x = bytearray(64 << 10), 0x9E3779B9
    for i in range(len(b)):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        b[i] = x & 0xFF
    out.append(bytes(b))
    return out


async def echo(ws):
    async for m in ws:
        await ws.send(m)


async def server(bits):
    # zlib cannot compress raw DEFLATE with an 8-bit window (deflateInit2
    # refuses it), so this server's own window is at least 9 bits.
    ext = ServerPerMessageDeflateFactory(server_max_window_bits=max(bits, 9), client_max_window_bits=bits,
                                         require_client_max_window_bits=True)
    async with websockets.serve(echo, "127.0.0.1", 0, compression=None, extensions=[ext], max_size=32 << 20) as srv:
        print(json.dumps({"port": srv.sockets[0].getsockname()[1]}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def client(url, bits):
    ext = ClientPerMessageDeflateFactory(server_max_window_bits=bits, client_max_window_bits=True)
    async with websockets.connect(url, compression=None, extensions=[ext], max_size=32 << 20) as ws:
        got = [e.remote_max_window_bits for e in ws.extensions]  # the server's window, from the client's side
        if got != [bits]:
            raise AssertionError(f"got server_max_window_bits {got}, want [{bits}]")
        msgs = window_messages()
        for m in msgs:
            await ws.send(m)
        for i, m in enumerate(msgs):
            r = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if r != m:
                raise AssertionError(f"echo {i}: got {len(r)} bytes, want {len(m)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "server":
        asyncio.run(server(int(sys.argv[2])))
    elif len(sys.argv) == 4 and sys.argv[1] == "client":
        asyncio.run(asyncio.wait_for(client(sys.argv[2], int(sys.argv[3])), 4 * TIMEOUT))
    else:
        print("usage: window_peer.py server BITS | client URL BITS", file=sys.stderr)
        sys.exit(2)
