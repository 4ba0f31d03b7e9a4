//! Forwarding of proxied API calls: bodies stream both ways (never buffered), one
//! upstream call at a time with a time limit for the response headers, one refresh and
//! retry on a 401 to a safe method. The decisions are in [`crate::proxy`] (the full path's,
//! from start to answer, in [`crate::proxy::forward`]). Calls that need
//! no I/O first take the direct path ([`try_direct`]); the rest, and direct calls that
//! end in a 401 or a failure, the full path ([`forward`]).

use super::send::{send_bounded, SendFailure};
use super::{convert, js, now, Isolate};
use crate::lifecycle::RequestContext;
use crate::proxy::direct::direct_call;
use crate::proxy::forward::{self as proxy_forward, ProxyAnswer, Resumed, Upstream, UpstreamFailure};
use crate::proxy::headers::dropped_response_headers;
use crate::proxy::UPSTREAM_TIMEOUT_MS;
use crate::router::{self, Route};
use crate::web::client::LocalFuture;
use crate::web::response::HttpRequest;
use std::cell::RefCell;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{js_sys, web_sys, Env, Result};

/// What [`try_direct`] did with a request.
#[expect(clippy::large_enum_variant, reason = "made once per request and moved on at once")]
pub enum Direct {
    /// Sent as a direct call: the promise of the answer.
    Sent(js_sys::Promise),
    /// An agent request answered at once, without I/O (`GET /session`): the resolved
    /// promise of the answer.
    Answered(js_sys::Promise),
    /// Left to the full path, with the request's head when it was read (a proxied call),
    /// so the full path does not read the headers again.
    FullPath(Option<HttpRequest>),
}

/// Send `request` as a direct call when it is a proxied call the core can decide without
/// I/O ([`direct_call`]), or answer it at once when it is a `GET /session` that needs no
/// I/O ([`crate::agent::session_info::direct`]).
pub fn try_direct(isolate: &Isolate, request: &web_sys::Request, env: &Env) -> Direct {
    if !isolate.ready() {
        return Direct::FullPath(None);
    }
    let Ok(config) = isolate.config.as_ref() else { return Direct::FullPath(None) };
    let Ok(uri) = request.url().parse::<http::Uri>() else { return Direct::FullPath(None) };
    let (index, rest) = match router::route(config, uri.path()) {
        Route::Proxy(index, rest) => (index, rest),
        Route::Agent("/session") => return session_now(isolate, config, request, &uri),
        _ => return Direct::FullPath(None),
    };
    let Ok(head) = convert::head_of(request, &uri) else { return Direct::FullPath(None) };
    let Some(call) = direct_call(config, index, rest, &head, isolate.has_kv, Some(&isolate.shared), now()) else {
        return Direct::FullPath(Some(head));
    };
    #[cfg(feature = "test-hooks")]
    if rest == "__edge-bff-test/direct-panic" {
        panic!("test hook: deliberate panic on the direct path");
    }
    let lines = js::header_lines(call.headers.iter().map(|(n, v)| (n.as_str(), v)));
    let append = js::header_lines(call.response_headers.iter().map(|(n, v)| (n.as_str(), v)));
    let (dpop_jwk, dpop_alg) = match &config.dpop_key {
        Some(key) if call.dpop_proof_input.is_some() => (key.key().private_jwk(), key.key().alg().name()),
        _ => ("", ""),
    };
    Direct::Sent(js::proxy_direct(
        request,
        env,
        &call.target,
        head.method().as_str(),
        &lines,
        UPSTREAM_TIMEOUT_MS,
        &dropped_response_headers(config),
        &append,
        call.carries_token,
        call.dpop_proof_input.as_deref().unwrap_or_default(),
        dpop_jwk,
        dpop_alg,
    ))
}

/// `GET /session` answered without entering async Rust, when it needs no I/O.
fn session_now(
    isolate: &Isolate,
    config: &crate::config::Config,
    request: &web_sys::Request,
    uri: &http::Uri,
) -> Direct {
    let Ok(head) = convert::head_with(request, uri, &crate::agent::session_info::DIRECT_HEADERS) else {
        return Direct::FullPath(None);
    };
    let opened = Some(&isolate.shared.opened);
    let Some(response) = crate::agent::session_info::direct(config, &head, isolate.has_kv, opened, now()) else {
        return Direct::FullPath(None);
    };
    match convert::answer(config, response) {
        Ok(response) => Direct::Answered(js_sys::Promise::resolve(&JsValue::from(response))),
        Err(_) => Direct::FullPath(None),
    }
}

/// How a direct call ended when it came back to the full path.
pub enum Outcome {
    /// The upstream answered 401 to a call that carried a token.
    Rejected(web_sys::Response),
    /// The call failed or timed out (the JS error).
    Failed(JsValue),
}

impl Outcome {
    /// Read the value `glue.js` passes back: a `Response`, or anything else as a failure.
    pub fn from_js(value: JsValue) -> Self {
        match value.dyn_into::<web_sys::Response>() {
            Ok(response) => Self::Rejected(response),
            Err(error) => Self::Failed(error),
        }
    }
}

/// Handle a request for API route `index` with `rest` after its prefix; `head` is its
/// method, URI and headers. `resumed` is the outcome of its direct call, which then
/// stands for the first upstream call (the request body, if any, was consumed by it).
/// The core decides everything ([`proxy_forward::forward`]); here the request's body goes
/// to the upstream and the answer comes back, each converted once.
pub async fn forward(
    ctx: &RequestContext<'_>,
    index: usize,
    rest: &str,
    request: web_sys::Request,
    head: HttpRequest,
    resumed: Option<Outcome>,
) -> Result<web_sys::Response> {
    let bodiless = matches!(head.method(), &http::Method::GET | &http::Method::HEAD);
    // A resumed request's body (if any) went with its direct call.
    let body = if bodiless || resumed.is_some() { None } else { request.body() };
    let upstream = WorkerUpstream { body: RefCell::new(body) };
    let resumed = resumed.map(|outcome| match outcome {
        Outcome::Rejected(response) => Resumed::Rejected(response),
        Outcome::Failed(error) => Resumed::Failed(failure_of(SendFailure::of(&error))),
    });
    match proxy_forward::forward(ctx, index, rest, &head, &upstream, resumed).await {
        ProxyAnswer::Made(response) => convert::answer(ctx.config, response),
        ProxyAnswer::Upstream { response, dropped, append } => {
            let append = js::header_lines(append.iter().map(|(n, v)| (n.as_str(), v)));
            js::response_from(&response, &dropped, &append).map_err(worker::Error::from)
        }
    }
}

/// The runtime's upstream calls: the bounded send, the browser's body with the first.
struct WorkerUpstream {
    body: RefCell<Option<web_sys::ReadableStream>>,
}

impl Upstream for WorkerUpstream {
    type Response = web_sys::Response;

    fn send<'a>(
        &'a self,
        target: &'a str,
        method: &'a str,
        headers: &'a http::HeaderMap,
    ) -> LocalFuture<'a, std::result::Result<web_sys::Response, UpstreamFailure>> {
        Box::pin(async move {
            // The upstream's whole header list crosses in one string: one runtime call
            // builds it, where editing a copy of the browser's `Headers` took one call per
            // change.
            let lines = js::header_lines(headers.iter().map(|(n, v)| (n.as_str(), v)));
            let body = self.body.borrow_mut().take();
            send(target, method, &lines, body).await
        })
    }

    fn status(&self, response: &web_sys::Response) -> u16 {
        response.status()
    }

    fn header(&self, response: &web_sys::Response, name: &str) -> Option<String> {
        response.headers().get(name).ok().flatten()
    }
}

/// One upstream call: no redirects followed, response headers within the time limit.
async fn send(
    target: &str,
    method: &str,
    header_lines: &str,
    body: Option<web_sys::ReadableStream>,
) -> std::result::Result<web_sys::Response, UpstreamFailure> {
    let body = body.map_or(JsValue::NULL, JsValue::from);
    send_bounded(target, method, header_lines, &body, UPSTREAM_TIMEOUT_MS).await.map_err(failure_of)
}

/// The core's name for a failed send.
fn failure_of(failure: SendFailure) -> UpstreamFailure {
    match failure {
        SendFailure::Timeout => UpstreamFailure::Timeout,
        SendFailure::Network(message) => UpstreamFailure::Network(message),
    }
}
