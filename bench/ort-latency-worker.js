// onnxruntime-web (npm, served at /ort/) on its wasm execution provider, in a dedicated module
// worker, for `cargo xtask bench latency`: init with a thread count, load a model with its
// external data, run it on tensors and answer the first output.
import * as ort from '/ort/ort.wasm.min.mjs';

let session = null;

const handlers = {
  init: async ({ threads }) => {
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = '/ort/';
    return {};
  },
  load: async ({ model, externalData }) => {
    session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], externalData });
    return {};
  },
  run: async ({ tensors }) => {
    const feeds = Object.fromEntries(tensors.map((t) => [t.name, new ort.Tensor(t.dtype, t.data, t.dims)]));
    const t0 = performance.now();
    const outputs = await session.run(feeds);
    const runMs = performance.now() - t0;
    return { data: outputs[session.outputNames[0]].data, runMs };
  },
};

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ ok: true, ...(await handlers[data.type](data)) });
  } catch (e) {
    self.postMessage({ ok: false, error: String(e?.message ?? e) });
  }
};
