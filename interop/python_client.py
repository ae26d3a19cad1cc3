#!/usr/bin/env python3
"""Interop client on Python's `websockets` (asyncio): runs a fixed scenario against one of
wscore's echo servers and checks every echo byte for byte.

    python3 interop/python_client.py ws://127.0.0.1:9201/ [--no-compression | --tight-compression] [--expect-compression] [--large]

The scenario: text and binary messages of 0, 1, 125, 126, 127, 65535, 65536 and 1 MiB bytes
(16 MiB too with --large), multi-byte UTF-8, compressible payloads, fragmented messages
(iterables of str and of bytes, text bytes split inside code points, an async iterator with a
ping sent between its fragments, 100 small fragments), 20 pipelined messages, pings whose
pongs must come back, and a close with code 4000 and a reason: the server must answer with a
close frame carrying code 4000 and then close the TCP connection.

permessage-deflate is offered unless --no-compression; --tight-compression offers it with no
context takeover on both sides and 9-bit windows. --expect-compression makes its negotiation
(and with --tight-compression, the server's acceptance of those parameters) a check. Prints `PASS name` / `FAIL name: why` per check, then `N passed, M
failed`; exits 0 only if every check passed.
"""

import argparse
import asyncio
import random
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.protocol import State

CHECK_TIMEOUT = 60
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]
LARGE = 16 << 20
CHARS = "aé€𝄞Zж你🌍"


def noise(size, seed):
    """Deterministic bytes that do not compress."""
    return random.Random(seed).randbytes(size)


def utf8_text(size):
    """Exactly `size` bytes of UTF-8 mixing 1- to 4-byte characters."""
    out, length, i = [], 0, 0
    while length < size:
        c = CHARS[i % len(CHARS)]
        n = len(c.encode())
        if length + n > size:
            c, n = ".", 1
        out.append(c)
        length += n
        i += 1
    return "".join(out)


def compare(expected, got):
    if type(expected) is not type(got):
        kind = lambda v: "text" if isinstance(v, str) else "binary"
        raise AssertionError(f"expected a {kind(expected)} message, got {kind(got)} ({len(got)} long)")
    if expected != got:
        a = expected.encode() if isinstance(expected, str) else expected
        b = got.encode() if isinstance(got, str) else got
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        raise AssertionError(f"echo differs: expected {len(a)} bytes, got {len(b)}, first difference at byte {at}")


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    async def check(self, name, coro):
        try:
            note = await asyncio.wait_for(coro, CHECK_TIMEOUT)
        except asyncio.TimeoutError:
            self.failed += 1
            print(f"FAIL {name}: timed out after {CHECK_TIMEOUT} s", flush=True)
        except Exception as e:  # every failure is reported, none stops the run
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        else:
            self.passed += 1
            print(f"PASS {name}" + (f" ({note})" if note else ""), flush=True)


async def echo(ws, message):
    await ws.send(message)
    compare(message, await ws.recv())


async def echo_fragments(ws, pieces, whole, text=None):
    await ws.send(pieces, text=text)
    compare(whole, await ws.recv())


async def ping(ws, payload):
    waiter = await ws.ping(payload)
    await waiter


async def ping_between_fragments(ws):
    waiters = []

    async def pieces():
        yield "before ping, "
        waiters.append(await ws.ping(b"mid-message"))
        yield "after ping"

    await ws.send(pieces())
    compare("before ping, after ping", await ws.recv())
    await waiters[0]


async def pipelined(ws):
    sent = []
    for i in range(20):
        message = f"message {i}: {utf8_text(i * 37)}" if i % 2 == 0 else noise(i * 101, i)
        sent.append(message)
        await ws.send(message)
    for i, message in enumerate(sent):
        try:
            compare(message, await ws.recv())
        except AssertionError as e:
            raise AssertionError(f"message {i}: {e}") from None


async def close(ws, code, reason):
    await ws.close(code, reason)
    await ws.wait_closed()
    rcvd = ws.protocol.close_rcvd
    if rcvd is None:
        raise AssertionError("no close frame received")
    # The code must be echoed; the reason may be (RFC 6455 §5.5.1).
    if rcvd.code != code or rcvd.reason not in ("", reason):
        raise AssertionError(f"server closed with {rcvd.code} {rcvd.reason!r}, expected {code} {reason!r} or no reason")
    if ws.protocol.state is not State.CLOSED:
        raise AssertionError(f"state {ws.protocol.state}")
    return f"echoed code {rcvd.code}, reason {rcvd.reason!r}"


async def scenario(args, report):
    options = {"compression": None if args.no_compression else "deflate"}
    if args.tight_compression:
        options = {"compression": None, "extensions": [ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True,
            server_max_window_bits=9, client_max_window_bits=9)]}
    try:
        ws = await connect(args.url, max_size=64 << 20, ping_interval=None, open_timeout=10, close_timeout=10,
                           **options)
    except Exception as e:
        report.failed += 1
        print(f"FAIL handshake: {type(e).__name__}: {e}", flush=True)
        return
    report.passed += 1
    print("PASS handshake", flush=True)
    negotiated = [e.name for e in ws.protocol.extensions]
    deflate = ws.response.headers.get("Sec-WebSocket-Extensions")
    print(f"permessage-deflate: {'negotiated ' + deflate if deflate else 'not negotiated'}", flush=True)
    if args.expect_compression:
        async def want():
            if "permessage-deflate" not in negotiated:
                raise AssertionError(f"extensions in force: {negotiated}")
            if args.tight_compression:
                params = deflate.replace(" ", "").split(";")
                if "server_no_context_takeover" not in params or "server_max_window_bits=9" not in params:
                    raise AssertionError(f"server answered {deflate!r}")
        await report.check("permessage-deflate negotiated", want())
    if args.no_compression:
        async def unwanted():
            if negotiated:
                raise AssertionError(f"extensions in force without an offer: {negotiated}")
        await report.check("permessage-deflate not negotiated", unwanted())

    sizes = SIZES + ([LARGE] if args.large else [])
    for size in sizes:
        await report.check(f"text {size} bytes (multi-byte UTF-8)", echo(ws, utf8_text(size)))
        await report.check(f"binary {size} bytes (random)", echo(ws, noise(size, size)))
    await report.check("text 1 MiB ASCII, compressible", echo(ws, "the quick brown fox. " * 50_000))
    await report.check("binary 1 MiB of zeros", echo(ws, bytes(1 << 20)))
    for text in ["héllo wörld", "Ελληνικά, русский, 日本語, 한국어", "emoji 🌍🚀👩‍💻 and 𝄞 (4-byte)",
                 "\ufeff\U0010ffff\x7f\x80\u07ff\u0800\uffff"]:
        await report.check(f"text {text!r}", echo(ws, text))

    # Fragmented messages: websockets sends each item of an iterable as one frame, then an
    # empty final continuation frame.
    await report.check("text in 3 str fragments", echo_fragments(ws, ["Hello, ", "wörld ", "🌍!"], "Hello, wörld 🌍!"))
    raw = "Hello, wörld 🌍! ".encode()
    await report.check("text in 3 byte fragments split inside code points",
                       echo_fragments(ws, [raw[:9], raw[9:16], raw[16:]], raw.decode(), text=True))
    big = noise(300_000, 7)
    await report.check("binary 300000 bytes in 3 fragments",
                       echo_fragments(ws, [big[:100_000], big[100_000:200_000], big[200_000:]], big))
    await report.check("binary with an empty first fragment", echo_fragments(ws, [b"", b"middle"], b"middle"))
    text = utf8_text(1000).encode()
    await report.check("text in 100 fragments of 10 bytes",
                       echo_fragments(ws, [text[i:i + 10] for i in range(0, 1000, 10)], text.decode(), text=True))
    await report.check("ping between fragments (async iterator)", ping_between_fragments(ws))

    await report.check("20 pipelined messages, echoed in order", pipelined(ws))

    await report.check("ping, empty payload", ping(ws, b""))
    await report.check("ping, text payload", ping(ws, "interop ping"))
    await report.check("ping, 125-byte payload", ping(ws, noise(125, 125)))

    async def ping_behind_message():
        payload = noise(1 << 20, 99)
        await ws.send(payload)
        waiter = await ws.ping(b"behind")
        compare(payload, await ws.recv())
        await waiter
    await report.check("ping right behind a 1 MiB message", ping_behind_message())

    await report.check("close 4000 with a reason, echoed", close(ws, 4000, "interop: done ✓"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    mode.add_argument("--tight-compression", action="store_true",
                      help="offer permessage-deflate with no context takeover and 9-bit windows")
    parser.add_argument("--expect-compression", action="store_true", help="fail unless permessage-deflate is negotiated")
    parser.add_argument("--large", action="store_true", help="also send 16 MiB messages")
    args = parser.parse_args()
    report = Report()
    asyncio.run(scenario(args, report))
    print(f"{report.passed} passed, {report.failed} failed", flush=True)
    sys.exit(0 if report.failed == 0 and report.passed > 0 else 1)


if __name__ == "__main__":
    main()
