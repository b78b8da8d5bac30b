// Browser tests of the main-thread crate (the `Wick` class and `pipeline`) against a mock worker
// (mock-worker.js, loaded from a Blob URL), so they need only the main half of the dist.
//
//   node --test main-thread/tests/main-thread.test.mjs
//
// With WICK_BASE_URL set (as `cargo xtask test` does) the site's /wick/wick.js is used; without
// it a small server serves the dist at WICK_DIST (default target/wick-dist) under /wick/.
// CHROMIUM names the browser (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const require = createRequire(join(root, 'tests', 'package.json'));
const { chromium } = require('playwright-core');

const mockSource = readFileSync(join(here, 'mock-worker.js'), 'utf8');
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

let context, page, server, profile, base;

/** Serves `dir` under /wick/ (only when no site server is given). */
function serveDist(dir) {
  const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
  const srv = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.startsWith('/wick/') ? normalize(join(dir, path.slice(6))) : null;
    if (!file || !file.startsWith(dir) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404, isolation).end();
      return;
    }
    res.writeHead(200, { ...isolation, 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

before(async () => {
  base = process.env.WICK_BASE_URL;
  if (!base) {
    const dist = normalize(process.env.WICK_DIST ?? join(root, 'target', 'wick-dist'));
    server = await serveDist(dist);
    base = `http://127.0.0.1:${server.address().port}`;
  }
  profile = mkdtempSync(join(tmpdir(), 'wick-main-thread-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => m.type() === 'error' && console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e}`));
  // A blank page on the site's origin, so that /wick/wick.js imports as it would on the site.
  const blank = `${base}/__main-thread-test__.html`;
  await page.route(blank, (route) =>
    route.fulfill({ contentType: 'text/html', headers: isolation, body: '<!doctype html><title>t</title>' }));
  await page.goto(blank);
  await page.evaluate(async (source) => {
    window.wick = await import('/wick/wick.js');
    window.mock = (protocol = 1) =>
      URL.createObjectURL(new Blob([`globalThis.MOCK_PROTOCOL = ${protocol};\n${source}`], { type: 'text/javascript' }));
    window.image = (dark) => {
      const img = new ImageData(28, 28);
      img.data.fill(255);
      for (let i = 0; i < dark; i++) img.data.fill(0, i * 4, i * 4 + 3);
      return img;
    };
    window.failure = (e) => ({
      isError: e instanceof Error, name: e.name, code: e.code, message: e.message, file: e.file, status: e.status,
    });
  }, mockSource);
});

after(async () => {
  await context?.close();
  server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('spawn shakes hands and keeps the capabilities', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const out = { version: w.version, tasks: w.capabilities.tasks, running: w.running, url: w.workerUrl };
    w.terminate();
    return { ...out, after: w.running };
  });
  assert.deepEqual(r.tasks, ['digits']);
  assert.equal(r.version, 'mock');
  assert.equal(r.running, true);
  assert.equal(r.after, false);
  assert.match(r.url, /^blob:/);
});

test('a worker of another protocol version is refused', async () => {
  const r = await page.evaluate(() => wick.Wick.spawn(mock(2)).then(() => null, failure));
  assert.equal(r.isError, true);
  assert.equal(r.code, 'protocol_mismatch');
  assert.equal(r.name, 'WickError');
});

test('load reports progress per file and resolves with the ready info', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const progress = [];
    const ready = await w.load('m', './models/m.onnx', { onProgress: (p) => progress.push(p) });
    const other = [];
    await w.load('n', new URL('/elsewhere/n.onnx', location.href), {
      onProgress: (p) => other.push(p.file),
      externalData: [{ path: 'n.onnx_data', url: './data/n.bin' }],
    });
    w.terminate();
    return { progress, ready, other, base: location.origin };
  });
  const model = `${r.base}/models/m.onnx`;
  assert.deepEqual(r.progress, [
    { file: model, loaded: 50, total: 100 },
    { file: model, loaded: 100, total: 100 },
    { file: `${r.base}/models/model.onnx_data`, loaded: 300 },
  ]);
  assert.deepEqual(r.ready, {
    model: 'm', backend: 'cpu', weightBytes: 400, loadMs: 12,
    inputs: [{ name: 'x', dtype: 'float32', dims: [null, 4] }],
    outputs: [{ name: 'y', dtype: 'float32', dims: [null, 4] }],
  });
  assert.deepEqual(r.other, [`${r.base}/elsewhere/n.onnx`, `${r.base}/elsewhere/n.onnx`, `${r.base}/data/n.bin`]);
});

test('errors carry the wire code, file and status', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const missing = await w.load('m', 'missing.onnx').then(() => null, failure);
    await w.load('m', 'm.onnx');
    const exists = await w.load('m', 'm.onnx').then(() => null, failure);
    const unknown = await w.run('nope', {}).then(() => null, failure);
    w.terminate();
    return { missing, exists, unknown, base: location.origin };
  });
  assert.deepEqual(r.missing, {
    isError: true, name: 'WickError', code: 'fetch_failed', message: 'HTTP 404',
    file: `${r.base}/missing.onnx`, status: 404,
  });
  assert.equal(r.exists.code, 'model_exists');
  assert.equal(r.unknown.code, 'unknown_model');
});

test('run sends typed arrays and resolves with typed outputs', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    await w.load('m', 'm.onnx');
    const x = new Float32Array([1, 2, 3, 4.5]);
    const { outputs, stats } = await w.run('m', { x: { dtype: 'float32', dims: [1, 4], data: x } });
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      w.run('m', { x: { dtype: 'float32', dims: [1, 1], data: new Float32Array([i]) } })
        .then((o) => o.outputs.y.data[0])));
    w.terminate();
    return {
      y: [outputs.y.data.constructor.name, Array.from(outputs.y.data), outputs.y.dims],
      n: [outputs.n.data.constructor.name, String(outputs.n.data[0])],
      stats, inputKept: x.byteLength, many,
    };
  });
  assert.deepEqual(r.y, ['Float32Array', [2, 4, 6, 9], [1, 4]]);
  assert.deepEqual(r.n, ['BigInt64Array', '4']);
  assert.deepEqual(r.stats, { runMs: 0.5, peakIntermediateBytes: 64 });
  assert.equal(r.inputKept, 16, "the caller's typed array is not detached");
  assert.deepEqual(r.many, Array.from({ length: 20 }, (_, i) => 2 * i), 'answers matched by id');
});

test('bad inputs are refused before they are sent', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const short = await w.run('m', { x: { dtype: 'float32', dims: [1, 4], data: new Float32Array(3) } })
      .then(() => null, failure);
    const dtype = await w.run('m', { x: { dtype: 'float64', dims: [1], data: new Float64Array(1) } })
      .then(() => null, failure);
    const image = await w.digits('m', { width: 2, height: 2, data: new Uint8Array(3) }).then(() => null, failure);
    const options = await w.load('m', 'm.onnx', { onProgress: 3 }).then(() => null, failure);
    w.terminate();
    return { short, dtype, image, options };
  });
  assert.equal(r.short.code, 'bad_input');
  assert.match(r.short.message, /input `x`.*16 bytes.*Float32Array/);
  assert.equal(r.dtype.code, 'bad_input');
  assert.equal(r.image.code, 'bad_input');
  assert.equal(r.options.code, 'bad_request');
});

test('digits sends the ImageData and resolves with the digit', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    await w.load('d', 'd.onnx');
    const img = image(13);
    const result = await w.digits('d', img);
    w.terminate();
    return { result, kept: img.data.length };
  });
  assert.equal(r.result.digit, 3);
  assert.equal(r.result.probabilities.length, 10);
  assert.equal(r.result.task, undefined);
  assert.deepEqual(r.result.stats, { runMs: 0.5, peakIntermediateBytes: 64 });
  assert.equal(r.kept, 28 * 28 * 4);
});

test('an AbortSignal cancels the request', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const controller = new AbortController();
    const slow = w.load('s', 'slow.onnx', { signal: controller.signal, onProgress: () => controller.abort() });
    const cancelled = await slow.then(() => null, failure);
    const pre = await w.load('t', 'm.onnx', { signal: AbortSignal.abort() }).then(() => null, failure);
    // The worker still serves, and the model of the pre-aborted load was never requested.
    const later = await w.load('t', 'm.onnx').then((info) => info.model, failure);
    w.terminate();
    return { cancelled, pre, later };
  });
  assert.equal(r.cancelled.name, 'AbortError');
  assert.equal(r.cancelled.code, 'cancelled');
  assert.equal(r.pre.code, 'cancelled');
  assert.equal(r.later, 't');
});

test('generate streams token events through an async iterator and resolves result', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    await w.load('g', 'm.onnx', { task: 'text-generation' });
    // Pieces are taken as they come (each next() waits for one) …
    const generation = w.generate('g', [{ role: 'user', content: 'the capital of France' }]);
    let settled = false;
    generation.result.then(() => { settled = true; });
    const pieces = [];
    let settledAtFirst = null;
    for await (const piece of generation) {
      if (settledAtFirst === null) settledAtFirst = settled;
      pieces.push(piece);
    }
    const result = await generation.result;
    // … or after the answer came: they were queued.
    const late = w.generate('g', 'one two three four', { maxNewTokens: 2 });
    const lateResult = await late.result;
    const latePieces = [];
    for await (const piece of late) latePieces.push(piece);
    const again = await late.next();
    w.terminate();
    return { pieces, settledAtFirst, result, latePieces, lateResult, again };
  });
  assert.deepEqual(r.pieces, ['the', ' capital', ' of', ' France']);
  assert.equal(r.settledAtFirst, false, 'the first piece came before the answer');
  assert.deepEqual(r.result, {
    text: 'the capital of France', finish: 'eos',
    stats: { promptTokens: 3, generatedTokens: 4, prefillMs: 2, prefillTokS: 1500, decodeTokS: 200 },
  });
  assert.deepEqual(r.latePieces, ['one', ' two']);
  assert.equal(r.lateResult.finish, 'length');
  assert.deepEqual(r.again, { value: undefined, done: true });
});

test('generate: a signal or leaving the loop cancels; errors reject result and the iteration', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    await w.load('g', 'm.onnx', { task: 'text-generation' });
    const controller = new AbortController();
    const stopped = w.generate('g', 'forever', { signal: controller.signal });
    let n = 0;
    for await (const piece of stopped) if (++n === 3) controller.abort();
    const aborted = await stopped.result.then(() => null, failure);
    const left = w.generate('g', 'forever');
    for await (const piece of left) break;
    const broke = await left.result.then(() => null, failure);
    const bad = w.generate('g', 'hello', { temperature: -1 });
    let thrown = null;
    try {
      for await (const piece of bad) thrown = 'a piece';
    } catch (e) {
      thrown = failure(e);
    }
    const badResult = await bad.result.then(() => null, failure);
    const badOption = await w.generate('g', 'hello', { stop: 3 }).result.then(() => null, failure);
    const badPrompt = await w.generate('g', [{ role: 'user' }]).result.then(() => null, failure);
    const unknown = await w.generate('nope', 'hello').result.then(() => null, failure);
    const after = await w.generate('g', 'still here').result;
    w.terminate();
    return { n, aborted, broke, thrown, badResult, badOption, badPrompt, unknown, after: after.text };
  });
  assert.equal(r.n, 3, 'no piece after the abort');
  assert.deepEqual([r.aborted.name, r.aborted.code], ['AbortError', 'cancelled']);
  assert.equal(r.broke.code, 'cancelled');
  assert.equal(r.thrown.code, 'bad_input');
  assert.equal(r.badResult.code, 'bad_input');
  assert.equal(r.badOption.code, 'bad_request');
  assert.equal(r.badPrompt.code, 'bad_input');
  assert.equal(r.unknown.code, 'unknown_model');
  assert.equal(r.after, 'still here');
});

test('a worker crash rejects every pending request with internal', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const slow = w.load('s', 'slow.onnx').then(() => null, failure);
    const crash = await w.load('c', 'crash.onnx').then(() => null, failure);
    const after = await w.load('m', 'm.onnx').then(() => null, failure);
    return { crash, slow: await slow, after, running: w.running };
  });
  assert.equal(r.crash.code, 'internal');
  assert.match(r.crash.message, /crashed/);
  assert.equal(r.slow.code, 'internal');
  assert.equal(r.after.code, 'internal');
  assert.equal(r.running, false);
});

test('a panic reported with id 0 is a crash', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const slow = w.load('s', 'slow.onnx').then(() => null, failure);
    const panic = await w.load('p', 'panic.onnx').then(() => null, failure);
    return { panic, slow: await slow, running: w.running };
  });
  assert.equal(r.panic.code, 'internal');
  assert.match(r.panic.message, /worker panicked: mock/);
  assert.equal(r.slow.code, 'internal');
  assert.equal(r.running, false);
});

test('terminate rejects pending requests with AbortError', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    const slow = w.load('s', 'slow.onnx').then(() => null, failure);
    w.terminate();
    return { slow: await slow, after: await w.unload('s').then(() => null, failure) };
  });
  assert.equal(r.slow.name, 'AbortError');
  assert.equal(r.after.code, 'cancelled');
});

test('unload frees the name', async () => {
  const r = await page.evaluate(async () => {
    const w = await wick.Wick.spawn(mock());
    await w.load('m', 'm.onnx');
    const first = await w.unload('m');
    const again = await w.unload('m').then(() => null, failure);
    const reload = await w.load('m', 'm.onnx').then((i) => i.model);
    w.terminate();
    return { first: first === undefined, again, reload };
  });
  assert.equal(r.first, true);
  assert.equal(r.again.code, 'unknown_model');
  assert.equal(r.reload, 'm');
});

test('pipelines share a worker and run their task', async () => {
  const r = await page.evaluate(async () => {
    const workerUrl = mock();
    const progress = [];
    const p = await wick.pipeline('digits', './models/digits/model.onnx', {
      workerUrl, onProgress: (e) => progress.push(e.loaded),
    });
    const q = await wick.pipeline('digits', './models/digits/model.onnx', { workerUrl });
    const result = await p.run(image(27));
    const out = {
      task: p.task, model: p.model, other: q.model, backend: p.backend, weightBytes: p.info.weightBytes,
      same: p.wick.workerUrl === q.wick.workerUrl, digit: result.digit, progress,
    };
    await p.dispose();
    out.disposed = await p.run(image(1)).then(() => null, failure);
    out.unknownTask = await wick.pipeline('speech', 'x.onnx', { workerUrl }).then(() => null, failure);
    const own = await wick.Wick.spawn(mock());
    out.own = (await own.pipeline('digits', 'd.onnx')).model;
    own.terminate();
    q.wick.terminate();
    return out;
  });
  assert.equal(r.task, 'digits');
  assert.deepEqual([r.model, r.other], ['digits-1', 'digits-2'], 'one worker, fresh names');
  assert.equal(r.backend, 'cpu');
  assert.equal(r.weightBytes, 400);
  assert.equal(r.same, true);
  assert.equal(r.digit, 7);
  assert.deepEqual(r.progress, [50, 100, 300]);
  assert.equal(r.disposed.code, 'unknown_model');
  assert.equal(r.unknownTask.code, 'bad_task');
  assert.equal(r.own, 'digits-1');
});
