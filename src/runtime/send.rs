//! The one way edge-bff calls out over HTTP with a bounded wait (`glue.js`'s
//! `sendBounded`): the API proxy streams through it, and the provider client
//! ([`super::fetch_client::WorkerFetch`]) buffers through it. No redirects are followed;
//! the response headers must arrive within the time limit or the call is aborted.

use super::js;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys};

/// Why a bounded call produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// No response headers within the time limit (the call was aborted).
    Timeout,
    /// The runtime's fetch failed (its message, for the log).
    Network(String),
}

impl SendFailure {
    /// Read what `sendBounded` rejected with.
    pub fn of(error: &JsValue) -> Self {
        let error = error.dyn_ref::<js_sys::Error>();
        if error.is_some_and(|e| e.name() == "UpstreamTimeout") {
            Self::Timeout
        } else {
            Self::Network(error.map(|e| String::from(e.message())).unwrap_or_else(|| "fetch failed".into()))
        }
    }
}

/// Send `method` `url` with the header lines and `body` (a `ReadableStream`, bytes, or
/// `JsValue::NULL`); the response once its headers are in, within `timeout_ms`.
pub async fn send_bounded(
    url: &str,
    method: &str,
    header_lines: &str,
    body: &JsValue,
    timeout_ms: u32,
) -> Result<web_sys::Response, SendFailure> {
    match JsFuture::from(js::send_bounded(url, method, header_lines, body, timeout_ms)).await {
        Ok(response) => Ok(response.unchecked_into()),
        Err(e) => Err(SendFailure::of(&e)),
    }
}
