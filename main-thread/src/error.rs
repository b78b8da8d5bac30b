//! The errors a page sees. Every one becomes a JS `Error` whose `code` is a stable string: the
//! wire code when the worker (or a local check of the same rule) refused the request, `cancelled`
//! when the caller gave up on it.

use wick_shared::{ErrorCode, WireError};

/// Why a request was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WickError {
    /// The worker answered `error`, or the request failed the same check before it was sent.
    #[error("{}", .0.message)]
    Wire(#[from] WireError),
    /// The request's AbortSignal fired and the worker answered `cancelled`, or it fired before the
    /// request was sent.
    #[error("the request was cancelled")]
    Cancelled,
    /// `terminate()` was called (or the Wick was freed) before the request ended.
    #[error("the worker was terminated")]
    Terminated,
    /// The worker raised an uncaught error (a panic, a script that failed to load); it was
    /// terminated and every request in flight was rejected.
    #[error("the worker crashed: {message}")]
    Crashed { message: String },
}

impl WickError {
    /// Shorthand for an error with a wire code.
    pub fn wire(code: ErrorCode, message: impl Into<String>) -> Self {
        WickError::Wire(WireError::new(code, message))
    }

    /// The `code` property of the JS error.
    pub fn code(&self) -> &'static str {
        match self {
            WickError::Wire(e) => e.code.as_str(),
            WickError::Cancelled | WickError::Terminated => "cancelled",
            WickError::Crashed { .. } => ErrorCode::Internal.as_str(),
        }
    }

    /// The `name` property of the JS error: `AbortError` for the caller's own cancellations, as
    /// `fetch` does, so `e.name === 'AbortError'` checks keep working.
    pub fn name(&self) -> &'static str {
        match self {
            WickError::Cancelled | WickError::Terminated => "AbortError",
            _ => "WickError",
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl WickError {
    /// A JS `Error` with `name`, `code` and, when present, `file` and `status`.
    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        use js_sys::Reflect;
        let error = js_sys::Error::new(&self.to_string());
        error.set_name(self.name());
        let _ = Reflect::set(&error, &"code".into(), &self.code().into());
        if let WickError::Wire(wire) = self {
            if let Some(file) = &wire.file {
                let _ = Reflect::set(&error, &"file".into(), &file.into());
            }
            if let Some(status) = wire.status {
                let _ = Reflect::set(&error, &"status".into(), &status.into());
            }
        }
        error.into()
    }
}

#[cfg(target_arch = "wasm32")]
impl From<WickError> for wasm_bindgen::JsValue {
    fn from(e: WickError) -> Self {
        e.to_js()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_wire_codes_or_cancelled() {
        let e = WickError::wire(ErrorCode::FetchFailed, "404 Not Found");
        assert_eq!(
            (e.code(), e.name(), e.to_string().as_str()),
            ("fetch_failed", "WickError", "404 Not Found")
        );
        assert_eq!(
            (WickError::Cancelled.code(), WickError::Cancelled.name()),
            ("cancelled", "AbortError")
        );
        assert_eq!(WickError::Terminated.code(), "cancelled");
        assert_eq!(
            WickError::Crashed {
                message: "boom".into()
            }
            .code(),
            "internal"
        );
    }
}
