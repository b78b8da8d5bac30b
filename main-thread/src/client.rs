//! One worker and the requests in flight to it.
//!
//! [`Client::request`] posts an envelope and returns a Promise that the request's final event
//! settles; `progress` events go to the request's `onProgress`, `token` events (a `generate`'s
//! pieces of text) to its `on_token`, each as it arrives. An AbortSignal fired while a
//! request is in flight posts `cancel {target}`; the request still ends with its own final event
//! (`cancelled`, or its answer if the worker had finished). An `error` event on the Worker
//! terminates it and rejects every request in flight with code `internal`.
//!
//! The Worker's handlers and abort listeners are closures owned here and dropped with the
//! client; they hold only a `Weak` to it. Nothing calls into JS while a `RefCell` is borrowed,
//! because JS (an `onProgress` callback, an abort) may call back in.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{AbortSignal, MessageEvent, Worker, WorkerOptions, WorkerType};
use wick_shared::{
    js::{from_js, to_js},
    Capabilities, Envelope, ErrorCode, Event, Request, PROTOCOL_VERSION,
};

use crate::convert::{self, get};
use crate::requests::{event_type, settle, Expect, Requests, WORKER_ID};
use crate::WickError;

/// What the worker said at `hello`.
#[derive(Debug, Clone)]
pub struct Hello {
    pub version: String,
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Running,
    Terminated,
    Crashed(String),
}

impl State {
    fn error(&self) -> WickError {
        match self {
            State::Running | State::Terminated => WickError::Terminated,
            State::Crashed(message) => WickError::Crashed {
                message: message.clone(),
            },
        }
    }
}

/// What a `generate` request does with each `token` event's text.
pub type TokenHook = Rc<dyn Fn(String)>;

/// The callbacks of a request that came from the page.
#[derive(Default, Clone)]
pub struct Hooks {
    pub on_progress: Option<Function>,
    pub on_token: Option<TokenHook>,
    pub signal: Option<AbortSignal>,
}

impl Hooks {
    /// A request with no progress to report that the page may abort.
    pub fn cancellable(signal: Option<AbortSignal>) -> Self {
        Hooks { signal, ..Hooks::default() }
    }
}

/// A request in flight.
struct Pending {
    expect: Expect,
    /// `resolve` and `reject` of its Promise; `None` for requests nobody awaits (cancel, the
    /// unload of a dropped Pipeline).
    settle: Option<(Function, Function)>,
    on_progress: Option<Function>,
    on_token: Option<TokenHook>,
    abort: Option<AbortHook>,
    cancel_sent: bool,
}

impl Pending {
    fn finish(self, outcome: Result<JsValue, WickError>) {
        drop(self.abort);
        if let Some((resolve, reject)) = self.settle {
            let _ = match outcome {
                Ok(value) => resolve.call1(&JsValue::NULL, &value),
                Err(error) => reject.call1(&JsValue::NULL, &error.to_js()),
            };
        }
    }
}

/// An `abort` listener on a request's signal, removed when the request ends.
struct AbortHook {
    signal: AbortSignal,
    listener: Closure<dyn FnMut()>,
}

impl AbortHook {
    fn new(signal: AbortSignal, client: Weak<Client>, target: u32) -> AbortHook {
        let listener = Closure::<dyn FnMut()>::new(move || {
            if let Some(client) = client.upgrade() {
                client.cancel(target);
            }
        });
        let _ = signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        AbortHook { signal, listener }
    }
}

impl Drop for AbortHook {
    fn drop(&mut self) {
        let _ = self
            .signal
            .remove_event_listener_with_callback("abort", self.listener.as_ref().unchecked_ref());
    }
}

/// The Worker's event handlers, kept alive as long as the client.
struct Handlers {
    _message: Closure<dyn FnMut(MessageEvent)>,
    _error: Closure<dyn FnMut(JsValue)>,
    _message_error: Closure<dyn FnMut(JsValue)>,
}

pub struct Client {
    me: Weak<Client>,
    worker: Worker,
    url: String,
    state: RefCell<State>,
    requests: RefCell<Requests<Pending>>,
    hello: RefCell<Option<Hello>>,
    handshake: RefCell<Option<Promise>>,
    models: Cell<u32>,
    _handlers: Handlers,
}

impl Client {
    /// Start the module worker at `url` and send `hello`; [`Client::handshake`] settles with
    /// the answer.
    pub fn spawn(url: &str) -> Result<Rc<Client>, WickError> {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        let worker = Worker::new_with_options(url, &options).map_err(|e| {
            WickError::Wire(wick_shared::WireError {
                file: Some(url.to_string()),
                ..wick_shared::WireError::new(
                    ErrorCode::FetchFailed,
                    format!("cannot start the worker {url}: {}", describe(&e)),
                )
            })
        })?;
        let client = Rc::new_cyclic(|me: &Weak<Client>| {
            let on_message = me.clone();
            let message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Some(client) = on_message.upgrade() {
                    client.on_message(event.data());
                }
            });
            let on_error = me.clone();
            let error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                if let Some(client) = on_error.upgrade() {
                    client.on_error(&event);
                }
            });
            let message_error = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {
                web_sys::console::error_1(
                    &"Wick: a message from the worker could not be deserialised".into(),
                );
            });
            worker.set_onmessage(Some(message.as_ref().unchecked_ref()));
            worker.set_onerror(Some(error.as_ref().unchecked_ref()));
            worker.set_onmessageerror(Some(message_error.as_ref().unchecked_ref()));
            Client {
                me: me.clone(),
                worker,
                url: url.to_string(),
                state: RefCell::new(State::Running),
                requests: RefCell::default(),
                hello: RefCell::new(None),
                handshake: RefCell::new(None),
                models: Cell::new(0),
                _handlers: Handlers {
                    _message: message,
                    _error: error,
                    _message_error: message_error,
                },
            }
        });
        let handshake = client.request(
            Request::Hello {
                protocol: PROTOCOL_VERSION,
            },
            Hooks::default(),
        );
        *client.handshake.borrow_mut() = Some(handshake);
        Ok(client)
    }

    /// Settles once the worker has answered `hello` (rejects on a crash or a protocol mismatch).
    pub fn handshake(&self) -> Promise {
        self.handshake
            .borrow()
            .clone()
            .unwrap_or_else(|| Promise::resolve(&JsValue::UNDEFINED))
    }

    pub fn hello(&self) -> Option<Hello> {
        self.hello.borrow().clone()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_running(&self) -> bool {
        *self.state.borrow() == State::Running
    }

    /// A model name no other pipeline of this worker uses.
    pub fn model_name(&self, task: &str) -> String {
        let n = self.models.get() + 1;
        self.models.set(n);
        format!("{task}-{n}")
    }

    /// Post `body`; the Promise settles with its final event.
    pub fn request(&self, body: Request, hooks: Hooks) -> Promise {
        self.request_with_id(body, hooks).0
    }

    /// [`Client::request`], with the id the request was posted under (`None` when it was
    /// rejected before being posted), for [`Client::cancel`].
    pub fn request_with_id(&self, body: Request, hooks: Hooks) -> (Promise, Option<u32>) {
        let mut settle = None;
        let mut id = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        if let Some((resolve, reject)) = settle {
            match self.send(body, Some((resolve, reject.clone())), hooks) {
                Ok(posted) => id = Some(posted),
                Err(error) => {
                    let _ = reject.call1(&JsValue::NULL, &error.to_js());
                }
            }
        }
        (promise, id)
    }

    /// Post `body` with nobody awaiting its answer.
    pub fn post(&self, body: Request) {
        let _ = self.send(body, None, Hooks::default());
    }

    /// Stop the worker; requests in flight reject with `cancelled`.
    pub fn terminate(&self) {
        self.shutdown(State::Terminated);
    }

    fn send(
        &self,
        body: Request,
        settle: Option<(Function, Function)>,
        hooks: Hooks,
    ) -> Result<u32, WickError> {
        let state = self.state.borrow().clone();
        if state != State::Running {
            return Err(state.error());
        }
        if hooks.signal.as_ref().is_some_and(|s| s.aborted()) {
            return Err(WickError::Cancelled);
        }
        let pending = Pending {
            expect: Expect::of(&body),
            settle,
            on_progress: hooks.on_progress,
            on_token: hooks.on_token,
            abort: None,
            cancel_sent: false,
        };
        let id = self.requests.borrow_mut().insert(pending);
        let posted = to_js(&Envelope { id, body })
            .map_err(WickError::Wire)
            .and_then(|(message, transfer)| {
                self.worker
                    .post_message_with_transfer(&message, &transfer)
                    .map_err(|e| {
                        WickError::wire(
                            ErrorCode::Internal,
                            format!("cannot post: {}", describe(&e)),
                        )
                    })
            });
        if let Err(error) = posted {
            self.requests.borrow_mut().remove(id);
            return Err(error);
        }
        if let Some(signal) = hooks.signal {
            let hook = AbortHook::new(signal, self.me.clone(), id);
            if let Some(pending) = self.requests.borrow_mut().get_mut(id) {
                pending.abort = Some(hook);
            }
        }
        Ok(id)
    }

    /// The signal of request `target` fired (or its caller gave up on it): ask the worker to
    /// stop it, once; nothing if it already ended.
    pub fn cancel(&self, target: u32) {
        let first = match self.requests.borrow_mut().get_mut(target) {
            Some(pending) if !pending.cancel_sent => {
                pending.cancel_sent = true;
                true
            }
            _ => false,
        };
        if first {
            self.post(Request::Cancel { target });
        }
    }

    fn on_message(&self, data: JsValue) {
        if self.answer_raw(&data) {
            return;
        }
        let Envelope { id, body } = match from_js::<Envelope<Event>>(data.clone()) {
            Ok(envelope) => envelope,
            Err(e) => {
                // A worker bug: fail the request it was meant for, if that can be told.
                let error = WickError::wire(
                    ErrorCode::Internal,
                    format!("bad event from the worker: {}", e.message),
                );
                let id = get(&data, "id").as_f64().map(|id| id as u32);
                let pending = id.and_then(|id| self.requests.borrow_mut().remove(id));
                match pending {
                    Some(pending) => pending.finish(Err(error)),
                    None => web_sys::console::error_2(&error.to_string().into(), &data),
                }
                return;
            }
        };
        if id == WORKER_ID {
            // Events about the worker itself: an `internal` error is its panic hook speaking;
            // the module cannot go on, so this is a crash. Others answer an envelope without id.
            match body {
                Event::Error(e) if e.code == ErrorCode::Internal => {
                    self.shutdown(State::Crashed(e.message))
                }
                other => web_sys::console::error_1(
                    &format!(
                        "Wick: the worker said `{}` about no request",
                        event_type(&other)
                    )
                    .into(),
                ),
            }
            return;
        }
        if let Event::Progress {
            file,
            loaded,
            total,
        } = &body
        {
            let callback = self
                .requests
                .borrow()
                .get(id)
                .and_then(|p| p.on_progress.clone());
            if let Some(callback) = callback {
                let progress = convert::progress(file, *loaded, *total);
                if let Err(e) = callback.call1(&JsValue::UNDEFINED, &progress) {
                    web_sys::console::error_2(&"Wick: onProgress threw".into(), &e);
                }
            }
            return;
        }
        if let Event::Token { text } = body {
            let hook = self.requests.borrow().get(id).and_then(|p| p.on_token.clone());
            if let Some(hook) = hook {
                hook(text);
            }
            return;
        }
        // Unknown ids are requests already settled here (e.g. rejected by a crash): ignore.
        let pending = self.requests.borrow_mut().remove(id);
        if let Some(pending) = pending {
            let outcome = settle(pending.expect, body).and_then(|event| self.answer(event));
            pending.finish(outcome);
        }
    }

    /// The hot path: an answer carrying data (`output`, `result`, `ready`, `stats`, `cached`,
    /// `generated`, `transcribed`) that its request expects is already in the shape the Promise resolves with —
    /// the worker made its typed arrays — so it is handed over as it is, not decoded into Rust
    /// and encoded back. Returns false for every other message, which takes the checked path.
    fn answer_raw(&self, data: &JsValue) -> bool {
        let Some(id) = get(data, "id").as_f64().map(|id| id as u32).filter(|&id| id != WORKER_ID) else {
            return false;
        };
        let body = get(data, "body");
        let kind = get(&body, "type").as_string().unwrap_or_default();
        let expected = self.requests.borrow().get(id).map(|p| p.expect);
        if !matches!(kind.as_str(), "output" | "result" | "ready" | "stats" | "cached" | "generated" | "transcribed")
            || expected.map(Expect::event) != Some(kind.as_str())
        {
            return false;
        }
        let Some(pending) = self.requests.borrow_mut().remove(id) else {
            return false;
        };
        pending.finish(convert::reply_raw(&kind, &body));
        true
    }

    /// The JS value of a settled final event; `hello` is kept here.
    fn answer(&self, event: Event) -> Result<JsValue, WickError> {
        if let Event::Hello {
            version,
            capabilities,
            ..
        } = event
        {
            *self.hello.borrow_mut() = Some(Hello {
                version,
                capabilities,
            });
            return Ok(JsValue::UNDEFINED);
        }
        convert::reply(&event)
    }

    fn on_error(&self, event: &JsValue) {
        let message = get(event, "message").as_string().filter(|m| !m.is_empty());
        let place = get(event, "filename")
            .as_string()
            .filter(|f| !f.is_empty())
            .map(|file| format!(" ({file}:{})", get(event, "lineno").as_f64().unwrap_or(0.0)));
        let message = match message {
            Some(message) => format!("{message}{}", place.unwrap_or_default()),
            None => format!("the worker script {} failed to load or to start", self.url),
        };
        self.shutdown(State::Crashed(message));
    }

    fn shutdown(&self, state: State) {
        {
            let mut current = self.state.borrow_mut();
            if *current != State::Running {
                return;
            }
            *current = state.clone();
        }
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.set_onmessageerror(None);
        self.worker.terminate();
        let pending = self.requests.borrow_mut().drain();
        for request in pending {
            request.finish(Err(state.error()));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown(State::Terminated);
    }
}

/// A thrown JS value as text.
fn describe(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| get(value, "message").as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
