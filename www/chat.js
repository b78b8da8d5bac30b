// The chat page: the conversation is kept here as chat messages [{role, content}] and sent
// whole with each question (the worker applies the model's chat template); the answer streams
// in piece by piece from the pipeline's Generation, and Stop aborts it through an AbortSignal.
// `?model=URL` loads another model folder (Hugging Face layout: onnx/model_{variant}.onnx,
// tokenizer.json, tokenizer_config.json, config.json, generation_config.json), `?variant=`
// another weight file (default q4), `?max=N` the most tokens an answer may have (default 256).
import { pipeline } from './wick/wick.js';
import { describe, loadBar, showStatus } from './common.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelUrl = params.get('model') ?? './textgen-models/smollm2-135m-instruct/';
const variant = params.get('variant') ?? 'q4';
const maxNewTokens = Number(params.get('max') ?? 256);

/** The conversation so far, as the model sees it. */
const messages = [];
let generator = null;
let controller = null; // the AbortController of the answer being generated

function addMessage(role, text) {
  const li = document.createElement('li');
  li.className = role;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(body);
  $('conversation').append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

function setBusy(busy) {
  $('send').disabled = busy || !generator;
  $('stop').disabled = !busy;
  $('reset').disabled = busy;
  $('conversation').setAttribute('aria-busy', String(busy));
}

function showStats(li, stats) {
  const text = stats
    ? `prefill ${stats.prefillMs.toFixed(0)} ms (${stats.promptTokens} tokens, ${stats.prefillTokS.toFixed(0)} tok/s)`
      + ` · decode ${stats.decodeTokS.toFixed(1)} tok/s (${stats.generatedTokens} tokens)`
    : '';
  $('gen-stats').textContent = text;
  if (stats) {
    Object.assign($('gen-stats').dataset, {
      prefillMs: String(stats.prefillMs),
      decodeTokS: String(stats.decodeTokS),
      generatedTokens: String(stats.generatedTokens),
    });
    const note = document.createElement('span');
    note.className = 'answer-stats';
    note.textContent = text;
    li.append(note);
  }
}

/** Ask `question` and stream the answer into the conversation. */
async function ask(question) {
  messages.push({ role: 'user', content: question });
  addMessage('user', question);
  const li = addMessage('assistant', '');
  const body = li.querySelector('.text');
  li.classList.add('streaming');
  li.dataset.pieces = '0';
  controller = new AbortController();
  setBusy(true);
  showStatus('generating');
  showStats(li, null);
  let answer = '';
  try {
    const generation = generator.generate(messages, { maxNewTokens, signal: controller.signal });
    for await (const piece of generation) {
      answer += piece;
      body.textContent = answer;
      li.dataset.pieces = String(Number(li.dataset.pieces) + 1);
      li.scrollIntoView({ block: 'end' });
    }
    const result = await generation.result;
    body.textContent = answer = result.text;
    li.dataset.finish = result.finish;
    messages.push({ role: 'assistant', content: answer });
    showStats(li, result.stats);
    showStatus('ready');
  } catch (e) {
    if (e.name === 'AbortError') {
      // Stopped: what was said so far stays in the conversation.
      li.dataset.finish = 'stopped';
      messages.push({ role: 'assistant', content: answer });
      showStatus('ready');
    } else {
      li.dataset.finish = 'error';
      messages.pop(); // the question was not answered: ask again
      showStatus(describe(e), true);
    }
  } finally {
    li.classList.remove('streaming');
    controller = null;
    setBusy(false);
    $('prompt').focus();
  }
}

$('ask').addEventListener('submit', (e) => {
  e.preventDefault();
  const question = $('prompt').value.trim();
  if (!question || !generator || controller) return;
  $('prompt').value = '';
  ask(question);
});
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('ask').requestSubmit();
  }
});
$('stop').addEventListener('click', () => controller?.abort());
$('reset').addEventListener('click', () => {
  messages.length = 0;
  $('conversation').replaceChildren();
  $('gen-stats').textContent = '';
});

const bar = loadBar();
setBusy(false);
try {
  generator = await pipeline('text-generation', modelUrl, { variant, onProgress: bar.onProgress });
  bar.done(generator);
  setBusy(false);
  $('prompt').focus();
} catch (e) {
  showStatus(describe(e), true);
}
