// Sentence embeddings in the browser: pipeline('feature-extraction') loads all-MiniLM-L6-v2 from
// its Hugging Face-style folder (scripts/make_text_models.py, served at /text-models/); the
// tokenizer is Hugging Face's `tokenizers`, compiled into the worker. Embeddings and cosine
// similarities must equal the reference (Python tokenizers + onnxruntime + numpy mean pooling)
// within 1e-4.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, gotoBlank, openBrowser } from './helpers.mjs';

const DIR = process.env.WICK_TEXT_MODELS;
let browser, page, reference;

before(async () => {
  assert.ok(DIR, 'WICK_TEXT_MODELS is set by `cargo xtask test` (target/text-models)');
  reference = JSON.parse(readFileSync(join(DIR, 'all-minilm-l6-v2', 'reference.json'), 'utf8'));
  ({ browser, page } = await openBrowser('embeddings'));
  await gotoBlank(page);
});

after(async () => {
  await browser?.close();
});

test('embeddings and cosine similarities equal the reference within 1e-4', { timeout: 2 * TIMEOUT }, async () => {
  const texts = reference.sentences.map((s) => s.text);
  const r = await page.evaluate(async (texts) => {
    const { pipeline } = await import('/wick/wick.js');
    const embed = await pipeline('feature-extraction', '/text-models/all-minilm-l6-v2/', { cache: false });
    const { embeddings, stats } = await embed.run(texts);
    const one = await embed.run(texts[0]);
    const tokens = await embed.run(texts.slice(0, 2), { pooling: 'none', normalize: false });
    const bad = await embed.run(42).then(() => null, (e) => ({ code: e.code, message: e.message }));
    const empty = await embed.run([]).then(() => null, (e) => ({ code: e.code }));
    await embed.dispose();
    return {
      dims: embeddings.dims, data: Array.from(embeddings.data), typed: embeddings.data.constructor.name, runMs: stats.runMs,
      one: Array.from(one.embeddings.data), tokenDims: tokens.embeddings.dims, bad, empty,
    };
  }, texts);
  const d = 384;
  assert.deepEqual(r.dims, [texts.length, d]);
  assert.equal(r.typed, 'Float32Array');
  const row = (i) => r.data.slice(i * d, (i + 1) * d);
  let worst = 0;
  reference.sentences.forEach((s, i) => row(i).forEach((v, k) => { worst = Math.max(worst, Math.abs(v - s.embedding[k])); }));
  let worstCos = 0;
  for (let i = 0; i < texts.length; i++) {
    for (let j = 0; j < texts.length; j++) {
      const cos = row(i).reduce((acc, v, k) => acc + v * row(j)[k], 0);
      worstCos = Math.max(worstCos, Math.abs(cos - reference.cosine[i][j]));
    }
  }
  console.log(`# ${texts.length} sentences in ${r.runMs.toFixed(1)} ms; max |Δ| embeddings ${worst.toExponential(2)}, cosine ${worstCos.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `embeddings differ by ${worst}`);
  assert.ok(worstCos <= 1e-4, `cosine similarities differ by ${worstCos}`);
  // One text alone (no padding) embeds the same.
  assert.ok(Math.max(...r.one.map((v, k) => Math.abs(v - reference.sentences[0].embedding[k]))) <= 1e-4);
  assert.equal(r.tokenDims.length, 3, `pooling none keeps the tokens: ${r.tokenDims}`);
  assert.equal(r.tokenDims[2], d);
  assert.equal(r.bad?.code, 'bad_input', JSON.stringify(r.bad));
  assert.equal(r.empty?.code, 'bad_input', JSON.stringify(r.empty));
});
