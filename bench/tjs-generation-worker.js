// transformers.js (npm @huggingface/transformers, served at /bench-deps/) in a dedicated module
// worker, for `cargo xtask bench generation`: its text-generation pipeline on the same converted
// ONNX folder Wick loads (served locally; nothing remote), on onnxruntime-web's wasm backend.
// Times are taken here, per token (TextStreamer's token callback), as Wick times inside its
// worker: prefill = the call until the first token, decode = the tokens after it.
import { env, pipeline, TextStreamer } from '/bench-deps/@huggingface/transformers/dist/transformers.js';

let generator = null;

const handlers = {
  load: async ({ root, model, dtype, threads }) => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = root;
    env.useBrowserCache = false;
    env.backends.onnx.wasm.wasmPaths = '/bench-deps/onnxruntime-web/dist/';
    env.backends.onnx.wasm.numThreads = threads;
    generator = await pipeline('text-generation', model, { dtype, device: 'wasm' });
    return {};
  },
  generate: async ({ messages, maxNewTokens }) => {
    const times = [];
    const streamer = new TextStreamer(generator.tokenizer, {
      skip_prompt: true,
      token_callback_function: () => times.push(performance.now()),
    });
    const promptTokens = generator.tokenizer.apply_chat_template(messages, { add_generation_prompt: true, tokenize: true, return_tensor: false, return_dict: false }).length;
    const t0 = performance.now();
    const out = await generator(messages, { max_new_tokens: maxNewTokens, do_sample: false, streamer });
    const answer = out[0].generated_text.at(-1).content;
    return { text: answer, promptTokens, t0, times };
  },
};

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ ok: true, ...(await handlers[data.type](data)) });
  } catch (e) {
    self.postMessage({ ok: false, error: String(e?.stack ?? e?.message ?? e) });
  }
};
