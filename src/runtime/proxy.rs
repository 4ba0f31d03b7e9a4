//! Forwarding of proxied API calls: bodies stream both ways (never buffered), one
//! upstream call at a time with a time limit for the response headers, one refresh and
//! retry on a 401 to a safe method. The decisions are in [`crate::proxy`]. Calls that need
//! no I/O first take the direct path ([`try_direct`]); the rest, and direct calls that
//! end in a 401 or a failure, the full path ([`forward`]).

use super::send::{send_bounded, SendFailure};
use super::{convert, js, now, Isolate};
use crate::agent::request_cookies;
use crate::config::RouteToken;
use crate::error::BffError;
use crate::lifecycle::{self, error_response, RequestContext, SessionCall};
use crate::oidc::dpop;
use crate::proxy::direct::direct_call;
use crate::proxy::headers::{dropped_response_headers, upstream_headers, Forwarding};
use crate::proxy::{self, AfterUpstream, UPSTREAM_TIMEOUT_MS};
use crate::router::{self, Route};
use crate::web::cors;
use crate::web::response::HttpRequest;
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
pub async fn forward(
    ctx: &RequestContext<'_>,
    index: usize,
    rest: &str,
    request: web_sys::Request,
    head: HttpRequest,
    mut resumed: Option<Outcome>,
) -> Result<web_sys::Response> {
    let config = ctx.config;
    let route = &config.api_routes[index];
    let cors_headers = cors::response_headers(config, head.headers());
    let finish = |response: crate::web::response::HttpResponse| {
        let mut response = response;
        for (name, value) in &cors_headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        convert::answer(config, response)
    };
    if cors::is_preflight(head.method(), head.headers()) {
        let methods =
            route.methods.as_ref().map_or_else(|| "GET, HEAD, POST, PUT, PATCH, DELETE".to_string(), |m| m.join(", "));
        return convert::answer(config, cors::preflight(config, head.headers(), &methods));
    }
    let cookies = request_cookies(&head);
    let (target, kind) = match proxy::target_and_kind(config, route, rest, &head) {
        Ok(t) => t,
        Err(e) => return finish(error_response(ctx, &cookies, &e)),
    };
    let mut call: Option<SessionCall> = match route.token {
        RouteToken::None => None,
        RouteToken::Access => match lifecycle::open(ctx, &cookies).await {
            Ok(c) => Some(c),
            Err(e) => return finish(error_response(ctx, &cookies, &e)),
        },
    };
    if let Some(c) = call.as_ref() {
        if let Err(e) = proxy::authorize(route, c.session()) {
            log::info!("route {} refused: the session does not meet its require", route.prefix);
            return finish(fail(ctx, call.as_mut(), &cookies, &e).await);
        }
    }
    // From here on every answer goes through `fail` or the success path, both of which
    // carry the cookies of a refresh: refreshed tokens are never dropped.
    if let Some(c) = call.as_mut() {
        let checked = c.refresh_if_due(ctx).await.and_then(|()| reauthorize(route, c));
        if let Err(e) = checked {
            return finish(fail(ctx, call.as_mut(), &cookies, &e).await);
        }
    }
    let bodiless = matches!(head.method(), &http::Method::GET | &http::Method::HEAD);
    let mut retried = false;
    let mut nonce_retried = false;
    let dpop_origin = crate::oidc::dpop::origin_of(&route.upstream);
    // A resumed request's body (if any) went with its direct call.
    let mut body = if bodiless || resumed.is_some() { None } else { request.body() };
    // The direct call's 401 answered the cookie's token. If that token was refreshed just
    // now (it became due in between), the 401 says nothing about the new one: a safe
    // method is sent again with it instead of refreshing a second time.
    if call.as_ref().is_some_and(SessionCall::refreshed)
        && matches!(resumed, Some(Outcome::Rejected(_)))
        && proxy::is_safe(head.method())
    {
        // That resend is the one retry: a second 401 is `token_rejected`.
        resumed = None;
        retried = true;
    }

    let upstream = loop {
        let sent = match resumed.take() {
            Some(Outcome::Rejected(response)) => Ok(response),
            Some(Outcome::Failed(error)) => Err(upstream_error(&error, &target)),
            None => {
                let session = call.as_ref().map(SessionCall::session);
                let access_token = session.map(|s| s.access_token.as_str());
                let dpop = session.is_some_and(|s| s.dpop);
                let forwarding = Forwarding::of(config, &head, access_token, dpop);
                // The upstream's whole header list crosses in one string: one runtime call
                // builds it, where editing a copy of the browser's `Headers` took one call
                // per change.
                let mut headers = upstream_headers(config, head.headers(), &cookies, forwarding);
                if kind == proxy::CallKind::WebSocket {
                    crate::proxy::headers::for_websocket(&mut headers);
                }
                if let (Some(key), Some(token), true) = (&config.dpop_key, access_token, dpop) {
                    let nonce = ctx.shared.dpop_nonces.get(dpop_origin);
                    let method = head.method().as_str();
                    match dpop::proof(ctx.signer, key, method, &target, nonce.as_deref(), Some(token), ctx.now).await {
                        Ok(proof) => {
                            if let Ok(value) = http::HeaderValue::from_str(&proof) {
                                headers.insert("dpop", value);
                            }
                        }
                        Err(e) => {
                            let e = BffError::Server(format!("DPoP proof: {e}"));
                            return finish(fail(ctx, call.as_mut(), &cookies, &e).await);
                        }
                    }
                }
                let lines = js::header_lines(headers.iter().map(|(n, v)| (n.as_str(), v)));
                send(&target, head.method().as_str(), &lines, body.take()).await
            }
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => return finish(fail(ctx, call.as_mut(), &cookies, &e).await),
        };
        // A DPoP nonce challenge (RFC 9449 section 9): the nonce is remembered for the
        // next call to this upstream, and a safe method is sent once more with it. A
        // second challenge, or one to an unsafe method, is `token_rejected`: the token
        // is fine, so no refresh.
        if response.status() == 401 && call.as_ref().is_some_and(|c| c.session().dpop) {
            if let Some(nonce) = upstream_nonce_challenge(&response) {
                ctx.shared.dpop_nonces.remember(dpop_origin, nonce);
                if proxy::is_safe(head.method()) && !nonce_retried {
                    nonce_retried = true;
                    log::info!("{} asked for a DPoP nonce; sending the call again with it", host_of(&target));
                    continue;
                }
                log::info!("{} asked for a DPoP nonce; the call is not sent again", host_of(&target));
                return finish(fail(ctx, call.as_mut(), &cookies, &BffError::TokenRejected).await);
            }
        }
        let can_refresh = call.as_ref().is_some_and(|c| c.session().refresh_token.is_some());
        match proxy::after_upstream(response.status(), head.method(), call.is_some(), retried, can_refresh) {
            AfterUpstream::Return => break response,
            AfterUpstream::RefreshAndRetry => {
                let Some(current) = call.as_mut() else { break response };
                let checked = current.refresh(ctx).await.and_then(|()| reauthorize(route, current));
                if let Err(e) = checked {
                    return finish(fail(ctx, call.as_mut(), &cookies, &e).await);
                }
                retried = true;
            }
            AfterUpstream::Reject => {
                return finish(fail(ctx, call.as_mut(), &cookies, &BffError::TokenRejected).await);
            }
        }
    };

    // The upstream's answer, its headers edited in one call.
    let hsts = crate::web::security_headers::hsts(config);
    let mut append = js::header_lines(cors_headers.iter().chain(hsts.iter()).map(|(n, v)| (n.as_str(), v)));
    if let Some(call) = call {
        for cookie in call.finish(ctx).await {
            append.push_str("set-cookie:");
            append.push_str(&cookie);
            append.push('\n');
        }
    }
    js::response_from(&upstream, &dropped_response_headers(config), &append).map_err(worker::Error::from)
}

/// The route's `require` once more after a refresh, which may have brought an ID token
/// with other claims (a group removed since login): the call is not forwarded with them.
fn reauthorize(route: &crate::config::ApiRoute, call: &SessionCall) -> std::result::Result<(), BffError> {
    if !call.refreshed() {
        return Ok(());
    }
    proxy::authorize(route, call.session()).inspect_err(|_| {
        log::info!("route {} refused: after a refresh the session no longer meets its require", route.prefix);
    })
}

/// The error answer of a proxied call: with the session's cookies (a refresh's, activity)
/// when there is a session and the error does not end it.
async fn fail(
    ctx: &RequestContext<'_>,
    call: Option<&mut SessionCall>,
    cookies: &[(&str, &str)],
    e: &BffError,
) -> crate::web::response::HttpResponse {
    match call {
        Some(call) => call.fail(ctx, cookies, e).await,
        None => error_response(ctx, cookies, e),
    }
}

/// One upstream call: no redirects followed, response headers within the time limit.
async fn send(
    target: &str,
    method: &str,
    header_lines: &str,
    body: Option<web_sys::ReadableStream>,
) -> std::result::Result<web_sys::Response, BffError> {
    let body = body.map_or(JsValue::NULL, JsValue::from);
    send_bounded(target, method, header_lines, &body, UPSTREAM_TIMEOUT_MS)
        .await
        .map_err(|f| upstream_error_of(f, target))
}

/// The nonce of an upstream's `use_dpop_nonce` challenge, if `response` (a 401) is one.
fn upstream_nonce_challenge(response: &web_sys::Response) -> Option<String> {
    let headers = response.headers();
    let nonce = headers.get("dpop-nonce").ok().flatten();
    let www_authenticate = headers.get("www-authenticate").ok().flatten();
    dpop::resource_challenge(www_authenticate.as_deref().into_iter(), nonce.as_deref())
}

/// The error for a failed upstream call (`error` as `sendBounded` rejected with).
fn upstream_error(error: &JsValue, target: &str) -> BffError {
    upstream_error_of(SendFailure::of(error), target)
}

fn upstream_error_of(failure: SendFailure, target: &str) -> BffError {
    BffError::UpstreamUnavailable(match failure {
        SendFailure::Timeout => format!("no response within {UPSTREAM_TIMEOUT_MS} ms from {}", host_of(target)),
        SendFailure::Network(message) => format!("{}: {message}", host_of(target)),
    })
}

/// Scheme, host and port of a URL, for logs (never the path or query).
fn host_of(target: &str) -> String {
    url::Url::parse(target).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}
