// Wick's dedicated worker (a module worker). Messages that arrive while the wasm module is
// being compiled are queued here and handed to the Rust message loop once it starts.
import init, { start } from './wick_worker.js';

const pending = [];
self.onmessage = (event) => pending.push(event.data);

await init({ module_or_path: new URL('./wick_worker_bg.wasm', import.meta.url) });
self.onmessage = null;
start(pending);
