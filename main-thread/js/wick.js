// Wick's entry point. Initialises the page-side wasm and makes the worker script next to this
// file the default, so that a page only needs:
//
//   import { pipeline } from './wick/wick.js';
//
// Everything else (requests, ids, progress, cancellation, errors) lives in Rust: main-thread/src.
import init, { Wick, Pipeline, Generation, Transcription, pipeline, setDefaultWorkerUrl } from './main/wick_main.js';

await init({ module_or_path: new URL('./main/wick_main_bg.wasm', import.meta.url) });
setDefaultWorkerUrl(new URL('./worker/wick-worker.js', import.meta.url));

// A Generation (text generation in progress) and a Transcription are their own async iterators:
// `for await (const piece of pipe.generate(prompt))`. Their next() and return() are in Rust
// (main-thread/src/stream.rs).
for (const Streamed of [Generation, Transcription]) {
  Streamed.prototype[Symbol.asyncIterator] = function () {
    return this;
  };
}

export { Wick, Pipeline, Generation, Transcription, pipeline };
