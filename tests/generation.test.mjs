// Text generation in the browser, with the tiny random Llama of scripts/make_textgen_models.py
// (SmolLM2's tokenizer and chat template, 4-bit weights; served at /textgen-models/): the
// pipeline's greedy answer streams piece by piece and equals onnxruntime's (reference.json,
// variants.q4.greedy_text); the chat page streams an answer into the page and its Stop button
// stops it; an AbortSignal cancels a generation; a bad option is bad_input. After each failure
// the model still serves.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, baseUrl, gotoBlank, openBrowser } from './helpers.mjs';

const DIR = process.env.WICK_TEXTGEN_MODELS;
const MODEL = 'tiny-llama-random';
const MODEL_URL = `/textgen-models/${MODEL}/`;
const reference = () => JSON.parse(readFileSync(join(DIR, MODEL, 'reference.json'), 'utf8'));
/** A long answer, so that there is time to stop it (prompt + answer within the 2048 positions). */
const LONG = 2000;

let browser, page;

before(async () => {
  assert.ok(DIR, 'WICK_TEXTGEN_MODELS is set by `cargo xtask test` (target/textgen-models)');
  ({ browser, page } = await openBrowser('generation'));
});

after(async () => {
  await browser?.close();
});

/** Runs `body(generator, args)` in a blank page with a text-generation pipeline of the tiny model. */
async function withGenerator(body, args = {}) {
  await gotoBlank(page);
  return page.evaluate(async ({ url, body, args }) => {
    const { pipeline } = await import('/wick/wick.js');
    const generator = await pipeline('text-generation', url, { variant: 'q4' });
    try {
      // eslint-disable-next-line no-new-func
      return await new Function('generator', 'args', `return (${body})(generator, args);`)(generator, args);
    } finally {
      await generator.dispose();
    }
  }, { url: MODEL_URL, body: body.toString(), args });
}

test('greedy generate() streams onnxruntime\'s answer piece by piece', { timeout: 2 * TIMEOUT }, async () => {
  const ref = reference();
  const want = ref.variants.q4;
  const r = await withGenerator(async (generator, { messages, prompt, max }) => {
    const generation = generator.generate(messages, { maxNewTokens: max });
    let settled = false;
    generation.result.then(() => { settled = true; }, () => { settled = true; });
    const pieces = [];
    const settledAtPiece = [];
    for await (const piece of generation) {
      pieces.push(piece);
      settledAtPiece.push(settled);
    }
    const result = await generation.result;
    // The same prompt given as the templated text (no template applied) gives the same answer.
    const asText = await generator.generate(prompt, { maxNewTokens: max }).result;
    return { pieces, settledAtPiece, result, asText: asText.text, task: generator.task };
  }, { messages: ref.messages, prompt: ref.prompt, max: ref.max_new_tokens });
  console.log(`# ${r.pieces.length} pieces: ${JSON.stringify(r.pieces.slice(0, 6))}…; stats ${JSON.stringify(r.result.stats)}`);
  assert.equal(r.task, 'text-generation');
  assert.equal(r.pieces.join(''), r.result.text, 'the pieces make up the answer');
  assert.equal(r.result.text, want.greedy_text, 'onnxruntime\'s greedy answer');
  assert.ok(r.pieces.length >= ref.max_new_tokens / 2, `several token events, not one: ${r.pieces.length}`);
  assert.equal(r.settledAtPiece[0], false, 'the first piece came before the answer was complete');
  assert.equal(r.result.finish, 'length');
  assert.equal(r.result.stats.promptTokens, ref.prompt_ids.length);
  assert.equal(r.result.stats.generatedTokens, ref.max_new_tokens);
  assert.ok(r.result.stats.prefillMs > 0 && r.result.stats.decodeTokS > 0, JSON.stringify(r.result.stats));
  assert.equal(r.asText, want.greedy_text, 'a text prompt is fed as it is');
});

test('an AbortSignal cancels a generation: the pieces stop, result rejects, the model serves on', { timeout: 2 * TIMEOUT }, async () => {
  const r = await withGenerator(async (generator, { long }) => {
    const cancelled = (promise) => promise.then(() => null, (e) => ({ name: e.name, code: e.code }));
    // Aborted after three pieces: the iteration ends quietly, result rejects.
    const controller = new AbortController();
    const generation = generator.generate([{ role: 'user', content: 'Tell me a long story.' }],
      { maxNewTokens: long, signal: controller.signal });
    let pieces = 0;
    for await (const piece of generation) {
      if (++pieces === 3) controller.abort();
    }
    const aborted = await cancelled(generation.result);
    // Leaving a `for await` early cancels too.
    const left = generator.generate('Once upon a time', { maxNewTokens: long });
    let seen = 0;
    for await (const piece of left) {
      if (++seen === 2) break;
    }
    const broke = await cancelled(left.result);
    // A signal aborted before the request is sent: nothing is generated.
    const early = generator.generate('Hello', { signal: AbortSignal.abort() });
    const earlyPieces = [];
    for await (const piece of early) earlyPieces.push(piece);
    const before = await cancelled(early.result);
    // The worker serves the next generation.
    const next = await generator.generate('Hello', { maxNewTokens: 4 }).result;
    return { pieces, aborted, broke, earlyPieces, before, next };
  }, { long: LONG });
  assert.deepEqual(r.aborted, { name: 'AbortError', code: 'cancelled' });
  assert.ok(r.pieces >= 3 && r.pieces < LONG / 2, `stopped within a few pieces: ${r.pieces}`);
  assert.deepEqual(r.broke, { name: 'AbortError', code: 'cancelled' }, 'break cancels');
  assert.deepEqual(r.earlyPieces, []);
  assert.deepEqual(r.before, { name: 'AbortError', code: 'cancelled' });
  assert.equal(r.next.stats.generatedTokens, 4);
  assert.equal(r.next.finish, 'length');
});

test('a bad option is bad_input and the model still serves', { timeout: TIMEOUT }, async () => {
  const r = await withGenerator(async (generator) => {
    const error = (e) => ({ name: e.name, code: e.code, message: e.message });
    const bad = generator.generate('Hello', { temperature: -1 });
    const thrown = await (async () => {
      try {
        for await (const piece of bad) return { piece };
      } catch (e) {
        return error(e);
      }
      return null;
    })();
    const result = await bad.result.then(() => null, error);
    const badType = await generator.generate('Hello', { maxNewTokens: 'many' }).result.then(() => null, error);
    const badPrompt = await generator.generate(42).result.then(() => null, error);
    const run = await generator.run('Hello').then(() => null, error);
    // Seeded sampling: the same seed, the same text.
    const sample = (seed) => generator.generate('Hello', { maxNewTokens: 8, temperature: 0.8, topK: 20, topP: 0.9, seed }).result;
    const [a, b] = [await sample(7), await sample(7)];
    return { thrown, result, badType, badPrompt, run, a: a.text, b: b.text, n: a.stats.generatedTokens };
  });
  assert.equal(r.thrown?.code, 'bad_input', `the iteration throws: ${JSON.stringify(r.thrown)}`);
  assert.equal(r.result?.code, 'bad_input', JSON.stringify(r.result));
  assert.match(r.result.message, /temperature/);
  assert.equal(r.badType?.code, 'bad_request', JSON.stringify(r.badType));
  assert.equal(r.badPrompt?.code, 'bad_input', JSON.stringify(r.badPrompt));
  assert.equal(r.run?.code, 'bad_task', JSON.stringify(r.run));
  assert.equal(r.n, 8, 'the model still serves');
  assert.equal(r.a, r.b, 'a seed makes sampling repeatable');
});

/** The chat page on the tiny model, `max` tokens per answer, once it is ready. */
async function openChat(max) {
  await page.goto(`${baseUrl()}/chat.html?model=${encodeURIComponent(MODEL_URL)}&max=${max}`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready'
    || document.getElementById('status').classList.contains('error'), null, { timeout: TIMEOUT });
  assert.equal(await page.locator('#status').textContent(), 'ready');
}

/** The last answer on the chat page. */
const lastAnswer = () => page.evaluate(() => {
  const li = [...document.querySelectorAll('#conversation li.assistant')].at(-1);
  return li && { text: li.querySelector('.text').textContent, pieces: Number(li.dataset.pieces), finish: li.dataset.finish ?? null };
});

test('the chat page streams an answer and shows its timings', { timeout: 2 * TIMEOUT }, async () => {
  const ref = reference();
  await openChat(8);
  assert.equal(await page.locator('#backend').textContent(), 'cpu');
  await page.fill('#prompt', ref.messages[0].content);
  await page.press('#prompt', 'Enter');
  await page.waitForFunction(() => document.querySelector('#conversation li.assistant')?.dataset.finish, null, { timeout: TIMEOUT });
  const answer = await lastAnswer();
  assert.equal(answer.finish, 'length');
  assert.ok(answer.text.length > 0 && ref.variants.q4.greedy_text.startsWith(answer.text),
    `the first tokens of the greedy answer: ${JSON.stringify(answer.text)}`);
  assert.ok(answer.pieces > 1, `streamed in pieces: ${answer.pieces}`);
  const stats = await page.evaluate(() => ({ ...document.getElementById('gen-stats').dataset, text: document.getElementById('gen-stats').textContent }));
  console.log(`# chat: ${JSON.stringify(answer.text)}; ${stats.text}`);
  assert.ok(Number(stats.prefillMs) > 0 && Number(stats.decodeTokS) > 0, JSON.stringify(stats));
  assert.match(stats.text, /prefill \d+ ms.*decode [\d.]+ tok\/s/);
  assert.equal(await page.locator('#status').textContent(), 'ready');
});

test('Stop stops the answer mid-way and the chat takes another question', { timeout: 2 * TIMEOUT }, async () => {
  await openChat(LONG);
  await page.fill('#prompt', 'Tell me a long story.');
  await page.press('#prompt', 'Enter');
  // Tokens stream into the page while it generates.
  await page.waitForFunction(() => Number(document.querySelector('#conversation li.assistant')?.dataset.pieces) >= 2, null, { timeout: TIMEOUT });
  const early = await lastAnswer();
  await page.waitForFunction((n) => Number(document.querySelector('#conversation li.assistant')?.dataset.pieces) > n, early.pieces, { timeout: TIMEOUT });
  assert.equal(await page.locator('#status').textContent(), 'generating');
  assert.equal(await page.locator('#stop').isEnabled(), true);
  await page.click('#stop');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready', null, { timeout: TIMEOUT });
  const stopped = await lastAnswer();
  console.log(`# stopped after ${stopped.pieces} pieces of at most ${LONG}`);
  assert.equal(stopped.finish, 'stopped');
  assert.ok(stopped.pieces > early.pieces && stopped.pieces < LONG / 2, `stopped mid-answer after ${stopped.pieces} pieces`);
  await page.waitForTimeout(500);
  assert.deepEqual(await lastAnswer(), stopped, 'the answer no longer grows');
  assert.equal(await page.locator('#stop').isEnabled(), false);
  assert.equal(await page.locator('#send').isEnabled(), true);

  // Another question: a second answer streams, and can be stopped too.
  await page.fill('#prompt', 'And another one?');
  await page.press('#prompt', 'Enter');
  await page.waitForFunction(() => {
    const answers = document.querySelectorAll('#conversation li.assistant');
    return answers.length === 2 && Number(answers[1].dataset.pieces) >= 2;
  }, null, { timeout: TIMEOUT });
  await page.click('#stop');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready', null, { timeout: TIMEOUT });
  assert.equal((await lastAnswer()).finish, 'stopped');
  assert.equal(await page.locator('#conversation li').count(), 4, 'two questions, two answers');
});
