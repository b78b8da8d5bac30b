//! Streaming fetch: a response body is read chunk by chunk from its ReadableStream and each
//! `Uint8Array` chunk is handed to a consumer that copies it to its final place. Progress
//! events are posted as bytes arrive (throttled), ending with one at 100%.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader, RequestInit, Response};
use wick_shared::Event;

use super::{now_ms, post, scope};
use crate::error::{Result, WickError};
use crate::loader::{Chunk, ProgressThrottle};

/// Progress events at most this often per file.
const PROGRESS_INTERVAL_MS: f64 = 50.0;

impl Chunk for Uint8Array {
    fn len(&self) -> usize {
        self.length() as usize
    }
    fn copy_to(&self, range: std::ops::Range<usize>, dst: &mut [u8]) {
        // One copy, from the JS chunk straight into the destination in wasm memory.
        self.subarray(range.start as u32, range.end as u32).copy_to(dst);
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

fn js_error(file: &str, e: JsValue, signal: &AbortSignal) -> WickError {
    if signal.aborted() {
        return WickError::Cancelled;
    }
    let message = Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    WickError::Fetch { file: file.to_string(), status: None, message }
}

/// Stream `url`'s body into `consume`, chunk by chunk. Returns the bytes read.
pub async fn stream(
    id: u32,
    url: &str,
    signal: &AbortSignal,
    mut consume: impl FnMut(&Uint8Array) -> Result<()>,
) -> Result<u64> {
    let init = RequestInit::new();
    init.set_signal(Some(signal));
    let response = JsFuture::from(scope().fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| js_error(url, e, signal))?;
    let response: Response = response.dyn_into().map_err(|e| js_error(url, e, signal))?;
    if !response.ok() {
        return Err(WickError::Fetch {
            file: url.to_string(),
            status: Some(response.status()),
            message: format!("HTTP {} {}", response.status(), response.status_text()),
        });
    }
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let body = response.body().ok_or_else(|| WickError::Fetch {
        file: url.to_string(),
        status: None,
        message: "the response has no body".into(),
    })?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut throttle = ProgressThrottle::new(PROGRESS_INTERVAL_MS);
    let mut loaded = 0u64;
    if throttle.should_emit(now_ms(), false) {
        post(id, Event::Progress { file: url.to_string(), loaded, total });
    }
    loop {
        let next = JsFuture::from(reader.read()).await.map_err(|e| js_error(url, e, signal))?;
        let done = Reflect::get(&next, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let chunk: Uint8Array = Reflect::get(&next, &"value".into())
            .ok()
            .and_then(|v| v.dyn_into().ok())
            .ok_or_else(|| WickError::Internal("a stream chunk was not a Uint8Array".into()))?;
        if let Err(e) = consume(&chunk) {
            let _ = reader.cancel(); // stop the download; the error says why
            return Err(e);
        }
        loaded += chunk.length() as u64;
        if throttle.should_emit(now_ms(), false) {
            post(id, Event::Progress { file: url.to_string(), loaded, total });
        }
    }
    post(id, Event::Progress { file: url.to_string(), loaded, total: Some(total.unwrap_or(loaded)) });
    Ok(loaded)
}

/// The whole body of a small file (the graph), read through the same stream with progress.
pub async fn read_all(id: u32, url: &str, signal: &AbortSignal) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    stream(id, url, signal, |chunk| {
        let start = bytes.len();
        bytes.resize(start + chunk.length() as usize, 0);
        chunk.copy_to(&mut bytes[start..]);
        Ok(())
    })
    .await?;
    Ok(bytes)
}
