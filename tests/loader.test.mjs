// The loader, through the bundle's `Wick` API (/wick/wick.js): models with several external-data
// files, loader failures and their typed errors, cancellation, and a worker that keeps serving
// after all of them. Every test uses the same Wick (one worker), in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  FIXTURES, TIMEOUT, argmax, baseUrl, externalLocations, fixtureBytes, gotoBlank, maxAbsDiff,
  openBrowser, pickDigits, readTestDataSet,
} from './helpers.mjs';

let browser, page;

before(async () => {
  ({ browser, page } = await openBrowser('loader'));
  await gotoBlank(page);
  await page.evaluate(async () => {
    const { Wick } = await import('/wick/wick.js');
    window.wick = await Wick.spawn();
    // A rejection as a plain object, so it survives the trip to Node.
    window.failure = (e) => ({
      isError: e instanceof Error, name: e?.name, code: e?.code, message: e?.message, file: e?.file,
      status: e?.status,
    });
    window.progressLog = (log) => (p) => log.push({ file: String(p.file), loaded: p.loaded, total: p.total });
    window.f32 = (dims, values) => ({ dtype: 'float32', dims, data: new Float32Array(values) });
  });
});

after(async () => {
  await browser?.close();
});

/** Per file, in the order first seen: its progress events. */
function byFile(progress) {
  const files = new Map();
  for (const p of progress) {
    if (!files.has(p.file)) files.set(p.file, []);
    files.get(p.file).push(p);
  }
  return files;
}

test('a model with two external-data files loads, reports progress per file and matches onnxruntime',
  { timeout: TIMEOUT }, async () => {
    const dir = 'digits-2shards';
    const shards = externalLocations(fixtureBytes(`${dir}/model.onnx`));
    assert.equal(shards.length, 2, `the fixture names two weight files: ${shards}`);
    const { inputs, outputs } = readTestDataSet(`${dir}/test_data_set_0`);
    const r = await page.evaluate(async ({ url, inputs }) => {
      const progress = [];
      const ready = await wick.load('two-shards', url, { onProgress: progressLog(progress) });
      const feeds = Object.fromEntries(inputs.map((t) => [t.name || 'input', f32(t.dims, t.data)]));
      const { outputs } = await wick.run('two-shards', feeds);
      const out = Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, {
        dtype: t.dtype, dims: t.dims, typed: t.data.constructor.name, values: Array.from(t.data),
      }]));
      return { ready, progress, out };
    }, { url: `/fixtures/${dir}/model.onnx`, inputs });

    assert.equal(r.ready.model, 'two-shards');
    assert.ok(r.ready.weightBytes > 0, `weightBytes ${r.ready.weightBytes}`);
    const files = byFile(r.progress);
    const paths = [...files.keys()].map((f) => new URL(f, baseUrl()).pathname);
    for (const name of ['model.onnx', ...shards]) {
      assert.ok(paths.includes(`/fixtures/${dir}/${name}`), `progress for ${name}; seen: ${paths}`);
    }
    for (const [file, events] of files) {
      const last = events.at(-1);
      assert.ok(last.total > 0 && last.loaded === last.total, `${file} ends at 100%: ${JSON.stringify(last)}`);
    }
    for (const want of outputs) {
      const got = r.out[want.name || 'probabilities'];
      assert.ok(got, `no output ${want.name}: ${Object.keys(r.out)}`);
      assert.equal(got.typed, 'Float32Array');
      assert.deepEqual(got.dims, want.dims);
      const diff = maxAbsDiff(got.values, want.data);
      assert.ok(diff <= 1e-4, `max |wick - onnxruntime| = ${diff}`);
    }
  });

test('a missing weight file rejects with fetch_failed, status 404 and the file', { timeout: TIMEOUT }, async () => {
  const dir = 'missing-shard';
  const missing = externalLocations(fixtureBytes(`${dir}/model.onnx`))
    .filter((name) => !existsSync(`${FIXTURES}${dir}/${name}`));
  assert.equal(missing.length, 1, `the fixture names exactly one absent file: ${missing}`);
  const e = await page.evaluate(
    (url) => wick.load('missing', url).then(() => null, failure),
    `/fixtures/${dir}/model.onnx`,
  );
  assert.ok(e, 'the load rejects');
  assert.equal(e.isError, true);
  assert.equal(e.code, 'fetch_failed', e.message);
  assert.equal(e.status, 404, e.message);
  assert.ok(e.file, `the error names the file: ${JSON.stringify(e)}`);
  assert.equal(new URL(e.file, baseUrl()).pathname, `/fixtures/${dir}/${missing[0]}`);
});

test('a corrupt model rejects with invalid_model', { timeout: TIMEOUT }, async () => {
  const e = await page.evaluate((url) => wick.load('corrupt', url).then(() => null, failure), '/fixtures/corrupt.onnx');
  assert.ok(e, 'the load rejects');
  assert.equal(e.isError, true);
  assert.equal(e.code, 'invalid_model', e.message);
  if (e.file !== undefined) assert.equal(new URL(e.file, baseUrl()).pathname, '/fixtures/corrupt.onnx');
});

test('after those failures the same worker loads and runs the digits model', { timeout: TIMEOUT }, async () => {
  const digits = pickDigits(1);
  // Under the names of the failed loads: a failed load leaves no model (nor name) behind.
  const r = await page.evaluate(async ({ digits }) => {
    const out = {};
    for (const name of ['missing', 'corrupt']) {
      await wick.load(name, '/fixtures/digits/model.onnx');
      const { outputs } = await wick.run(name, {
        input: f32([digits.length, 1, 28, 28], digits.flatMap((d) => d.pixels)),
      });
      // The digits task on an ImageData of the last digit, ten pixels per MNIST pixel.
      const last = digits.at(-1).pixels;
      const image = new ImageData(280, 280);
      for (let i = 0; i < 280 * 280; i++) {
        const gray = Math.round((1 - last[Math.floor(i / 2800) * 28 + Math.floor((i % 280) / 10)]) * 255);
        image.data.set([gray, gray, gray, 255], 4 * i);
      }
      const task = await wick.digits(name, image);
      out[name] = { probs: Array.from(outputs.probabilities.data), task: task.digit };
      await wick.unload(name);
    }
    return out;
  }, { digits });
  for (const [name, { probs, task }] of Object.entries(r)) {
    digits.forEach((d, i) => {
      const row = probs.slice(10 * i, 10 * i + 10);
      assert.equal(argmax(row), d.label, `${name}: held-out ${d.label} → ${row}`);
    });
    assert.equal(task, digits.at(-1).label, `${name}: digits() on an ImageData`);
  }
});

test('aborting a load rejects it with cancelled and the worker keeps serving', { timeout: TIMEOUT }, async () => {
  const r = await page.evaluate(async () => {
    const url = '/fixtures/digits/model.onnx';
    // Aborted in the same task as the load is posted: the worker gets `cancel` before the
    // model's bytes can arrive, so the load cannot have finished first.
    const controller = new AbortController();
    const pending = wick.load('aborted', url, { signal: controller.signal });
    controller.abort();
    const racing = await pending.then(() => null, failure);
    // A signal aborted before the request: rejected at once.
    const early = await wick.load('early', url, { signal: AbortSignal.abort() }).then(() => null, failure);
    // The name is free again, and the worker serves.
    const ready = await wick.load('aborted', url);
    const { outputs } = await wick.run('aborted', { input: f32([1, 1, 28, 28], new Array(784).fill(0)) });
    await wick.unload('aborted');
    const early2 = await wick.run('early', { input: f32([1, 1, 28, 28], new Array(784).fill(0)) }).then(() => null, failure);
    return { racing, early, ready: ready.model, dims: outputs.probabilities.dims, early2 };
  });
  assert.ok(r.racing, 'the aborted load rejects');
  assert.equal(r.racing.code, 'cancelled', JSON.stringify(r.racing));
  assert.equal(r.racing.name, 'AbortError');
  assert.ok(r.early, 'a load with an aborted signal rejects');
  assert.equal(r.early.code, 'cancelled', JSON.stringify(r.early));
  assert.equal(r.ready, 'aborted');
  assert.deepEqual(r.dims, [1, 10]);
  assert.equal(r.early2?.code, 'unknown_model', 'the pre-aborted load never reached the worker');
});
