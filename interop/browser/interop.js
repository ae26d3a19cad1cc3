// The browser's WebSocket against wscore's tokio echo server: text and binary round trips of
// many sizes (up to 1 MiB), then a close with code 4001 and a reason, whose close event must
// report code 4001 and wasClean. The server URL comes from the page's `?ws=` parameter.
//
// Results: one `PASS name` / `FAIL name: why` line per check in <pre id="results">, a final
// `N passed, M failed` line, and the title set to `PASS n/n` or `FAIL k/n`. The same report is
// POSTed to /result, where serve.py writes it to the file run.sh waits for.
'use strict';

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];
const CHARS = ['a', 'é', '€', '𝄞', 'Z', 'ж', '你', '🌍'];
const TIMEOUT_MS = 20000;
const results = [];

function log(line) {
  results.push(line);
  document.getElementById('results').textContent = results.join('\n');
}

function finish() {
  const passed = results.filter((l) => l.startsWith('PASS')).length;
  const failed = results.filter((l) => l.startsWith('FAIL')).length;
  log(`${passed} passed, ${failed} failed`);
  document.getElementById('summary').textContent = failed === 0 ? 'all passed' : `${failed} failed`;
  document.title = failed === 0 && passed > 0 ? `PASS ${passed}/${passed}` : `FAIL ${failed}/${passed + failed}`;
  if (location.protocol.startsWith('http')) {
    fetch('/result', { method: 'POST', body: results.join('\n') }).catch(() => {});
  }
}

function utf8Text(size) {
  const encoder = new TextEncoder();
  const parts = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    let c = CHARS[i % CHARS.length];
    if (length + encoder.encode(c).length > size) c = '.';
    parts.push(c);
    length += encoder.encode(c).length;
  }
  return parts.join('');
}

function noise(size, seed) {
  const out = new Uint8Array(size);
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

function sameBytes(a, b) {
  if (a.length !== b.length) return `expected ${a.length} bytes, got ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `first difference at byte ${i}`;
  return null;
}

async function run() {
  const url = new URLSearchParams(location.search).get('ws');
  if (!url) {
    log('FAIL setup: no ?ws= parameter');
    return;
  }
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const inbox = [];
  let waiter = null;
  let closeEvent = null;
  const wake = () => waiter && waiter();
  ws.onmessage = (e) => { inbox.push(e.data); wake(); };
  ws.onclose = (e) => { closeEvent = e; wake(); };
  const waitFor = (what, take) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { waiter = null; reject(new Error(`timed out waiting for ${what}`)); }, TIMEOUT_MS);
    const poll = () => {
      const found = take();
      if (found !== undefined) {
        clearTimeout(timer); waiter = null; resolve(found);
      } else if (closeEvent && what !== 'the close event') {
        clearTimeout(timer); waiter = null;
        reject(new Error(`closed (${closeEvent.code}) while waiting for ${what}`));
      }
    };
    waiter = poll;
    poll();
  });
  const check = async (name, body) => {
    try {
      const note = await body();
      log(`PASS ${name}${note ? ` (${note})` : ''}`);
    } catch (err) {
      log(`FAIL ${name}: ${err.message}`);
    }
  };

  await check('open', () => new Promise((resolve, reject) => {
    ws.onopen = () => resolve(`extensions: ${ws.extensions || 'none'}`);
    ws.onerror = () => reject(new Error('connection failed'));
  }));
  if (ws.readyState !== WebSocket.OPEN) return;

  for (const size of SIZES) {
    await check(`text ${size} bytes (multi-byte UTF-8)`, async () => {
      const text = utf8Text(size);
      ws.send(text);
      const got = await waitFor('the echo', () => inbox.shift());
      if (typeof got !== 'string') throw new Error('echo is not text');
      if (got !== text) throw new Error(`echo differs: ${sameBytes(new TextEncoder().encode(text), new TextEncoder().encode(got))}`);
    });
    await check(`binary ${size} bytes (random)`, async () => {
      const data = noise(size, size);
      ws.send(data);
      const got = await waitFor('the echo', () => inbox.shift());
      if (!(got instanceof ArrayBuffer)) throw new Error('echo is not binary');
      const diff = sameBytes(data, new Uint8Array(got));
      if (diff) throw new Error(`echo differs: ${diff}`);
    });
  }
  await check('text 1 MiB ASCII, compressible', async () => {
    const text = 'the quick brown fox. '.repeat(50000);
    ws.send(text);
    if ((await waitFor('the echo', () => inbox.shift())) !== text) throw new Error('echo differs');
  });

  await check('close 4001 with a reason', async () => {
    ws.close(4001, 'browser interop: done ✓');
    const e = await waitFor('the close event', () => closeEvent || undefined);
    // The server must echo the code; echoing the reason is optional (RFC 6455 §5.5.1).
    const reasonOk = e.reason === '' || e.reason === 'browser interop: done ✓';
    if (e.code !== 4001 || !reasonOk || !e.wasClean) {
      throw new Error(`code ${e.code}, reason ${JSON.stringify(e.reason)}, wasClean ${e.wasClean}`);
    }
    return `code ${e.code}, reason ${JSON.stringify(e.reason)}, wasClean ${e.wasClean}`;
  });
}

run().catch((err) => log(`FAIL scenario: ${err.message}`)).finally(finish);
