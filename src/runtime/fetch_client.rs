//! [`HttpClient`] on `worker::Fetch`: redirects are not followed, every call is bounded
//! by a timeout that also aborts the underlying fetch, bodies are size-limited.

use crate::web::client::{race_timeout, HttpClient, IncomingResponse, LocalFuture, OutgoingRequest, TransportError};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// Largest response body read from the identity provider.
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// Outgoing HTTP through the Workers runtime.
pub struct WorkerFetch {
    /// Time limit per call.
    pub timeout_ms: u32,
}

impl HttpClient for WorkerFetch {
    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()> {
        Box::pin(Delay::from(Duration::from_millis(u64::from(ms))))
    }

    fn now_ms(&self) -> u64 {
        super::now_ms()
    }

    fn send(&self, request: OutgoingRequest) -> LocalFuture<'_, Result<IncomingResponse, TransportError>> {
        let timeout_ms = self.timeout_ms;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let headers = Headers::new();
            for (name, value) in &parts.headers {
                let value = value.to_str().map_err(|_| TransportError::Network("non-ASCII header".into()))?;
                headers.append(name.as_str(), value).map_err(|e| TransportError::Network(e.to_string()))?;
            }
            let mut init = RequestInit::new();
            init.with_method(Method::from(parts.method.as_str().to_string()))
                .with_headers(headers)
                .with_redirect(RequestRedirect::Manual);
            if !body.is_empty() {
                init.with_body(Some(worker::js_sys::Uint8Array::from(body.as_slice()).into()));
            }
            let target = parts.uri.to_string();
            let request = Request::new_with_init(&target, &init).map_err(|e| TransportError::Network(e.to_string()))?;
            let controller = AbortController::default();
            let signal = controller.signal();
            let call = async {
                let mut response = Fetch::Request(request).send_with_signal(&signal).await?;
                let status = response.status_code();
                let headers: Vec<(String, String)> = response.headers().entries().collect();
                let bytes = response.bytes().await?;
                Ok::<_, worker::Error>((status, headers, bytes))
            };
            let outcome = race_timeout(call, Delay::from(Duration::from_millis(u64::from(timeout_ms)))).await;
            let (status, headers, bytes) = match outcome {
                None => {
                    controller.abort();
                    return Err(TransportError::Timeout(timeout_ms));
                }
                Some(Err(e)) => return Err(TransportError::Network(e.to_string())),
                Some(Ok(parts)) => parts,
            };
            if bytes.len() > MAX_RESPONSE {
                return Err(TransportError::TooLarge(MAX_RESPONSE));
            }
            let mut builder = http::Response::builder().status(status);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder.body(bytes).map_err(|e| TransportError::Network(e.to_string()))
        })
    }
}
