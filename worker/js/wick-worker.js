// Wick's dedicated worker (a module worker). Messages that arrive while the wasm module is
// being compiled are queued here and handed to the Rust message loop once it starts.
//
// Two builds of the same worker: on a crossOriginIsolated page (SharedArrayBuffer exists), the
// multi-threaded one in ../worker-mt/ (shared memory, a rayon pool of Web Workers); elsewhere
// the single-threaded one beside this file.

const pending = [];
self.onmessage = (event) => pending.push(event.data);
// The WebGPU adapter is asked for while the module compiles, so that the first hello, which
// reports it, does not wait for it after.
const adapter = Promise.resolve(navigator.gpu?.requestAdapter()).catch(() => null);

/** The pool's size: every core, capped (beyond 16 the products are too small to share). */
const THREADS = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 16));

const threaded = self.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
const glue = threaded ? await import('../worker-mt/wick_worker_mt.js') : await import('./wick_worker.js');
const wasm = threaded ? '../worker-mt/wick_worker_mt_bg.wasm' : './wick_worker_bg.wasm';
await glue.default({ module_or_path: new URL(wasm, import.meta.url) });
if (threaded) {
  try {
    await glue.initThreadPool(THREADS);
  } catch (e) {
    // Without its pool the threaded build still works: every kernel runs on this thread
    // (hello then reports threads: 1).
    console.error('wick worker: the thread pool did not start', e);
  }
}
self.onmessage = null;
glue.start(pending, adapter);
