// The demo page: draw a digit on the pad, the Wick worker recognises it after each stroke.
// The page only sends the pad's ImageData; cropping, centring, resizing to 28×28 and normalising
// happen in the worker (the digits task). `?model=URL` loads another digits model.
import { pipeline } from './wick/wick.js';
import { describe, loadBar, showStatus } from './common.js';

const $ = (id) => document.getElementById(id);
const pad = $('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true });
const modelUrl = new URLSearchParams(location.search).get('model') ?? './models/digits/model.onnx';

// ---- Probability bars --------------------------------------------------------------------------

const bars = Array.from({ length: 10 }, (_, digit) => {
  const li = document.createElement('li');
  li.dataset.digit = String(digit);
  li.dataset.p = '0';
  li.innerHTML = `<span class="label">${digit}</span>
    <span class="track"><span class="fill"></span></span><span class="value">–</span>`;
  $('probs').append(li);
  return li;
});

function showResult(result) {
  $('digit').textContent = result ? String(result.digit) : '';
  bars.forEach((li, digit) => {
    const p = result ? result.probabilities[digit] : 0;
    li.dataset.p = String(p);
    li.style.setProperty('--p', String(p));
    li.classList.toggle('best', Boolean(result) && digit === result.digit);
    li.querySelector('.value').textContent = result ? `${(p * 100).toFixed(1)}%` : '–';
  });
  $('timing').textContent = result ? `· run ${result.stats.runMs.toFixed(1)} ms` : '';
}

// ---- Drawing -----------------------------------------------------------------------------------

let inked = false;
let generation = 0; // bumped by Clear: answers for an older drawing are dropped
let stroke = null; // {pointerId, last: [x, y]}

function clearPad() {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.lineWidth = 20;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.strokeStyle = '#000';
  ctx.fillStyle = '#000';
  inked = false;
  generation += 1;
  showResult(null);
}

function at(event) {
  const box = pad.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * pad.width) / box.width,
    ((event.clientY - box.top) * pad.height) / box.height,
  ];
}

function line(from, to) {
  ctx.beginPath();
  ctx.moveTo(...from);
  ctx.lineTo(...to);
  ctx.stroke();
}

pad.addEventListener('pointerdown', (event) => {
  if (stroke || event.button > 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  const point = at(event);
  stroke = { pointerId: event.pointerId, last: point };
  ctx.beginPath();
  ctx.arc(point[0], point[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
  ctx.fill();
  inked = true;
});

pad.addEventListener('pointermove', (event) => {
  if (!stroke || event.pointerId !== stroke.pointerId) return;
  for (const e of event.getCoalescedEvents?.() ?? [event]) {
    const point = at(e);
    line(stroke.last, point);
    stroke.last = point;
  }
});

function endStroke(event) {
  if (!stroke || event.pointerId !== stroke.pointerId) return;
  stroke = null;
  predict();
}
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);
$('clear').addEventListener('click', clearPad);

// ---- Prediction --------------------------------------------------------------------------------

let digits = null; // the Pipeline, once loaded
let busy = false;
let again = false;

async function predict() {
  if (!digits || !inked) return;
  if (busy) {
    again = true; // one more run when this one ends, with the newest drawing
    return;
  }
  busy = true;
  try {
    do {
      again = false;
      const asked = generation;
      const result = await digits.run(ctx.getImageData(0, 0, pad.width, pad.height));
      if (asked === generation) showResult(result);
    } while (again && inked);
  } catch (e) {
    showStatus(describe(e), true);
  } finally {
    busy = false;
  }
}

// ---- Start -------------------------------------------------------------------------------------

clearPad();
const bar = loadBar();
try {
  digits = await pipeline('digits', modelUrl, { onProgress: bar.onProgress });
  bar.done(digits);
  predict(); // something may have been drawn while loading
} catch (e) {
  showStatus(describe(e), true);
}
