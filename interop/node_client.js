#!/usr/bin/env node
// Interop client on Node's `ws` package: runs a fixed scenario against one of wscore's echo
// servers and checks every echo byte for byte.
//
//   node interop/node_client.js ws://127.0.0.1:9201/ [--no-compression | --tight-compression] [--expect-compression] [--large]
//
// The scenario: text and binary messages of 0, 1, 125, 126, 127, 65535, 65536 and 1 MiB bytes
// (16 MiB too with --large), multi-byte UTF-8, compressible payloads, fragmented messages
// (`send(..., { fin: false })` pieces: text split inside code points, empty pieces, a ping
// between pieces, 100 small pieces), 20 pipelined messages, pings whose pongs must carry the
// same payload, and a close with code 4000 and a reason: the server must answer with a close
// frame carrying code 4000 and then close the TCP connection.
//
// permessage-deflate is offered unless --no-compression; --tight-compression offers it with no
// context takeover on both sides and 9-bit windows, and compresses every message however small.
// --expect-compression makes its negotiation (and with --tight-compression, the server's
// acceptance of those parameters) a check. Prints `PASS name` / `FAIL name: why` per check, then `N passed, M
// failed`; exits 0 only if every check passed.
'use strict';

const WebSocket = require('ws');

const CHECK_TIMEOUT_MS = 60_000;
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];
const LARGE = 16 << 20;
const CHARS = ['a', 'é', '€', '𝄞', 'Z', 'ж', '你', '🌍'];

const args = process.argv.slice(2);
const url = args.find((a) => !a.startsWith('--'));
const tightCompression = args.includes('--tight-compression');
const compression = args.includes('--no-compression')
  ? false
  : tightCompression
    ? { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9, threshold: 0 }
    : true;
const expectCompression = args.includes('--expect-compression');
const large = args.includes('--large');
if (!url) {
  console.error('usage: node_client.js ws://HOST:PORT/PATH [--no-compression | --tight-compression] [--expect-compression] [--large]');
  process.exit(2);
}

/** Deterministic bytes that do not compress (mulberry32). */
function noise(size, seed) {
  const out = Buffer.alloc(size);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < size; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** Exactly `size` bytes of UTF-8 mixing 1- to 4-byte characters. */
function utf8Text(size) {
  const parts = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    let c = CHARS[i % CHARS.length];
    if (length + Buffer.byteLength(c) > size) c = '.';
    parts.push(c);
    length += Buffer.byteLength(c);
  }
  return parts.join('');
}

function compare(expected, got) {
  const kind = (binary) => (binary ? 'binary' : 'text');
  if (expected.binary !== got.binary) {
    throw new Error(`expected a ${kind(expected.binary)} message, got ${kind(got.binary)} (${got.data.length} bytes)`);
  }
  if (!expected.data.equals(got.data)) {
    const a = expected.data;
    const b = got.data;
    let at = 0;
    while (at < a.length && at < b.length && a[at] === b[at]) at++;
    throw new Error(`echo differs: expected ${a.length} bytes, got ${b.length}, first difference at byte ${at}`);
  }
}

/** A connection whose messages, pongs and close land in queues the checks wait on. */
class Peer {
  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.pongs = [];
    this.closed = null;
    this.waiter = null;
    ws.on('message', (data, isBinary) => this.push(() => this.messages.push({ data, binary: isBinary })));
    ws.on('pong', (data) => this.push(() => this.pongs.push(data)));
    ws.on('close', (code, reason) => this.push(() => (this.closed = { code, reason: reason.toString() })));
    ws.on('error', (err) => this.push(() => (this.error = err)));
  }

  push(action) {
    action();
    if (this.waiter) this.waiter();
  }

  /** Resolves with what `take` finds, once it finds something. */
  wait(what, take) {
    return new Promise((resolve, reject) => {
      const poll = () => {
        const found = take();
        if (found !== undefined) {
          this.waiter = null;
          resolve(found);
        } else if (this.closed || this.error) {
          this.waiter = null;
          const why = this.error ? `error ${this.error.message}` : `close ${this.closed.code}`;
          reject(new Error(`connection ended (${why}) while waiting for ${what}`));
        }
      };
      this.waiter = poll;
      poll();
    });
  }

  nextMessage() {
    return this.wait('the echo', () => this.messages.shift());
  }

  nextPong() {
    return this.wait('a pong', () => this.pongs.shift());
  }

  send(data, options) {
    return new Promise((resolve, reject) => this.ws.send(data, options, (err) => (err ? reject(err) : resolve())));
  }

  async echo(data, binary) {
    await this.send(data, { binary });
    compare({ data: Buffer.from(data), binary }, await this.nextMessage());
  }

  async echoPieces(pieces, binary) {
    for (let i = 0; i < pieces.length; i++) await this.send(pieces[i], { binary, fin: i === pieces.length - 1 });
    compare({ data: Buffer.concat(pieces), binary }, await this.nextMessage());
  }

  async ping(payload) {
    this.ws.ping(payload);
    const pong = await this.nextPong();
    if (!pong.equals(Buffer.from(payload))) throw new Error(`pong payload ${pong.toString('hex')}`);
  }
}

let passed = 0;
let failed = 0;

async function check(name, body) {
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
    });
    const note = await Promise.race([body(), timeout]);
    passed++;
    console.log(`PASS ${name}${note ? ` (${note})` : ''}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message}`);
  } finally {
    clearTimeout(timer);
  }
}

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: compression, maxPayload: 64 << 20, handshakeTimeout: 10_000 });
    const peer = new Peer(ws);
    // ws.extensions names the extensions only; the parameters are in the response header.
    ws.once('upgrade', (res) => (peer.extensionsHeader = res.headers['sec-websocket-extensions'] || ''));
    ws.once('open', () => resolve(peer));
    ws.once('error', reject);
    ws.once('unexpected-response', (_, res) => reject(new Error(`upgrade rejected: HTTP ${res.statusCode}`)));
  });
}

async function main() {
  let peer;
  await check('handshake', async () => {
    peer = await open();
  });
  if (!peer) return;
  const extensions = peer.extensionsHeader;
  console.log(`permessage-deflate: ${extensions ? `negotiated ${extensions}` : 'not negotiated'}`);
  if (expectCompression) {
    await check('permessage-deflate negotiated', async () => {
      if (!extensions.includes('permessage-deflate')) throw new Error(`extensions: ${JSON.stringify(extensions)}`);
      const params = extensions.replace(/ /g, '').split(';');
      if (tightCompression && !(params.includes('server_no_context_takeover') && params.includes('server_max_window_bits=9'))) {
        throw new Error(`server answered ${JSON.stringify(extensions)}`);
      }
    });
  }
  if (!compression) {
    await check('permessage-deflate not negotiated', async () => {
      if (extensions) throw new Error(`extensions without an offer: ${extensions}`);
    });
  }

  for (const size of large ? [...SIZES, LARGE] : SIZES) {
    await check(`text ${size} bytes (multi-byte UTF-8)`, () => peer.echo(Buffer.from(utf8Text(size)), false));
    await check(`binary ${size} bytes (random)`, () => peer.echo(noise(size, size), true));
  }
  await check('text 1 MiB ASCII, compressible', () => peer.echo(Buffer.from('the quick brown fox. '.repeat(50_000)), false));
  await check('binary 1 MiB of zeros', () => peer.echo(Buffer.alloc(1 << 20), true));
  for (const text of ['héllo wörld', 'Ελληνικά, русский, 日本語, 한국어', 'emoji 🌍🚀👩‍💻 and 𝄞 (4-byte)',
    '\ufeff\u{10ffff}\x7f\x80\u07ff\u0800\uffff']) {
    await check(`text ${JSON.stringify(text)}`, () => peer.echo(Buffer.from(text), false));
  }

  const raw = Buffer.from('Hello, wörld 🌍! ');
  await check('text in 3 fragments split inside code points',
    () => peer.echoPieces([raw.subarray(0, 9), raw.subarray(9, 16), raw.subarray(16)], false));
  const big = noise(300_000, 7);
  await check('binary 300000 bytes in 3 fragments',
    () => peer.echoPieces([big.subarray(0, 100_000), big.subarray(100_000, 200_000), big.subarray(200_000)], true));
  await check('binary with empty first and last fragments',
    () => peer.echoPieces([Buffer.alloc(0), Buffer.from('middle'), Buffer.alloc(0)], true));
  const text = Buffer.from(utf8Text(1000));
  const tens = [];
  for (let i = 0; i < 1000; i += 10) tens.push(text.subarray(i, i + 10));
  await check('text in 100 fragments of 10 bytes', () => peer.echoPieces(tens, false));
  await check('ping between fragments', async () => {
    await peer.send(Buffer.from('before ping, '), { binary: false, fin: false });
    peer.ws.ping('mid-message');
    await peer.send(Buffer.from('after ping'), { binary: false, fin: true });
    const pong = await peer.nextPong();
    if (pong.toString() !== 'mid-message') throw new Error(`pong payload ${pong.toString('hex')}`);
    compare({ data: Buffer.from('before ping, after ping'), binary: false }, await peer.nextMessage());
  });

  await check('20 pipelined messages, echoed in order', async () => {
    const sent = [];
    for (let i = 0; i < 20; i++) {
      const message = i % 2 === 0
        ? { data: Buffer.from(`message ${i}: ${utf8Text(i * 37)}`), binary: false }
        : { data: noise(i * 101, i), binary: true };
      sent.push(message);
      peer.ws.send(message.data, { binary: message.binary });
    }
    for (let i = 0; i < sent.length; i++) {
      try {
        compare(sent[i], await peer.nextMessage());
      } catch (err) {
        throw new Error(`message ${i}: ${err.message}`);
      }
    }
  });

  await check('ping, empty payload', () => peer.ping(Buffer.alloc(0)));
  await check('ping, text payload', () => peer.ping('interop ping'));
  await check('ping, 125-byte payload', () => peer.ping(noise(125, 125)));
  await check('ping right behind a 1 MiB message', async () => {
    const payload = noise(1 << 20, 99);
    peer.ws.send(payload, { binary: true });
    peer.ws.ping('behind');
    const pong = await peer.nextPong();
    if (pong.toString() !== 'behind') throw new Error(`pong payload ${pong.toString('hex')}`);
    compare({ data: payload, binary: true }, await peer.nextMessage());
  });

  await check('close 4000 with a reason, echoed', async () => {
    const reason = 'interop: done ✓';
    peer.ws.close(4000, reason);
    const closed = await peer.wait('the close', () => peer.closed || undefined);
    if (peer.error) throw new Error(`error: ${peer.error.message}`);
    // The code must be echoed; the reason may be (RFC 6455 §5.5.1).
    if (closed.code !== 4000 || (closed.reason !== '' && closed.reason !== reason)) {
      throw new Error(`server closed with ${closed.code} ${JSON.stringify(closed.reason)}`);
    }
    return `echoed code ${closed.code}, reason ${JSON.stringify(closed.reason)}`;
  });
}

main()
  .catch((err) => {
    failed++;
    console.log(`FAIL scenario: ${err.stack}`);
  })
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
  });
