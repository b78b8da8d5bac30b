// The transcription page: a dropped or chosen audio file goes to the pipeline as it is (WAV is
// decoded in the worker; other formats by the browser); a recording is the microphone's raw
// samples (an AudioWorklet) sent as a Float32Array with its sample rate. The transcript streams
// in piece by piece, then the timed chunks and the timings replace it; Stop cancels.
// `?model=URL` another Whisper folder (onnx/encoder_model*.onnx, onnx/decoder_model_merged*.onnx,
// tokenizer.json, config.json, generation_config.json), `?variant=` its weights (default q4,
// `fp32` for onnx/*.onnx), `?vad=URL` a silero VAD model (`?vad=` none).
import { pipeline } from './wick/wick.js';
import { describe, loadBar, showStatus } from './common.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelUrl = params.get('model') ?? './asr-models/whisper-tiny.en/';
const variant = params.get('variant') ?? 'q4';
const vad = params.get('vad') ?? './asr-models/silero-vad/onnx/model.onnx';

let transcriber = null;
let controller = null; // the AbortController of the transcription running
let recording = null; // {context, stream, blocks} while the microphone records

const clock = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`;

function setBusy(busy) {
  $('stop').disabled = !busy;
  $('record').disabled = !transcriber || (busy && !recording);
  $('file').disabled = busy || !transcriber;
  $('transcript').setAttribute('aria-busy', String(busy));
}

/** Transcribe `audio` (a File or a Float32Array with `sampleRate`), streaming the text in. */
async function transcribe(audio, label, sampleRate) {
  if (!transcriber || controller) return;
  controller = new AbortController();
  setBusy(true);
  showStatus('transcribing');
  $('source').textContent = label;
  $('transcript').textContent = '';
  $('transcript').dataset.pieces = '0';
  $('transcript').dataset.done = 'false';
  $('chunks').replaceChildren();
  $('asr-stats').textContent = '';
  let text = '';
  try {
    const job = transcriber.transcribe(audio, {
      sampleRate, timestamps: $('timestamps').checked, signal: controller.signal,
    });
    for await (const piece of job) {
      text += piece;
      $('transcript').textContent = text;
      $('transcript').dataset.pieces = String(Number($('transcript').dataset.pieces) + 1);
    }
    const result = await job.result;
    $('transcript').textContent = result.text;
    for (const chunk of result.chunks) {
      const li = document.createElement('li');
      const time = document.createElement('time');
      const [start, end] = chunk.timestamp;
      time.textContent = `${clock(start)} → ${end == null ? '…' : clock(end)}`;
      li.append(time, chunk.text);
      $('chunks').append(li);
    }
    const s = result.stats;
    $('asr-stats').textContent = `${s.audioSeconds.toFixed(1)} s of audio (${s.speechSeconds.toFixed(1)} s of speech, `
      + `${s.windows} window${s.windows === 1 ? '' : 's'}) in ${(s.totalMs / 1000).toFixed(2)} s: `
      + `${(1 / Math.max(s.realTimeFactor, 1e-9)).toFixed(1)}× real time · encoder ${s.encoderMs.toFixed(0)} ms`
      + ` · decoder ${s.decoderMs.toFixed(0)} ms (${s.tokens} tokens) · VAD ${s.vadMs.toFixed(0)} ms`;
    $('asr-stats').dataset.realTimeFactor = String(s.realTimeFactor);
    $('transcript').dataset.done = 'true';
    showStatus('ready');
  } catch (e) {
    showStatus(e.name === 'AbortError' ? 'stopped' : describe(e), e.name !== 'AbortError');
  } finally {
    controller = null;
    setBusy(false);
  }
}

function pick(file) {
  if (file) transcribe(file, `${file.name} (${(file.size / 1024).toFixed(0)} kB)`);
}
$('file').addEventListener('change', () => pick($('file').files?.[0]));
$('drop').addEventListener('dragover', (e) => e.preventDefault());
$('drop').addEventListener('drop', (e) => {
  e.preventDefault();
  pick(e.dataTransfer?.files?.[0]);
});
$('stop').addEventListener('click', () => controller?.abort());

async function startRecording() {
  // The worklet first, so that no sample is lost between the microphone starting and the
  // recorder listening.
  const context = new AudioContext();
  await context.audioWorklet.addModule('./recorder-worklet.js');
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  const node = new AudioWorkletNode(context, 'wick-recorder');
  const blocks = [];
  node.port.onmessage = (e) => blocks.push(e.data);
  context.createMediaStreamSource(stream).connect(node);
  recording = { context, stream, blocks };
  $('record').textContent = 'Stop recording';
  $('record').setAttribute('aria-pressed', 'true');
  showStatus('recording');
}

async function stopRecording() {
  const { context, stream, blocks } = recording;
  recording = null;
  stream.getTracks().forEach((t) => t.stop());
  await context.close();
  $('record').textContent = 'Record';
  $('record').setAttribute('aria-pressed', 'false');
  const samples = new Float32Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    samples.set(b, at);
    at += b.length;
  }
  await transcribe(samples, `recording (${(samples.length / context.sampleRate).toFixed(1)} s)`, context.sampleRate);
}

$('record').addEventListener('click', async () => {
  try {
    await (recording ? stopRecording() : startRecording());
  } catch (e) {
    recording = null;
    showStatus(`microphone: ${describe(e)}`, true);
  }
});

const bar = loadBar();
setBusy(false);
try {
  transcriber = await pipeline('automatic-speech-recognition', modelUrl, {
    variant: variant === 'fp32' ? undefined : variant,
    vad: vad || undefined,
    onProgress: bar.onProgress,
  });
  bar.done(transcriber);
  setBusy(false);
} catch (e) {
  showStatus(describe(e), true);
}
