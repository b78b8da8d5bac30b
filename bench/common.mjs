// What the Node drivers of `cargo xtask bench` (latency.mjs, generation.mjs, load.mjs) share:
// the browser, its flags, logging, medians and time limits.
import { createRequire } from 'node:module';

// playwright-core is a dependency of the browser tests; use their copy.
export const { chromium } = createRequire(new URL('../tests/package.json', import.meta.url))('playwright-core');

/** The flags of the browser tests (tests/helpers.mjs). */
export const ARGS = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A fresh headless Chromium (xtask names the binary in CHROMIUM). */
export function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ARGS });
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
