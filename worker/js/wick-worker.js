// Wick's dedicated worker (a module worker). Messages that arrive while the wasm module is
// being compiled are queued here and handed to the Rust message loop once it starts.
import init, { start } from './wick_worker.js';

const pending = [];
self.onmessage = (event) => pending.push(event.data);
// The WebGPU adapter is asked for while the module compiles, so that the first hello, which
// reports it, does not wait for it after.
const adapter = Promise.resolve(navigator.gpu?.requestAdapter()).catch(() => null);

await init({ module_or_path: new URL('./wick_worker_bg.wasm', import.meta.url) });
self.onmessage = null;
start(pending, adapter);
