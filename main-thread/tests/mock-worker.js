// A stand-in for the Wick worker that speaks protocol v1 (PROTOCOL.md) with canned answers, so
// that the main-thread crate's promises, ids, progress, cancellation and errors can be tested in
// a browser without the engine. Behaviour is chosen by the request:
//   load   url containing "missing" → error fetch_failed (404); "slow" → waits for cancel;
//          "crash" → throws an uncaught error; "panic" → reports a panic with id 0 (as the
//          worker's panic hook does); otherwise two files of progress, then ready.
//   run    returns output `y` = 2 × input `x` (float32) and `n` = x's length (int64).
//   task   digits: the digit is the number of dark pixels mod 10.
//   generate  the prompt's words (a string) or the last message's, one `token` event each, 5 ms
//          apart, then `generated`; `maxNewTokens` caps the words (finish "length"), the prompt
//          "forever" never ends until cancelled; a negative temperature → error bad_input.
// `globalThis.MOCK_PROTOCOL` (set by a line prepended to this source) changes the protocol hello
// answers with; the test loads this file as a Blob URL module worker.
const protocol = globalThis.MOCK_PROTOCOL ?? 1;
const models = new Set();
const waiting = new Map(); // id of a slow load → true
const generating = new Map(); // id of a generate → its timer

const send = (id, body, transfer = []) => postMessage({ id, body }, transfer);
const stats = { runMs: 0.5, peakIntermediateBytes: 64 };
const error = (code, message, extra = {}) => ({ type: 'error', code, message, ...extra });

onmessage = ({ data: { id, body } }) => {
  switch (body.type) {
    case 'hello':
      return send(id, {
        type: 'hello', protocol, version: 'mock',
        capabilities: { backends: ['cpu'], tasks: ['digits'], ops: ['Add'], simd: false, threads: 1 },
      });
    case 'load': {
      if (models.has(body.model)) return send(id, error('model_exists', `model ${body.model} exists`));
      if (body.url.includes('missing')) {
        return send(id, error('fetch_failed', 'HTTP 404', { file: body.url, status: 404 }));
      }
      if (body.url.includes('crash')) {
        setTimeout(() => { throw new Error('mock worker crashed'); });
        return;
      }
      if (body.url.includes('panic')) {
        return send(0, error('internal', 'worker panicked: mock'));
      }
      if (body.url.includes('slow')) {
        send(id, { type: 'progress', file: body.url, loaded: 1 });
        waiting.set(id, true);
        return;
      }
      const data = body.externalData?.[0]?.url ?? new URL('model.onnx_data', body.url).href;
      send(id, { type: 'progress', file: body.url, loaded: 50, total: 100 });
      send(id, { type: 'progress', file: body.url, loaded: 100, total: 100 });
      send(id, { type: 'progress', file: data, loaded: 300 });
      models.add(body.model);
      return send(id, {
        type: 'ready', model: body.model, backend: 'cpu',
        inputs: [{ name: 'x', dtype: 'float32', dims: [null, 4] }],
        outputs: [{ name: 'y', dtype: 'float32', dims: [null, 4] }],
        weightBytes: 400, loadMs: 12,
      });
    }
    case 'run': {
      if (!models.has(body.model)) return send(id, error('unknown_model', `no model ${body.model}`));
      const x = body.inputs.x;
      if (!(x?.data instanceof Float32Array)) return send(id, error('bad_input', 'x must be float32'));
      const y = x.data.map((v) => 2 * v);
      const n = new BigInt64Array([BigInt(x.data.length)]);
      return send(id, {
        type: 'output',
        outputs: { y: { dtype: 'float32', dims: x.dims, data: y }, n: { dtype: 'int64', dims: [1], data: n } },
        stats,
      }, [y.buffer, n.buffer]);
    }
    case 'task': {
      if (!models.has(body.model)) return send(id, error('unknown_model', `no model ${body.model}`));
      const { image } = body.input;
      if (!(image.data instanceof Uint8Array)) return send(id, error('bad_input', 'image.data must be bytes'));
      let dark = 0;
      for (let i = 0; i < image.data.length; i += 4) if (image.data[i] < 128) dark++;
      const digit = dark % 10;
      const probabilities = Array.from({ length: 10 }, (_, d) => (d === digit ? 0.91 : 0.01));
      return send(id, { type: 'result', result: { task: 'digits', digit, probabilities }, stats });
    }
    case 'generate': {
      if (!models.has(body.model)) return send(id, error('unknown_model', `no model ${body.model}`));
      const options = body.options ?? {};
      if (options.temperature < 0) return send(id, error('bad_input', `temperature must be ≥ 0; got ${options.temperature}`));
      const prompt = typeof body.prompt === 'string' ? body.prompt : body.prompt.at(-1).content;
      const forever = prompt === 'forever';
      const words = forever ? [] : prompt.split(' ').slice(0, options.maxNewTokens ?? Infinity);
      const finish = words.length < prompt.split(' ').length ? 'length' : 'eos';
      let n = 0;
      const timer = setInterval(() => {
        if (forever || n < words.length) {
          send(id, { type: 'token', text: forever ? 'x' : (n ? ' ' : '') + words[n] });
          n++;
          return;
        }
        clearInterval(timer);
        generating.delete(id);
        send(id, {
          type: 'generated', text: words.join(' '), finish,
          stats: { promptTokens: 3, generatedTokens: n, prefillMs: 2, prefillTokS: 1500, decodeTokS: 200 },
        });
      }, 5);
      generating.set(id, timer);
      return;
    }
    case 'cancel':
      if (waiting.delete(body.target)) send(body.target, { type: 'cancelled' });
      if (generating.has(body.target)) {
        clearInterval(generating.get(body.target));
        generating.delete(body.target);
        send(body.target, { type: 'cancelled' });
      }
      return send(id, { type: 'done' });
    case 'unload':
      if (!models.delete(body.model)) return send(id, error('unknown_model', `no model ${body.model}`));
      return send(id, { type: 'done' });
    default:
      return send(id, error('bad_request', `unknown request ${body.type}`));
  }
};
