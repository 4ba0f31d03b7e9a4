//! [`HttpClient`] for calls to the identity provider, on the same bounded send as the API
//! proxy ([`super::send`]): redirects are not followed, the headers must arrive within the
//! time limit (the fetch is aborted otherwise), the body within what is left of it, and
//! bodies are size-limited.

use super::send::{send_bounded, SendFailure};
use super::{js, now_ms};
use crate::web::client::{HttpClient, IncomingResponse, LocalFuture, OutgoingRequest, TransportError};
use std::time::Duration;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, Delay};

/// Largest response body read from the identity provider (the read stops there).
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// Outgoing HTTP through the Workers runtime.
pub struct WorkerFetch {
    /// Time limit per call (headers and body).
    pub timeout_ms: u32,
}

impl HttpClient for WorkerFetch {
    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()> {
        Box::pin(Delay::from(Duration::from_millis(u64::from(ms))))
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn send(&self, request: OutgoingRequest) -> LocalFuture<'_, Result<IncomingResponse, TransportError>> {
        let timeout_ms = self.timeout_ms;
        Box::pin(async move {
            let started = now_ms();
            let (parts, body) = request.into_parts();
            let lines = js::header_lines(parts.headers.iter().map(|(n, v)| (n.as_str(), v)));
            let body = if body.is_empty() { JsValue::NULL } else { js_sys::Uint8Array::from(body.as_slice()).into() };
            let url = parts.uri.to_string();
            let response =
                send_bounded(&url, parts.method.as_str(), &lines, &body, timeout_ms).await.map_err(|failure| {
                    match failure {
                        SendFailure::Timeout => TransportError::Timeout(timeout_ms),
                        SendFailure::Network(message) => TransportError::Network(message),
                    }
                })?;
            // The body within what is left of the time limit, and no more of it than
            // MAX_RESPONSE: the read stops (and the stream is cancelled) at the limit.
            let left = u64::from(timeout_ms).saturating_sub(now_ms().saturating_sub(started));
            let left = u32::try_from(left).unwrap_or(timeout_ms);
            let bytes = match JsFuture::from(js::read_bounded(&response, MAX_RESPONSE as u32, left)).await {
                Ok(bytes) => js_sys::Uint8Array::new(&bytes).to_vec(),
                Err(error) => {
                    let name = error.dyn_ref::<js_sys::Error>().map(|e| String::from(e.name()));
                    return Err(match name.as_deref() {
                        Some("BodyTooLarge") => TransportError::TooLarge(MAX_RESPONSE),
                        Some("UpstreamTimeout") => TransportError::Timeout(timeout_ms),
                        _ => TransportError::Network("body read failed".into()),
                    });
                }
            };
            let block = js::header_block(&response.headers());
            let headers = std::str::from_utf8(&block)
                .ok()
                .and_then(|text| js::header_map(text).ok())
                .ok_or_else(|| TransportError::Network("response headers unreadable".into()))?;
            let mut incoming = http::Response::new(bytes);
            *incoming.status_mut() =
                http::StatusCode::from_u16(response.status()).map_err(|e| TransportError::Network(e.to_string()))?;
            *incoming.headers_mut() = headers;
            Ok(incoming)
        })
    }
}
