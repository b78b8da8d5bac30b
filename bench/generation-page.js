// The page of `cargo xtask bench generation`: one runtime per page (wick-cpu, or transformers.js
// on onnxruntime-web's wasm backend with 1 thread), each in a dedicated worker, generating
// greedily from the same chat prompt with the same converted model folder. Both are timed inside
// their worker: prefill = the prompt's pass to the first token, decode tokens/s = the tokens
// after the first over the time they took. bench/generation.mjs drives it through `window.bench`.
import { call } from './worker-call.js';

const RUNTIMES = {
  async 'wick-cpu'() {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    let pipe = null;
    return {
      threads: 1,
      async load({ root, model, variant }) {
        pipe = await wick.pipeline('text-generation', `${root}${model}/`, { variant, cache: false });
      },
      async generate({ messages, maxNewTokens }) {
        const gen = pipe.generate(messages, { maxNewTokens });
        let pieces = 0;
        for await (const _ of gen) pieces++;
        const { text, stats } = await gen.result;
        return {
          text,
          pieces,
          promptTokens: stats.promptTokens,
          generatedTokens: stats.generatedTokens,
          prefillMs: stats.prefillMs,
          decodeTokS: stats.decodeTokS,
        };
      },
    };
  },
  async 'transformers-js-wasm'() {
    const worker = new Worker('/bench/tjs-generation-worker.js', { type: 'module' });
    return {
      threads: 1,
      async load({ root, model, variant }) {
        await call(worker, { type: 'load', root, model, dtype: variant, threads: 1 });
      },
      async generate({ messages, maxNewTokens }) {
        const { text, promptTokens, t0, times } = await call(worker, { type: 'generate', messages, maxNewTokens });
        const decodeMs = times.length > 1 ? times.at(-1) - times[0] : 0;
        return {
          text,
          pieces: times.length,
          promptTokens,
          generatedTokens: times.length,
          prefillMs: times.length ? times[0] - t0 : null,
          decodeTokS: decodeMs > 0 ? ((times.length - 1) * 1000) / decodeMs : null,
        };
      },
    };
  },
};

let runtime = null;

window.bench = {
  async setup(name) {
    runtime = await RUNTIMES[name]();
    return { threads: runtime.threads };
  },
  async load(spec) {
    const t0 = performance.now();
    await runtime.load(spec);
    return performance.now() - t0;
  },
  generate: (spec) => runtime.generate(spec),
};
