// The WebGPU probe: `hello` reports the adapter the worker's navigator.gpu gives. Without
// Chromium's --enable-unsafe-webgpu there is none (requestAdapter() resolves null: the fallback
// case) and `capabilities.gpu` is absent; with it, SwiftShader's adapter, whose features and
// limits must equal what the page's own navigator.gpu reports (the independent reference).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TIMEOUT, gotoBlank, openBrowser } from './helpers.mjs';

let plain, webgpu;

before(async () => {
  plain = await openBrowser('webgpu-off');
  webgpu = await openBrowser('webgpu-on', ['--enable-unsafe-webgpu']);
});

after(async () => {
  await plain?.browser.close();
  await webgpu?.browser.close();
});

/** The worker's capabilities.gpu and the page's own adapter, read the same way. */
async function probe(page) {
  await gotoBlank(page);
  return page.evaluate(async () => {
    const { Wick } = await import('/wick/wick.js');
    const wick = await Wick.spawn();
    const { gpu } = wick.capabilities;
    wick.terminate();
    const adapter = await navigator.gpu?.requestAdapter();
    const page = adapter && {
      features: [...adapter.features].sort(),
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      architecture: adapter.info?.architecture ?? '',
    };
    return { gpu: gpu ?? null, page: page ?? null };
  });
}

test('without WebGPU, hello reports no adapter', { timeout: TIMEOUT }, async () => {
  const { gpu, page } = await probe(plain.page);
  assert.equal(page, null, 'the page has no adapter either');
  assert.equal(gpu, null);
});

test('with WebGPU, hello reports the adapter the page also sees', { timeout: TIMEOUT }, async () => {
  const { gpu, page } = await probe(webgpu.page);
  console.log(`# adapter: ${JSON.stringify({ ...gpu, limits: undefined })}; maxStorageBufferBindingSize ${gpu?.limits.maxStorageBufferBindingSize}`);
  assert.ok(page, 'Chromium with --enable-unsafe-webgpu gives the page an adapter');
  assert.ok(gpu, 'and the worker one');
  assert.deepEqual(gpu.features, page.features);
  for (const limit of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup']) {
    assert.equal(gpu.limits[limit], page[limit], limit);
  }
  assert.equal(gpu.architecture, page.architecture);
  assert.equal(typeof gpu.isFallbackAdapter, 'boolean');
  assert.ok(Object.keys(gpu.limits).length >= 25, `every limit: ${Object.keys(gpu.limits)}`);
});
