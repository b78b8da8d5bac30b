// The classification page: a dropped, chosen or sample photo goes to the worker as its file
// bytes (decoded, resized and normalised there); the top-5 labels come back as bars.
// `?model=URL` loads another model folder (Hugging Face layout with config.json and
// preprocessor_config.json).
import { pipeline } from './wick/wick.js';
import { describe, loadBar, showStatus } from './common.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelUrl = params.get('model') ?? './vision-models/efficientnet-lite0/';

function showLabels(result) {
  $('labels').replaceChildren(...(result?.labels ?? []).map(({ label, score }, i) => {
    const li = document.createElement('li');
    li.dataset.label = label;
    li.dataset.score = String(score);
    li.style.setProperty('--p', String(score));
    li.classList.toggle('best', i === 0);
    li.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    li.querySelector('.label').textContent = label;
    li.querySelector('.value').textContent = `${(score * 100).toFixed(1)}%`;
    return li;
  }));
  $('timing').textContent = result ? `· run ${result.stats.runMs.toFixed(0)} ms` : '';
}

let classifier = null;
let latest = 0; // answers for an older photo are dropped

/** Show `blob` and classify it (its bytes go to the worker as they are). */
async function classify(blob) {
  const asked = ++latest;
  const photo = $('photo');
  URL.revokeObjectURL(photo.src);
  photo.src = URL.createObjectURL(blob);
  showLabels(null);
  if (!classifier) return;
  showStatus('classifying');
  try {
    const result = await classifier.run(blob, { topK: 5 });
    if (asked === latest) {
      showLabels(result);
      showStatus('ready');
    }
  } catch (e) {
    if (asked === latest) showStatus(describe(e), true);
  }
}

$('file').addEventListener('change', () => {
  const file = $('file').files?.[0];
  if (file) classify(file);
});
$('drop').addEventListener('dragover', (e) => e.preventDefault());
$('drop').addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (file) classify(file);
});
$('sample').addEventListener('change', async () => {
  const name = $('sample').value;
  if (!name) return;
  try {
    const response = await fetch(new URL(`images/${name}`, new URL(modelUrl, location.href)));
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    classify(await response.blob());
  } catch (e) {
    showStatus(describe(e), true);
  }
});

const bar = loadBar();
try {
  classifier = await pipeline('image-classification', modelUrl, { onProgress: bar.onProgress });
  bar.done(classifier);
} catch (e) {
  showStatus(describe(e), true);
}
