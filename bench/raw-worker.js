// The `raw` configuration of `cargo xtask bench load`: fetch each file and read its body stream
// to the end, counting and discarding the chunks — the floor any streaming loader pays.
self.onmessage = async ({ data: { urls } }) => {
  try {
    let bytes = 0;
    // One file after another, as Wick streams them.
    for (const url of urls) {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
      }
    }
    self.postMessage({ ok: true, bytes });
  } catch (e) {
    self.postMessage({ ok: false, error: String(e?.message ?? e) });
  }
};
