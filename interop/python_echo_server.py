#!/usr/bin/env python3
"""An echo server on Python's `websockets` (asyncio): the peer for wscore's interop client.

    python3 interop/python_echo_server.py [--host 127.0.0.1] [--port 9211] [--no-compression | --tight-compression]

Every text and binary message is echoed unchanged (messages up to 64 MiB); websockets answers
pings and echoes the client's close frame (code and reason) by itself. permessage-deflate is
accepted when the client offers it, unless --no-compression is given; --tight-compression
imposes no context takeover on both sides and 9-bit windows (as far as the offer allows).
Prints one line once listening, then runs until killed.
"""

import argparse
import asyncio
import signal

from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9211)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-compression", action="store_true", help="decline permessage-deflate")
    mode.add_argument("--tight-compression", action="store_true",
                      help="impose no context takeover and 9-bit windows")
    args = parser.parse_args()

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.cancel)
    options = {"compression": None if args.no_compression else "deflate"}
    if args.tight_compression:
        options = {"compression": None, "extensions": [ServerPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True,
            server_max_window_bits=9, client_max_window_bits=9)]}
    async with serve(echo, args.host, args.port, max_size=64 << 20, **options):
        mode = "off" if args.no_compression else "tight" if args.tight_compression else "on"
        print(f"listening on {args.host}:{args.port} (compression: {mode})", flush=True)
        try:
            await stop
        except asyncio.CancelledError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
