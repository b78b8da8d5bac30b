//! `wick-check`: runs ONNX-test-style cases natively and compares every output with the
//! expected one; `check DIR...` for any case folders, `conformance` for the ONNX backend test
//! suites. `cargo xtask check-model` and `cargo xtask conformance` build it with panics
//! unwinding (so one broken case cannot end a run) and run it; `wick-check help` says more.
//! The logic lives in `wick_worker::check`.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    wick_worker::check::cli::main(std::env::args().skip(1).collect())
}

/// A native tool: `cargo build --target wasm32-unknown-unknown` builds every target of the
/// package, so on the web this is an empty program.
#[cfg(target_arch = "wasm32")]
fn main() {}
