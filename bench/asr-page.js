// The page of `cargo xtask bench asr`: one runtime per page (wick-cpu, or transformers.js on
// onnxruntime-web's wasm backend with 1 thread), each in a dedicated worker, transcribing the same
// 16 kHz clips with the same Whisper folder. Each transcription is timed here, from the call to
// the result (the samples' trip to the worker included), the same way for both; Wick's own
// stats and transformers.js's time inside its worker come back too. bench/asr.mjs drives it
// through `window.bench`.
import { call } from './worker-call.js';

/** The clip's 16 kHz float32 samples (fetched once per page). */
const clips = new Map();
async function samples(url) {
  if (!clips.has(url)) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    clips.set(url, new Float32Array(await response.arrayBuffer()));
  }
  return clips.get(url);
}

const RUNTIMES = {
  async 'wick-cpu'() {
    const { pipeline } = await import('/wick/wick.js');
    let asr = null;
    return {
      async load({ folder, variant }) {
        // fp32 is the folder's plain files; q4 the `_q4` ones.
        const options = variant === 'fp32' ? { cache: false } : { variant, cache: false };
        asr = await pipeline('automatic-speech-recognition', folder, options);
      },
      async transcribe(pcm) {
        const t0 = performance.now();
        const job = asr.transcribe(pcm, { sampleRate: 16000 });
        let pieces = 0;
        for await (const _ of job) pieces++;
        const { text, stats } = await job.result;
        return { ms: performance.now() - t0, text, pieces, stats };
      },
    };
  },
  async 'transformers.js'() {
    const worker = new Worker('/bench/tjs-asr-worker.js', { type: 'module' });
    return {
      async load({ root, model, variant }) {
        await call(worker, { type: 'load', root, model, dtype: variant, threads: 1 });
      },
      async transcribe(pcm) {
        const t0 = performance.now();
        const { text, innerMs } = await call(worker, { type: 'transcribe', pcm }, [pcm.buffer]);
        return { ms: performance.now() - t0, text, innerMs };
      },
    };
  },
};

let runtime = null;

window.bench = {
  async setup(name) {
    if (!RUNTIMES[name]) throw new Error(`unknown runtime ${name}`);
    runtime = await RUNTIMES[name]();
    return { threads: 1 };
  },
  async load(spec) {
    const t0 = performance.now();
    await runtime.load(spec);
    return performance.now() - t0;
  },
  /** One transcription of the clip at `url`, given a copy of its samples (made before the clock
   * starts: either runtime may take the buffer). */
  async transcribe(url) {
    const pcm = (await samples(url)).slice();
    return runtime.transcribe(pcm);
  },
};
