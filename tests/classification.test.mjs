// Image classification in the browser: the classification page (www/classify.html) loads
// EfficientNet-Lite0 from its Hugging Face-style folder (made by scripts/make_vision_models.py,
// served at /vision-models/), and each of scikit-image's photos — chosen as a file, or as a
// sample the page fetches — must get onnxruntime's top-5 labels (reference.json: Pillow + numpy
// preprocessing, onnxruntime). The pipeline API also takes an ImageData, an ImageBitmap and raw
// bytes, and refuses a file that is not an image with bad_input without losing the model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, baseUrl, openBrowser } from './helpers.mjs';

const DIR = process.env.WICK_VISION_MODELS;
const MODEL = 'efficientnet-lite0';
const reference = () => JSON.parse(readFileSync(join(DIR, MODEL, 'reference.json'), 'utf8')).results;

let browser, page;

before(async () => {
  assert.ok(DIR, 'WICK_VISION_MODELS is set by `cargo xtask test` (target/vision-models)');
  ({ browser, page } = await openBrowser('classification'));
  await page.goto(`${baseUrl()}/classify.html`);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('status').textContent)
    || document.getElementById('status').classList.contains('error'), null, { timeout: TIMEOUT });
});

after(async () => {
  await browser?.close();
});

/** The labels the page shows once it has classified the photo it was given. */
async function shownLabels() {
  await page.waitForFunction(() => document.querySelectorAll('#labels li').length === 5, null, { timeout: TIMEOUT });
  return page.evaluate(() => [...document.querySelectorAll('#labels li')]
    .map((li) => ({ label: li.dataset.label, score: Number(li.dataset.score) })));
}

function assertTop5(shown, want, how) {
  assert.deepEqual(shown.map((l) => l.label), want.top5.map((l) => l.label), `${want.file} ${how}`);
  // PNG pixels are decoded exactly as Pillow does; JPEG decoders may differ by a level or two.
  const tolerance = want.file.endsWith('.jpg') ? 1e-2 : 1e-3;
  for (const [i, l] of shown.entries()) {
    assert.ok(Math.abs(l.score - want.top5[i].score) <= tolerance, `${want.file} ${how}: ${l.label} ${l.score} vs ${want.top5[i].score}`);
  }
}

test('the page loads the model with progress and says which backend runs it', { timeout: TIMEOUT }, async () => {
  assert.equal(await page.locator('#status').textContent(), 'ready');
  assert.equal(await page.locator('#backend').textContent(), 'cpu');
  const bar = await page.evaluate(() => ({ ...document.getElementById('progress').dataset }));
  assert.ok(Number(bar.total) > 18e6 && bar.loaded === bar.total, `weights loaded: ${JSON.stringify(bar)}`);
});

test('each photo chosen as a file gets onnxruntime\'s top 5', { timeout: 4 * TIMEOUT }, async () => {
  for (const want of reference()) {
    await page.setInputFiles('#file', join(DIR, MODEL, want.file));
    const shown = await shownLabels();
    console.log(`# ${want.file}: ${shown.map((l) => `${l.label} ${(100 * l.score).toFixed(1)}%`).join('; ')}`);
    assertTop5(shown, want, 'as a file');
  }
});

test('a sample fetched by the page is classified the same way', { timeout: TIMEOUT }, async () => {
  const want = reference().find((r) => r.file.endsWith('coffee.png'));
  await page.selectOption('#sample', 'coffee.png');
  await page.waitForFunction(() => document.querySelector('#labels li')?.dataset.label === 'espresso', null, { timeout: TIMEOUT });
  assertTop5(await shownLabels(), want, 'as a sample');
});

test('the pipeline takes an ImageData, an ImageBitmap and bytes; a non-image is bad_input', { timeout: 2 * TIMEOUT }, async () => {
  const want = reference().find((r) => r.file.endsWith('chelsea.png'));
  const r = await page.evaluate(async ({ url }) => {
    const { pipeline } = await import('/wick/wick.js');
    const classify = await pipeline('image-classification', '/vision-models/efficientnet-lite0/');
    const blob = await (await fetch(url)).blob();
    const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const labels = (result) => result.labels.map((l) => l.label);
    const out = {
      bytes: labels(await classify.run(new Uint8Array(await blob.arrayBuffer()))),
      imageData: labels(await classify.run(ctx.getImageData(0, 0, bitmap.width, bitmap.height))),
      bitmap: labels(await classify.run(bitmap)),
      url: labels(await classify.run(url, { topK: 2 })),
    };
    out.bad = await classify.run(new Uint8Array([1, 2, 3, 4])).then(() => null, (e) => ({ code: e.code, message: e.message }));
    out.after = labels(await classify.run(blob));
    await classify.dispose();
    return out;
  }, { url: `/vision-models/${MODEL}/${want.file}` });
  const top5 = want.top5.map((l) => l.label);
  assert.deepEqual(r.bytes, top5, 'bytes');
  // A PNG's pixels through the browser's decoder are the same pixels.
  assert.deepEqual(r.imageData, top5, 'ImageData');
  assert.deepEqual(r.bitmap, top5, 'ImageBitmap');
  assert.deepEqual(r.url, top5.slice(0, 2), 'URL, topK 2');
  assert.equal(r.bad?.code, 'bad_input', JSON.stringify(r.bad));
  assert.deepEqual(r.after, top5, 'the model still serves');
});
