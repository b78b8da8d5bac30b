// What the Node drivers of `cargo xtask bench` (latency.mjs, generation.mjs, load.mjs, asr.mjs)
// share: the browser, its flags, logging, medians, time limits and word error rates.
import { createRequire } from 'node:module';

// playwright-core is a dependency of the browser tests; use their copy.
export const { chromium } = createRequire(new URL('../tests/package.json', import.meta.url))('playwright-core');

/** The flags of the browser tests (tests/helpers.mjs). */
export const ARGS = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A fresh headless Chromium (xtask names the binary in CHROMIUM). */
/** A headless Chromium; `extraArgs` e.g. `['--enable-unsafe-webgpu']` for a WebGPU adapter. */
export function launch(extraArgs = []) {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: [...ARGS, ...extraArgs] });
}

export const log = (line) => process.stderr.write(`bench: ${line}\n`);

/** The median of the numbers in `xs` (nulls left out); null when there are none. */
export function median(xs) {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `promise`, or a rejection naming `what` after `seconds`. */
export function withTimeout(promise, what, seconds) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** The words of `text` as word error rates count them: lower case, hyphens split words, other
 * punctuation dropped (scripts/make_asr_models.py's `normalize_words`). */
export function words(text) {
  return text.toLowerCase().replaceAll('-', ' ').replace(/[^a-z0-9' ]+/g, ' ').split(' ').filter(Boolean);
}

/** Word error rate of `hypothesis` against `reference`: the word-level Levenshtein distance
 * (substitutions, insertions, deletions) over the reference's word count. */
export function wordErrorRate(hypothesis, reference) {
  const [h, r] = [words(hypothesis), words(reference)];
  let prev = Array.from({ length: r.length + 1 }, (_, j) => j);
  for (let i = 1; i <= h.length; i++) {
    const cur = [i];
    for (let j = 1; j <= r.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (h[i - 1] === r[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return r.length ? prev[r.length] / r.length : h.length ? 1 : 0;
}
