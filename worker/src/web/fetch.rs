//! Streaming reads: a response body (or a cached file) is read chunk by chunk from its
//! ReadableStream and each `Uint8Array` chunk is handed to a consumer that copies it to its
//! final place. Progress events are posted as bytes arrive (throttled), ending with one at 100%.
//! A connection that drops mid-file is resumed with an HTTP `Range` request from the first byte
//! not yet consumed, so the consumer sees every byte exactly once, in order.
//!
//! Bodies are byte streams in Chromium (and Firefox), so they are read with a BYOB reader into
//! one reusable buffer per stream, each read waiting (`min`) for what arrives in about
//! [`READ_TARGET_MS`], up to [`READ_BYTES`] ([`ReadPacer`]): no chunk is allocated (nor
//! collected), and on a fast network the worker wakes once per MiB instead of once per few
//! kilobytes that happen to be in the network pipe. Where a body is not a byte stream (Safari),
//! the default reader hands out a fresh chunk per read.

use js_sys::{ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStream, ReadableStreamDefaultReader, RequestInit, Response};
use wick_shared::Event;

use super::{now_ms, post, scope};
use crate::error::{Result, WickError};
use crate::loader::{Chunk, ProgressThrottle, ReadPacer};

/// Progress events at most this often per file.
const PROGRESS_INTERVAL_MS: f64 = 50.0;
/// Failed attempts in a row (no byte gained between them) before a download is given up.
const MAX_ATTEMPTS: u32 = 5;
/// The size of a BYOB read's buffer: the most a read waits for. 256 KiB to 4 MiB measured alike.
const READ_BYTES: u32 = 1 << 20;
/// A read waits for what arrived in this long at the rate of the read before, so that slow
/// downloads still report progress about this often.
const READ_TARGET_MS: f64 = 20.0;

#[wasm_bindgen]
extern "C" {
    /// `ReadableStreamBYOBReader`, bound here for `read(view, {min})`, which web-sys lacks. A
    /// browser without `min` ignores it and answers with what it has, as a plain BYOB read does.
    #[wasm_bindgen(js_name = ReadableStreamBYOBReader)]
    type ByobReader;
    /// Throws unless `stream` is a byte stream.
    #[wasm_bindgen(constructor, catch, js_class = ReadableStreamBYOBReader)]
    fn new(stream: &ReadableStream) -> std::result::Result<ByobReader, JsValue>;
    #[wasm_bindgen(method, js_class = ReadableStreamBYOBReader)]
    fn read(this: &ByobReader, view: &Uint8Array, options: &Object) -> Promise;
    #[wasm_bindgen(method, js_class = ReadableStreamBYOBReader)]
    fn cancel(this: &ByobReader) -> Promise;
}

// SAFETY: `copy_to_uninit` writes all of `dst` (it panics on a length mismatch).
unsafe impl Chunk for Uint8Array {
    fn len(&self) -> usize {
        self.length() as usize
    }
    fn copy_to(&self, range: std::ops::Range<usize>, dst: &mut [std::mem::MaybeUninit<u8>]) {
        // One copy, from the JS chunk straight into the destination in wasm memory.
        self.subarray(range.start as u32, range.end as u32).copy_to_uninit(dst);
    }
}

/// `url` made absolute against `base` (or the worker's own location).
pub fn resolve(url: &str, base: Option<&str>) -> Result<String> {
    let worker_base = scope().location().href();
    let base = base.unwrap_or(&worker_base);
    web_sys::Url::new_with_base(url, base)
        .map(|u| u.href())
        .map_err(|_| WickError::BadInput(format!("'{url}' is not a valid URL")))
}

/// The `message` of a JS error, or its debug form.
pub fn js_message(e: &JsValue) -> String {
    Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn fetch_error(file: &str, e: &JsValue, signal: &AbortSignal) -> WickError {
    if signal.aborted() {
        return WickError::Cancelled;
    }
    WickError::Fetch { file: file.to_string(), status: None, message: js_message(e) }
}

/// Posts throttled `progress` events for one file.
pub struct Progress {
    id: u32,
    file: String,
    throttle: ProgressThrottle,
    pub loaded: u64,
    pub total: Option<u64>,
}

impl Progress {
    pub fn new(id: u32, file: &str) -> Self {
        Progress { id, file: file.to_string(), throttle: ProgressThrottle::new(PROGRESS_INTERVAL_MS), loaded: 0, total: None }
    }

    fn post(&mut self, finished: bool) {
        if let Some((loaded, total)) = self.throttle.next(now_ms(), self.loaded, self.total, finished) {
            post(self.id, Event::Progress { file: self.file.clone(), loaded, total });
        }
    }
}

/// How a body read ended.
enum Ended {
    Complete,
    /// The connection failed mid-body (not by our abort).
    Dropped(JsValue),
}

/// What a read of a body gave.
enum Read {
    Chunk(Uint8Array),
    End,
    /// The read failed: the connection dropped, or our abort.
    Failed(JsValue),
}

/// A body's reader: BYOB into one reusable buffer where the body is a byte stream, the default
/// reader elsewhere. Dropped before the body's end (a load that failed elsewhere), it cancels
/// the body, which stops the download.
enum Reader {
    Byob {
        reader: ByobReader,
        /// The buffer the next read fills; a read transfers it and hands it back in its chunk.
        buffer: Option<ArrayBuffer>,
        /// `{min}`, set before each read from `pacer`.
        options: Object,
        pacer: ReadPacer,
        ended: bool,
    },
    Default { reader: ReadableStreamDefaultReader, ended: bool },
}

impl Reader {
    fn new(body: &ReadableStream) -> Reader {
        match ByobReader::new(body) {
            Ok(reader) => Reader::Byob {
                reader,
                buffer: None,
                options: Object::new(),
                pacer: ReadPacer::new(READ_TARGET_MS, READ_BYTES),
                ended: false,
            },
            // Not a byte stream.
            Err(_) => Reader::Default { reader: body.get_reader().unchecked_into(), ended: false },
        }
    }

    /// The next chunk of the body. A BYOB chunk is a view of the reader's buffer: it is valid
    /// until the next read.
    async fn next(&mut self) -> Result<Read> {
        let promise = match self {
            Reader::Byob { ended: true, .. } | Reader::Default { ended: true, .. } => return Ok(Read::End),
            Reader::Byob { reader, buffer, options, pacer, .. } => {
                let buffer = buffer.take().unwrap_or_else(|| ArrayBuffer::new(READ_BYTES));
                let _ = Reflect::set(options, &"min".into(), &pacer.min().into());
                reader.read(&Uint8Array::new(&buffer), options)
            }
            Reader::Default { reader, .. } => reader.read(),
        };
        let asked = now_ms();
        let next = match JsFuture::from(promise).await {
            Ok(next) => next,
            Err(e) => {
                self.set_ended();
                return Ok(Read::Failed(e));
            }
        };
        let done = Reflect::get(&next, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        let chunk = Reflect::get(&next, &"value".into()).ok().and_then(|v| v.dyn_into::<Uint8Array>().ok());
        if let (Reader::Byob { buffer, pacer, .. }, Some(chunk)) = (&mut *self, &chunk) {
            *buffer = Some(chunk.buffer());
            pacer.record(u64::from(chunk.length()), now_ms() - asked);
        }
        if done {
            // A BYOB read pending when the body ends is answered with its last bytes and
            // `done` together (a read with `min` usually is).
            self.set_ended();
            return Ok(chunk.filter(|c| c.length() > 0).map_or(Read::End, Read::Chunk));
        }
        chunk
            .map(Read::Chunk)
            .ok_or_else(|| WickError::Internal("a stream chunk was not a Uint8Array".into()))
    }

    fn set_ended(&mut self) {
        match self {
            Reader::Byob { ended, .. } | Reader::Default { ended, .. } => *ended = true,
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The returned promises only say when the cancel finished.
        match self {
            Reader::Byob { reader, ended: false, .. } => drop(reader.cancel()),
            Reader::Default { reader, ended: false } => drop(reader.cancel()),
            _ => {}
        }
    }
}

/// Read `body` to its end, feeding every chunk to `consume` and counting it in `progress`.
/// On an error of `consume` the body is cancelled (by the reader's drop), which stops the
/// download.
async fn pump(
    body: ReadableStream,
    signal: &AbortSignal,
    progress: &mut Progress,
    mut skip: u64,
    consume: &mut dyn FnMut(&Uint8Array) -> Result<()>,
) -> Result<Ended> {
    let mut reader = Reader::new(&body);
    loop {
        let mut chunk = match reader.next().await? {
            Read::Chunk(chunk) => chunk,
            Read::End => return Ok(Ended::Complete),
            Read::Failed(_) if signal.aborted() => return Err(WickError::Cancelled),
            Read::Failed(e) => return Ok(Ended::Dropped(e)),
        };
        if skip > 0 {
            // A server that ignored our Range header resent bytes we already have.
            let drop = skip.min(chunk.length() as u64) as u32;
            skip -= drop as u64;
            chunk = chunk.subarray(drop, chunk.length());
            if chunk.length() == 0 {
                continue;
            }
        }
        consume(&chunk)?;
        progress.loaded += chunk.length() as u64;
        progress.post(false);
    }
}

/// GET `url` (from byte `from` on, with a Range request, when `from > 0`). Returns the body and
/// how many leading bytes of it to skip (a server may answer a Range request with the whole
/// file), and records the file's size in `progress`.
async fn open(url: &str, from: u64, signal: &AbortSignal, progress: &mut Progress) -> Result<(ReadableStream, u64)> {
    let init = RequestInit::new();
    init.set_signal(Some(signal));
    if from > 0 {
        let headers = web_sys::Headers::new().map_err(|e| fetch_error(url, &e, signal))?;
        headers.set("Range", &format!("bytes={from}-")).map_err(|e| fetch_error(url, &e, signal))?;
        init.set_headers(&headers);
    }
    let response = JsFuture::from(scope().fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| fetch_error(url, &e, signal))?;
    let response: Response = response.dyn_into().map_err(|e| fetch_error(url, &e, signal))?;
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let skip = match response.status() {
        206 if from > 0 => {
            // "bytes first-last/size": it must start where we stopped.
            let range = header("content-range").unwrap_or_default();
            let first = range.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|f| f.parse::<u64>().ok());
            if first != Some(from) {
                return Err(WickError::Fetch {
                    file: url.to_string(),
                    status: Some(206),
                    message: format!("asked for bytes from {from}, got range '{range}'"),
                });
            }
            if let Some(size) = range.rsplit('/').next().and_then(|s| s.parse::<u64>().ok()) {
                progress.total.get_or_insert(size);
            }
            0
        }
        status if response.ok() => {
            if let Some(len) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
                progress.total.get_or_insert(len);
            }
            if status == 206 { 0 } else { from }
        }
        status => {
            return Err(WickError::Fetch {
                file: url.to_string(),
                status: Some(status),
                message: format!("HTTP {status} {}", response.status_text()),
            })
        }
    };
    let body = response.body().ok_or_else(|| WickError::Fetch {
        file: url.to_string(),
        status: None,
        message: "the response has no body".into(),
    })?;
    Ok((body, skip))
}

/// Stream `url`'s body into `consume`, chunk by chunk, resuming after dropped connections.
/// Returns the bytes read.
pub async fn stream(
    id: u32,
    url: &str,
    signal: &AbortSignal,
    consume: &mut dyn FnMut(&Uint8Array) -> Result<()>,
) -> Result<u64> {
    let mut progress = Progress::new(id, url);
    progress.post(false);
    let mut failures = 0;
    loop {
        let before = progress.loaded;
        let ended = match open(url, progress.loaded, signal, &mut progress).await {
            Ok((body, skip)) => pump(body, signal, &mut progress, skip, consume).await?,
            // Only a network failure is worth another try; an HTTP status is an answer.
            Err(WickError::Fetch { status: None, message, .. }) => Ended::Dropped(message.into()),
            Err(e) => return Err(e),
        };
        let short = progress.total.is_some_and(|t| progress.loaded < t);
        match ended {
            Ended::Complete if !short => break,
            Ended::Complete => {}
            Ended::Dropped(_) if progress.loaded > before => failures = 0,
            Ended::Dropped(_) => {}
        }
        failures += 1;
        if failures >= MAX_ATTEMPTS {
            let why = match ended {
                Ended::Dropped(e) => js_message(&e),
                Ended::Complete => "the body ended early".into(),
            };
            return Err(WickError::Fetch {
                file: url.to_string(),
                status: None,
                message: format!("{why} (at byte {}, after {MAX_ATTEMPTS} attempts)", progress.loaded),
            });
        }
        sleep(100.0 * f64::from(failures)).await;
        if signal.aborted() {
            return Err(WickError::Cancelled);
        }
    }
    progress.post(true);
    Ok(progress.loaded)
}

/// Stream a file already on this machine (a cached one) into `consume`, with the same progress
/// events as a download.
pub async fn stream_blob(
    id: u32,
    url: &str,
    blob: &web_sys::Blob,
    signal: &AbortSignal,
    consume: &mut dyn FnMut(&Uint8Array) -> Result<()>,
) -> Result<u64> {
    let mut progress = Progress::new(id, url);
    progress.total = Some(blob.size() as u64);
    progress.post(false);
    match pump(blob.stream(), signal, &mut progress, 0, consume).await? {
        Ended::Complete => {}
        Ended::Dropped(e) => return Err(WickError::Storage(format!("reading the cached {url}: {}", js_message(&e)))),
    }
    progress.post(true);
    Ok(progress.loaded)
}

/// Resolves after `ms` milliseconds.
async fn sleep(ms: f64) {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = JsFuture::from(promise).await;
}
