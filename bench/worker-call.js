// What the benchmark pages share: one request to a peer's worker (bench/*-worker.js answer each
// message with `{ok: true, …}` or `{ok: false, error}`), one at a time.

/** Post `message` to `worker` (transferring `transfer`) and resolve with its answer. */
export function call(worker, message, transfer = []) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.ok ? resolve(data) : reject(new Error(data.error)));
    worker.onerror = (e) => reject(new Error(e.message || 'worker error'));
    worker.postMessage(message, transfer);
  });
}
