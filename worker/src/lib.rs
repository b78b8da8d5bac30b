//! The Wick worker: everything that runs inside the dedicated Web Worker.
//!
//! - [`loader`] — streams model files into tensor memory (platform-neutral core);
//! - [`engine`] — ONNX graph → plan → run on candle-core;
//! - [`tasks`] — pre/post-processing per task;
//! - `web` (wasm32 only) — the message loop, fetch streaming and cancellation.
//!
//! Nothing here panics on input from outside: every failure is a [`error::WickError`] that
//! becomes a typed `error` event.

pub mod engine;
pub mod error;
pub mod loader;
pub mod tasks;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(not(target_arch = "wasm32"))]
pub mod check;

#[cfg(target_arch = "wasm32")]
mod web;
