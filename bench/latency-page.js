// The page of `cargo xtask bench latency`: one runtime per page (Wick's worker with 1 thread or
// its pool, or onnxruntime-web's wasm EP with 1 thread or every core), each in a dedicated
// worker; bench/latency.mjs drives it through `window.bench`. Every run is timed here, around
// the round trip to the worker, the same way for both runtimes; each runtime also reports the
// time its run took inside the worker (Wick's `stats.runMs`, performance.now() around
// onnxruntime-web's `session.run`).
import { parseTensor } from './tensor-proto.js';
import { call } from './worker-call.js';

const TYPED = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array };

/** The spec's inputs: each a TensorProto file's URL, or {name, dtype, dims, url} of raw
 * little-endian values. */
async function inputsOf(spec) {
  const tensors = [];
  for (const input of spec.inputs) {
    const url = typeof input === 'string' ? input : input.url;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const bytes = await response.arrayBuffer();
    tensors.push(typeof input === 'string' ? parseTensor(bytes) : { name: input.name, dtype: input.dtype, dims: input.dims, data: new TYPED[input.dtype](bytes) });
  }
  return tensors;
}

/** The first output as base64 of its float32 values (exact through the driver). */
function encode(data) {
  const floats = data instanceof Float32Array ? data : Float32Array.from(data, Number);
  const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** `once()` after `warmups` untimed calls, at least `runs` times and for at least `minMs` (so
 * that a fast model's median is taken from the code the wasm engine has tiered up to, as a page
 * running it repeatedly gets, not from its baseline compiler): the round trips, and the time the
 * runtime spent inside its worker (`inner(answer)`). */
/** However fast the model, a measurement stops after this many runs. */
const MAX_RUNS = 2000;

async function timed(warmups, { runs, minMs }, once, inner) {
  for (let i = 0; i < warmups; i++) await once();
  const times = [];
  const inside = [];
  let last = null;
  const start = performance.now();
  for (let i = 0; i < runs || (performance.now() - start < minMs && i < MAX_RUNS); i++) {
    const t0 = performance.now();
    last = await once();
    times.push(performance.now() - t0);
    inside.push(inner(last));
  }
  return { times, inside, last };
}

/** Wick's worker: its single-threaded build on a page that is not cross-origin isolated, the
 * multi-threaded one (`threads` its pool's size) on one that is. */
async function wickRuntime(backend = 'cpu') {
  const { Wick } = await import('/wick/wick.js');
  const started = performance.now();
  const wick = await Wick.spawn();
  const spawnMs = performance.now() - started;
  let pipe = null;
  const gpu = wick.capabilities.gpu;
  if (backend === 'webgpu' && !gpu) throw new Error('no WebGPU adapter');
  return {
    threads: wick.capabilities.threads,
    spawnMs,
    adapter: backend === 'webgpu' ? adapterName(gpu) : undefined,
    async load(spec) {
      const t0 = performance.now();
      if (spec.task) {
        pipe = await wick.pipeline(spec.task, spec.folder, { cache: false, backend });
      } else {
        // External data is found beside the model, as onnxruntime-web's list below says.
        await wick.load(spec.name, spec.model, { cache: false, backend });
      }
      return performance.now() - t0;
    },
    async measure(spec, warmups, budget) {
      if (spec.task) {
        const image = await (await fetch(spec.image)).blob();
        const { times, inside, last } = await timed(warmups, budget, () => pipe.run(image), (r) => r.stats.runMs);
        return { times, inside, output: null, result: JSON.stringify(last.labels ?? last.objects) };
      }
      const tensors = await inputsOf(spec);
      const feeds = Object.fromEntries(tensors.map((t) => [t.name, t]));
      const { times, inside, last } = await timed(warmups, budget, () => wick.run(spec.name, feeds), (r) => r.stats.runMs);
      return { times, inside, output: encode(Object.values(last.outputs)[0].data) };
    },
  };
}

const RUNTIMES = {
  async 'wick-cpu'() {
    if (crossOriginIsolated) throw new Error('the page is cross-origin isolated: Wick would use threads');
    return wickRuntime();
  },
  async 'wick-cpu-mt'() {
    if (!crossOriginIsolated) throw new Error('the page is not cross-origin isolated: no threads');
    return wickRuntime();
  },
  async 'wick-webgpu'() {
    return wickRuntime('webgpu');
  },
  async 'ort-wasm-1t'() {
    return ortRuntime(1);
  },
  async 'ort-webgpu'() {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter');
    const runtime = await ortRuntime(1, 'webgpu');
    return { ...runtime, adapter: adapterName({ ...adapter.info, isFallbackAdapter: adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter }) };
  },
  async 'ort-wasm-mt'() {
    if (!crossOriginIsolated) throw new Error('the page is not cross-origin isolated: no threads');
    return ortRuntime(navigator.hardwareConcurrency);
  },
};

/** "google swiftshader (fallback)" and the like, for the table. */
function adapterName(gpu) {
  const name = [gpu.vendor, gpu.architecture, gpu.description].filter(Boolean).join(' ') || 'unnamed adapter';
  return gpu.isFallbackAdapter ? `${name} (fallback adapter)` : name;
}

async function ortRuntime(threads, ep = 'wasm') {
  const worker = new Worker(`/bench/ort-latency-worker.js?ep=${ep}`, { type: 'module' });
  const started = performance.now();
  await call(worker, { type: 'init', threads });
  const spawnMs = performance.now() - started;
  return {
    threads,
    spawnMs,
    async load(spec) {
      if (spec.task) throw new Error('onnxruntime-web has no pipelines');
      const t0 = performance.now();
      const base = new URL(spec.model, location.href);
      const externalData = spec.externalData.map((path) => ({ path, data: new URL(path, base).href }));
      await call(worker, { type: 'load', model: base.href, externalData });
      return performance.now() - t0;
    },
    async measure(spec, warmups, budget) {
      const tensors = await inputsOf(spec);
      const { times, inside, last } = await timed(warmups, budget, () => call(worker, { type: 'run', tensors }), (r) => r.runMs);
      return { times, inside, output: encode(last.data) };
    },
  };
}

let runtime = null;

window.bench = {
  async setup(name) {
    runtime = await RUNTIMES[name]();
    return { threads: runtime.threads, spawnMs: runtime.spawnMs, adapter: runtime.adapter };
  },
  load: (spec) => runtime.load(spec),
  measure: (spec, warmups, budget) => runtime.measure(spec, warmups, budget),
};
