#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (small, meaningful inputs).

Each structured target reads a fixed-size plan first (one byte per field, all zero = the
defaults; see the target's doc comment) and then bytes it uses verbatim. Run from anywhere:
`python3 fuzz/gen_corpus.py`. Seeds are tiny; the whole corpus stays far below 200 KB.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# RFC 7692 §7.2.3.1: "Hello" compressed, and §7.2.3.2: a second "Hello" sharing the window.
HELLO_DEFLATE = bytes.fromhex("f248cdc9c90700")
HELLO_AGAIN = bytes.fromhex("f200110000")
# §7.2.3.3: "Hello" in an uncompressed (stored) deflate block.
HELLO_STORED = bytes.fromhex("000500faff48656c6c6f00")
# Sec-WebSocket-Accept for the key SeededRandom::new(0) draws (the client_handshake target).
SEEDED_ACCEPT = "iHMz0/J1GsQtRh2NfVC0Q7CZKMQ="


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def u16(n):
    return struct.pack("<H", n)


# ---- frame_header: raw header bytes (RFC 6455 §5.7 examples and friends) ----
for name, hexes in {
    "text-hello-unmasked": "810548656c6c6f",
    "text-hello-masked": "818537fa213d7f9f4d5158",
    "fragment-1-hel": "010348656c",
    "fragment-2-lo": "80026c6f",
    "ping-hello": "890548656c6c6f",
    "pong-hello-masked": "8a8537fa213d7f9f4d5158",
    "binary-256": "827e0100",
    "binary-64k": "827f0000000000010000",
    "compressed-hello-rsv1": "c107f248cdc9c90700",
    "close-1000": "880203e8",
    "nonminimal-16": "827e007d",
    "length-top-bit": "827f8000000000000000",
}.items():
    write("frame_header", name, bytes.fromhex(hexes))

# ---- server_handshake: 12-byte plan, then the request ----
# plan: chunk_lens[6], small_limits, clock_step_secs, protocol, extra_header, no_deflate, reserved
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
DEFLATE_REQUEST = RFC_REQUEST.replace(
    b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
MASKED_HELLO = bytes.fromhex("818537fa213d7f9f4d5158")
write("server_handshake", "rfc6455-request", bytes(12) + RFC_REQUEST)
write("server_handshake", "rfc6455-request-chat", bytes([0] * 8 + [1, 0, 0, 0]) + RFC_REQUEST)
write(
    "server_handshake",
    "deflate-request-split-with-frame",
    bytes([10, 30, 1, 1, 50, 0, 0, 0, 2, 1, 0, 0]) + DEFLATE_REQUEST + MASKED_HELLO,
)
write("server_handshake", "version-8", bytes(12) + RFC_REQUEST.replace(b"Version: 13", b"Version: 8"))
write("server_handshake", "post", bytes(12) + RFC_REQUEST.replace(b"GET", b"POST", 1))
write("server_handshake", "slowloris", bytes([20, 20, 20, 20, 20, 20, 0, 6, 0, 0, 0, 0]) + RFC_REQUEST[:-2])

# ---- client_handshake: 14-byte plan, then the response ----
# plan: chunk_lens[6], protocols, no_deflate, server_nct, client_nct, sbits, cbits, small_limits, reserved
ACCEPTED = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + SEEDED_ACCEPT.encode() + b"\r\n"
)
write(
    "client_handshake",
    "101-deflate-chat-then-frames",
    bytes([0] * 6 + [1] + [0] * 7)
    + ACCEPTED
    + b"Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    + bytes.fromhex("810548656c6c6f")
    + b"\xc1\x07"
    + HELLO_DEFLATE,
)
write("client_handshake", "101-plain", bytes([12, 40, 3, 0, 9, 1] + [0] * 8) + ACCEPTED + b"\r\n")
write(
    "client_handshake",
    "401-with-body",
    bytes(14) + b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ws\"\r\nContent-Length: 12\r\n\r\nno cookie :(",
)
write("client_handshake", "404-http10-body-to-eof", bytes(14) + b"HTTP/1.0 404 Not Found\r\n\r\nnothing here")
write(
    "client_handshake",
    "500-chunked",
    bytes(14) + b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
)

# ---- extensions: 15-byte plan, then header values separated by \n ----
# plan: server knobs (off, snct, cnct, sbits, cbits, level, threshold), client knobs, pair
for i, value in enumerate(
    [
        b"permessage-deflate",
        b"permessage-deflate; client_max_window_bits",
        b"permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits",
        b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        b"permessage-deflate; server_max_window_bits=8\npermessage-deflate; client_max_window_bits=9",
        b'foo, bar; baz=2, x-quoted; a="\\1\\0"',
        b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=010",
    ]
):
    write("extensions", "rfc7692-%d" % i, bytes(14) + bytes([i % 4]) + value)
write("extensions", "pair-client-asks-8-bits", bytes([0] * 7 + [0, 0, 0, 7, 0, 1, 0] + [1]))

# ---- inflate: 11-byte plan, then messages ----
# plan: server_nct, client_nct, client_bits, level, stream_mode, zero_copy, stride, chunk_lens[4]
# message: flags (1 compressed, 2 raw, 4 text, 8 ping, 16 keep trailer, 32 empty last), repeat,
# n_cuts, cuts (u16 LE each), len (u16 LE), data
def message(flags, data, repeat=0, cuts=()):
    return bytes([flags, repeat, len(cuts)]) + b"".join(u16(c) for c in cuts) + u16(len(data)) + data


write("inflate", "compressed-hello", bytes(11) + message(5, b"Hello"))
write("inflate", "rfc7692-hello-raw", bytes(11) + message(7, HELLO_DEFLATE))
write("inflate", "rfc7692-shared-window", bytes(11) + message(7, HELLO_DEFLATE) + message(7, HELLO_AGAIN))
write("inflate", "rfc7692-stored-block", bytes(11) + message(7, HELLO_STORED))
write("inflate", "rfc7692-fragmented", bytes(11) + message(7 | 8, HELLO_DEFLATE, cuts=[3]))
write("inflate", "bomb", bytes(11) + message(1, b"A" * 16, repeat=255))
write("inflate", "stream-mode-near-limit", bytes([0, 0, 0, 6, 1, 1, 7, 0, 0, 0, 0]) + message(1, b"0123456789abcdef", repeat=31))
write(
    "inflate",
    "context-takeover-three",
    bytes([0, 0, 3, 9, 0, 0, 0, 1, 2, 3, 4]) + message(5 | 16, b"Hello") + message(5 | 32, b"Hello", cuts=[1, 2]) + message(4, b"plain"),
)

# ---- connection_pair: 21-byte plan, then operations ----
# plan: deflate, server_nct, client_nct, sbits, cbits, level, threshold,
#       client knobs (stream_mode, write_fragment_size, no_auto_pong, keepalive, max_write_buffer,
#       lazy_events, read_buffer), server knobs
# op byte: (kind << 1) | side (0 client, 1 server)
def op(kind, side, *operands):
    return bytes([(kind << 1) | side]) + b"".join(operands)


def b8(n):
    return bytes([n])


C, S = 0, 1
DELIVER_ALL = u16(0) + b8(0)
echo = (
    op(0, C, b8(5), b"Hello")
    + op(6, C, DELIVER_ALL)
    + op(0, S, b8(5), b"Hello")
    + op(3, S, b8(4), b"ping")
    + op(6, S, DELIVER_ALL)
    + op(5, C, b8(0), b8(3), b"bye")
    + op(6, C, DELIVER_ALL)
    + op(6, S, DELIVER_ALL)
)
write("connection_pair", "echo-and-close", bytes(21) + echo)
deflate_plan = bytes([1, 0, 0, 0, 0, 1, 0]) + bytes([0, 3, 0, 0, 0, 0, 0]) + bytes([1, 0, 0, 0, 0, 0, 0])
streamed = (
    op(2, C, b8(0b1101), b8(4), "Hé".encode() + b"l")
    + op(2, C, b8(0b0011), b8(2), b"lo")
    + op(6, C, u16(7), b8(1))
    + op(11, S, b8(2), b8(3))
    + op(6, S, u16(100), b8(2))
    + op(6, C, DELIVER_ALL)
    + op(6, S, DELIVER_ALL)
    + op(1, C, b8(3), b"\x00\x01\x02")
    + op(5, S, b8(13), b8(0))
)
write("connection_pair", "deflate-streamed-text", deflate_plan + streamed)
keepalive_plan = bytes(7) + bytes([0, 0, 0, 0, 0, 0, 0]) + bytes([0, 0, 0, 5, 0, 0, 0])
timers = (
    op(8, C, u16(1))
    + op(8, C, u16(60))
    + op(6, S, DELIVER_ALL)
    + op(6, C, DELIVER_ALL)
    + op(8, C, u16(3000))
    + op(6, S, DELIVER_ALL)
    + op(8, C, u16(1200))
)
write("connection_pair", "keepalive-and-timeouts", keepalive_plan + timers)
write(
    "connection_pair",
    "inject-masked-hello-then-eof",
    bytes(21) + op(7, S, b8(11), MASKED_HELLO) + op(7, C, b8(7), bytes.fromhex("810548656c6c6f")) + op(9, C),
)

# ---- proxy_handshake: 17-byte plan, then fields, then the proxy's response ----
# plan: chunk_lens[6], small_limits, eof, target_port (LE), proxy_port (LE), credentials,
#       headers, from_url, reserved[2]
# fields (length byte + bytes): target host, proxy host or URL, user, password, then a name and
# a value per extra header
def fields(*values):
    return b"".join(bytes([len(v)]) + v for v in values)


def proxy_plan(chunks=(0,) * 6, small=0, eof=0, port=443, proxy_port=3128, creds=0, headers=0, url=0):
    return bytes(chunks) + bytes([small, eof]) + u16(port) + u16(proxy_port) + bytes([creds, headers, url, 0, 0])


ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
write(
    "proxy_handshake",
    "200-then-tls-bytes",
    proxy_plan(creds=1) + fields(b"example.com", b"proxy.internal", b"alice", b"s3cret") + ESTABLISHED + b"\x16\x03\x01",
)
write(
    "proxy_handshake",
    "407-auth-required-split",
    proxy_plan(chunks=(9, 4, 30, 0, 1, 2))
    + fields(b"example.com", b"proxy", b"", b"")
    + b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n"
    + b"Content-Length: 4\r\n\r\nnope",
)
write(
    "proxy_handshake",
    "100-continue-then-200-split",
    proxy_plan(chunks=(5, 20, 3, 0, 7, 1))
    + fields(b"ws.example", b"proxy", b"", b"")
    + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: 1.1 proxy\r\n\r\nHTTP/1.1 101 Switching",
)
write(
    "proxy_handshake",
    "http10-200-byte-by-byte",
    proxy_plan(chunks=(1,) * 6, port=80) + fields(b"10.0.0.7", b"proxy", b"", b"") + b"HTTP/1.0 200 OK\n\nxy",
)
write(
    "proxy_handshake",
    "header-injection-attempts",
    proxy_plan(headers=3, creds=1)
    + fields(
        b"bad host\r\nX-Evil: 1",
        b"proxy",
        b"user\r\nX: 1",
        b"pass",
        b"User-Agent",
        b"wscore\r\nX-Injected: yes",
        b"X-Token\r\nInjected",
        b"tok3n",
        b"X-Tab",
        b"a\tb",
    )
    + ESTABLISHED,
)
write(
    "proxy_handshake",
    "url-ipv6-with-credentials",
    proxy_plan(port=9001, url=1) + fields(b"::1", b"http://bob:p%40ss@[::1]:8080/", b"", b"") + ESTABLISHED,
)
write("proxy_handshake", "eof-before-the-answer", proxy_plan(eof=1) + fields(b"example.com", b"p", b"", b"") + b"HTTP/1.1 200")
write("proxy_handshake", "not-http", proxy_plan() + fields(b"example.com", b"p", b"", b"") + b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
write(
    "proxy_handshake",
    "small-limits-long-head",
    proxy_plan(small=1) + fields(b"example.com", b"p", b"", b"") + b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 300 + b"\r\n\r\n",
)
write(
    "proxy_handshake",
    "502-bad-gateway",
    proxy_plan(chunks=(12, 0, 0, 0, 0, 0)) + fields(b"unreachable.example", b"p", b"", b"") + b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
)

# ---- upgrade: 16-byte plan, then fields ----
# plan: http2, drop, method, extra, origin, server_deflate, server_client_bits, protocol,
#       accept_headers, client_deflate, client_client_bits, client_protocols, mutation,
#       threshold, repeat, reserved
# fields: target, then per request field and per Accept header a name selector (an index into
# NAMES in the target, 255 = a literal name field follows) and a value field, then the text
NAMES = {
    "Host": 0, "Upgrade": 1, "Connection": 2, "Sec-WebSocket-Key": 3, "Sec-WebSocket-Version": 4,
    "Sec-WebSocket-Protocol": 5, "Sec-WebSocket-Extensions": 6, "Origin": 7, "Content-Length": 8,
    "Transfer-Encoding": 9, ":authority": 10, ":protocol": 11, ":path": 12, ":scheme": 13,
    "sec-websocket-accept": 17, "Set-Cookie": 19, "Keep-Alive": 20,
}


def upgrade_plan(http2=0, drop=0, method=0, extra=0, origin=0, server_deflate=0, server_cbits=0, protocol=0,
                 accept=0, client_deflate=0, client_cbits=0, client_protocols=0, mutation=0, threshold=0, repeat=0):
    return bytes([http2, drop, method, extra, origin, server_deflate, server_cbits, protocol, accept,
                  client_deflate, client_cbits, client_protocols, mutation, threshold, repeat, 0])


def named(name, value):
    if name in NAMES:
        return bytes([NAMES[name]]) + fields(value)
    return b"\xff" + fields(name.encode(), value)


for http2 in (0, 1):
    v = "h2" if http2 else "h1"
    write("upgrade", v + "-valid", upgrade_plan(http2=http2) + fields(b"/chat", b"Hello"))
    write(
        "upgrade",
        v + "-chat-deflate-pair",
        upgrade_plan(http2=http2, protocol=1, client_protocols=0b011, repeat=20) + fields(b"/chat?room=1", b"Hello"),
    )
    write(
        "upgrade",
        v + "-accept-headers-injection",
        upgrade_plan(http2=http2, protocol=2, accept=3, client_protocols=0b111)
        + fields(b"/")
        + named("Set-Cookie", b"id=1\r\nInjected: yes")
        + named("Connection", b"close")
        + named("X-Reply", b"ok")
        + fields(b"hi"),
    )
    write(
        "upgrade",
        v + "-no-context-takeover-small-windows",
        upgrade_plan(http2=http2, server_deflate=0b00011110, server_cbits=3, client_deflate=0b00100110,
                     client_cbits=5, threshold=1, repeat=3)
        + fields(b"/", "héllo wörld ".encode()),
    )
    for mutation in (1, 3, 7, 9, 10, 11):
        write("upgrade", "%s-answer-mutation-%d" % (v, mutation),
              upgrade_plan(http2=http2, client_protocols=1, mutation=mutation) + fields(b"/chat", b"Hello"))
write("upgrade", "h1-missing-key", upgrade_plan(drop=1 << 3) + fields(b"/chat"))
write("upgrade", "h1-duplicate-host", upgrade_plan(extra=1) + fields(b"/chat") + named("Host", b"evil.example"))
write("upgrade", "h1-version-8", upgrade_plan(drop=1 << 4, extra=1) + fields(b"/") + named("Sec-WebSocket-Version", b"8"))
write("upgrade", "h1-with-body", upgrade_plan(extra=1) + fields(b"/") + named("Content-Length", b"5"))
write("upgrade", "h1-post", upgrade_plan(method=2) + fields(b"/"))
write("upgrade", "h1-literal-header", upgrade_plan(extra=1) + fields(b"/") + named("X-Hello", b"world"))
write("upgrade", "h1-origin-strict", upgrade_plan(origin=2, client_protocols=0b1000) + fields(b"/"))
write("upgrade", "h2-get-not-connect", upgrade_plan(http2=1, method=6) + fields(b"/chat"))
write("upgrade", "h2-no-protocol", upgrade_plan(http2=1, drop=1 << 1) + fields(b"/chat"))
write("upgrade", "h2-empty-path", upgrade_plan(http2=1, drop=0x80) + fields(b""))
write("upgrade", "h2-two-authorities", upgrade_plan(http2=1, extra=1) + fields(b"/") + named(":authority", b"b.example"))
write("upgrade", "h2-origin-refused", upgrade_plan(http2=1, origin=1, extra=0, drop=1 << 5, client_protocols=0) + fields(b"/"))

# connection_pair, newer operations: 12 release_buffers, 13 burst (count, sizes, kinds),
# 14 boundary message (flags: b % 8 picks BOUNDARIES, bits 3-4 add 0..2 then -1, bit 5 text),
# 15 inject a batch (count, sizes, flags: bit 0 invalid UTF-8 at the end, bit 1 pings, bits 2-4
# which invalid sequence, bits 5-7 prefix repeats; then a 4-byte masking key)
def release(side):
    return op(12, side)


def burst(side, count, sizes, kinds):
    return op(13, side, b8(count), b8(sizes), b8(kinds))


def boundary(side, index, delta, text=False):
    return op(14, side, b8(index | (delta << 3) | (0x20 if text else 0)))


def inject_batch(side, count, sizes, flags, key=b"\x37\xfa\x21\x3d"):
    return op(15, side, b8(count), b8(sizes), b8(flags), key)


write(
    "connection_pair",
    "bursts-of-small-frames",
    bytes(21)
    + burst(C, 50, 40, 0x5A)
    + op(6, C, DELIVER_ALL)
    + burst(S, 33, 120, 0x00)
    + op(6, S, u16(700), b8(1))
    + op(6, S, DELIVER_ALL)
    + burst(C, 64, 3, 0xFF)
    + op(6, C, u16(0), b8(2)),
)
write(
    "connection_pair",
    "length-boundaries",
    bytes(21)
    + b"".join(boundary(C, i, d, text=(d == 1)) + op(6, C, DELIVER_ALL) for i in (0, 1, 2) for d in (0, 1, 2))
    + boundary(S, 5, 1)
    + op(6, S, u16(3), b8(0))
    + op(6, S, DELIVER_ALL)
    + boundary(S, 6, 1, text=True)
    + op(6, S, DELIVER_ALL)
    + boundary(C, 5, 2)
    + op(6, C, u16(0), b8(1)),
)
write(
    "connection_pair",
    "invalid-utf8-after-valid-batch",
    bytes(21) + inject_batch(S, 12, 7, 0b0010_0111) + op(6, S, DELIVER_ALL) + op(6, C, DELIVER_ALL),
)
write(
    "connection_pair",
    "invalid-utf8-after-40-frames-client",
    bytes(21) + inject_batch(C, 39, 125, 0b0000_1101, key=b"\x00\x00\x00\x00") + op(6, C, DELIVER_ALL),
)
write(
    "connection_pair",
    "release-buffers-between-everything",
    bytes(21)
    + release(C)
    + op(0, C, b8(5), b"Hello")
    + release(C)
    + op(6, C, u16(3), b8(0))
    + release(S)
    + op(6, C, DELIVER_ALL)
    + release(S)
    + op(11, S, b8(0), b8(200))
    + op(6, S, u16(5000), b8(3))
    + release(C)
    + release(S)
    + op(6, S, DELIVER_ALL)
    + release(C)
    + op(5, C, b8(0), b8(3), b"bye")
    + release(C)
    + op(6, C, DELIVER_ALL)
    + release(S)
    + op(6, S, DELIVER_ALL)
    + release(C),
)
write(
    "connection_pair",
    "release-buffers-deflate-stream-mode",
    deflate_plan[:7] + bytes([1, 3, 0, 0, 0, 0, 0]) + bytes([1, 0, 0, 0, 0, 0, 7])
    + op(2, C, b8(0b1101), b8(4), "Hé".encode() + b"l")
    + release(C)
    + op(6, C, u16(4), b8(1))
    + release(S)
    + op(2, C, b8(0b0011), b8(2), b"lo")
    + op(6, C, DELIVER_ALL)
    + release(S)
    + burst(S, 20, 90, 0x0F)
    + release(S)
    + op(6, S, DELIVER_ALL)
    + release(C),
)
