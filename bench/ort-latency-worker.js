// onnxruntime-web (npm, served at /ort/) on its wasm (or WebGPU) execution provider, in a
// dedicated module worker, for `cargo xtask bench latency`: init with a thread count, load a model with its
// external data, run it on tensors and answer the first output.
// `?ep=webgpu`: the WebGPU execution provider (its own bundle) instead. Imported in the
// handlers, not at top level: a top-level await would drop the messages sent meanwhile.
const EP = new URL(import.meta.url).searchParams.get('ep') ?? 'wasm';
const loading = import(EP === 'webgpu' ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs');
let ort = null;

let session = null;

const handlers = {
  init: async ({ threads }) => {
    ort = await loading;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = '/ort/';
    return {};
  },
  load: async ({ model, externalData }) => {
    session = await ort.InferenceSession.create(model, { executionProviders: [EP], externalData });
    return {};
  },
  run: async ({ tensors }) => {
    const feeds = Object.fromEntries(tensors.map((t) => [t.name, new ort.Tensor(t.dtype, t.data, t.dims)]));
    const t0 = performance.now();
    const outputs = await session.run(feeds);
    const runMs = performance.now() - t0;
    const out = outputs[session.outputNames[0]];
    // WebGPU outputs may live on the GPU: getData() reads them back.
    return { data: out.location === 'cpu' ? out.data : await out.getData(), runMs };
  },
};

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ ok: true, ...(await handlers[data.type](data)) });
  } catch (e) {
    self.postMessage({ ok: false, error: String(e?.message ?? e) });
  }
};
