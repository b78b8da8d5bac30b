// The worker's wire protocol (PROTOCOL.md), spoken by plain JS with postMessage only: no
// main-thread crate. A page on the site's origin starts /wick/worker/wick-worker.js as a module
// worker; the test chooses every request id and checks the events the worker sends back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TIMEOUT, argmax, baseUrl, gotoBlank, maxAbsDiff, openBrowser, pickDigits, readTestDataSet,
  testDataSets,
} from './helpers.mjs';

const WORKER = '/wick/worker/wick-worker.js';
const DIGITS = '/fixtures/digits/model.onnx';
const FINAL = ['hello', 'ready', 'output', 'result', 'done', 'cancelled', 'error'];

let browser, page;
let nextId = 1;
const ids = () => nextId++;
let notEnvelopes = 0; // messages posted without an envelope (answered on id 0)

/**
 * Installed in the page as `raw`: wraps one Worker, records every envelope it receives (in
 * order, typed arrays turned into `{typed, values}` so they survive the trip to Node) and
 * resolves `request(id, body)` with the final event for `id`. In bodies sent, `{f32: [...]}`
 * becomes a Float32Array, `{u8c: [...]}` a Uint8ClampedArray, and `{mnist: [784 values]}` a
 * 280×280 RGBA image `{width, height, data}` of that digit (each pixel a 10×10 block, gray
 * (1 - v) · 255 on white), an `ImageData` with `imageData: true`; their buffers are
 * transferred.
 */
function installRaw({ FINAL, WORKER }) {
  const out = (v) => {
    if (ArrayBuffer.isView(v)) return { typed: v.constructor.name, values: Array.from(v, Number) };
    if (Array.isArray(v)) return v.map(out);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, out(x)]));
    return v;
  };
  const hydrate = (v, transfer) => {
    if (Array.isArray(v)) return v.map((x) => hydrate(x, transfer));
    if (v && Object.getPrototypeOf(v) === Object.prototype) {
      if (v.f32) { const a = new Float32Array(v.f32); transfer.push(a.buffer); return a; }
      if (v.u8c) { const a = new Uint8ClampedArray(v.u8c); transfer.push(a.buffer); return a; }
      if (v.mnist) {
        const side = 280;
        const data = new Uint8ClampedArray(side * side * 4);
        for (let y = 0; y < side; y++) {
          for (let x = 0; x < side; x++) {
            const gray = Math.round((1 - v.mnist[Math.floor(y / 10) * 28 + Math.floor(x / 10)]) * 255);
            data.set([gray, gray, gray, 255], 4 * (y * side + x));
          }
        }
        transfer.push(data.buffer);
        return v.imageData ? new ImageData(data, side, side) : { width: side, height: side, data };
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hydrate(x, transfer)]));
    }
    return v;
  };
  class Raw {
    constructor(url) {
      this.log = [];
      this.waiting = new Map();
      this.worker = new Worker(url, { type: 'module' });
      this.worker.onmessage = (e) => {
        const entry = { id: e.data?.id, body: out(e.data?.body) };
        this.log.push(entry);
        const waiter = this.waiting.get(entry.id);
        if (FINAL.includes(entry.body?.type) && waiter) {
          this.waiting.delete(entry.id);
          waiter.resolve(entry);
        } else if (entry.id === 0) {
          // The worker speaking for itself, unasked (a panic): nothing else will answer.
          this.fail(`unexpected event with id 0: ${JSON.stringify(entry.body)}`);
        }
      };
      this.worker.onerror = (e) => {
        const text = `uncaught error in the worker: ${e.message} (${e.filename}:${e.lineno})`;
        console.error(text);
        this.fail(text);
      };
      this.worker.onmessageerror = () => this.fail('a message from the worker could not be deserialised');
    }
    fail(text) {
      for (const w of this.waiting.values()) w.reject(new Error(text));
      this.waiting.clear();
    }
    /** Posts `{id, body}`; resolves with the final event for `id`. */
    request(id, body) {
      const done = new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
      const transfer = [];
      const message = { id, body: hydrate(body, transfer) };
      this.worker.postMessage(message, transfer);
      return done;
    }
    /** Posts `message` as it is (not an envelope); resolves with the next event for id 0. */
    postRaw(message) {
      const done = new Promise((resolve, reject) => this.waiting.set(0, { resolve, reject }));
      this.worker.postMessage(message);
      return done;
    }
    events(id) {
      return this.log.filter((e) => e.id === id);
    }
  }
  window.raw = new Raw(WORKER);
}

/** Sends requests at once (in this order) and returns, for each, `{final, events}`. */
async function send(...requests) {
  return page.evaluate(async (reqs) => {
    const finals = await Promise.all(reqs.map(([id, body]) => raw.request(id, body)));
    return finals.map((final, i) => ({ final, events: raw.events(reqs[i][0]) }));
  }, requests);
}

/** One request; returns its final event's body (and the events, for the callers that look). */
async function request(body) {
  const id = ids();
  const [r] = await send([id, body]);
  assert.equal(r.final.id, id, 'the final event carries the request id');
  return { id, body: r.final.body, events: r.events };
}

const input = (pixels, n) => ({ input: { dtype: 'float32', dims: [n, 1, 28, 28], data: { f32: pixels } } });

before(async () => {
  ({ browser, page } = await openBrowser('protocol'));
  await gotoBlank(page);
  await page.evaluate(installRaw, { FINAL, WORKER });
});

after(async () => {
  await browser?.close();
});

test('hello answers protocol 1 with the capabilities', { timeout: TIMEOUT }, async () => {
  const { body } = await request({ type: 'hello', protocol: 1 });
  assert.equal(body.type, 'hello', JSON.stringify(body));
  assert.equal(body.protocol, 1);
  assert.equal(typeof body.version, 'string');
  assert.ok(body.version.length > 0);
  const caps = body.capabilities;
  assert.ok(caps.backends.includes('cpu'), `backends ${caps.backends}`);
  assert.ok(caps.tasks.includes('digits'), `tasks ${caps.tasks}`);
  for (const op of ['Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Softmax']) {
    assert.ok(caps.ops.includes(op), `ops lacks ${op}: ${caps.ops}`);
  }
  assert.equal(typeof caps.simd, 'boolean');
  assert.ok(Number.isInteger(caps.threads) && caps.threads >= 1, `threads ${caps.threads}`);
});

test('hello with another protocol version is refused with protocol_mismatch', { timeout: TIMEOUT }, async () => {
  const { body } = await request({ type: 'hello', protocol: 2 });
  assert.equal(body.type, 'error', JSON.stringify(body));
  assert.equal(body.code, 'protocol_mismatch');
  assert.equal(typeof body.message, 'string');
  const again = await request({ type: 'hello', protocol: 1 });
  assert.equal(again.body.type, 'hello', 'the worker keeps serving');
});

test('load streams progress events, each file ending at 100%, then ready', { timeout: TIMEOUT }, async () => {
  const { body, events } = await request({ type: 'load', model: 'digits', url: DIGITS });
  assert.equal(body.type, 'ready', JSON.stringify(body));
  assert.equal(body.model, 'digits');
  assert.equal(body.backend, 'cpu');
  assert.deepEqual(body.inputs.map((i) => [i.name, i.dtype]), [['input', 'float32']]);
  assert.deepEqual(body.inputs[0].dims.slice(1), [1, 28, 28]);
  assert.deepEqual(body.outputs.map((o) => [o.name, o.dtype]), [['probabilities', 'float32']]);
  assert.equal(body.outputs[0].dims.at(-1), 10);
  assert.ok(body.weightBytes > 0, `weightBytes ${body.weightBytes}`);
  assert.ok(body.loadMs >= 0, `loadMs ${body.loadMs}`);

  const types = events.map((e) => e.body.type);
  assert.equal(types.at(-1), 'ready', 'ready is the last event of the request');
  assert.ok(types.slice(0, -1).every((t) => t === 'progress'), `events before ready: ${types}`);
  const progress = events.slice(0, -1).map((e) => e.body);
  assert.ok(progress.length > 0, 'at least one progress event');
  const files = [...new Set(progress.map((p) => p.file))];
  assert.ok(files.some((f) => new URL(f, baseUrl()).pathname === DIGITS), `progress files: ${files}`);
  for (const file of files) {
    const mine = progress.filter((p) => p.file === file);
    for (let i = 1; i < mine.length; i++) {
      assert.ok(mine[i].loaded >= mine[i - 1].loaded, `${file}: loaded goes back: ${JSON.stringify(mine)}`);
    }
    const last = mine.at(-1);
    assert.ok(last.total > 0, `${file}: last progress ${JSON.stringify(last)}`);
    assert.equal(last.loaded, last.total, `${file} ends at 100%`);
  }
});

test('run classifies a batch of 4 held-out digits', { timeout: TIMEOUT }, async () => {
  const digits = pickDigits(1).slice(0, 4);
  const { body } = await request({
    type: 'run', model: 'digits', inputs: input(digits.flatMap((d) => d.pixels), 4),
  });
  assert.equal(body.type, 'output', JSON.stringify(body).slice(0, 500));
  const probs = body.outputs.probabilities;
  assert.equal(probs.dtype, 'float32');
  assert.deepEqual(probs.dims, [4, 10]);
  assert.equal(probs.data.typed, 'Float32Array', 'float32 data comes as a Float32Array');
  for (let i = 0; i < 4; i++) {
    const row = probs.data.values.slice(10 * i, 10 * i + 10);
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-4, `row ${i} sums to 1: ${row}`);
    assert.equal(argmax(row), digits[i].label, `digit ${i} (label ${digits[i].label}): ${row}`);
  }
  assert.ok(body.stats.runMs >= 0);
  assert.ok(body.stats.peakIntermediateBytes > 0, `stats ${JSON.stringify(body.stats)}`);
});

test('run matches onnxruntime on the reference test data', { timeout: TIMEOUT }, async () => {
  const sets = testDataSets('digits');
  assert.ok(sets.length > 0, 'tests/fixtures/digits has test_data_set_*');
  for (const dir of sets) {
    const { inputs, outputs } = readTestDataSet(dir);
    const feed = Object.fromEntries(
      inputs.map((t) => [t.name || 'input', { dtype: 'float32', dims: t.dims, data: { f32: t.data } }]),
    );
    const { body } = await request({ type: 'run', model: 'digits', inputs: feed });
    assert.equal(body.type, 'output', `${dir}: ${JSON.stringify(body).slice(0, 500)}`);
    for (const want of outputs) {
      const got = body.outputs[want.name || 'probabilities'];
      assert.ok(got, `${dir}: no output ${want.name}`);
      assert.deepEqual(got.dims, want.dims, `${dir}: dims of ${want.name}`);
      const diff = maxAbsDiff(got.data.values, want.data);
      assert.ok(diff <= 1e-4, `${dir}: max |wick - onnxruntime| = ${diff}`);
    }
  }
});

test('the digits task recognises held-out digits sent as an image or an ImageData', { timeout: TIMEOUT }, async () => {
  const [a, b] = pickDigits(1).slice(7, 9);
  for (const [d, imageData] of [[a, false], [b, true]]) {
    const { body } = await request({
      type: 'task', model: 'digits', input: { task: 'digits', image: { mnist: d.pixels, imageData } },
    });
    const what = imageData ? 'ImageData' : 'plain image';
    assert.equal(body.type, 'result', `${what}: ${JSON.stringify(body).slice(0, 500)}`);
    assert.equal(body.result.task, 'digits');
    assert.equal(body.result.probabilities.length, 10);
    assert.ok(Math.abs(body.result.probabilities.reduce((x, y) => x + y, 0) - 1) < 1e-4);
    assert.equal(body.result.digit, argmax(body.result.probabilities));
    assert.equal(body.result.digit, d.label, `${what}, held-out ${d.label}: ${body.result.probabilities}`);
    assert.ok(body.stats.runMs >= 0);
  }
});

test('the digits task refuses an image without ink or of the wrong size with bad_input', { timeout: TIMEOUT }, async () => {
  const blank = await request({
    type: 'task', model: 'digits',
    input: { task: 'digits', image: { width: 2, height: 1, data: { u8c: [255, 255, 255, 255, 0, 0, 0, 0] } } },
  });
  assert.equal(blank.body.code, 'bad_input', JSON.stringify(blank.body));
  const short = await request({
    type: 'task', model: 'digits',
    input: { task: 'digits', image: { width: 2, height: 2, data: { u8c: [0, 0, 0, 255] } } },
  });
  assert.equal(short.body.code, 'bad_input', JSON.stringify(short.body));
});

test('concurrent requests are answered by id, once each', { timeout: TIMEOUT }, async () => {
  const [a, b] = pickDigits(1).slice(5, 7);
  const [ia, ib, ih] = [ids(), ids(), ids()];
  const replies = await send(
    [ia, { type: 'run', model: 'digits', inputs: input(a.pixels, 1) }],
    [ib, { type: 'run', model: 'digits', inputs: input(b.pixels, 1) }],
    [ih, { type: 'hello', protocol: 1 }],
  );
  const [ra, rb, rh] = replies.map((r) => r.final);
  assert.deepEqual([ra.id, rb.id, rh.id], [ia, ib, ih]);
  assert.equal(argmax(ra.body.outputs.probabilities.data.values), a.label, 'first run answered with its own input');
  assert.equal(argmax(rb.body.outputs.probabilities.data.values), b.label, 'second run answered with its own input');
  assert.equal(rh.body.type, 'hello');
  for (const r of replies) {
    assert.equal(r.events.filter((e) => FINAL.includes(e.body.type)).length, 1, `id ${r.final.id}: ${JSON.stringify(r.events).slice(0, 300)}`);
  }
});

test('a run on an unknown model fails with unknown_model', { timeout: TIMEOUT }, async () => {
  const run = await request({ type: 'run', model: 'nope', inputs: input(new Array(784).fill(0), 1) });
  assert.equal(run.body.type, 'error', JSON.stringify(run.body));
  assert.equal(run.body.code, 'unknown_model');
  assert.equal(typeof run.body.message, 'string');
  const task = await request({
    type: 'task', model: 'nope',
    input: { task: 'digits', image: { width: 1, height: 1, data: { u8c: [0, 0, 0, 255] } } },
  });
  assert.equal(task.body.code, 'unknown_model', JSON.stringify(task.body));
});

test('a malformed request fails with bad_request and the worker keeps serving', { timeout: TIMEOUT }, async () => {
  for (const body of [
    { type: 'launch' }, // no such request
    { type: 'load', model: 'x' }, // no url
    { type: 'run', model: 'digits', inputs: 'not tensors' },
    { type: 'hello', protocol: 'one' },
  ]) {
    const r = await request(body);
    assert.equal(r.body.type, 'error', `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, 'bad_request', `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
  }
  const hello = await request({ type: 'hello', protocol: 1 });
  assert.equal(hello.body.type, 'hello');
});

test('a message that is not an envelope is answered on id 0 with bad_request', { timeout: TIMEOUT }, async () => {
  for (const message of ['hello', 42, { body: { type: 'hello', protocol: 1 } }]) {
    notEnvelopes += 1;
    const r = await page.evaluate((m) => raw.postRaw(m), message);
    assert.equal(r.id, 0, `${JSON.stringify(message)} → ${JSON.stringify(r)}`);
    assert.equal(r.body.type, 'error', `${JSON.stringify(message)} → ${JSON.stringify(r)}`);
    assert.equal(r.body.code, 'bad_request', `${JSON.stringify(message)} → ${JSON.stringify(r)}`);
  }
  const hello = await request({ type: 'hello', protocol: 1 });
  assert.equal(hello.body.type, 'hello', 'the worker keeps serving');
});

test('tensor data of the wrong size fails with bad_input', { timeout: TIMEOUT }, async () => {
  const r = await request({
    type: 'run', model: 'digits',
    inputs: { input: { dtype: 'float32', dims: [1, 1, 28, 28], data: { f32: new Array(783).fill(0) } } },
  });
  assert.equal(r.body.type, 'error', JSON.stringify(r.body).slice(0, 300));
  assert.equal(r.body.code, 'bad_input', r.body.message);
});

test('an input whose shape contradicts the model fails with bad_input', { timeout: TIMEOUT }, async () => {
  // [1, 1, 28, 27] against the declared [N, 1, 28, 28]: a caller's mistake, to be found before
  // any operator runs (shared/src/error.rs, ErrorCode::BadInput: "An input is missing, unknown,
  // or has the wrong dtype or shape").
  const r = await request({
    type: 'run', model: 'digits',
    inputs: { input: { dtype: 'float32', dims: [1, 1, 28, 27], data: { f32: new Array(28 * 27).fill(0) } } },
  });
  assert.equal(r.body.type, 'error', JSON.stringify(r.body).slice(0, 300));
  assert.equal(r.body.code, 'bad_input', r.body.message);
});

test('a run on a model still loading fails with unknown_model', { timeout: TIMEOUT }, async () => {
  const [il, ir] = [ids(), ids()];
  const [load, run] = await send(
    [il, { type: 'load', model: 'slow', url: DIGITS }],
    [ir, { type: 'run', model: 'slow', inputs: input(new Array(784).fill(0), 1) }],
  );
  assert.equal(run.final.body.code, 'unknown_model', JSON.stringify(run.final.body));
  assert.equal(load.final.body.type, 'ready', JSON.stringify(load.final.body));
  const unload = await request({ type: 'unload', model: 'slow' });
  assert.equal(unload.body.type, 'done');
});

test('loading a name already in use fails with model_exists', { timeout: TIMEOUT }, async () => {
  const r = await request({ type: 'load', model: 'digits', url: DIGITS });
  assert.equal(r.body.type, 'error', JSON.stringify(r.body));
  assert.equal(r.body.code, 'model_exists');
  const run = await request({ type: 'run', model: 'digits', inputs: input(pickDigits(1)[3].pixels, 1) });
  assert.equal(argmax(run.body.outputs.probabilities.data.values), 3, 'the loaded model is untouched');
});

test('cancel stops a load: it ends with cancelled, the cancel with done', { timeout: TIMEOUT }, async () => {
  // Both messages are posted in the same task, so the cancel reaches the worker before the
  // model's response can: the load cannot finish first.
  const [il, ic] = [ids(), ids()];
  const [load, cancel] = await send(
    [il, { type: 'load', model: 'cancelled', url: DIGITS }],
    [ic, { type: 'cancel', target: il }],
  );
  assert.equal(load.final.body.type, 'cancelled', JSON.stringify(load.final.body));
  assert.equal(cancel.final.body.type, 'done', JSON.stringify(cancel.final.body));
  const run = await request({ type: 'run', model: 'cancelled', inputs: input(new Array(784).fill(0), 1) });
  assert.equal(run.body.code, 'unknown_model', 'a cancelled load leaves no model behind');
  const again = await request({ type: 'load', model: 'cancelled', url: DIGITS });
  assert.equal(again.body.type, 'ready', `the name is free again: ${JSON.stringify(again.body)}`);
  const late = await request({ type: 'cancel', target: il });
  assert.equal(late.body.type, 'done', 'cancelling a finished request is answered with done');
});

test('unloading a model still loading cancels its load', { timeout: TIMEOUT }, async () => {
  const [il, iu] = [ids(), ids()];
  const [load, unload] = await send(
    [il, { type: 'load', model: 'dropped', url: DIGITS }],
    [iu, { type: 'unload', model: 'dropped' }],
  );
  assert.equal(unload.final.body.type, 'done', JSON.stringify(unload.final.body));
  assert.equal(load.final.body.type, 'cancelled', JSON.stringify(load.final.body));
  const run = await request({ type: 'run', model: 'dropped', inputs: input(new Array(784).fill(0), 1) });
  assert.equal(run.body.code, 'unknown_model');
});

test('unload answers done; the model is then unknown', { timeout: TIMEOUT }, async () => {
  const r = await request({ type: 'unload', model: 'cancelled' });
  assert.equal(r.body.type, 'done', JSON.stringify(r.body));
  const run = await request({ type: 'run', model: 'cancelled', inputs: input(new Array(784).fill(0), 1) });
  assert.equal(run.body.type, 'error');
  assert.equal(run.body.code, 'unknown_model');
  const twice = await request({ type: 'unload', model: 'cancelled' });
  assert.equal(twice.body.code, 'unknown_model');
});

test('every request got exactly one final event, and nothing after it', { timeout: TIMEOUT }, async () => {
  // A last round trip, so that any stray event sent for an earlier request has arrived.
  await request({ type: 'hello', protocol: 1 });
  await page.waitForTimeout(100);
  const log = await page.evaluate(() => raw.log.map((e) => ({ id: e.id, type: e.body?.type })));
  const sent = nextId - 1;
  for (let id = 1; id <= sent; id++) {
    const mine = log.filter((e) => e.id === id).map((e) => e.type);
    assert.equal(mine.filter((t) => FINAL.includes(t)).length, 1, `id ${id}: ${mine}`);
    assert.ok(FINAL.includes(mine.at(-1)), `id ${id}: events after the final one: ${mine}`);
  }
  const strangers = log.filter((e) => e.id !== 0 && !(e.id >= 1 && e.id <= sent));
  assert.deepEqual(strangers, [], 'no event for an id that was never sent');
  const zero = log.filter((e) => e.id === 0).map((e) => e.type);
  assert.deepEqual(zero, new Array(notEnvelopes).fill('error'), 'id 0 only answers the messages that were not envelopes');
});
