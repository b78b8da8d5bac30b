// transformers.js (npm @huggingface/transformers, served at /bench-deps/) in a dedicated module
// worker, for `cargo xtask bench asr`: its automatic-speech-recognition pipeline on the same
// Whisper folder Wick loads (served locally; nothing remote; the external data files are named
// by the folder's config.json, `transformers.js_config.use_external_data_format`), on
// onnxruntime-web's wasm backend. Fed the clip's 16 kHz samples, as Wick is; audio over 30 s is
// cut into 30 s windows (`chunk_length_s`) and stitched by the pipeline.
import { env, pipeline } from '/bench-deps/@huggingface/transformers/dist/transformers.js';

let transcriber = null;

const handlers = {
  load: async ({ root, model, dtype, threads }) => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = root;
    env.useBrowserCache = false;
    env.backends.onnx.wasm.wasmPaths = '/bench-deps/onnxruntime-web/dist/';
    env.backends.onnx.wasm.numThreads = threads;
    transcriber = await pipeline('automatic-speech-recognition', model, { dtype, device: 'wasm' });
    return {};
  },
  transcribe: async ({ pcm }) => {
    const seconds = pcm.length / 16000;
    const t0 = performance.now();
    const out = await transcriber(pcm, seconds > 30 ? { chunk_length_s: 30 } : {});
    return { text: out.text, innerMs: performance.now() - t0 };
  },
};

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ ok: true, ...(await handlers[data.type](data)) });
  } catch (e) {
    self.postMessage({ ok: false, error: String(e?.stack ?? e?.message ?? e) });
  }
};
