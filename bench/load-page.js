// The page of `cargo xtask bench load`: sets up one configuration, then loads the model in a
// dedicated worker and runs it once. bench/load.mjs drives it through `window.bench` and reads
// the renderer's memory from /proc between the steps.

/** Posts `message` to `worker` and resolves with its `{ok: true, ...}` reply. */
function call(worker, message) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.ok ? resolve(data) : reject(new Error(data.error)));
    worker.onerror = (e) => reject(new Error(e.message || 'worker error'));
    worker.postMessage(message);
  });
}

const idsOf = (m) => BigInt64Array.from(m.ids, BigInt);

/** Each configuration: `setup(manifest)` resolves with `{load(), run()}`; run yields Float32Array. */
const CONFIGS = {
  'wick-cpu': async (m) => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    return {
      // `cache: false`: the bench measures the streaming path, never an offline copy.
      load: () => wick.load('bench', m.modelUrl, { cache: false }),
      run: async () => {
        const inputs = { [m.input]: { dtype: 'int64', dims: [m.ids.length], data: idsOf(m) } };
        return (await wick.run('bench', inputs)).outputs[m.output].data;
      },
    };
  },
  // The weights streamed straight into GPU buffers (SwiftShader here: the GPU process's memory),
  // never into the worker's wasm memory: a model past wasm32's 4 GiB.
  'wick-gpu': async (m) => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    return {
      load: async () => {
        const ready = await wick.load('bench', m.modelUrl, { cache: false, backend: 'webgpu', weights: 'gpu' });
        detail = { backend: ready.backend, gpuWeightBytes: ready.gpuWeightBytes, adapter: ready.backendReason };
      },
      run: async () => {
        const inputs = { [m.input]: { dtype: 'int64', dims: [m.ids.length], data: idsOf(m) } };
        return (await wick.run('bench', inputs)).outputs[m.output].data;
      },
    };
  },
  raw: async (m) => {
    const worker = new Worker('/bench/raw-worker.js');
    return {
      load: () => call(worker, { urls: m.files.map((f) => f.url) }),
      run: null,
    };
  },
  'ort-wasm': async (m) => {
    const worker = new Worker('/bench/ort-worker.js', { type: 'module' });
    await call(worker, { type: 'warmup', url: m.warmupUrl });
    return {
      load: () => call(worker, { type: 'load', modelUrl: m.modelUrl, files: m.files.slice(1) }),
      run: async () => (await call(worker, { type: 'run', input: m.input, ids: m.ids, output: m.output })).data,
    };
  },
};

let active = null;
/** What the configuration's load reported (wick-gpu: the backend and bytes on the device). */
let detail = {};

window.bench = {
  async setup(config, manifest) {
    active = await CONFIGS[config](manifest);
  },
  /** Milliseconds from the request to the model being ready (or the last byte read). */
  async load() {
    const start = performance.now();
    await active.load();
    return performance.now() - start;
  },
  detail: () => detail,
  /** The output as base64 of its float32 bytes (compact and exact through the driver), or null. */
  async run() {
    if (!active.run) return null;
    const data = await active.run();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  },
};
