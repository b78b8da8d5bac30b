// Shared pieces of the browser tests: the browser, the fixtures, and a small reader for the
// ONNX protobuf messages the fixtures hold (reference tensors, external-data locations).
//
// The tests run under `cargo xtask test --browser-only`, which serves the site and
// tests/fixtures/ (at /fixtures/) and sets WICK_BASE_URL and CHROMIUM.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** Per-test timeout (ms): generous, for a slow machine; the tests themselves are quick. */
export const TIMEOUT = 60_000;

/** The served site, e.g. http://127.0.0.1:41234 (no trailing slash). */
export function baseUrl() {
  const base = process.env.WICK_BASE_URL;
  if (!base) {
    throw new Error('WICK_BASE_URL is not set: run the browser tests with `cargo xtask test --browser-only`');
  }
  return base.replace(/\/+$/, '');
}

/** tests/fixtures/ on disk (served at /fixtures/). */
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export function fixtureBytes(path) {
  return readFileSync(FIXTURES + path);
}

/** The `test_data_set_*` directories of a fixture model, sorted. */
export function testDataSets(modelDir) {
  return readdirSync(FIXTURES + modelDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.startsWith('test_data_set_'))
    .map((e) => `${modelDir}/${e.name}`)
    .sort();
}

/** A test data set as plain arrays: `{inputs: [tensor], outputs: [tensor]}` in file order. */
export function readTestDataSet(dir) {
  const files = readdirSync(FIXTURES + dir).sort();
  const read = (prefix) =>
    files
      .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
      .sort((a, b) => parseInt(a.slice(prefix.length), 10) - parseInt(b.slice(prefix.length), 10))
      .map((f) => parseTensor(fixtureBytes(`${dir}/${f}`)));
  const set = { inputs: read('input_'), outputs: read('output_') };
  if (!set.inputs.length || !set.outputs.length) throw new Error(`${dir}: no input_*.pb or output_*.pb`);
  return set;
}

/** Real MNIST digits held out from training: `[{label, pixels: [784], ort_pred}]`. */
export function heldoutDigits() {
  return JSON.parse(fixtureBytes('heldout-digits.json').toString('utf8'));
}

/**
 * Held-out digits covering every class, at most `perClass` of each (all by default), in class
 * order (0, 1, …, 9, 0, 1, …), so that any prefix of the list is spread over the classes.
 */
export function pickDigits(perClass = Infinity) {
  const byClass = Array.from({ length: 10 }, () => []);
  for (const d of heldoutDigits()) byClass[d.label].push(d);
  const picked = [];
  for (let round = 0; round < perClass; round++) {
    const row = byClass.filter((list) => round < list.length).map((list) => list[round]);
    if (row.length === 0) break;
    picked.push(...row);
  }
  return picked;
}

export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

// ---- Browser ----------------------------------------------------------------------------------

const ARGS = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Launches Chromium (one per test file; close it in `after`), with `extraArgs` besides the
 * usual flags, and opens a page whose console
 * errors and warnings and uncaught errors, its workers' included, are printed into the test
 * output.
 */
export async function openBrowser(label, extraArgs = []) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...ARGS, ...extraArgs],
  });
  const page = await browser.newPage();
  // Chromium reports the console of the page's workers here too, and their uncaught errors
  // (unhandled by the page) as page errors.
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') {
      const where = msg.location()?.url ? ` (${msg.location().url})` : '';
      console.log(`[${label}] console.${msg.type()}: ${msg.text()}${where}`);
    }
  });
  page.on('pageerror', (e) => console.log(`[${label}] page error: ${e.stack ?? e}`));
  page.on('crash', () => console.log(`[${label}] the page crashed`));
  return { browser, page };
}

/**
 * Navigates `page` to an empty HTML page on the site's origin (served by the test itself, with
 * the site's cross-origin isolation headers), so scripts can import /wick/ and start workers
 * without the demo running beside them.
 */
export async function gotoBlank(page) {
  const url = `${baseUrl()}/__wick-tests__.html`;
  await page.route(url, (route) =>
    route.fulfill({
      contentType: 'text/html',
      headers: {
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
      },
      body: '<!doctype html><meta charset="utf-8"><title>wick tests</title>',
    }),
  );
  await page.goto(url);
}

// ---- Protobuf ---------------------------------------------------------------------------------
// Just enough of the wire format to read onnx.TensorProto files (the reference inputs and
// outputs, written by onnx.numpy_helper) and the external-data locations of a ModelProto.

/** Decodes one message into `[{field, wire, value}]`; value: number, or a Uint8Array slice. */
export function protoFields(bytes) {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const varint = () => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
  };
  const fields = [];
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let value;
    if (wire === 0) value = varint();
    else if (wire === 1) { value = view.getFloat64(pos, true); pos += 8; }
    else if (wire === 2) { const n = varint(); value = buf.subarray(pos, pos + n); pos += n; }
    else if (wire === 5) { value = view.getFloat32(pos, true); pos += 4; }
    else throw new Error(`unsupported wire type ${wire} (field ${field})`);
    if (pos > buf.length) throw new Error('truncated message');
    fields.push({ field, wire, value });
  }
  return fields;
}

function packedVarints(bytes) {
  // A packed run of varints is a message of field-less varints: decode by hand.
  const out = [];
  let value = 0;
  let scale = 1;
  for (const b of bytes) {
    value += (b & 0x7f) * scale;
    if (b < 0x80) { out.push(value); value = 0; scale = 1; } else scale *= 128;
  }
  return out;
}

const FLOAT = 1;

/**
 * An onnx.TensorProto of float32 as `{name, dims, data: number[]}`, from `raw_data` (field 9)
 * or `float_data` (field 4, packed or not).
 */
export function parseTensor(bytes) {
  const dims = [];
  const floats = [];
  let name = '';
  let dataType = null;
  let raw = null;
  for (const { field, wire, value } of protoFields(bytes)) {
    if (field === 1) dims.push(...(wire === 2 ? packedVarints(value) : [value]));
    else if (field === 2) dataType = value;
    else if (field === 4) {
      if (wire === 2) {
        const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
        for (let i = 0; i + 4 <= value.length; i += 4) floats.push(v.getFloat32(i, true));
      } else floats.push(value);
    } else if (field === 8) name = new TextDecoder().decode(value);
    else if (field === 9) raw = value;
  }
  if (dataType !== FLOAT) throw new Error(`tensor ${name}: data_type ${dataType}, only float32 (1) is read here`);
  let data = floats;
  if (raw) {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    data = Array.from({ length: raw.length / 4 }, (_, i) => v.getFloat32(4 * i, true));
  }
  const numel = dims.reduce((a, b) => a * b, 1);
  if (data.length !== numel) throw new Error(`tensor ${name}: ${data.length} values for dims [${dims}]`);
  return { name, dims, data };
}

/** The external-data `location`s a ModelProto's initializers name, in order, without repeats. */
export function externalLocations(modelBytes) {
  const locations = [];
  for (const m of protoFields(modelBytes)) {
    if (m.field !== 7 || m.wire !== 2) continue; // ModelProto.graph
    for (const g of protoFields(m.value)) {
      if (g.field !== 5 || g.wire !== 2) continue; // GraphProto.initializer
      for (const t of protoFields(g.value)) {
        if (t.field !== 13 || t.wire !== 2) continue; // TensorProto.external_data
        const entry = Object.fromEntries(
          protoFields(t.value).map((e) => [e.field, new TextDecoder().decode(e.value)]),
        );
        if (entry[1] === 'location' && !locations.includes(entry[2])) locations.push(entry[2]);
      }
    }
  }
  return locations;
}

// ---- A file server with faults ------------------------------------------------------------------

/**
 * Serves the files under `root` on 127.0.0.1 (a free port), cross-origin to the site (CORS and
 * CORP allow it), with single byte ranges, and faults the loader must survive:
 * - `dropAfter`: bytes after which the first full (non-Range) response for each file is cut
 *   (the connection is closed mid-body);
 * - `bytesPerSecond`: a slow link, so a test can act while a download is in flight.
 * `log` lists every request: `{path, range, status, sent, complete}` (`sent`: body bytes
 * written before the response ended). Close it with `await server.close()`.
 */
export async function startFileServer(root, { dropAfter = null, bytesPerSecond = null } = {}) {
  const http = await import('node:http');
  const fs = await import('node:fs');
  const path = await import('node:path');
  const log = [];
  const dropped = new Set();
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const headers = {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'range',
      'Access-Control-Expose-Headers': 'content-length, content-range, accept-ranges',
      'Cross-Origin-Resource-Policy': 'cross-origin',
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-store',
    };
    const url = new URL(req.url, 'http://x');
    const rel = decodeURIComponent(url.pathname).replace(/^\/+/, '');
    const file = path.join(root, rel);
    const entry = { path: url.pathname, range: req.headers.range ?? null, status: 0, sent: 0, complete: false };
    log.push(entry);
    if (req.method === 'OPTIONS') {
      res.writeHead((entry.status = 204), headers).end();
      return;
    }
    if (!file.startsWith(path.resolve(root)) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead((entry.status = 404), headers).end('not found');
      return;
    }
    const size = fs.statSync(file).size;
    let [start, end] = [0, size - 1];
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size) {
        res.writeHead((entry.status = 416), { ...headers, 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      entry.status = 206;
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
    } else {
      entry.status = 200;
      res.writeHead(200, { ...headers, 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
    }
    const body = fs.readFileSync(file).subarray(start, end + 1);
    const cut = !m && dropAfter !== null && !dropped.has(url.pathname) ? Math.min(dropAfter, body.length - 1) : null;
    if (cut !== null) dropped.add(url.pathname);
    const step = 16 * 1024;
    let pos = 0;
    const pump = () => {
      if (res.destroyed) return;
      if (cut !== null && pos >= cut) {
        // Close the connection mid-body (FIN after the bytes sent, so the client receives them;
        // a reset would discard what it has not read yet).
        res.socket?.end();
        return;
      }
      const n = Math.min(step, body.length - pos, cut !== null ? cut - pos : Infinity);
      const ok = res.write(body.subarray(pos, pos + n));
      pos += n;
      entry.sent = pos;
      if (pos >= body.length) {
        entry.complete = true;
        res.end();
        return;
      }
      const delay = bytesPerSecond ? (1000 * n) / bytesPerSecond : 0;
      if (delay) setTimeout(pump, delay);
      else if (ok) setImmediate(pump);
      else res.once('drain', pump);
    };
    pump();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
