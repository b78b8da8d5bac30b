// Object detection in the browser: the detection page (www/detect.html) loads MTCNN (faces) and
// ddddocr's YOLOX detector (text) from their Hugging Face-style folders (made by
// scripts/make_detection_models.py, served at /vision-models/), and each bundled photo —
// chosen as a file, or as a sample the page fetches — must get the reference pipeline's boxes
// (reference.json: numpy + onnxruntime following facenet-pytorch and ddddocr) within 2 px, with
// the same labels. The pipeline API takes `threshold` and `iou` and refuses bad ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, baseUrl, openBrowser } from './helpers.mjs';

const DIR = process.env.WICK_VISION_MODELS;
const MAX_PX = 2;
const reference = (model) => JSON.parse(readFileSync(join(DIR, model, 'reference.json'), 'utf8')).images;

let browser, page;

const settled = () => page.waitForFunction(() => {
  const status = document.getElementById('status');
  return status.textContent === 'ready' || status.classList.contains('error');
}, null, { timeout: TIMEOUT });

before(async () => {
  assert.ok(DIR, 'WICK_VISION_MODELS is set by `cargo xtask test` (target/vision-models)');
  ({ browser, page } = await openBrowser('detection'));
  await page.goto(`${baseUrl()}/detect.html`);
  await settled();
});

after(async () => {
  await browser?.close();
});

/** The objects the page lists once it has searched the photo `name`. */
async function shownObjects(name) {
  await page.waitForFunction((n) => document.getElementById('objects').dataset.image === n
    || document.getElementById('status').classList.contains('error'), name, { timeout: TIMEOUT });
  assert.equal(await page.locator('#status').textContent(), 'ready');
  return page.evaluate(() => [...document.querySelectorAll('#objects li')].map((li) => ({
    label: li.dataset.label,
    score: Number(li.dataset.score),
    box: Object.fromEntries(['xmin', 'ymin', 'xmax', 'ymax'].map((k) => [k, Number(li.dataset[k])])),
  })));
}

const pxDiff = (a, b) => Math.max(...['xmin', 'ymin', 'xmax', 'ymax'].map((k) => Math.abs(a[k] - b[k])));

/** Same count and labels; each box matched one to one with a reference box within 2 px. */
function assertObjects(shown, want, how) {
  assert.equal(shown.length, want.objects.length, `${want.file} ${how}: ${shown.length} objects`);
  const free = [...want.objects];
  let worst = 0;
  for (const o of shown) {
    let best = -1;
    for (const [i, w] of free.entries()) {
      if (w.label === o.label && (best < 0 || pxDiff(o.box, w.box) < pxDiff(o.box, free[best].box))) best = i;
    }
    assert.ok(best >= 0, `${want.file} ${how}: no reference ${o.label} left for ${JSON.stringify(o)}`);
    const diff = pxDiff(o.box, free[best].box);
    assert.ok(diff <= MAX_PX, `${want.file} ${how}: ${JSON.stringify(o)} is ${diff} px from ${JSON.stringify(free[best])}`);
    assert.ok(Math.abs(o.score - free[best].score) <= 1e-3, `${want.file} ${how}: score ${o.score} vs ${free[best].score}`);
    worst = Math.max(worst, diff);
    free.splice(best, 1);
  }
  return worst;
}

async function useModel(name) {
  if ((await page.locator('#model').inputValue()) !== name) {
    await page.selectOption('#model', name);
    await page.waitForFunction(() => document.getElementById('status').textContent === 'loading', null, { timeout: TIMEOUT })
      .catch(() => {}); // it may already be done
    await settled();
  }
  assert.equal(await page.locator('#status').textContent(), 'ready');
}

test('the page loads MTCNN with progress and says which backend runs it', { timeout: TIMEOUT }, async () => {
  assert.equal(await page.locator('#status').textContent(), 'ready');
  assert.equal(await page.locator('#backend').textContent(), 'cpu');
  const bar = await page.evaluate(() => ({ ...document.getElementById('progress').dataset }));
  assert.ok(Number(bar.total) > 1.9e6 && bar.loaded === bar.total, `weights loaded: ${JSON.stringify(bar)}`);
});

for (const model of ['mtcnn', 'yolox-ddddocr']) {
  test(`${model}: each photo chosen as a file gets the reference boxes`, { timeout: 4 * TIMEOUT }, async () => {
    await useModel(model);
    for (const want of reference(model)) {
      const t0 = Date.now();
      await page.setInputFiles('#file', join(DIR, model, want.file));
      const shown = await shownObjects(want.file.split('/').pop());
      const worst = assertObjects(shown, want, 'as a file');
      const counts = {};
      for (const o of shown) counts[o.label] = (counts[o.label] ?? 0) + 1;
      console.log(`# ${model} ${want.file}: ${JSON.stringify(counts)}, max box diff ${worst.toFixed(3)} px, `
        + `page ${Date.now() - t0} ms (${await page.locator('#timing').textContent()})`);
    }
  });
}

test('mtcnn: the astronaut\'s face from a sample the page fetches, drawn over the photo', { timeout: 2 * TIMEOUT }, async () => {
  await useModel('mtcnn');
  const want = reference('mtcnn').find((r) => r.file.endsWith('astronaut.png'));
  await page.selectOption('#sample', 'astronaut.png');
  const shown = await shownObjects('astronaut.png');
  assertObjects(shown, want, 'as a sample');
  assert.equal(shown.length, 1);
  assert.equal(shown[0].label, 'face');
  // The box is drawn: the canvas has the photo's size and the box's edge has the box colour.
  const edge = await page.evaluate(({ xmin, ymin, ymax }) => {
    const canvas = document.getElementById('canvas');
    const [r, g, b] = canvas.getContext('2d').getImageData(Math.round(xmin), Math.round((ymin + ymax) / 2), 1, 1).data;
    return { width: canvas.width, height: canvas.height, rgb: [r, g, b] };
  }, shown[0].box);
  assert.deepEqual([edge.width, edge.height], [want.width, want.height]);
  assert.deepEqual(edge.rgb, [0x2f, 0x6f, 0xde], 'the box is stroked in the first label colour');
});

test('the pipeline takes threshold and iou; a bad one is refused and the model still serves', { timeout: 2 * TIMEOUT }, async () => {
  const want = reference('yolox-ddddocr').find((r) => r.file.endsWith('letters.png'));
  const r = await page.evaluate(async ({ url }) => {
    const { pipeline } = await import('/wick/wick.js');
    const detect = await pipeline('object-detection', '/vision-models/yolox-ddddocr/');
    const out = {
      all: (await detect.run(url)).objects,
      strict: (await detect.run(url, { threshold: 0.5 })).objects,
      merged: (await detect.run(url, { iou: 0.0 })).objects,
    };
    out.bad = await detect.run(url, { iou: 1.5 }).then(() => null, (e) => ({ code: e.code, message: e.message }));
    out.after = (await detect.run(url)).objects.length;
    await detect.dispose();
    return out;
  }, { url: `/vision-models/yolox-ddddocr/${want.file}` });
  assertObjects(r.all, want, 'through the pipeline');
  // The glyphs are apart: raising the threshold drops exactly the reference boxes below it.
  assertObjects(r.strict, { ...want, objects: want.objects.filter((o) => o.score > 0.5) }, 'threshold 0.5');
  assert.ok(r.strict.length < r.all.length);
  // IoU 0: any overlap suppresses; "a" and "p" touch, the other glyphs stay.
  assert.ok(r.merged.length < r.all.length && r.merged.length >= 4, `iou 0: ${r.merged.length}`);
  // The page side checks the options before sending (the worker checks them too: bad_input).
  assert.equal(r.bad?.code, 'bad_request', JSON.stringify(r.bad));
  assert.equal(r.after, want.objects.length, 'the model still serves');
});
