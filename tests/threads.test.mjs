// The two worker builds: on a crossOriginIsolated page the worker runs its multi-threaded build
// (a rayon pool of Web Workers sharing the module's memory) and says so in hello's
// capabilities.threads; on a page that is not isolated, the single-threaded build. The same
// model must give the same outputs on both (the kernels cut their work so that every value is
// summed in the same order; the tolerance is there for the record).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TIMEOUT, argmax, baseUrl, gotoBlank, maxAbsDiff, openBrowser, parseTensor, pickDigits } from './helpers.mjs';

const DIGITS = '/fixtures/digits/model.onnx';
/** A bigger model the classification tests use (made by `cargo xtask test` /
 * scripts/make_vision_models.py): depthwise, pointwise and strided convolutions. */
const EFFNET = '/vision-models/efficientnet-lite0/';
/** Images per run: enough work that the convolutions and the Gemm are shared across the pool
 * (a single digit is below the kernels' threshold and stays on one thread). */
const BATCH = 64;
const TOLERANCE = 1e-5;

let isolated, plain;

before(async () => {
  isolated = await openBrowser('threads-isolated');
  plain = await openBrowser('threads-plain');
  await gotoBlank(isolated.page);
  await gotoPlain(plain.page);
});

after(async () => {
  await isolated?.browser.close();
  await plain?.browser.close();
});

/** An empty page on the site's origin without COOP/COEP: not cross-origin isolated. */
async function gotoPlain(page) {
  const url = `${baseUrl()}/__wick-tests-plain__.html`;
  await page.route(url, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>wick tests</title>' }),
  );
  await page.goto(url);
}

/** Spawns a worker on `page`, runs the model at `url` on `input` (`{dtype, dims, data}`),
 * twice, and returns what the page and the worker say about threads, and the outputs as plain
 * arrays. */
function runModel(page, url, input) {
  return page.evaluate(async ([url, input]) => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    try {
      const ready = await wick.load('m', url, { cache: false });
      const feeds = { [ready.inputs[0].name]: { dtype: input.dtype, dims: input.dims, data: Float32Array.from(input.data) } };
      const first = await wick.run('m', feeds);
      // A second run on the same pool: the pool is reused, not rebuilt.
      const again = await wick.run('m', feeds);
      const outputs = Object.fromEntries(Object.entries(first.outputs).map(([k, t]) => [k, { dims: t.dims, data: [...t.data] }]));
      const same = Object.entries(again.outputs).every(([k, t]) => t.data.every((v, i) => Object.is(v, outputs[k].data[i])));
      return {
        isolated: crossOriginIsolated,
        cores: navigator.hardwareConcurrency,
        threads: wick.capabilities.threads,
        runMs: first.stats.runMs,
        outputs,
        same,
      };
    } finally {
      wick.terminate();
    }
  }, [url, input]);
}

/** Both workers' outputs for the same model and input must agree within TOLERANCE. */
async function compare(label, url, input) {
  const mt = await runModel(isolated.page, url, input);
  const st = await runModel(plain.page, url, input);
  console.log(`# ${label}: ${mt.threads} threads ${mt.runMs.toFixed(1)} ms, 1 thread ${st.runMs.toFixed(1)} ms (first run)`);
  assert.ok(mt.threads > 1 && st.threads === 1, `threads ${mt.threads} / ${st.threads}`);
  assert.deepEqual(Object.keys(mt.outputs).sort(), Object.keys(st.outputs).sort());
  for (const [name, out] of Object.entries(mt.outputs)) {
    assert.deepEqual(out.dims, st.outputs[name].dims, name);
    const diff = maxAbsDiff(out.data, st.outputs[name].data);
    console.log(`# ${label}, ${name}: max |Δ| ${diff}`);
    assert.ok(diff <= TOLERANCE, `${name}: max |Δ| ${diff} > ${TOLERANCE}`);
  }
  assert.ok(mt.same && st.same, 'a second run gives the same outputs');
  return mt;
}

/** BATCH held-out digits (every class, repeated), as one NCHW batch. */
function batch() {
  const digits = pickDigits();
  const picked = Array.from({ length: BATCH }, (_, i) => digits[i % digits.length]);
  return { labels: picked.map((d) => d.label), pixels: picked.flatMap((d) => d.pixels) };
}

test('a crossOriginIsolated page gets the threaded worker, another the single-threaded one', { timeout: TIMEOUT }, async () => {
  const caps = async (page) =>
    page.evaluate(async () => {
      const { Wick } = await import('/wick/wick.js');
      const wick = await Wick.spawn();
      const { threads } = wick.capabilities;
      wick.terminate();
      return { isolated: crossOriginIsolated, shared: typeof SharedArrayBuffer === 'function', cores: navigator.hardwareConcurrency, threads };
    });
  const [mt, st] = [await caps(isolated.page), await caps(plain.page)];
  console.log(`# isolated page: ${JSON.stringify(mt)}; plain page: ${JSON.stringify(st)}`);
  assert.equal(mt.isolated, true);
  assert.equal(st.isolated, false);
  assert.equal(st.threads, 1, 'the single-threaded build');
  assert.ok(mt.cores > 1, 'this machine has more than one core (else there is nothing to share)');
  assert.equal(mt.threads, Math.min(mt.cores, 16), 'the pool: every core, at most 16');
});

test('the digits model gives the same outputs on the threaded and the single-threaded worker', { timeout: TIMEOUT }, async () => {
  const { labels, pixels } = batch();
  const mt = await compare(`digits, batch of ${BATCH}`, DIGITS, { dtype: 'float32', dims: [BATCH, 1, 28, 28], data: pixels });
  // And they are right: the held-out digits are recognised (onnxruntime gets every one).
  const [probs] = Object.values(mt.outputs);
  const classes = probs.dims[1];
  const misses = labels.filter((label, i) => argmax(probs.data.slice(i * classes, (i + 1) * classes)) !== label).length;
  assert.ok(misses <= labels.length / 20, `${misses} of ${labels.length} misread`);
});

test('EfficientNet-Lite0 gives the same logits on both workers', { timeout: 2 * TIMEOUT }, async (t) => {
  const response = await fetch(`${baseUrl()}${EFFNET}test_data_set_0/input_0.pb`);
  if (!response.ok) {
    t.skip(`${EFFNET} is not served (HTTP ${response.status}): \`cargo xtask test\` makes it`);
    return;
  }
  const input = parseTensor(new Uint8Array(await response.arrayBuffer()));
  const mt = await compare('efficientnet-lite0', `${EFFNET}onnx/model.onnx`, { dtype: 'float32', dims: input.dims, data: [...input.data] });
  const [logits] = Object.values(mt.outputs);
  assert.equal(argmax(logits.data), 282, "chelsea.png is a 'tiger cat' (ImageNet 282)");
});
