// Speech recognition in the browser, with Whisper tiny.en (q4, and fp32 for the long audio) and silero VAD from
// scripts/make_asr_models.py and scripts/make_vad_reference.py (served at /asr-models/): espeak-ng
// speech of known sentences goes in as WAV files, as Float32Array samples and through the demo
// page (a dropped file, and Chromium's fake microphone); the transcripts are checked against the
// spoken sentences (word error rate) and against onnxruntime's greedy decode of the same audio
// (reference.json), the voice-activity segments against silero's own function. Cancelling and
// bad input leave the worker serving.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, baseUrl, gotoBlank, openBrowser } from './helpers.mjs';
import { wordErrorRate } from '../bench/common.mjs';

const DIR = process.env.WICK_ASR_MODELS;
const WHISPER = '/asr-models/whisper-tiny.en/';
const VAD = '/asr-models/silero-vad/onnx/model.onnx';
const reference = () => JSON.parse(readFileSync(join(DIR, 'whisper-tiny.en', 'reference.json'), 'utf8'));
const vadReference = () => JSON.parse(readFileSync(join(DIR, 'silero-vad', 'reference.json'), 'utf8'));
const clip = (name) => reference().cases.find((c) => c.wav === `audio/${name}.wav`);

let browser, page;

before(async () => {
  assert.ok(DIR, 'WICK_ASR_MODELS is set by `cargo xtask test` (target/asr-models)');
  ({ browser, page } = await openBrowser('asr'));
});

after(async () => {
  await browser?.close();
});

/** Runs `body(transcriber, args)` in a blank page with a speech-recognition pipeline (q4 by
 * default; `fp32`: the full-precision weights) and VAD. */
async function withTranscriber(body, args = {}, variant = 'q4') {
  await gotoBlank(page);
  return page.evaluate(async ({ url, vad, body, args, variant }) => {
    const { pipeline } = await import('/wick/wick.js');
    const transcriber = await pipeline('automatic-speech-recognition', url, {
      variant: variant === 'fp32' ? undefined : variant, vad, cache: false,
    });
    const f32 = async (path) => new Float32Array(await (await fetch(path)).arrayBuffer());
    try {
      // eslint-disable-next-line no-new-func
      return await new Function('transcriber', 'args', 'f32', `return (${body})(transcriber, args, f32);`)(transcriber, args, f32);
    } finally {
      await transcriber.dispose();
    }
  }, { url: WHISPER, vad: VAD, body: body.toString(), args, variant });
}

test('WAV files: the transcript streams piece by piece and reads the spoken sentences', { timeout: 4 * TIMEOUT }, async () => {
  const names = ['fox', 'weather'];
  const r = await withTranscriber(async (transcriber, { urls }) => {
    const out = [];
    for (const url of urls) {
      const job = transcriber.transcribe(url);
      let settled = false;
      job.result.then(() => { settled = true; }, () => { settled = true; });
      const pieces = [];
      let settledAtFirst = null;
      for await (const piece of job) {
        settledAtFirst ??= settled;
        pieces.push(piece);
      }
      out.push({ pieces, settledAtFirst, result: await job.result });
    }
    // run() is the same, as one Promise (transformers.js' shape).
    const viaRun = await transcriber.run(urls[0]);
    return { out, viaRun, task: transcriber.task };
  }, { urls: names.map((n) => `${WHISPER}audio/${n}.wav`) });
  assert.equal(r.task, 'automatic-speech-recognition');
  names.forEach((name, i) => {
    const { pieces, settledAtFirst, result } = r.out[i];
    const want = clip(name);
    const wer = wordErrorRate(result.text, want.sentence);
    console.log(`# ${name}: ${pieces.length} pieces, WER ${(100 * wer).toFixed(1)}%, ${JSON.stringify(result.text)}; stats ${JSON.stringify(result.stats)}`);
    assert.ok(wer <= 0.1, `${name}: word error rate ${(100 * wer).toFixed(1)}% > 10%: ${result.text}`);
    assert.equal(pieces.join(''), result.text, 'the pieces make up the transcript');
    assert.ok(pieces.length >= 3, `several token events, not one: ${pieces.length}`);
    assert.equal(settledAtFirst, false, 'the first piece came before the transcript was complete');
    // One window, timed by the speech VAD found in it: inside the clip.
    assert.equal(result.stats.windows, 1);
    assert.equal(result.chunks.length, 1);
    const [start, end] = result.chunks[0].timestamp;
    assert.ok(start >= 0 && end > start && end <= want.seconds + 0.05, JSON.stringify(result.chunks));
    assert.ok(Math.abs(result.stats.audioSeconds - want.seconds) < 0.01, `${result.stats.audioSeconds} vs ${want.seconds}`);
    assert.ok(result.stats.encoderMs > 0 && result.stats.decoderMs > 0 && result.stats.realTimeFactor > 0);
  });
  assert.equal(r.viaRun.text, r.out[0].result.text);
});

test('Float32Array samples give onnxruntime\'s transcript of the same audio', { timeout: 4 * TIMEOUT }, async () => {
  // The 16 kHz PCM the reference features were computed from; no VAD, so that the window is
  // the whole clip, as onnxruntime saw it.
  const cases = reference().cases.filter((c) => c.seconds < 30);
  const texts = await withTranscriber(async (transcriber, { files }) => {
    const out = [];
    for (const file of files) {
      const samples = await f32(file);
      out.push((await transcriber.wick.transcribe(transcriber.model, samples, { sampleRate: 16000 }).result).text);
    }
    return out;
  }, { files: cases.map((c) => `${WHISPER}${c.pcm16k.file}`) });
  cases.forEach((c, i) => {
    assert.equal(texts[i], c.ort_q4.text.trim(), `${c.wav}: onnxruntime's greedy text`);
  });
});

test('long audio (fp32): silence skipped by VAD, cut into windows, timed chunks in order', { timeout: 6 * TIMEOUT }, async () => {
  const vadRef = vadReference();
  const r = await withTranscriber(async (transcriber, { paragraph, composed }) => {
    const long = await transcriber.transcribe(await f32(paragraph), { sampleRate: 16000, timestamps: true }).result;
    const quiet = await transcriber.transcribe(composed, { timestamps: true }).result;
    return { long, quiet };
  }, { paragraph: `${WHISPER}${clip('paragraph').pcm16k.file}`, composed: `/asr-models/silero-vad/${vadRef.composed.wav}` }, 'fp32');

  const { long, quiet } = r;
  const para = clip('paragraph');
  const wer = wordErrorRate(long.text, para.sentence);
  console.log(`# paragraph: ${long.stats.windows} windows, ${long.chunks.length} chunks, WER ${(100 * wer).toFixed(1)}%, RTF ${long.stats.realTimeFactor.toFixed(3)}`);
  assert.ok(long.stats.windows >= 2, `46 s needs two windows: ${JSON.stringify(long.stats)}`);
  assert.ok(wer <= 0.1, `word error rate ${(100 * wer).toFixed(1)}% > 10%: ${long.text}`);
  assert.ok(long.chunks.length > long.stats.windows, 'timestamps cut windows into segments');
  let last = 0;
  for (const { timestamp: [start, end] } of long.chunks) {
    assert.ok(start >= last - 1e-6 && end >= start && end <= para.seconds + 0.05, JSON.stringify(long.chunks));
    last = start;
  }
  assert.ok(long.chunks.at(-1).timestamp[1] > 30, 'the chunks reach past the first window');

  // 45.8 s with 19 s of silence between six spoken clips.
  const spoken = vadRef.composed.clips.map((name) => clip(name).sentence).join(' ');
  const truth = vadRef.composed.speech.map((s) => [s.start / 16000, s.end / 16000]);
  const quietWer = wordErrorRate(quiet.text, spoken);
  console.log(`# composed: ${quiet.stats.speechSeconds.toFixed(1)} of ${quiet.stats.audioSeconds.toFixed(1)} s transcribed, WER ${(100 * quietWer).toFixed(1)}%`);
  assert.ok(quietWer <= 0.1, `word error rate ${(100 * quietWer).toFixed(1)}% > 10%: ${quiet.text}`);
  assert.ok(quiet.stats.speechSeconds < 0.7 * quiet.stats.audioSeconds, `the silence is skipped: ${JSON.stringify(quiet.stats)}`);
  const near = (t) => truth.some(([a, b]) => t >= a - 0.5 && t <= b + 0.5);
  for (const c of quiet.chunks) {
    assert.ok(near(c.timestamp[0]) && near(c.timestamp[1]), `chunk ${JSON.stringify(c)} is on speech ${JSON.stringify(truth)}`);
  }
});

test('voice-activity-detection finds the segments silero\'s own function finds', { timeout: 2 * TIMEOUT }, async () => {
  const vadRef = vadReference();
  const want = vadRef.composed.silero_segments.find((s) => Object.keys(s.options).length === 0).segments;
  await gotoBlank(page);
  const got = await page.evaluate(async ({ model, wav }) => {
    const { pipeline } = await import('/wick/wick.js');
    const vad = await pipeline('voice-activity-detection', model, { cache: false });
    try {
      return (await vad.run(wav)).segments;
    } finally {
      await vad.dispose();
    }
  }, { model: VAD, wav: `/asr-models/silero-vad/${vadRef.composed.wav}` });
  assert.deepEqual(got.map((s) => [Math.round(s.start * 16000), Math.round(s.end * 16000)]), want);
});

test('cancelling and bad audio are answered, and the pipeline transcribes on', { timeout: 4 * TIMEOUT }, async () => {
  const r = await withTranscriber(async (transcriber, { paragraph, fox }) => {
    const failure = (promise) => promise.then(() => null, (e) => ({ name: e.name, code: e.code, message: e.message }));
    const controller = new AbortController();
    const job = transcriber.transcribe(paragraph, { signal: controller.signal });
    const pieces = [];
    for await (const piece of job) {
      pieces.push(piece);
      if (pieces.length === 3) controller.abort();
    }
    const cancelled = await failure(job.result);
    // Leaving the loop early cancels too.
    const left = transcriber.transcribe(paragraph);
    for await (const _ of left) break; // eslint-disable-line no-unused-vars
    const leftResult = await failure(left.result);
    const empty = await failure(transcriber.transcribe(new Float32Array(0)).result);
    const garbage = await failure(transcriber.transcribe(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])).result);
    const badWav = await failure(transcriber.transcribe(new TextEncoder().encode('RIFF\x10\x00\x00\x00WAVEjunkjunk')).result);
    const after = await transcriber.transcribe(fox).result;
    return { pieces: pieces.length, cancelled, leftResult, empty, garbage, badWav, after: after.text };
  }, { paragraph: `${WHISPER}audio/paragraph.wav`, fox: `${WHISPER}audio/fox.wav` });
  console.log(`# ${JSON.stringify(r)}`);
  assert.equal(r.pieces, 3, 'no piece after the abort');
  assert.deepEqual([r.cancelled?.name, r.cancelled?.code], ['AbortError', 'cancelled']);
  assert.deepEqual([r.leftResult?.name, r.leftResult?.code], ['AbortError', 'cancelled']);
  assert.equal(r.empty?.code, 'bad_input');
  assert.equal(r.garbage?.code, 'bad_input');
  assert.equal(r.badWav?.code, 'bad_input');
  assert.ok(wordErrorRate(r.after, clip('fox').sentence) <= 0.1, r.after);
});

test('the page: a dropped WAV file\'s transcript streams in with its timed chunks', { timeout: 4 * TIMEOUT }, async () => {
  await page.goto(`${baseUrl()}/transcribe.html`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready', null, { timeout: 3 * TIMEOUT });
  const want = clip('stella');
  // A drop, as a user's: a DataTransfer holding the file, dropped on the drop zone.
  await page.evaluate(async (url) => {
    const bytes = await (await fetch(url)).arrayBuffer();
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'stella.wav', { type: 'audio/wav' }));
    document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  }, `${WHISPER}${want.wav}`);
  await page.waitForFunction(() => document.getElementById('transcript').dataset.done === 'true', null, { timeout: 2 * TIMEOUT });
  assert.match(await page.evaluate(() => document.getElementById('source').textContent), /^stella\.wav \(\d+ kB\)$/);
  const shown = await page.evaluate(() => ({
    text: document.getElementById('transcript').textContent,
    pieces: Number(document.getElementById('transcript').dataset.pieces),
    chunks: [...document.querySelectorAll('#chunks li')].map((li) => li.textContent),
    stats: document.getElementById('asr-stats').textContent,
  }));
  console.log(`# page: ${JSON.stringify(shown)}`);
  assert.ok(wordErrorRate(shown.text, want.sentence) <= 0.1, shown.text);
  assert.ok(shown.pieces >= 3, `streamed: ${shown.pieces} pieces`);
  assert.ok(shown.chunks.length >= 1 && /0:0\d\.\d → 0:0\d\.\d/.test(shown.chunks[0]), JSON.stringify(shown.chunks));
  assert.match(shown.stats, /real time/);

  // The file chooser takes the same path.
  await page.setInputFiles('#file', join(DIR, 'whisper-tiny.en', clip('fox').wav));
  await page.waitForFunction(() => document.getElementById('source').textContent.startsWith('fox.wav')
    && document.getElementById('transcript').dataset.done === 'true', null, { timeout: 2 * TIMEOUT });
  const chosen = await page.evaluate(() => document.getElementById('transcript').textContent);
  assert.ok(wordErrorRate(chosen, clip('fox').sentence) <= 0.1, chosen);
});

test('the page records the microphone (Chromium\'s fake capture plays a WAV) and transcribes it', { timeout: 4 * TIMEOUT }, async () => {
  const want = clip('weather');
  const wav = join(DIR, 'whisper-tiny.en', want.wav);
  const mic = await openBrowser('asr-mic', [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${wav}%noloop`,
    '--autoplay-policy=no-user-gesture-required',
  ]);
  try {
    const p = mic.page;
    await p.goto(`${baseUrl()}/transcribe.html`);
    await p.waitForFunction(() => document.getElementById('status').textContent === 'ready', null, { timeout: 3 * TIMEOUT });
    await p.click('#record');
    await p.waitForFunction(() => document.getElementById('status').textContent === 'recording', null, { timeout: TIMEOUT });
    // The clip plays once from the start of the capture; a second more catches its end.
    await p.waitForTimeout(1000 * (want.seconds + 1.5));
    await p.click('#record');
    await p.waitForFunction(() => document.getElementById('transcript').dataset.done === 'true', null, { timeout: 2 * TIMEOUT });
    const text = await p.evaluate(() => document.getElementById('transcript').textContent);
    const source = await p.evaluate(() => document.getElementById('source').textContent);
    const wer = wordErrorRate(text, want.sentence);
    console.log(`# microphone (${source}): WER ${(100 * wer).toFixed(1)}%: ${text}`);
    assert.match(source, /recording \(\d+\.\d s\)/);
    assert.ok(wer <= 0.2, `word error rate ${(100 * wer).toFixed(1)}% > 20%: ${text}`);
  } finally {
    await mic.browser.close();
  }
});
