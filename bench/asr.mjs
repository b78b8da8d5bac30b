// Driver of `cargo xtask bench asr`: for each runtime and variant, a fresh headless Chromium on
// bench/asr.html, the Whisper folder loaded once, one untimed transcription of a short clip, then
// each clip --runs times (the median). Writes one JSON line per runtime, variant and clip to --out
// (`error` instead of the measurements when the runtime could not load or transcribe).
//
//   node bench/asr.mjs --base URL --spec FILE --runtimes a,b --variants fp32,q4 --runs N --out FILE
//
// The spec FILE: {model, root, folder, warmup: URL, clips: [{clip, pcm: URL, audio_s, sentence}]}.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { launch, log, median, withTimeout, wordErrorRate } from './common.mjs';

const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    spec: { type: 'string' },
    runtimes: { type: 'string' },
    variants: { type: 'string', default: 'fp32,q4' },
    runs: { type: 'string', default: '1' },
    out: { type: 'string' },
    'timeout-s': { type: 'string', default: '900' },
  },
});

/** `promise`, or a rejection after --timeout-s. */
const limited = (promise, what) => withTimeout(promise, what, Number(opts['timeout-s']));
const message = (e) => String(e?.message ?? e).replace(/^page\.evaluate: /, '').split('\n')[0].slice(0, 300);

const spec = JSON.parse(readFileSync(opts.spec, 'utf8'));

/** Every clip through `runtime` with `variant`, in one fresh browser. */
async function session(runtime, variant) {
  const base = { model: spec.model, runtime, variant };
  const browser = await launch();
  const rows = [];
  try {
    base.chromium = browser.version();
    const page = await browser.newPage();
    page.on('pageerror', (e) => log(`[${runtime}] page error: ${e.stack ?? e}`));
    await page.goto(`${opts.base}/bench/asr.html`);
    await page.waitForFunction(() => window.bench);
    const what = `${runtime} ${variant}`;
    try {
      base.threads = (await limited(page.evaluate((r) => window.bench.setup(r), runtime), `${what} setup`)).threads;
      const load = { root: spec.root, model: spec.model, folder: spec.folder, variant };
      base.load_ms = await limited(page.evaluate((s) => window.bench.load(s), load), `${what} load`);
      await limited(page.evaluate((u) => window.bench.transcribe(u), spec.warmup), `${what} warm-up`);
    } catch (e) {
      // Not available: every clip of this session says why.
      const error = `not available: ${message(e)}`;
      log(`${what}: ${error}`);
      return spec.clips.map(({ clip, audio_s }) => ({ ...base, clip, audio_s, error }));
    }
    for (const { clip, pcm, audio_s, sentence } of spec.clips) {
      const row = { ...base, clip, audio_s };
      try {
        const runs = [];
        for (let i = 0; i < Number(opts.runs); i++) {
          runs.push(await limited(page.evaluate((u) => window.bench.transcribe(u), pcm), `${what} ${clip}`));
        }
        const last = runs.at(-1);
        row.runs = runs.length;
        row.ms = median(runs.map((r) => r.ms));
        row.rtf = row.ms / 1000 / audio_s;
        row.wer = wordErrorRate(last.text, sentence);
        row.text = last.text.trim();
        if (last.stats) row.stats = last.stats;
        if (last.innerMs != null) row.inner_ms = median(runs.map((r) => r.innerMs));
        log(`${what} ${clip} (${audio_s.toFixed(1)} s): ${row.ms.toFixed(0)} ms, RTF ${row.rtf.toFixed(3)}, WER ${row.wer.toFixed(3)}: ${row.text.slice(0, 60)}`);
      } catch (e) {
        row.error = message(e);
        log(`${what} ${clip}: failed: ${row.error}`);
      }
      rows.push(row);
    }
    return rows;
  } finally {
    await browser.close();
  }
}

const rows = [];
for (const variant of opts.variants.split(',')) {
  for (const runtime of opts.runtimes.split(',')) {
    try {
      rows.push(...(await session(runtime, variant)));
    } catch (e) {
      // The browser itself failed (launch, page): still one row per clip.
      const error = `not available: ${message(e)}`;
      log(`${runtime} ${variant}: ${error}`);
      rows.push(...spec.clips.map(({ clip, audio_s }) => ({ model: spec.model, runtime, variant, clip, audio_s, error })));
    }
  }
}
writeFileSync(opts.out, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
