// What every demo page shares: the load bar (progress per file, summed), the status line, the
// backend, and error text. Each page has the same elements: #progress, #progress-text, #status,
// #backend, #timing (see index.html).

const $ = (id) => document.getElementById(id);

export const bytes = (n) =>
  n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1 << 10 ? `${(n / (1 << 10)).toFixed(0)} kB` : `${n} B`;

export const describe = (e) => (e && e.code ? `${e.message} (${e.code})` : String(e?.message ?? e));

export function showStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

/** The load bar. `onProgress` goes to pipeline(); `done(pipeline)` fills the bar and the state. */
export function loadBar() {
  const files = new Map(); // file → {loaded, total}
  const show = (done = false) => {
    let loaded = 0;
    let total = 0;
    for (const file of files.values()) {
      loaded += file.loaded;
      total += file.total ?? file.loaded; // unknown length: count what came
    }
    if (done) loaded = total = Math.max(total, loaded);
    const bar = $('progress');
    bar.max = total || 1;
    bar.value = done ? bar.max : loaded;
    bar.dataset.loaded = String(loaded);
    bar.dataset.total = String(total);
    const percent = total ? Math.floor((100 * loaded) / total) : 0;
    $('progress-text').textContent = `${bytes(loaded)} / ${bytes(total)} (${percent}%)`;
  };
  show();
  return {
    onProgress({ file, loaded, total }) {
      files.set(file, { loaded, total });
      show();
    },
    done(pipe) {
      show(true);
      $('backend').textContent = pipe.backend;
      $('timing').textContent = `· loaded in ${Math.round(pipe.info.loadMs)} ms`;
      showStatus('ready');
    },
  };
}
