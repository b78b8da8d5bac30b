//! Requests in flight, matched to their events by id, never by order.
//!
//! Each request waits for exactly one final event. [`settle`] decides what that event means for
//! the request: its answer, or the error it rejects with (`error`, `cancelled`, a `hello` of
//! another protocol version, or an event of the wrong kind, which is a bug in the worker).

use std::collections::HashMap;

use wick_shared::{ErrorCode, Event, Request, PROTOCOL_VERSION};

use crate::WickError;

/// The final event that answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Hello,
    Ready,
    Output,
    Result,
    Generated,
    Transcribed,
    Stats,
    Cached,
    Done,
}

impl Expect {
    pub fn of(request: &Request) -> Expect {
        match request {
            Request::Hello { .. } => Expect::Hello,
            Request::Load { .. } => Expect::Ready,
            Request::Run { .. } => Expect::Output,
            Request::Task { .. } => Expect::Result,
            Request::Generate { .. } => Expect::Generated,
            Request::Transcribe { .. } => Expect::Transcribed,
            Request::Stats {} => Expect::Stats,
            Request::CacheList {} => Expect::Cached,
            Request::Cancel { .. } | Request::Unload { .. } | Request::CacheDelete { .. } => {
                Expect::Done
            }
        }
    }

    /// The wire `type` of the event that answers.
    pub fn event(self) -> &'static str {
        match self {
            Expect::Hello => "hello",
            Expect::Ready => "ready",
            Expect::Output => "output",
            Expect::Result => "result",
            Expect::Generated => "generated",
            Expect::Transcribed => "transcribed",
            Expect::Stats => "stats",
            Expect::Cached => "cached",
            Expect::Done => "done",
        }
    }
}

/// The wire `type` of an event.
pub fn event_type(event: &Event) -> &'static str {
    match event {
        Event::Hello { .. } => "hello",
        Event::Progress { .. } => "progress",
        Event::Ready { .. } => "ready",
        Event::Output { .. } => "output",
        Event::Result { .. } => "result",
        Event::Token { .. } => "token",
        Event::Generated { .. } => "generated",
        Event::Transcribed { .. } => "transcribed",
        Event::Stats { .. } => "stats",
        Event::Cached { .. } => "cached",
        Event::Done {} => "done",
        Event::Cancelled {} => "cancelled",
        Event::Error(_) => "error",
    }
}

/// The answer a request resolves with, or the error it rejects with.
pub fn settle(expect: Expect, event: Event) -> Result<Event, WickError> {
    match (expect, event) {
        (_, Event::Error(e)) => Err(WickError::Wire(e)),
        (_, Event::Cancelled {}) => Err(WickError::Cancelled),
        (Expect::Hello, Event::Hello { protocol, .. }) if protocol != PROTOCOL_VERSION => {
            Err(WickError::wire(
                ErrorCode::ProtocolMismatch,
                format!(
                    "the worker speaks protocol {protocol}, this page speaks {PROTOCOL_VERSION}"
                ),
            ))
        }
        (Expect::Hello, event @ Event::Hello { .. })
        | (Expect::Ready, event @ Event::Ready { .. })
        | (Expect::Output, event @ Event::Output { .. })
        | (Expect::Result, event @ Event::Result { .. })
        | (Expect::Generated, event @ Event::Generated { .. })
        | (Expect::Transcribed, event @ Event::Transcribed { .. })
        | (Expect::Stats, event @ Event::Stats { .. })
        | (Expect::Cached, event @ Event::Cached { .. })
        | (Expect::Done, event @ Event::Done {}) => Ok(event),
        (expect, event) => Err(WickError::wire(
            ErrorCode::Internal,
            format!(
                "the worker answered with `{}` where `{}` was expected",
                event_type(&event),
                expect.event()
            ),
        )),
    }
}

/// The id of events about the worker itself (its panic hook reports with it); never a request's.
pub const WORKER_ID: u32 = 0;

/// Pending requests by id. Ids start at 1, wrap around, and skip [`WORKER_ID`] and ids still
/// in use.
#[derive(Debug)]
pub struct Requests<P> {
    last: u32,
    pending: HashMap<u32, P>,
}

impl<P> Default for Requests<P> {
    fn default() -> Self {
        Requests {
            last: 0,
            pending: HashMap::new(),
        }
    }
}

impl<P> Requests<P> {
    /// Store `pending` under a fresh id and return the id.
    pub fn insert(&mut self, pending: P) -> u32 {
        loop {
            self.last = self.last.wrapping_add(1);
            if self.last != WORKER_ID && !self.pending.contains_key(&self.last) {
                break;
            }
        }
        self.pending.insert(self.last, pending);
        self.last
    }

    pub fn get(&self, id: u32) -> Option<&P> {
        self.pending.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut P> {
        self.pending.get_mut(&id)
    }

    /// Take the request `id` out: its final event arrived (or it failed before being sent).
    pub fn remove(&mut self, id: u32) -> Option<P> {
        self.pending.remove(&id)
    }

    /// Take every request out, oldest first.
    pub fn drain(&mut self) -> Vec<P> {
        let mut all: Vec<(u32, P)> = self.pending.drain().collect();
        all.sort_by_key(|(id, _)| *id);
        all.into_iter().map(|(_, p)| p).collect()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_shared::{Backend, RunStats, TaskOutput, WireError};

    fn stats() -> RunStats {
        RunStats {
            run_ms: 1.0,
            peak_intermediate_bytes: 0,
            gpu: None,
        }
    }

    #[test]
    fn ids_are_unique_among_pending_requests() {
        let mut r = Requests::default();
        let a = r.insert("a");
        let b = r.insert("b");
        assert_eq!((a, b), (1, 2));
        assert_eq!(r.remove(a), Some("a"));
        assert_eq!(r.remove(a), None, "a final event is consumed once");
        r.last = u32::MAX - 1;
        let c = r.insert("c");
        assert_eq!(c, u32::MAX);
        assert_eq!(r.insert("d"), 1, "wraps past 0");
        assert_eq!(r.insert("e"), 3, "skips 2, still pending");
        assert_eq!(r.drain(), vec!["d", "b", "e", "c"]);
        assert!(r.is_empty());
    }

    #[test]
    fn expectations_follow_the_request() {
        let load = Request::Load {
            model: "m".into(),
            url: Some("u".into()),
            manifest: None,
            variant: None,
            external_data: vec![],
            sha256: None,
            cache: None,
            task: None,
            backend: None,
            weights: None,
        };
        assert_eq!(Expect::of(&load), Expect::Ready);
        assert_eq!(Expect::of(&Request::Stats {}), Expect::Stats);
        assert_eq!(Expect::of(&Request::CacheList {}), Expect::Cached);
        assert_eq!(Expect::of(&Request::CacheDelete { url: "u".into() }), Expect::Done);
        assert_eq!(Expect::of(&Request::Cancel { target: 3 }), Expect::Done);
        assert_eq!(
            Expect::of(&Request::Unload { model: "m".into() }),
            Expect::Done
        );
    }

    #[test]
    fn final_events_settle_their_request() {
        let result = Event::Result {
            result: TaskOutput::Digits {
                digit: 3,
                probabilities: vec![0.1; 10],
            },
            stats: stats(),
        };
        assert_eq!(settle(Expect::Result, result.clone()), Ok(result.clone()));
        assert_eq!(settle(Expect::Done, Event::Done {}), Ok(Event::Done {}));
        assert_eq!(
            settle(Expect::Ready, Event::Cancelled {}),
            Err(WickError::Cancelled)
        );

        let refused = WireError::new(ErrorCode::UnknownModel, "no model `x`");
        assert_eq!(
            settle(Expect::Output, Event::Error(refused.clone())),
            Err(WickError::Wire(refused))
        );

        let wrong = settle(Expect::Output, result).unwrap_err();
        assert_eq!(wrong.code(), "internal");
        assert!(
            wrong.to_string().contains("`result` where `output`"),
            "{wrong}"
        );
    }

    #[test]
    fn hello_checks_the_protocol_version() {
        let hello = |protocol| Event::Hello {
            protocol,
            version: "0.1.0".into(),
            capabilities: wick_shared::Capabilities {
                backends: vec![Backend::Cpu],
                tasks: vec![],
                ops: vec![],
                gpu_ops: vec![],
                simd: false,
                threads: 1,
                gpu: None,
            },
        };
        assert!(settle(Expect::Hello, hello(PROTOCOL_VERSION)).is_ok());
        let e = settle(Expect::Hello, hello(PROTOCOL_VERSION + 1)).unwrap_err();
        assert_eq!(e.code(), "protocol_mismatch");
    }
}
