// The loader at scale, at test-friendly sizes: the Hugging Face folder layout, manifests with
// sha256, the offline cache (OPFS) with the server stopped and with a full quota, resuming a
// dropped connection with Range, cancelling a load mid-file, several models at once, and memory
// coming back after 50 load/unload cycles. Files come from a Node server started by each test
// (helpers.mjs `startFileServer`), so a test can drop connections, slow the link, or stop the
// server. The multi-GB runs belong to `cargo xtask bench load`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FIXTURES, TIMEOUT, argmax, gotoBlank, maxAbsDiff, openBrowser, readTestDataSet, startFileServer,
} from './helpers.mjs';

let browser, page;
const HF = 'hf-digits';
const reference = readTestDataSet(`${HF}/test_data_set_0`);

before(async () => {
  ({ browser, page } = await openBrowser('loader-scale'));
  await gotoBlank(page);
  await page.evaluate(async () => {
    const { Wick } = await import('/wick/wick.js');
    window.wick = await Wick.spawn();
    window.failure = (e) => ({ isError: e instanceof Error, name: e?.name, code: e?.code, message: e?.message, file: e?.file });
    window.f32 = (dims, values) => ({ dtype: 'float32', dims, data: new Float32Array(values) });
    // Run a loaded digits model on the reference batch; returns the probabilities.
    window.probs = async (name, input) => {
      const { outputs } = await wick.run(name, { input: f32(input.dims, input.data) });
      return Array.from(outputs.probabilities.data);
    };
    // The entries of the worker's cache directory, read by the page itself (same origin).
    window.opfsNames = async () => {
      const root = await navigator.storage.getDirectory();
      let dir;
      try { dir = await root.getDirectoryHandle('wick-cache'); } catch { return []; }
      const names = [];
      for await (const name of dir.keys()) names.push(name);
      return names.sort();
    };
  });
});

after(async () => {
  await browser?.close();
});

function assertMatchesOrt(probs, label) {
  const diff = maxAbsDiff(probs, reference.outputs[0].data);
  assert.ok(diff <= 1e-4, `${label}: max |wick - onnxruntime| = ${diff}`);
}

/** A private copy of the hf-digits folder (so a test may damage it). */
function hfCopy() {
  const dir = mkdtempSync(join(tmpdir(), 'wick-hf-'));
  cpSync(FIXTURES + HF, dir, { recursive: true });
  return dir;
}

test('a Hugging Face folder URL loads onnx/model.onnx and its model.onnx_data, model.onnx_data_1',
  { timeout: TIMEOUT }, async () => {
    const r = await page.evaluate(async ({ url, input }) => {
      const files = new Set();
      const ready = await wick.load('hf', url, { cache: false, onProgress: (p) => files.add(new URL(p.file).pathname) });
      const out = await probs('hf', input);
      await wick.unload('hf');
      return { ready, files: [...files], out };
    }, { url: `/fixtures/${HF}/`, input: reference.inputs[0] });
    assert.deepEqual(r.files.sort(), ['model.onnx', 'model.onnx_data', 'model.onnx_data_1'].map((f) => `/fixtures/${HF}/onnx/${f}`));
    assert.equal(r.ready.cache, undefined, 'cache: false reports nothing');
    assertMatchesOrt(r.out, 'hf folder');
  });

test('a manifest names the files; each is verified by size and sha256 as it streams', { timeout: TIMEOUT }, async () => {
  const dir = hfCopy();
  // Damage one byte in the middle of the second weight file: same size, wrong hash.
  const shard = join(dir, 'onnx/model.onnx_data_1');
  const bytes = readFileSync(shard);
  bytes[200_000] ^= 0xff;
  writeFileSync(shard, bytes);
  const server = await startFileServer(dir);
  try {
    const r = await page.evaluate(async ({ good, bad, input }) => {
      const before = (await wick.stats()).memory.allocatedBytes;
      const ok = await wick.load('m', { manifest: good }, { cache: false });
      const out = await probs('m', input);
      await wick.unload('m');
      const damaged = await wick.load('m', { manifest: bad }, { cache: false }).then(() => null, failure);
      // A size that contradicts the file, stated through externalData.
      const wrongSize = await wick.load('m', good.replace('wick-manifest.json', 'onnx/model.onnx'), {
        cache: false, externalData: [{ path: 'model.onnx_data', size: 5527 }],
      }).then(() => null, failure);
      const stats = await wick.stats();
      return { ok: ok.model, out, damaged, wrongSize, stats, before };
    }, {
      good: `/fixtures/${HF}/wick-manifest.json`, bad: `${server.origin}/wick-manifest.json`, input: reference.inputs[0],
    });
    assertMatchesOrt(r.out, 'manifest');
    assert.equal(r.damaged?.code, 'integrity_failed', JSON.stringify(r.damaged));
    assert.match(r.damaged.file, /onnx\/model\.onnx_data_1$/);
    assert.match(r.damaged.message, /sha256/);
    assert.equal(r.wrongSize?.code, 'integrity_failed', JSON.stringify(r.wrongSize));
    assert.match(r.wrongSize.file, /onnx\/model\.onnx_data$/);
    assert.deepEqual(r.stats.models, [], 'failed loads leave no model behind');
    assert.ok(r.stats.memory.allocatedBytes - r.before < 64 * 1024,
      `the failed loads' tensors were freed: ${r.before} → ${r.stats.memory.allocatedBytes} bytes`);
  } finally {
    await server.close();
  }
});

test('the offline cache: stored while streaming, no second download, works with the server stopped, can be listed and deleted',
  { timeout: TIMEOUT }, async () => {
    const server = await startFileServer(FIXTURES + HF);
    const url = `${server.origin}/`;
    const step = (fn, arg) => page.evaluate(fn, arg);
    try {
      const first = await step(async ({ url, input }) => {
        const ready = await wick.load('c1', url);
        const out = await probs('c1', input);
        await wick.unload('c1');
        return { cache: ready.cache, out, listed: await wick.cached() };
      }, { url, input: reference.inputs[0] });
      assertMatchesOrt(first.out, 'first load');
      assert.deepEqual(first.cache, { fromCache: 0, stored: 3 }, JSON.stringify(first.cache));
      const listed = first.listed.find((m) => m.url === url);
      assert.ok(listed, `cached() lists ${url}: ${JSON.stringify(first.listed)}`);
      const sizes = Object.fromEntries(['model.onnx', 'model.onnx_data', 'model.onnx_data_1']
        .map((f) => [`${url}onnx/${f}`, readFileSync(`${FIXTURES}${HF}/onnx/${f}`).length]));
      assert.deepEqual(Object.fromEntries(listed.files.map((f) => [f.url, f.size])), sizes);
      assert.equal(listed.bytes, Object.values(sizes).reduce((a, b) => a + b));
      const requests = server.log.length;

      const second = await step(async ({ url, input }) => {
        const ready = await wick.load('c2', url);
        const out = await probs('c2', input);
        await wick.unload('c2');
        return { cache: ready.cache, out };
      }, { url, input: reference.inputs[0] });
      assert.deepEqual(second.cache, { fromCache: 3, stored: 0 });
      assert.equal(server.log.length, requests, `no second download: ${JSON.stringify(server.log.slice(requests))}`);
      assertMatchesOrt(second.out, 'from the cache');

      await server.close();
      const offline = await step(async ({ url, input }) => {
        const ready = await wick.load('c3', url);
        const out = await probs('c3', input);
        await wick.unload('c3');
        await wick.deleteCached(url);
        const listed = await wick.cached();
        const gone = await wick.load('c4', url).then(() => null, failure);
        return { cache: ready.cache, out, listed, gone, names: await opfsNames() };
      }, { url, input: reference.inputs[0] });
      assert.deepEqual(offline.cache, { fromCache: 3, stored: 0 });
      assertMatchesOrt(offline.out, 'with the server stopped');
      assert.ok(!offline.listed.some((m) => m.url === url), 'deleteCached removed it');
      assert.equal(offline.gone?.code, 'fetch_failed', `deleted, and the server is down: ${JSON.stringify(offline.gone)}`);
      assert.deepEqual(offline.names, [], 'nothing of the model is left in OPFS');
    } finally {
      await server.close();
    }
  });

test('a full quota is a typed error in the ready event, and the cache keeps no part of the model',
  { timeout: TIMEOUT }, async () => {
    const server = await startFileServer(FIXTURES + HF);
    const cdp = await page.context().newCDPSession(page);
    const origin = new URL(page.url()).origin;
    try {
      const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage);
      // Room for the graph and the small weight file, not for the 407 kB one.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: usage + 100_000 });
      const r = await page.evaluate(async ({ url, input }) => {
        const ready = await wick.load('q', url);
        const out = await probs('q', input);
        await wick.unload('q');
        return { cache: ready.cache, out, listed: await wick.cached(), names: await opfsNames() };
      }, { url: `${server.origin}/`, input: reference.inputs[0] });
      assertMatchesOrt(r.out, 'loaded despite the full cache');
      assert.equal(r.cache.stored, 0);
      assert.equal(r.cache.error?.code, 'quota_exceeded', JSON.stringify(r.cache));
      assert.deepEqual(r.listed, []);
      assert.deepEqual(r.names, [], 'no half-written file is left');
    } finally {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin });
      await server.close();
    }
  });

test('a connection dropped mid-file resumes with a Range request; the bytes still hash right',
  { timeout: TIMEOUT }, async () => {
    // At 1 MB/s the worker has consumed most of the 150 kB before the cut (a stream that errors
    // discards the chunks still queued in it, so the resume point is what was consumed).
    const server = await startFileServer(FIXTURES + HF, { dropAfter: 150_000, bytesPerSecond: 1_000_000 });
    try {
      const r = await page.evaluate(async ({ manifest, input }) => {
        const ready = await wick.load('r', { manifest }, { cache: false });
        const out = await probs('r', input);
        await wick.unload('r');
        return { ready: ready.model, out };
      }, { manifest: `${server.origin}/wick-manifest.json`, input: reference.inputs[0] });
      assertMatchesOrt(r.out, 'resumed');
      const big = server.log.filter((e) => e.path === '/onnx/model.onnx_data_1');
      assert.equal(big[0].range, null);
      assert.equal(big[0].complete, false, 'the first response was cut');
      const resumed = big.find((e) => e.range);
      assert.ok(resumed, `a Range request followed: ${JSON.stringify(big)}`);
      const from = Number(/^bytes=(\d+)-$/.exec(resumed.range)?.[1]);
      assert.ok(from > 0 && from <= 150_000, `resumed from byte ${from}, at most the bytes sent`);
      assert.equal(resumed.status, 206);
      assert.ok(resumed.complete);
    } finally {
      await server.close();
    }
  });

test('cancelling a load mid-file stops its download, frees its tensors, and the worker serves on',
  { timeout: TIMEOUT }, async () => {
    // 400 kB of weights at 100 kB/s: the load is certainly in flight when it is cancelled.
    const server = await startFileServer(FIXTURES + 'digits-2shards', { bytesPerSecond: 100_000 });
    try {
      const r = await page.evaluate(async ({ url }) => {
        const before = (await wick.stats()).memory.allocatedBytes;
        const controller = new AbortController();
        let seenAt = null;
        let afterAbort = 0;
        const pending = wick.load('x', url, {
          cache: false,
          signal: controller.signal,
          onProgress: (p) => {
            if (controller.signal.aborted) afterAbort++;
            if (p.file.endsWith('weights-b.bin') && p.loaded > 50_000 && !controller.signal.aborted) {
              seenAt = p.loaded;
              controller.abort();
            }
          },
        });
        const error = await pending.then(() => null, failure);
        const stats = await wick.stats();
        const ready = await wick.load('after', '/fixtures/digits/model.onnx', { cache: false });
        await wick.unload('after');
        return { error, seenAt, afterAbort, before, after: stats.memory.allocatedBytes, models: stats.models, ready: ready.model };
      }, { url: `${server.origin}/model.onnx` });
      assert.equal(r.error?.code, 'cancelled', JSON.stringify(r.error));
      assert.ok(r.seenAt > 50_000);
      // Within one chunk: at most one more progress event (one chunk, throttled) after the abort.
      assert.ok(r.afterAbort <= 1, `${r.afterAbort} progress events after the abort`);
      assert.deepEqual(r.models, []);
      assert.ok(r.after - r.before < 64 * 1024, `partial tensors freed: ${r.before} → ${r.after} bytes`);
      assert.equal(r.ready, 'after', 'the worker serves the next request');
      // The server saw the client go away long before the end of the file.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const shard = server.log.find((e) => e.path === '/weights-b.bin');
      assert.equal(shard.complete, false, JSON.stringify(shard));
      assert.ok(shard.sent < 407_123 - 100_000, `download stopped at ${shard.sent} bytes`);
    } finally {
      await server.close();
    }
  });

test('several models at once, each under its name; 50 load/unload cycles give the memory back',
  { timeout: 3 * TIMEOUT }, async () => {
    const r = await page.evaluate(async ({ input }) => {
      const loads = await Promise.all([
        wick.load('a', '/fixtures/digits/model.onnx', { cache: false }),
        wick.load('b', '/fixtures/hf-digits/', { cache: false }),
        wick.load('c', '/fixtures/digits-2shards/model.onnx', { cache: false }),
      ]);
      const together = await wick.stats();
      const outs = {};
      for (const name of ['a', 'b', 'c']) outs[name] = await probs(name, input);
      for (const name of ['a', 'b', 'c']) await wick.unload(name);
      const curve = [];
      for (let i = 0; i < 50; i++) {
        await wick.load('cycle', '/fixtures/digits/model.onnx', { cache: false });
        const loaded = (await wick.stats()).memory;
        await wick.unload('cycle');
        const { memory } = await wick.stats();
        curve.push({ loaded: loaded.allocatedBytes, unloaded: memory.allocatedBytes, wasm: memory.wasmBytes });
      }
      return { names: loads.map((l) => l.model), together, outs, curve };
    }, { input: reference.inputs[0] });
    assert.deepEqual(r.names, ['a', 'b', 'c']);
    assert.deepEqual(r.together.models.map((m) => m.model), ['a', 'b', 'c']);
    for (const m of r.together.models) assert.ok(m.weightBytes > 400_000, JSON.stringify(m));
    for (const [name, out] of Object.entries(r.outs)) assertMatchesOrt(out, `model ${name}`);
    const unloaded = r.curve.map((c) => c.unloaded);
    const loaded = r.curve.map((c) => c.loaded);
    const wasm = r.curve.map((c) => c.wasm);
    const spread = (xs) => Math.max(...xs) - Math.min(...xs);
    console.log(`# allocated after unload: first ${unloaded[0]}, last ${unloaded.at(-1)}, spread ${spread(unloaded)} bytes; ` +
      `loaded ${loaded[0]}…${loaded.at(-1)}; wasm memory ${wasm[0]}…${wasm.at(-1)} bytes`);
    assert.ok(spread(unloaded.slice(1)) < 16 * 1024, `flat after unload: ${unloaded}`);
    assert.ok(loaded.at(-1) - unloaded.at(-1) > 400_000, 'each cycle really held the weights');
    // Steady state: no growth over the last half of the cycles. (The allocator may grow once
    // early on: a freed weight block that small allocations were carved from no longer fits
    // the next weights, depending on how many small ones a load made; that is no leak.)
    const half = wasm.length / 2;
    assert.equal(wasm.at(-1), wasm[half], `the wasm memory stopped growing: ${wasm}`);
  });

test('32 MiB in 3 shards: manifest with sha256, every shard cut mid-way and resumed, cached, exact output, flat memory',
  { timeout: 3 * TIMEOUT }, async () => {
    const dir = process.env.WICK_SHARDED_MODEL;
    assert.ok(dir, 'WICK_SHARDED_MODEL is set by `cargo xtask test` (target/test-models/sharded-32mib)');
    const info = JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8'));
    const raw = readFileSync(join(dir, 'expected.bin'));
    const expected = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const server = await startFileServer(dir, { dropAfter: 3_000_000 });
    try {
      const r = await page.evaluate(async ({ manifest, info }) => {
        const before = await wick.stats();
        const ready = await wick.load('big', { manifest });
        const loaded = await wick.stats();
        const { outputs } = await wick.run('big', {
          [info.input]: { dtype: 'int64', dims: [info.ids.length], data: BigInt64Array.from(info.ids.map(BigInt)) },
        });
        await wick.unload('big');
        await wick.deleteCached(manifest);
        const after = await wick.stats();
        return {
          ready, before: before.memory, loaded: loaded.memory, after: after.memory,
          dims: outputs[info.output].dims, out: Array.from(outputs[info.output].data), names: await opfsNames(),
        };
      }, { manifest: `${server.origin}/wick-manifest.json`, info });
      assert.equal(r.ready.weightBytes, info.weightBytes);
      assert.deepEqual(r.dims, [info.tensors * info.ids.length, info.cols]);
      assert.equal(maxAbsDiff(r.out, expected), 0, 'every row from the right tensor and offset');
      assert.deepEqual(r.ready.cache, { fromCache: 0, stored: 5 }, 'manifest, graph and 3 shards stored');
      assert.deepEqual(r.names, [], 'deleteCached removed every file');
      for (const f of info.files.filter((f) => f.path.startsWith('weights-'))) {
        const log = server.log.filter((e) => e.path === `/${f.path}`);
        assert.equal(log[0].complete, false, `${f.path}: the first response was cut`);
        assert.ok(log.some((e) => e.status === 206 && e.complete), `${f.path} resumed: ${JSON.stringify(log)}`);
      }
      // No file is ever held whole: at its peak the worker held the weights plus small change.
      const growth = r.loaded.peakAllocatedBytes - r.before.allocatedBytes;
      console.log(`# weights ${info.weightBytes} B; peak allocation during the load +${growth} B; ` +
        `wasm memory ${r.before.wasmBytes} → ${r.loaded.wasmBytes} B`);
      assert.ok(growth <= 1.1 * info.weightBytes + 4 * 2 ** 20, `peak +${growth} B for ${info.weightBytes} B of weights`);
      assert.ok(r.after.allocatedBytes - r.before.allocatedBytes < 64 * 1024, 'unload gave it all back');
    } finally {
      await server.close();
    }
  });
