// Driver of `cargo xtask bench generation`: for each runtime, a fresh headless Chromium on
// bench/generation.html, the model loaded once, one warm-up generation, then the timed ones.
// Writes one JSON line per runtime and model to --out.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { launch, log, median, withTimeout } from './common.mjs';

const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    runtimes: { type: 'string' },
    models: { type: 'string' },
    runs: { type: 'string', default: '3' },
    'max-new-tokens': { type: 'string', default: '64' },
    out: { type: 'string' },
    'timeout-s': { type: 'string', default: '900' },
  },
});


/** `promise`, or a rejection after --timeout-s. */
const limited = (promise, what) => withTimeout(promise, what, Number(opts['timeout-s']));

// A prompt whose greedy answer runs past the token limit, so decode is timed over many tokens.
const MESSAGES = [{ role: 'user', content: 'Write a short story about a robot who learns to paint.' }];

const rows = [];
for (const runtime of opts.runtimes.split(',')) {
  for (const spec of JSON.parse(opts.models)) {
    const row = { model: spec.name, runtime };
    const browser = await launch();
    try {
      row.chromium = browser.version();
      const page = await browser.newPage();
      page.on('pageerror', (e) => log(`[${runtime}] page error: ${e.stack ?? e}`));
      await page.goto(`${opts.base}/bench/generation.html`);
      await page.waitForFunction(() => window.bench);
      const setup = await limited(page.evaluate((r) => window.bench.setup(r), runtime), `${runtime} setup`);
      row.threads = setup.threads;
      row.load_ms = await limited(page.evaluate((s) => window.bench.load(s), spec), `${runtime} ${spec.name} load`);
      const request = { messages: MESSAGES, maxNewTokens: Number(opts['max-new-tokens']) };
      await limited(page.evaluate((r) => window.bench.generate(r), request), `${runtime} warm-up`);
      const runs = [];
      for (let i = 0; i < Number(opts.runs); i++) {
        runs.push(await limited(page.evaluate((r) => window.bench.generate(r), request), `${runtime} ${spec.name} generate`));
      }
      const last = runs.at(-1);
      Object.assign(row, {
        runs: runs.length,
        prompt_tokens: last.promptTokens,
        generated_tokens: last.generatedTokens,
        prefill_ms: median(runs.map((r) => r.prefillMs)),
        prefill_tok_s: median(runs.map((r) => (r.prefillMs ? (r.promptTokens * 1000) / r.prefillMs : null))),
        decode_tok_s: median(runs.map((r) => r.decodeTokS)),
        text: last.text,
      });
      log(`${runtime} ${spec.name}: prefill ${row.prefill_tok_s?.toFixed(1)} tok/s, decode ${row.decode_tok_s?.toFixed(1)} tok/s`);
    } catch (e) {
      row.error = String(e?.message ?? e).replace(/^page\.evaluate: /, '').slice(0, 300);
      log(`${runtime} ${spec.name}: failed: ${row.error}`);
    } finally {
      await browser.close();
    }
    rows.push(row);
  }
}
writeFileSync(opts.out, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
