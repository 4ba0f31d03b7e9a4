//! Forwarding of proxied API calls: bodies stream both ways (never buffered), one
//! upstream call at a time with a time limit for the response headers, one refresh and
//! retry on a 401 to a safe method. The decisions are in [`crate::proxy`].

use super::convert;
use crate::agent::refresh::refresh_session;
use crate::agent::{error_response, request_cookies, AgentContext};
use crate::config::RouteToken;
use crate::error::BffError;
use crate::proxy::headers::{dropped_response_headers, upstream_header_edits, Forwarding};
use crate::proxy::{self, AfterUpstream, UPSTREAM_TIMEOUT_MS};
use crate::web::client::race_timeout;
use crate::web::cors;
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response, Result};

/// Handle a request for API route `index` with `rest` after its prefix.
pub async fn forward(
    ctx: &AgentContext<'_>,
    index: usize,
    rest: &str,
    request: Request,
    url: &url::Url,
) -> Result<Response> {
    let config = ctx.config;
    let route = &config.api_routes[index];
    let head = convert::head_of(&request, url)?;
    let cors_headers = cors::response_headers(config, head.headers());
    let finish = |response: crate::web::response::HttpResponse| {
        let mut response = response;
        for (name, value) in &cors_headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        convert::to_worker(response)
    };
    if cors::is_preflight(head.method(), head.headers()) {
        let methods =
            route.methods.as_ref().map_or_else(|| "GET, HEAD, POST, PUT, PATCH, DELETE".to_string(), |m| m.join(", "));
        return convert::to_worker(cors::preflight(config, head.headers(), &methods));
    }
    let target = match proxy::target(config, route, rest, &head) {
        Ok(t) => t,
        Err(e) => return finish(error_response(config, &head, &e)),
    };
    let cookies = request_cookies(&head);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let mut call = match route.token {
        RouteToken::None => None,
        RouteToken::Access => match proxy::session_for_call(ctx, &cookies).await {
            Ok(c) => Some(c),
            Err(e) => return finish(error_response(config, &head, &e)),
        },
    };
    let public = url::Url::parse(&config.public_origin).ok();
    let proto = public.as_ref().map_or("https", |u| u.scheme()).to_string();
    // Host and port as the browser sent them (`X-Forwarded-Host`).
    let host =
        public.as_ref().map(|u| u[url::Position::BeforeHost..url::Position::AfterPort].to_string()).unwrap_or_default();
    let client_ip = head.headers().get("cf-connecting-ip").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut body = if matches!(request.method(), Method::Get | Method::Head) { None } else { request.inner().body() };

    let mut retried = false;
    let upstream = loop {
        let edits = upstream_header_edits(
            config,
            head.headers(),
            Forwarding {
                access_token: call.as_ref().map(|c| c.session.access_token.as_str()),
                client_ip: client_ip.as_deref(),
                proto: &proto,
                host: &host,
            },
        );
        // A copy of the browser's headers (one call into the runtime), edited in place.
        let headers = request.headers().clone();
        for name in &edits.remove {
            headers.delete(name)?;
        }
        for (name, value) in &edits.set {
            if let Ok(v) = value.to_str() {
                headers.set(name.as_str(), v)?;
            }
        }
        let response = match send(&target, head.method().as_str(), headers, body.take()).await {
            Ok(r) => r,
            Err(e) => return finish(error_response(config, &head, &e)),
        };
        match proxy::after_upstream(response.status_code(), head.method(), call.is_some(), retried) {
            AfterUpstream::Return => break response,
            AfterUpstream::RefreshAndRetry => {
                let Some(current) = call.as_mut() else { break response };
                match refresh_session(ctx, &current.session, &current.handle).await {
                    Ok((next, leader)) => {
                        current.session = next;
                        current.rewrite = true;
                        current.leader = leader;
                        retried = true;
                    }
                    Err(e) => return finish(error_response(config, &head, &e)),
                }
            }
            AfterUpstream::Reject => {
                let mut rejected = error_response(config, &head, &BffError::TokenRejected);
                if let Some(set) = write_back(ctx, call.as_ref(), &present).await {
                    crate::web::response::add_set_cookies(&mut rejected, &set);
                }
                return finish(rejected);
            }
        }
    };

    // A copy of the upstream's headers, edited in place.
    let headers = upstream.headers().clone();
    for name in dropped_response_headers() {
        headers.delete(name)?;
    }
    for (name, value) in &cors_headers {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    for cookie in write_back(ctx, call.as_ref(), &present).await.unwrap_or_default() {
        headers.append("set-cookie", &cookie)?;
    }
    Ok(upstream.with_headers(headers))
}

/// Store a session that changed during the call; `Set-Cookie` values, if any.
async fn write_back(
    ctx: &AgentContext<'_>,
    call: Option<&proxy::CallSession>,
    present: &[&str],
) -> Option<Vec<String>> {
    let call = call.filter(|c| c.rewrite)?;
    match ctx.store.update(&call.session, &call.handle, present, ctx.now, call.leader).await {
        Ok(set) => Some(set),
        Err(e) => {
            log::error!("{e}");
            None
        }
    }
}

/// One upstream call: no redirects followed, response headers within the time limit.
async fn send(
    target: &str,
    method: &str,
    headers: Headers,
    body: Option<worker::web_sys::ReadableStream>,
) -> std::result::Result<Response, BffError> {
    let unavailable = |d: String| BffError::UpstreamUnavailable(d);
    let mut init = RequestInit::new();
    init.with_method(Method::from(method.to_string())).with_headers(headers).with_redirect(RequestRedirect::Manual);
    if let Some(stream) = body {
        init.with_body(Some(stream.into()));
    }
    let request = Request::new_with_init(target, &init).map_err(|e| unavailable(format!("request: {e}")))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let call = fetch.send_with_signal(&signal);
    match race_timeout(call, Delay::from(Duration::from_millis(u64::from(UPSTREAM_TIMEOUT_MS)))).await {
        None => {
            controller.abort();
            Err(unavailable(format!("no response within {UPSTREAM_TIMEOUT_MS} ms from {}", host_of(target))))
        }
        Some(Err(e)) => Err(unavailable(format!("{}: {e}", host_of(target)))),
        Some(Ok(response)) => Ok(response),
    }
}

/// Scheme, host and port of a URL, for logs (never the path or query).
fn host_of(target: &str) -> String {
    url::Url::parse(target).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}
