// The browser side of `cargo xtask bench latency`: each runtime in its own headless Chromium
// (a fresh profile), in a dedicated worker; every model loaded, warmed up and timed. xtask
// builds and serves everything, then runs
//
//   node bench/latency.mjs --base URL --models FILE --runtimes a,b --warmups 2 --runs 10 --out FILE
//
// FILE (models) is a JSON array of specs: {name, model, externalData, inputs} for raw runs (each
// input a TensorProto file's URL, or {name, dtype, dims, url} of raw values), or
// {name, task, folder, image} for a pipeline end to end (Wick only). The out file gets one JSON
// object per line: `{row: "meta", chromium}`, `{row: "runtime", runtime, threads, spawn_ms,
// cold_ms, cold_model}` (cold: spawn, then the first model's load),
// then per model and runtime `{model, runtime, threads, median_ms, min_ms, inner_median_ms,
// load_ms, max_abs_diff, ratio, inner_ratio}` (or `error`); `inner_*`: time inside the worker.
// --runtimes names configurations: `wick-cpu` (the single-threaded worker, on a page that is not
// cross-origin isolated), `wick-cpu-mt` (the multi-threaded worker; its rows say runtime
// `wick-cpu` with its pool's threads), `ort-wasm-1t`, `ort-wasm-mt`, and on WebGPU (a browser
// with --enable-unsafe-webgpu: SwiftShader, CPU-emulated, on a machine without a GPU; each row
// says its `adapter`) `wick-webgpu` and `ort-webgpu`. Differences are against
// single-threaded Wick's output (Wick's own rows against ort-wasm-1t's); `ratio` is Wick's median
// over this row's, for ORT rows, at the same thread count (1t with 1t, mt with mt) or on the
// same backend (webgpu with webgpu).
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { launch, log, median, withTimeout } from './common.mjs';

const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    models: { type: 'string' },
    runtimes: { type: 'string' },
    warmups: { type: 'string', default: '2' },
    runs: { type: 'string', default: '10' },
    'min-s': { type: 'string', default: '2' },
    out: { type: 'string' },
    'timeout-s': { type: 'string', default: '600' },
  },
});


/** `promise`, or a rejection after --timeout-s. */
const limited = (promise, what) => withTimeout(promise, what, Number(opts['timeout-s']));

function maxAbsDiff(a, b) {
  if (!a || !b) return null;
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

const decode = (b64) => (b64 ? new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer) : null);

/** The `runtime` a configuration's rows report. */
const LABEL = { 'wick-cpu-mt': 'wick-cpu' };
/** Which Wick configuration an ORT row is compared with: the same thread count. */
const PARTNER = { 'ort-wasm-1t': 'wick-cpu', 'ort-wasm-mt': 'wick-cpu-mt', 'ort-webgpu': 'wick-webgpu' };
/** The configurations that run on WebGPU: their browser gets an adapter (SwiftShader here). */
const WEBGPU = new Set(['wick-webgpu', 'ort-webgpu']);

/** One runtime in a fresh browser: every model it can run. */
async function runtimeRows(runtime, models, lines) {
  const browser = await launch(WEBGPU.has(runtime) ? ['--enable-unsafe-webgpu'] : []);
  const rows = [];
  try {
    lines.push({ row: 'meta', chromium: browser.version() });
    const page = await browser.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error') log(`[${runtime}] console.error: ${msg.text()}`);
    });
    page.on('pageerror', (e) => log(`[${runtime}] page error: ${e.stack ?? e}`));
    // Single-threaded Wick on a page that is not isolated: its worker then runs the
    // single-threaded build, as such a page gets. ort-wasm-1t on the same kind of page, so that
    // both 1-thread rows share its conditions (timer resolution, messaging).
    const plain = runtime === 'wick-cpu' || runtime === 'ort-wasm-1t';
    await page.goto(`${opts.base}/bench/latency.html${plain ? '?isolated=0' : ''}`);
    await page.waitForFunction(() => window.bench);
    const setup = await limited(page.evaluate((r) => window.bench.setup(r), runtime), `${runtime} setup`);
    const label = LABEL[runtime] ?? runtime;
    const meta = { row: 'runtime', runtime: label, threads: setup.threads, spawn_ms: setup.spawnMs, adapter: setup.adapter };
    lines.push(meta);
    // An emulated GPU (SwiftShader: a fallback adapter) runs a model for seconds: fewer runs,
    // and not the Whisper encoder (minutes a run). The rows' `runs` says how many.
    const emulated = WEBGPU.has(runtime) && /swiftshader|fallback/i.test(setup.adapter ?? '');
    const warmups = emulated ? 1 : Number(opts.warmups);
    const budget = emulated
      ? { runs: Math.min(3, Number(opts.runs)), minMs: 0 }
      : { runs: Number(opts.runs), minMs: Number(opts['min-s']) * 1000 };
    for (const spec of models) {
      if (spec.task && label !== 'wick-cpu') continue;
      if (emulated && spec.slowOnEmulatedGpu) continue;
      const row = { model: spec.name, runtime: label, threads: setup.threads, config: runtime, adapter: setup.adapter };
      try {
        row.load_ms = await limited(page.evaluate((s) => window.bench.load(s), spec), `${runtime} ${spec.name} load`);
        // Cold start: the worker spawned, then the first model ready to run.
        meta.cold_ms ??= setup.spawnMs + row.load_ms;
        meta.cold_model ??= spec.name;
        const m = await limited(
          page.evaluate(([s, w, n]) => window.bench.measure(s, w, n), [spec, warmups, budget]),
          `${runtime} ${spec.name} runs`,
        );
        Object.assign(row, {
          runs: m.times.length, median_ms: median(m.times), min_ms: Math.min(...m.times), inner_median_ms: median(m.inside), output: decode(m.output),
        });
        log(`${runtime} ${spec.name}: median ${row.median_ms.toFixed(2)} ms, min ${row.min_ms.toFixed(2)} ms (load ${row.load_ms.toFixed(0)} ms)`);
      } catch (e) {
        row.error = String(e?.message ?? e).replace(/^page\.evaluate: /, '').slice(0, 300);
        log(`${runtime} ${spec.name}: failed: ${row.error}`);
      }
      rows.push(row);
    }
  } finally {
    await browser.close();
  }
  return rows;
}

const models = JSON.parse(readFileSync(opts.models, 'utf8'));
const lines = [];
const rows = [];
for (const runtime of opts.runtimes.split(',')) rows.push(...(await runtimeRows(runtime, models, lines)));

const find = (model, config) => rows.find((r) => r.model === model && r.config === config && !r.error);
for (const row of rows) {
  if (!row.error && row.output) {
    const other = row.runtime === 'wick-cpu' ? find(row.model, 'ort-wasm-1t') : find(row.model, 'wick-cpu');
    row.max_abs_diff = maxAbsDiff(row.output, other?.output);
    const wick = find(row.model, PARTNER[row.config]);
    if (wick) {
      row.ratio = wick.median_ms / row.median_ms;
      row.inner_ratio = wick.inner_median_ms / row.inner_median_ms;
    }
  }
}
const out = [...lines.filter((l, i) => l.row !== 'meta' || i === lines.findIndex((m) => m.row === 'meta')),
  ...rows.map(({ output, config, ...row }) => row)];
writeFileSync(opts.out, out.map((l) => JSON.stringify(l)).join('\n') + '\n');
