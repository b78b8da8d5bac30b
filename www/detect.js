// The detection page: a dropped, chosen or sample photo goes to the worker as its file bytes
// (decoded, resized and searched there); the boxes come back in the photo's pixels and are
// drawn over it, labelled with their scores. The select switches detector (each a Hugging Face
// style folder under ./vision-models/ with config.json and onnx/model.onnx); `?model=NAME`
// picks one at start, `?models=URL` serves the folders from elsewhere.
import { pipeline } from './wick/wick.js';
import { describe, loadBar, showStatus } from './common.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const root = new URL(params.get('models') ?? './vision-models/', location.href);
/** The photos that come with each model folder (images/). */
const SAMPLES = {
  mtcnn: ['astronaut.png', 'coffee.png'],
  'yolox-ddddocr': ['letters.png', 'page.png'],
};
const COLOURS = ['#2f6fde', '#d1495b', '#2a9d8f', '#e9a23b', '#7b5ea7', '#3d5a80'];

let detector = null;
let current = null; // {name, blob, bitmap} of the photo shown
let latest = 0; // answers for an older photo or model are dropped

function draw(objects) {
  const canvas = $('canvas');
  const ctx = canvas.getContext('2d');
  if (!current) return;
  ctx.drawImage(current.bitmap, 0, 0);
  // Line width and text size in photo pixels, so they look the same on any photo.
  const unit = Math.max(1, Math.round(Math.max(canvas.width, canvas.height) / 300));
  ctx.lineWidth = 2 * unit;
  ctx.font = `${11 * unit}px system-ui, sans-serif`;
  ctx.textBaseline = 'bottom';
  const labels = [...new Set(objects.map((o) => o.label))];
  const colour = (label) => COLOURS[labels.indexOf(label) % COLOURS.length];
  for (const { label, box } of objects) {
    ctx.strokeStyle = colour(label);
    ctx.strokeRect(box.xmin, box.ymin, box.xmax - box.xmin, box.ymax - box.ymin);
  }
  // Captions after every box, the best last: on top where they overlap.
  for (const { label, score, box } of [...objects].reverse()) {
    ctx.fillStyle = colour(label);
    const text = `${label} ${(score * 100).toFixed(0)}%`;
    const w = ctx.measureText(text).width + 4 * unit;
    const top = box.ymin >= 14 * unit ? box.ymin : box.ymin + 14 * unit;
    ctx.fillRect(box.xmin - unit, top - 13 * unit, w, 13 * unit);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, box.xmin + unit, top - unit);
  }
}

function showObjects(result, name) {
  const objects = result?.objects ?? [];
  const list = $('objects');
  list.replaceChildren(...objects.map(({ label, score, box }) => {
    const li = document.createElement('li');
    Object.assign(li.dataset, { label, score: String(score) }, Object.fromEntries(Object.entries(box).map(([k, v]) => [k, String(v)])));
    const r = (v) => Math.round(v);
    li.textContent = `${label} ${(score * 100).toFixed(1)}% — (${r(box.xmin)}, ${r(box.ymin)}) to (${r(box.xmax)}, ${r(box.ymax)})`;
    return li;
  }));
  // Tests wait for this: which photo the list is for.
  if (result) list.dataset.image = name;
  else delete list.dataset.image;
  $('count').textContent = result ? `${objects.length} object${objects.length === 1 ? '' : 's'}` : 'objects';
  $('timing').textContent = result ? `· run ${result.stats.runMs.toFixed(0)} ms` : '';
  draw(objects);
}

/** Detect in the current photo with the current model. */
async function detect() {
  const asked = ++latest;
  showObjects(null);
  if (!detector || !current) return;
  showStatus('detecting');
  const value = $('threshold').value;
  const options = value === '' ? {} : { threshold: Number(value) };
  try {
    const result = await detector.run(current.blob, options);
    if (asked === latest) {
      showObjects(result, current.name);
      showStatus('ready');
    }
  } catch (e) {
    if (asked === latest) showStatus(describe(e), true);
  }
}

/** Show `blob` (named `name`) and detect in it. */
async function show(blob, name) {
  try {
    const bitmap = await createImageBitmap(blob);
    current?.bitmap.close();
    current = { name, blob, bitmap };
    const canvas = $('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    await detect();
  } catch (e) {
    showStatus(describe(e), true);
  }
}

async function load(name) {
  latest++;
  $('sample').replaceChildren(new Option('—', ''), ...(SAMPLES[name] ?? []).map((s) => new Option(s)));
  showStatus('loading');
  $('backend').textContent = '—';
  const old = detector;
  detector = null;
  await old?.dispose();
  const bar = loadBar();
  try {
    detector = await pipeline('object-detection', new URL(`${name}/`, root).href, { onProgress: bar.onProgress });
    bar.done(detector);
    if (current) await detect();
  } catch (e) {
    showStatus(describe(e), true);
  }
}

$('file').addEventListener('change', () => {
  const file = $('file').files?.[0];
  if (file) show(file, file.name);
});
$('drop').addEventListener('dragover', (e) => e.preventDefault());
$('drop').addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (file) show(file, file.name);
});
$('sample').addEventListener('change', async () => {
  const name = $('sample').value;
  if (!name) return;
  try {
    const response = await fetch(new URL(`${$('model').value}/images/${name}`, root));
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    show(await response.blob(), name);
  } catch (e) {
    showStatus(describe(e), true);
  }
});
$('threshold').addEventListener('change', () => detect());
$('model').addEventListener('change', () => load($('model').value));

if (params.get('model') in SAMPLES) $('model').value = params.get('model');
await load($('model').value);
