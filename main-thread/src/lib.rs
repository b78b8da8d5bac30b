//! Wick's page-side crate: spawns the worker and turns requests into Promises.
//!
//! The page calls [`Wick`](wick::Wick) (one worker, one method per request) or `pipeline(task,
//! modelUrl)` (a model loaded for a task in a shared worker). Requests go to the worker as
//! `wick_shared` envelopes encoded by `wick_shared::js`; each Promise is settled by its request's
//! one final event, matched by id. This crate never fetches model bytes (the worker does) and
//! never preprocesses images (the worker's tasks do; `vision` only reads pixels or file bytes): it only checks, sends and matches.
//!
//! Code map: `requests` (ids and what a final event means, plain Rust), `inputs` (checks on
//! tensors and images, plain Rust), `error` (what a rejection carries); on wasm32 only: `client`
//! (the Worker, its handlers, requests in flight), `convert` (JS values in and out), `wick` (the
//! `Wick` class), `pipeline`, `stream` (a text generation or a transcription: async iterator of
//! its pieces, and its result), `audio` (audio for speech recognition, from whatever the page
//! has), `vision` (images for the vision pipelines, from whatever the page has), `types`
//! (TypeScript declarations). Natively the crate is just the plain-Rust parts, so their tests
//! run with `cargo test`.

mod error;
mod inputs;
mod requests;

#[cfg(target_arch = "wasm32")]
mod audio;
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod convert;
#[cfg(target_arch = "wasm32")]
mod pipeline;
#[cfg(target_arch = "wasm32")]
mod stream;
#[cfg(target_arch = "wasm32")]
mod types;
#[cfg(target_arch = "wasm32")]
mod vision;
#[cfg(target_arch = "wasm32")]
mod wick;

pub use error::WickError;
pub use inputs::{image, tensor};
pub use requests::{event_type, settle, Expect, Requests, WORKER_ID};

#[cfg(target_arch = "wasm32")]
pub use stream::{Generation, Transcription};
#[cfg(target_arch = "wasm32")]
pub use pipeline::{pipeline, Pipeline};
#[cfg(target_arch = "wasm32")]
pub use wick::{set_default_worker_url, Wick};
