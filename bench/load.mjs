// The browser side of `cargo xtask bench load`: each configuration in its own headless Chromium,
// loading the model made by scripts/make_big_model.py while this script reads the renderer's
// memory from /proc. xtask builds and serves everything, then runs
//
//   node bench/load.mjs --base URL --dir DIR --prefix /big/ --out FILE --configs a,b --runs N --timeout-s S
//
// and reads FILE: one line per row, tab-separated key=value pairs; `row=meta` first, then one
// row per configuration and run (`run=1…N`; the configurations take turns, so that a busy spell
// of the machine hits them alike). Progress and the pages' console errors go to stderr.
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { ARGS, chromium, log, withTimeout } from './common.mjs';

const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    dir: { type: 'string' },
    prefix: { type: 'string' },
    out: { type: 'string' },
    configs: { type: 'string' },
    runs: { type: 'string', default: '1' },
    'timeout-s': { type: 'string' },
  },
});

const SAMPLE_MS = 50;
/** Time for the garbage of a configuration's setup to settle before the baseline is read. */
const SETTLE_MS = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- /proc ------------------------------------------------------------------------------------

function read(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // The process has exited.
  }
}

/** Pids of the processes below `root` (the browser) whose command line has `--type=TYPE`. */
function processes(root, type) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = read(`/proc/${name}/stat`);
    if (!stat) continue;
    // Fields after the command name, which may itself hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const found = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift();
    const kids = children.get(pid) ?? [];
    queue.push(...kids);
    // Zygote children rewrite their argv as one space-separated string.
    if (pid !== root && new RegExp(`(^|[\\s\\0])--type=${type}(?=[\\s\\0])`).test(read(`/proc/${pid}/cmdline`) ?? '')) found.push(pid);
  }
  return found;
}

/** The renderer processes below `root`: the page's and any spare ones. */
const renderers = (root) => processes(root, 'renderer');

/** The network service (a utility process), or null. */
function networkProcess(root) {
  return processes(root, 'utility').find((pid) => /network\.mojom\.NetworkService/.test(read(`/proc/${pid}/cmdline`) ?? '')) ?? null;
}

let clockTicks = null;
/** CPU seconds (user + system) the process has used so far; 0 once it is gone. */
function cpuSeconds(pid) {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  const stat = pid && read(`/proc/${pid}/stat`);
  if (!stat) return 0;
  // utime and stime: fields 14 and 15, the 12th and 13th after the command name.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** A `kB` field of /proc/<pid>/status, in bytes; 0 once the process is gone. */
function statusBytes(pid, field) {
  const m = read(`/proc/${pid}/status`)?.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Resets VmHWM to the current VmRSS (Linux ≥ 4.0); false where that is not allowed. */
function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// ---- One configuration ------------------------------------------------------------------------

/** `promise`, or a rejection after --timeout-s. */
const limited = (promise, what) => withTimeout(promise, what, Number(opts['timeout-s']));

let chromiumVersion = 'unknown';

/**
 * Launches a fresh browser (Playwright gives each launch a new temporary profile), sets the
 * configuration up, then measures its load: time in the page, per renderer the peak resident
 * memory over the resident memory just before (VmHWM, reset at the baseline; VmRSS sampled every
 * 50 ms as a cross-check), and the CPU time the loading renderer and the network service used.
 * Then runs the model once for its output.
 */
async function measure(config, run, manifest) {
  const row = { row: config, run, ok: 0 };
  // A browser server, not chromium.launch(): only the server tells the browser's process id.
  const server = await chromium.launchServer({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // wick-gpu needs a WebGPU adapter (SwiftShader, in the GPU process).
    args: config === 'wick-gpu' ? [...ARGS, '--enable-unsafe-webgpu'] : ARGS,
  });
  const browser = await chromium.connect(server.wsEndpoint());
  chromiumVersion = browser.version();
  let sampler = null;
  try {
    const root = server.process().pid;
    const page = await browser.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') log(`[${config}] console.${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (e) => log(`[${config}] page error: ${e.stack ?? e}`));
    page.on('crash', () => log(`[${config}] the page crashed`));
    await page.goto(`${opts.base}/bench/load.html`);
    await page.waitForFunction(() => window.bench);
    await limited(page.evaluate(([c, m]) => window.bench.setup(c, m), [config, manifest]), `${config} setup`);
    await sleep(SETTLE_MS);

    const baseline = new Map(renderers(root).map((pid) => [pid, statusBytes(pid, 'VmRSS')]));
    if (!baseline.size) throw new Error(`no renderer process below the browser (pid ${root})`);
    row.hwmReset = [...baseline.keys()].map(resetPeak).every(Boolean) ? 1 : 0;
    const sampled = new Map(baseline);
    sampler = setInterval(() => {
      for (const pid of renderers(root)) {
        sampled.set(pid, Math.max(sampled.get(pid) ?? 0, statusBytes(pid, 'VmRSS')));
      }
    }, SAMPLE_MS);

    // The GPU process holds what the weights become on the device (SwiftShader: its memory).
    const gpuProcesses = processes(root, 'gpu-process');
    const gpuBaseline = new Map(gpuProcesses.map((pid) => [pid, statusBytes(pid, 'VmRSS')]));
    gpuProcesses.forEach(resetPeak);
    const network = networkProcess(root);
    const cpuBefore = new Map([...baseline.keys(), network].map((pid) => [pid, cpuSeconds(pid)]));
    log(`${config} (run ${run}): loading ${manifest.totalBytes} bytes`);
    row.ms = await limited(page.evaluate(() => window.bench.load()), `${config} load`);
    clearInterval(sampler);
    const cpu = (pid) => cpuSeconds(pid) - (cpuBefore.get(pid) ?? 0);
    row.cpuNetwork = network ? cpu(network) : null;
    // The renderer with the largest rise is the one that loaded (others idle: spare renderers).
    row.peakOver = -Infinity;
    for (const pid of new Set([...baseline.keys(), ...renderers(root)])) {
      const before = baseline.get(pid) ?? 0;
      const hwm = statusBytes(pid, 'VmHWM');
      if (hwm - before > row.peakOver) {
        Object.assign(row, { peakAbs: hwm, peakOver: hwm - before, baseline: before });
        row.sampledOver = (sampled.get(pid) ?? 0) - before;
        row.cpuRenderer = cpu(pid);
      }
    }
    row.gpuOver = Math.max(0, ...gpuProcesses.map((pid) => statusBytes(pid, 'VmHWM') - gpuBaseline.get(pid)));
    Object.assign(row, await page.evaluate(() => window.bench.detail()));
    log(`${config} (run ${run}): ${row.ms.toFixed(0)} ms, peak ${(row.peakOver / 2 ** 20).toFixed(0)} MiB over baseline, GPU process +${(row.gpuOver / 2 ** 20).toFixed(0)} MiB, CPU renderer ${row.cpuRenderer.toFixed(2)} s, network ${row.cpuNetwork?.toFixed(2)} s`);

    const output = await limited(page.evaluate(() => window.bench.run()), `${config} run`);
    if (output !== null) row.output = new Float32Array(new Uint8Array(Buffer.from(output, 'base64')).buffer);
    row.ok = 1;
  } catch (e) {
    // One line in the table: Playwright's prefix off, long messages cut.
    row.error = String(e?.message ?? e).replace(/^page\.evaluate: /, '').slice(0, 300);
    log(`${config}: failed: ${row.error}`);
  } finally {
    clearInterval(sampler);
    // After a renderer crash the connection may be gone already; the server's close kills the rest.
    await browser.close().catch(() => {});
    await server.close();
  }
  return row;
}

// ---- Main -------------------------------------------------------------------------------------

/** Largest |a - b|; Infinity for a length mismatch or a NaN. */
function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** Reads every file once, so the OS page cache holds them before the first configuration. */
async function warmPageCache(paths) {
  for (const path of paths) {
    for await (const _ of createReadStream(path, { highWaterMark: 1 << 24 }));
  }
}

const dir = opts.dir.replace(/\/*$/, '/');
const url = (path) => `${opts.base}${opts.prefix}${path}`;
const made = JSON.parse(readFileSync(`${dir}bench.json`, 'utf8'));
const manifest = {
  ...made,
  modelUrl: url(made.model),
  warmupUrl: url('warmup.onnx'),
  files: made.files.map((f) => ({ ...f, url: url(f.path) })),
  totalBytes: made.files.reduce((sum, f) => sum + f.bytes, 0),
};
const expected = new Float32Array(new Uint8Array(readFileSync(`${dir}expected.bin`)).buffer);
await warmPageCache(made.files.map((f) => dir + f.path));

const rows = [];
for (let run = 1; run <= Number(opts.runs); run++) {
  for (const config of opts.configs.split(',')) rows.push(await measure(config, run, manifest));
}
const ort = rows.find((r) => r.row === 'ort-wasm')?.output;
for (const row of rows) {
  if (!row.output) continue;
  row.diffExpected = maxAbsDiff(row.output, expected);
  if (ort && row.row !== 'ort-wasm') row.diffOrt = maxAbsDiff(row.output, ort);
}

const meta = {
  row: 'meta',
  chromium: chromiumVersion,
  weightBytes: made.weightBytes,
  totalBytes: manifest.totalBytes,
  files: made.files.length,
  tensors: made.tensors,
  rows: made.rows,
  cols: made.cols,
};
const line = (row) =>
  Object.entries(row)
    .filter(([key]) => key !== 'output')
    .map(([key, value]) => `${key}=${String(value).replace(/\s+/g, ' ')}`)
    .join('\t');
writeFileSync(opts.out, [meta, ...rows].map(line).join('\n') + '\n');
