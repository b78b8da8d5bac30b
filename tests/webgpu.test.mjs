// The WebGPU backend in the browser. The probe: `hello` reports the adapter the worker's
// navigator.gpu gives. Without Chromium's --enable-unsafe-webgpu there is none (requestAdapter()
// resolves null: the fallback case) and `capabilities.gpu` is absent; with it, SwiftShader's
// adapter, whose features and limits must equal what the page's own navigator.gpu reports (the
// independent reference). The backend: with the adapter, models loaded with `backend: "webgpu"`
// give onnxruntime's outputs and the CPU backend's (text generation with 4-bit weights too: its
// greedy answer); without it `auto` falls back to the CPU and says why, and `webgpu` is a typed
// error after which the worker keeps serving. With `weights: "gpu"`, a sharded model's f32
// weights stream straight to the GPU (ready's gpuWeightBytes) and it gives onnxruntime's and the
// CPU backend's outputs; on the CPU backend that option is a bad_request.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TIMEOUT, gotoBlank, maxAbsDiff, openBrowser, readTestDataSet, testDataSets } from './helpers.mjs';

let plain, webgpu;

before(async () => {
  plain = await openBrowser('webgpu-off');
  webgpu = await openBrowser('webgpu-on', ['--enable-unsafe-webgpu']);
});

after(async () => {
  await plain?.browser.close();
  await webgpu?.browser.close();
});

/** The worker's capabilities.gpu and the page's own adapter, read the same way. */
async function probe(page) {
  await gotoBlank(page);
  return page.evaluate(async () => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    const { gpu } = wick.capabilities;
    wick.terminate();
    const adapter = await navigator.gpu?.requestAdapter();
    const page = adapter && {
      features: [...adapter.features].sort(),
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      architecture: adapter.info?.architecture ?? '',
    };
    return { gpu: gpu ?? null, page: page ?? null };
  });
}

test('without WebGPU, hello reports no adapter', { timeout: TIMEOUT }, async () => {
  const { gpu, page } = await probe(plain.page);
  assert.equal(page, null, 'the page has no adapter either');
  assert.equal(gpu, null);
});

test('with WebGPU, hello reports the adapter the page also sees', { timeout: TIMEOUT }, async () => {
  const { gpu, page } = await probe(webgpu.page);
  console.log(`# adapter: ${JSON.stringify({ ...gpu, limits: undefined })}; maxStorageBufferBindingSize ${gpu?.limits.maxStorageBufferBindingSize}`);
  assert.ok(page, 'Chromium with --enable-unsafe-webgpu gives the page an adapter');
  assert.ok(gpu, 'and the worker one');
  assert.deepEqual(gpu.features, page.features);
  for (const limit of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup']) {
    assert.equal(gpu.limits[limit], page[limit], limit);
  }
  assert.equal(gpu.architecture, page.architecture);
  assert.equal(typeof gpu.isFallbackAdapter, 'boolean');
  assert.ok(Object.keys(gpu.limits).length >= 25, `every limit: ${Object.keys(gpu.limits)}`);
});

/** Loads `url` twice in one worker, on WebGPU and on the CPU, and runs each feed on both. */
async function runBoth(page, url, feeds) {
  await gotoBlank(page);
  return page.evaluate(async ({ url, feeds }) => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    try {
      const gpu = await wick.load('gpu', url, { backend: 'webgpu', cache: false });
      const cpu = await wick.load('cpu', url, { backend: 'cpu', cache: false });
      const runs = [];
      for (const feed of feeds) {
        const inputs = Object.fromEntries(Object.entries(feed).map(([name, t]) => [name, {
          dtype: t.dtype, dims: t.dims,
          data: t.dtype === 'int64' ? BigInt64Array.from(t.data.map(BigInt)) : Float32Array.from(t.data),
        }]));
        const onGpu = await wick.run('gpu', inputs);
        const again = await wick.run('gpu', inputs);
        const onCpu = await wick.run('cpu', inputs);
        const plain = (r) => Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, { dims: v.dims, data: Array.from(v.data) }]));
        runs.push({ gpu: plain(onGpu), cpu: plain(onCpu), stats: onGpu.stats, again: again.stats });
      }
      const stats = await wick.stats();
      return { gpu: { backend: gpu.backend, backendReason: gpu.backendReason }, cpu: { backend: cpu.backend }, runs, stats };
    } finally {
      wick.terminate();
    }
  }, { url, feeds });
}

test('with WebGPU, the digits model runs on the webgpu backend: onnxruntime\'s outputs and the CPU backend\'s', { timeout: TIMEOUT * 2 }, async () => {
  const sets = testDataSets('digits').map(readTestDataSet);
  const feeds = sets.map(({ inputs }) => Object.fromEntries(inputs.map((t) => [t.name || 'input', { dtype: 'float32', dims: t.dims, data: Array.from(t.data) }])));
  const { gpu, cpu, runs, stats } = await runBoth(webgpu.page, '/fixtures/digits/model.onnx', feeds);
  assert.equal(gpu.backend, 'webgpu', gpu.backendReason);
  assert.match(gpu.backendReason, /webgpu/);
  assert.equal(cpu.backend, 'cpu');
  assert.deepEqual(stats.models.map((m) => m.backend).sort(), ['cpu', 'webgpu']);
  runs.forEach((run, i) => {
    for (const want of sets[i].outputs) {
      const name = want.name || 'probabilities';
      const got = run.gpu[name];
      assert.deepEqual(got.dims, want.dims);
      const vsOrt = maxAbsDiff(got.data, want.data);
      const vsCpu = maxAbsDiff(got.data, run.cpu[name].data);
      console.log(`# digits set ${i}: max |webgpu - onnxruntime| ${vsOrt.toExponential(2)}, |webgpu - cpu| ${vsCpu.toExponential(2)}; ${JSON.stringify(run.stats.gpu)}`);
      assert.ok(vsOrt <= 1e-4 && vsCpu <= 1e-4, `${vsOrt} ${vsCpu}`);
    }
    assert.ok(run.stats.gpu.gpuSteps > 0, JSON.stringify(run.stats));
    // The weights stay on the GPU: a second run uploads only its input.
    assert.ok(run.again.gpu.uploads <= 1, JSON.stringify(run.again));
  });
});

test('with WebGPU, a transformer (MiniLM) runs on the webgpu backend with the CPU backend\'s outputs', { timeout: TIMEOUT * 4 }, async () => {
  const dir = process.env.WICK_TEXT_MODELS;
  assert.ok(dir, 'WICK_TEXT_MODELS is set by `cargo xtask test` (target/text-models)');
  const reference = JSON.parse(readFileSync(join(dir, 'all-minilm-l6-v2', 'reference.json'), 'utf8'));
  const ids = reference.sentences[1].ids;
  const int64 = (data) => ({ dtype: 'int64', dims: [1, ids.length], data });
  const feed = { input_ids: int64(ids), attention_mask: int64(ids.map(() => 1)), token_type_ids: int64(ids.map(() => 0)) };
  const { gpu, runs: [run] } = await runBoth(webgpu.page, '/text-models/all-minilm-l6-v2/onnx/model.onnx', [feed]);
  assert.equal(gpu.backend, 'webgpu', gpu.backendReason);
  const names = Object.keys(run.cpu);
  assert.ok(names.length > 0);
  for (const name of names) {
    assert.deepEqual(run.gpu[name].dims, run.cpu[name].dims, name);
    const diff = maxAbsDiff(run.gpu[name].data, run.cpu[name].data);
    console.log(`# MiniLM ${name} ${JSON.stringify(run.gpu[name].dims)}: max |webgpu - cpu| ${diff.toExponential(2)}; ${JSON.stringify(run.stats.gpu)}`);
    assert.ok(diff <= 1e-3, `${name}: ${diff}`);
  }
  assert.ok(run.stats.gpu.gpuSteps > 0, JSON.stringify(run.stats));
});

test('with WebGPU, text generation (4-bit weights) gives onnxruntime\'s greedy answer on the webgpu backend', { timeout: TIMEOUT * 4 }, async () => {
  const dir = process.env.WICK_TEXTGEN_MODELS;
  assert.ok(dir, 'WICK_TEXTGEN_MODELS is set by `cargo xtask test` (target/textgen-models)');
  // onnxruntime's MatMulNBits layout (uint8 zero points): the GPU kernel unpacks it.
  const model = 'tiny-llama-random-ortq4';
  const reference = JSON.parse(readFileSync(join(dir, model, 'reference.json'), 'utf8'));
  await gotoBlank(webgpu.page);
  const got = await webgpu.page.evaluate(async ({ url, messages, max }) => {
    const { pipeline } = await import('/wick/wick.js');
    const generator = await pipeline('text-generation', url, { variant: 'q4', backend: 'webgpu', cache: false });
    try {
      const pieces = [];
      const generation = generator.generate(messages, { maxNewTokens: max });
      for await (const piece of generation) pieces.push(piece);
      const result = await generation.result;
      return { pieces, text: result.text, stats: result.stats, backend: generator.backend, reason: generator.info.backendReason };
    } finally {
      await generator.dispose();
    }
  }, { url: `/textgen-models/${model}/`, messages: reference.messages, max: reference.max_new_tokens });
  console.log(`# generation on webgpu: ${got.pieces.length} pieces, ${JSON.stringify(got.stats)}, backend ${got.backend} (${got.reason})`);
  assert.equal(got.backend, 'webgpu', got.reason);
  assert.equal(got.text, reference.variants.q4.greedy_text, 'onnxruntime\'s greedy answer');
  assert.equal(got.pieces.join(''), got.text);
});

test('auto picks WebGPU only for a hardware adapter, and says why', { timeout: TIMEOUT }, async () => {
  for (const [label, { page }] of [['off', plain], ['on', webgpu]]) {
    await gotoBlank(page);
    const got = await page.evaluate(async () => {
      const { Wick } = await import('/wick/wick.js');
      const wick = await Wick.spawn();
      try {
        const ready = await wick.load('d', '/fixtures/digits/model.onnx', { cache: false });
        return { backend: ready.backend, reason: ready.backendReason, adapter: wick.capabilities.gpu ?? null };
      } finally {
        wick.terminate();
      }
    });
    console.log(`# ${label}: auto → ${got.backend} (${got.reason})`);
    if (!got.adapter) {
      assert.equal(label, 'off');
      assert.equal(got.backend, 'cpu');
      assert.equal(got.reason, 'no WebGPU adapter');
    } else if (got.adapter.isFallbackAdapter) {
      assert.equal(got.backend, 'cpu');
      assert.match(got.reason, /software fallback/);
    } else {
      assert.equal(got.backend, 'webgpu');
    }
  }
});

test('without WebGPU, backend "webgpu" is a gpu_unavailable error and the worker serves on', { timeout: TIMEOUT }, async () => {
  await gotoBlank(plain.page);
  const got = await plain.page.evaluate(async () => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    try {
      const error = await wick.load('d', '/fixtures/digits/model.onnx', { backend: 'webgpu', cache: false }).then(
        () => null, (e) => ({ code: e.code, message: e.message }));
      const ready = await wick.load('d', '/fixtures/digits/model.onnx', { cache: false });
      const out = await wick.run('d', { input: { dtype: 'float32', dims: [1, 1, 28, 28], data: new Float32Array(784) } });
      return { error, backend: ready.backend, outputs: Object.keys(out.outputs), gpu: out.stats.gpu ?? null };
    } finally {
      wick.terminate();
    }
  });
  assert.equal(got.error?.code, 'gpu_unavailable', JSON.stringify(got.error));
  assert.equal(got.backend, 'cpu');
  assert.equal(got.outputs.length, 1);
  assert.equal(got.gpu, null, 'CPU runs carry no GPU stats');
});

test('with WebGPU, weights "gpu" streams the f32 weights to the GPU with the CPU backend\'s outputs', { timeout: TIMEOUT * 2 }, async () => {
  const sets = testDataSets('digits-2shards').map(readTestDataSet);
  // Per set: [name, values, dims] of each input.
  const feeds = sets.map(({ inputs }) => inputs.map((t) => [t.name || 'input', Array.from(t.data), t.dims]));
  await gotoBlank(webgpu.page);
  const got = await webgpu.page.evaluate(async (feeds) => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    try {
      const url = '/fixtures/digits-2shards/model.onnx';
      const refused = await wick.load('x', url, { backend: 'cpu', weights: 'gpu', cache: false }).then(
        () => null, (e) => ({ code: e.code, message: e.message }));
      const gpu = await wick.load('gpu', url, { backend: 'webgpu', weights: 'gpu', cache: false });
      const host = await wick.load('host', url, { backend: 'webgpu', weights: 'host', cache: false });
      const cpu = await wick.load('cpu', url, { backend: 'cpu', cache: false });
      const runs = [];
      for (const feed of feeds) {
        const inputs = Object.fromEntries(feed.map(([name, data, dims]) => [name, { dtype: 'float32', dims, data: Float32Array.from(data) }]));
        const plain = (r) => Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, Array.from(v.data)]));
        const onGpu = await wick.run('gpu', inputs);
        runs.push({ gpu: plain(onGpu), cpu: plain(await wick.run('cpu', inputs)), stats: onGpu.stats });
      }
      const ready = (r) => ({ backend: r.backend, weightBytes: r.weightBytes, gpuWeightBytes: r.gpuWeightBytes });
      return { refused, gpu: ready(gpu), host: ready(host), cpu: ready(cpu), runs };
    } finally {
      wick.terminate();
    }
  }, feeds);
  console.log(`# weights "gpu": ${JSON.stringify(got.gpu)}; "host": ${JSON.stringify(got.host)}; cpu+gpu: ${JSON.stringify(got.refused)}`);
  assert.equal(got.refused?.code, 'bad_request', JSON.stringify(got.refused));
  assert.equal(got.gpu.backend, 'webgpu');
  assert.ok(got.gpu.gpuWeightBytes > 400_000, JSON.stringify(got.gpu));
  assert.equal(got.gpu.weightBytes, got.cpu.weightBytes);
  assert.equal(got.host.gpuWeightBytes, 0);
  assert.equal(got.cpu.gpuWeightBytes, 0);
  got.runs.forEach((run, i) => {
    for (const want of sets[i].outputs) {
      const name = want.name || 'probabilities';
      const vsOrt = maxAbsDiff(run.gpu[name], want.data);
      const vsCpu = maxAbsDiff(run.gpu[name], run.cpu[name]);
      console.log(`# digits-2shards set ${i} (weights on the GPU): |webgpu - onnxruntime| ${vsOrt.toExponential(2)}, |webgpu - cpu| ${vsCpu.toExponential(2)}; ${JSON.stringify(run.stats.gpu)}`);
      assert.ok(vsOrt <= 1e-4 && vsCpu <= 1e-4, `${vsOrt} ${vsCpu}`);
    }
    assert.ok(run.stats.gpu.gpuSteps > 0, JSON.stringify(run.stats));
  });
});

test('with WebGPU, a lost device (the GPU process crashed) is gpu_device_lost for a model whose weights lived there; the worker serves on and a new load gets a new device', { timeout: TIMEOUT * 2 }, async () => {
  // A browser of its own: the crash takes every page's devices with it.
  const own = await openBrowser('webgpu-loss', ['--enable-unsafe-webgpu']);
  try {
    const [set] = testDataSets('digits-2shards').map(readTestDataSet);
    const feed = set.inputs.map((t) => [t.name || 'input', Array.from(t.data), t.dims]);
    await gotoBlank(own.page);
    const before = await own.page.evaluate(async (feed) => {
      const { Wick } = await import('/wick/wick.js');
      const wick = await Wick.spawn();
      window.wick = wick;
      window.feed = feed;
      window.runOf = async (name) => {
        const inputs = Object.fromEntries(window.feed.map(([n, data, dims]) => [n, { dtype: 'float32', dims, data: Float32Array.from(data) }]));
        const r = await window.wick.run(name, inputs);
        return Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, Array.from(v.data)]));
      };
      const url = '/fixtures/digits-2shards/model.onnx';
      const gpu = await wick.load('gpu', url, { backend: 'webgpu', weights: 'gpu', cache: false });
      await wick.load('cpu', url, { backend: 'cpu', cache: false });
      return { gpuWeightBytes: gpu.gpuWeightBytes, gpu: await window.runOf('gpu'), cpu: await window.runOf('cpu') };
    }, feed);
    assert.ok(before.gpuWeightBytes > 400_000, JSON.stringify(before.gpuWeightBytes));

    // The GPU process goes down as a driver reset would take it (DevTools protocol).
    const cdp = await own.browser.newBrowserCDPSession();
    await cdp.send('Browser.crashGpuProcess');
    await new Promise((resolve) => setTimeout(resolve, 2000));

    const after = await own.page.evaluate(async () => {
      const wick = window.wick;
      const lost = await window.runOf('gpu').then(() => null, (e) => ({ code: e.code, message: e.message }));
      const cpu = await window.runOf('cpu');
      const url = '/fixtures/digits-2shards/model.onnx';
      const again = await wick.load('again', url, { backend: 'webgpu', weights: 'gpu', cache: false });
      return { lost, cpu, again: { backend: again.backend, gpuWeightBytes: again.gpuWeightBytes }, rerun: await window.runOf('again') };
    });
    console.log(`# after the GPU process crashed: ${JSON.stringify(after.lost)}; a new load: ${JSON.stringify(after.again)}`);
    assert.equal(after.lost?.code, 'gpu_device_lost', JSON.stringify(after.lost));
    assert.match(after.lost.message, /loaded again/, 'the message says what to do');
    assert.equal(after.again.backend, 'webgpu');
    assert.ok(after.again.gpuWeightBytes > 400_000);
    for (const want of set.outputs) {
      const name = want.name || 'probabilities';
      assert.ok(maxAbsDiff(before.gpu[name], want.data) <= 1e-4);
      assert.deepEqual(after.cpu[name], before.cpu[name], 'the CPU model still serves');
      const d = maxAbsDiff(after.rerun[name], want.data);
      assert.ok(d <= 1e-4, `the reloaded model on the new device: ${d} from onnxruntime`);
    }
  } finally {
    await own.browser.close();
  }
});
