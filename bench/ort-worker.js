// The `ort-wasm` configuration of `cargo xtask bench load`: onnxruntime-web (npm, served at
// /ort/) on its wasm execution provider, one thread, in a dedicated module worker.
import * as ort from '/ort/ort.wasm.min.mjs';

ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = '/ort/';

let session = null;

const handlers = {
  // A session on a one-node model first, so that instantiating ORT's wasm happens before the
  // memory baseline, as Wick's does (Wick.spawn).
  warmup: async ({ url }) => {
    await (await ort.InferenceSession.create(url, { executionProviders: ['wasm'] })).release();
    return {};
  },
  load: async ({ modelUrl, files }) => {
    session = await ort.InferenceSession.create(modelUrl, {
      executionProviders: ['wasm'],
      externalData: files.map((f) => ({ path: f.path, data: f.url })),
    });
    return {};
  },
  run: async ({ input, ids, output }) => {
    const feeds = { [input]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [ids.length]) };
    const data = (await session.run(feeds))[output].data;
    return { data };
  },
};

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ ok: true, ...(await handlers[data.type](data)) });
  } catch (e) {
    self.postMessage({ ok: false, error: String(e?.message ?? e) });
  }
};
