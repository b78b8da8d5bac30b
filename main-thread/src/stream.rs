//! Streamed requests as the page sees them: `generate(prompt)` → a [`Generation`],
//! `transcribe(audio)` → a [`Transcription`]; both are an [`Streamed`] request under a name.
//!
//! Each is an async iterator of the pieces of text the worker streams (`for await (const piece
//! of generation)`; `wick.js` gives the classes their `Symbol.asyncIterator`) and holds
//! `result`, the Promise of the final event (`{text, finish, stats}`, `{text, chunks, stats}`). Each `token` event reaches the
//! iterator through the request's token hook as it arrives; the final event settles `result`,
//! which ends the iteration. Cancelling — the options' AbortSignal, or `return()`, which a `for
//! await` calls when the loop is left early — posts `cancel`: no piece is yielded after it, the
//! iteration ends quietly and `result` rejects with the AbortError (code `cancelled`). Any other failure rejects `result`
//! and is thrown by `next()` once the pieces that came before it were taken.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::AbortSignal;
use wick_shared::Request;

use crate::client::{Client, Hooks};
use crate::convert::{self, get, Options};
use crate::WickError;

/// How the iteration ends, once the request did (or `return()` closed it).
enum End {
    /// No more pieces.
    Done,
    /// Throw this from the next `next()`, then no more pieces.
    Failed(JsValue),
}

#[derive(Default)]
struct Stream {
    /// Pieces that came before anyone asked for them.
    pieces: VecDeque<String>,
    /// `next()` calls waiting for a piece (only while `pieces` is empty): resolve and reject.
    waiting: VecDeque<(Function, Function)>,
    /// `None` while the request runs and the iteration is open.
    end: Option<End>,
    /// The caller's signal: pieces that arrive once it fired (posted before the worker read the
    /// `cancel`) are dropped.
    signal: Option<AbortSignal>,
}

/// An iterator result `{value, done}`.
fn step(value: &JsValue, done: bool) -> JsValue {
    let object: JsValue = Object::new().into();
    let _ = Reflect::set(&object, &"value".into(), value);
    let _ = Reflect::set(&object, &"done".into(), &done.into());
    object
}

/// A piece arrived: to the oldest waiting `next()`, else into the queue.
fn push(stream: &RefCell<Stream>, piece: String) {
    let waiter = {
        let mut s = stream.borrow_mut();
        if s.end.is_some() || s.signal.as_ref().is_some_and(|signal| signal.aborted()) {
            return;
        }
        match s.waiting.pop_front() {
            Some(waiter) => Some(waiter),
            None => {
                s.pieces.push_back(piece.clone());
                None
            }
        }
    };
    if let Some((resolve, _)) = waiter {
        let _ = resolve.call1(&JsValue::NULL, &step(&piece.into(), false));
    }
}

/// The request ended: with its answer (`None`) or an error. A cancellation ends the iteration
/// like the answer does; another error is thrown by the first `next()` that finds no piece.
fn finish(stream: &RefCell<Stream>, error: Option<JsValue>) {
    let waiting: Vec<_> = {
        let mut s = stream.borrow_mut();
        if s.end.is_some() {
            return;
        }
        let end = match error {
            Some(e) if get(&e, "code").as_string().as_deref() != Some("cancelled") => End::Failed(e),
            _ => End::Done,
        };
        s.end = Some(end);
        if s.waiting.is_empty() {
            return;
        }
        // Waiters exist only while no piece is queued: the first gets the failure, if any.
        let first = match s.end.replace(End::Done) {
            Some(End::Failed(e)) => Some(e),
            _ => None,
        };
        let mut waiting: Vec<_> = s.waiting.drain(..).map(|w| (w, None)).collect();
        if let Some(first_waiter) = waiting.first_mut() {
            first_waiter.1 = first;
        }
        waiting
    };
    for ((resolve, reject), failure) in waiting {
        let _ = match failure {
            Some(e) => reject.call1(&JsValue::NULL, &e),
            None => resolve.call1(&JsValue::NULL, &step(&JsValue::UNDEFINED, true)),
        };
    }
}

/// Post a `generate` request for `model` (or fail at once, as the returned Generation says).
pub(crate) fn generate(
    client: &Rc<Client>,
    model: Result<String, WickError>,
    prompt: &JsValue,
    options: Option<JsValue>,
) -> Generation {
    let request = (|| {
        let model = model?;
        let options = Options::parse(&options.unwrap_or(JsValue::UNDEFINED))?;
        let prompt = convert::prompt(prompt)?;
        Ok((Request::Generate { model, prompt, options: options.generate }, options.signal))
    })();
    Generation(Streamed::start(client, async move { request }))
}

/// A request whose `token` events stream text: the machinery behind [`Generation`] and
/// [`Transcription`].
pub(crate) struct Streamed {
    stream: Rc<RefCell<Stream>>,
    result: Promise,
    client: Rc<Client>,
    /// The request's id once posted; `None` before, or if it was refused before being posted.
    id: Rc<Cell<Option<u32>>>,
}

impl Streamed {
    /// Post the request `build` makes once it is ready (it may await, e.g. to read a file),
    /// unless the iteration was closed meanwhile.
    pub(crate) fn start(
        client: &Rc<Client>,
        build: impl Future<Output = Result<(Request, Option<AbortSignal>), WickError>> + 'static,
    ) -> Streamed {
        let stream = Rc::new(RefCell::new(Stream::default()));
        let id = Rc::new(Cell::new(None));
        let (posting, tokens, posted) = (client.clone(), stream.clone(), id.clone());
        let result = wasm_bindgen_futures::future_to_promise(async move {
            let (body, signal) = build.await.map_err(|e| e.to_js())?;
            if tokens.borrow().end.is_some() {
                return Err(WickError::Cancelled.to_js());
            }
            tokens.borrow_mut().signal = signal.clone();
            let pieces = tokens.clone();
            let hooks = Hooks { on_token: Some(Rc::new(move |piece| push(&pieces, piece))), signal, ..Hooks::default() };
            let (promise, sent) = posting.request_with_id(body, hooks);
            posted.set(sent);
            JsFuture::from(promise).await
        });
        // Awaiting `result` here also marks its rejection handled: a page that only iterates
        // gets no "unhandled rejection" for a cancelled request.
        let (ending, settled) = (stream.clone(), result.clone());
        spawn_local(async move {
            let error = JsFuture::from(settled).await.err();
            finish(&ending, error);
        });
        Streamed { stream, result, client: client.clone(), id }
    }

    fn next(&self) -> Promise {
        let mut s = self.stream.borrow_mut();
        if let Some(piece) = s.pieces.pop_front() {
            return Promise::resolve(&step(&piece.into(), false));
        }
        match s.end.take() {
            Some(End::Failed(error)) => {
                s.end = Some(End::Done);
                Promise::reject(&error)
            }
            Some(End::Done) => {
                s.end = Some(End::Done);
                Promise::resolve(&step(&JsValue::UNDEFINED, true))
            }
            None => {
                let mut settle = None;
                let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
                if let Some(waiter) = settle {
                    s.waiting.push_back(waiter);
                }
                promise
            }
        }
    }

    fn close(&self, value: Option<JsValue>) -> Promise {
        let (running, waiting) = {
            let mut s = self.stream.borrow_mut();
            s.pieces.clear();
            let running = s.end.is_none();
            s.end = Some(End::Done);
            (running, s.waiting.drain(..).collect::<Vec<_>>())
        };
        for (resolve, _) in waiting {
            let _ = resolve.call1(&JsValue::NULL, &step(&JsValue::UNDEFINED, true));
        }
        if let (true, Some(id)) = (running, self.id.get()) {
            self.client.cancel(id);
        }
        Promise::resolve(&step(&value.unwrap_or(JsValue::UNDEFINED), true))
    }
}

/// A class over [`Streamed`]: `result`, `next()` and `return()`.
macro_rules! streamed_class {
    ($(#[$doc:meta])* $name:ident, $result:literal, $what:literal) => {
        $(#[$doc])*
        #[wasm_bindgen]
        pub struct $name(pub(crate) Streamed);

        #[wasm_bindgen]
        impl $name {
            #[doc = concat!("`", $what, "` once complete; rejects with the request's error (an")]
            /// AbortError, code `cancelled`, when it was cancelled).
            #[wasm_bindgen(getter, unchecked_return_type = $result)]
            pub fn result(&self) -> Promise {
                self.0.result.clone()
            }

            /// The next piece of text, `{value: piece, done: false}`, as soon as it is decoded;
            /// `{done: true}` after the last one or a cancellation; rejects with any other error.
            #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<string, undefined>>")]
            pub fn next(&self) -> Promise {
                self.0.next()
            }

            /// Stop iterating (a `for await` calls this when the loop is left early): if the
            /// request is still running, cancel it — `result` then rejects with an AbortError.
            #[wasm_bindgen(js_name = "return", unchecked_return_type = "Promise<IteratorResult<string, undefined>>")]
            pub fn close(&self, value: Option<JsValue>) -> Promise {
                self.0.close(value)
            }
        }
    };
}

streamed_class!(
    /// A text generation in progress: an async iterator of the pieces of text as they are
    /// generated, and `result`, the Promise of the whole answer.
    Generation,
    "Promise<GenerateResult>",
    "{text, finish, stats}"
);

streamed_class!(
    /// A transcription in progress: an async iterator of the pieces of text as they are
    /// decoded, and `result`, the Promise of the whole transcript with its timed chunks.
    Transcription,
    "Promise<TranscribeResult>",
    "{text, chunks, stats}"
);
