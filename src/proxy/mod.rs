//! The API proxy's decisions (docs/api.md section 4): which upstream URL, which headers,
//! whether the session's token must be refreshed first, and what to do with an upstream
//! 401. The forwarding itself (streamed bodies) is in `runtime::proxy`. It may use
//! `lifecycle` and every layer below it, never `agent` or `runtime`.

pub mod direct;
pub mod forward;
pub mod headers;
pub mod path;

use crate::config::{ApiRoute, Config};
use crate::error::BffError;
use crate::web::response::HttpRequest;
use http::Method;

pub use crate::session::REFRESH_MARGIN;
/// Time limit for an upstream's response headers, in milliseconds.
#[cfg(not(feature = "test-hooks"))]
pub const UPSTREAM_TIMEOUT_MS: u32 = 30_000;
/// Test builds (`build-test/`): short, so the integration tests can exercise it.
#[cfg(feature = "test-hooks")]
pub const UPSTREAM_TIMEOUT_MS: u32 = 2_000;

/// Whether `method` is safe to send twice (docs/api.md section 4: GET, HEAD, OPTIONS).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What kind of proxied call a request is (docs/api.md section 4, route options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// An ordinary call: `X-CSRF: 1` required.
    Plain,
    /// A WebSocket handshake on a `websocket` route: a trusted `Origin` required instead.
    WebSocket,
    /// An `EventSource` request on an `event_stream` route: `Sec-Fetch-Site:
    /// same-origin` stands for `X-CSRF`.
    EventStream,
}

/// Whether `request` asks for a WebSocket (`GET` with `Upgrade: websocket`).
pub fn is_websocket_upgrade(request: &HttpRequest) -> bool {
    request.method() == Method::GET
        && request
            .headers()
            .get_all(http::header::UPGRADE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
}

/// The kind of `request` on `route`, and its CSRF check: a WebSocket upgrade on a route
/// without `websocket` is 400 `invalid_request`; an upgrade needs an `Origin` that is
/// `PUBLIC_ORIGIN` or trusted; an event stream request (`GET`, `Accept` with
/// `text/event-stream`, `Sec-Fetch-Site: same-origin`) on an `event_stream` route needs
/// no `X-CSRF` (a trusted `Origin` when it sends one); everything else the usual guard.
pub fn call_kind(config: &Config, route: &ApiRoute, request: &HttpRequest) -> Result<CallKind, BffError> {
    use crate::web::csrf::CsrfInputs;
    use crate::web::response::header_str;
    let origin = header_str(request, "origin");
    // The kind first, then the one check that fits it. A WebSocket handshake and an
    // `EventSource` request cannot set `X-CSRF`: for them only the `Origin` rule applies.
    let (kind, inputs) = if is_websocket_upgrade(request) {
        if !route.websocket {
            return Err(BffError::InvalidRequest("WebSocket upgrade on a route without websocket".into()));
        }
        if origin.is_none() {
            return Err(BffError::CsrfCheckFailed("WebSocket without Origin"));
        }
        (CallKind::WebSocket, CsrfInputs { x_csrf: Some("1"), origin, sec_fetch_site: None })
    } else if is_event_stream(route, request) {
        // `Sec-Fetch-Site: same-origin` stands for `X-CSRF`; an `Origin`, if any, is
        // checked as for any call.
        (CallKind::EventStream, CsrfInputs { x_csrf: Some("1"), origin, sec_fetch_site: None })
    } else {
        let inputs = CsrfInputs {
            x_csrf: header_str(request, "x-csrf"),
            origin,
            sec_fetch_site: header_str(request, "sec-fetch-site"),
        };
        (CallKind::Plain, inputs)
    };
    crate::web::csrf::check(inputs, &config.public_origin, &config.trusted_origins)?;
    Ok(kind)
}

/// Whether `request` is an `EventSource` request (`GET`, `Accept` with
/// `text/event-stream`, `Sec-Fetch-Site: same-origin`) on an `event_stream` route.
fn is_event_stream(route: &ApiRoute, request: &HttpRequest) -> bool {
    use crate::web::response::header_str;
    route.event_stream
        && request.method() == Method::GET
        && header_str(request, "sec-fetch-site").map(str::trim) == Some("same-origin")
        && request
            .headers()
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

/// The upstream URL for a request, after the CSRF ([`call_kind`]), method and path checks.
/// `request` carries the method, URI and headers (its body is not looked at).
pub fn target(config: &Config, route: &ApiRoute, rest: &str, request: &HttpRequest) -> Result<String, BffError> {
    target_and_kind(config, route, rest, request).map(|(target, _)| target)
}

/// [`target`], and the call's kind.
pub fn target_and_kind(
    config: &Config,
    route: &ApiRoute,
    rest: &str,
    request: &HttpRequest,
) -> Result<(String, CallKind), BffError> {
    let kind = call_kind(config, route, request)?;
    if let Some(methods) = &route.methods {
        if !methods.iter().any(|m| m == request.method().as_str()) {
            return Err(BffError::MethodNotAllowed { allow: methods.join(", ") });
        }
    }
    let relative = path::confine(rest)?;
    let mut url = format!("{}{}", route.upstream.as_str(), relative);
    if let Some(query) = request.uri().query() {
        url.push('?');
        url.push_str(query);
    }
    Ok((url, kind))
}

/// The route's `require` check (docs/api.md section 4): 403 `forbidden` unless `session`'s
/// claims meet it. Runs after the session check, before any refresh or upstream call.
pub fn authorize(route: &ApiRoute, session: &crate::session::Session) -> Result<(), BffError> {
    match session.meets(route.require.as_ref()) {
        true => Ok(()),
        false => Err(BffError::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config_with;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Vec::new()).unwrap()
    }

    #[test]
    fn target_checks_in_order_and_keeps_the_query() {
        let c = config_with(&[(
            "API_ROUTES",
            r#"[{"prefix":"/api/","upstream":"https://api.internal/v1","methods":["GET","POST"]}]"#,
        )]);
        let route = &c.api_routes[0];
        let ok = request("GET", "https://app.example.com/api/users/1?x=1&y=%20", &[("x-csrf", "1")]);
        assert_eq!(target(&c, route, "users/1", &ok).unwrap(), "https://api.internal/v1/users/1?x=1&y=%20");
        // CSRF first, even with a bad path and a wrong method.
        let no_csrf = request("DELETE", "https://app.example.com/api/../x", &[]);
        assert_eq!(target(&c, route, "../x", &no_csrf).unwrap_err().code(), "csrf_check_failed");
        let wrong_method = request("DELETE", "https://app.example.com/api/x", &[("x-csrf", "1")]);
        match target(&c, route, "x", &wrong_method).unwrap_err() {
            BffError::MethodNotAllowed { allow } => assert_eq!(allow, "GET, POST"),
            other => panic!("{other:?}"),
        }
        let escape = request("GET", "https://app.example.com/api/x", &[("x-csrf", "1")]);
        assert_eq!(target(&c, route, "..%2f..%2fadmin", &escape).unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn websocket_and_event_stream_requests_have_their_own_csrf_rule() {
        let c = config_with(&[
            (
                "API_ROUTES",
                r#"[{"prefix":"/ws/","upstream":"https://api.internal/ws/","websocket":true},
                    {"prefix":"/events/","upstream":"https://api.internal/ev/","event_stream":true},
                    {"prefix":"/api/","upstream":"https://api.internal/v1/"}]"#,
            ),
            ("TRUSTED_ORIGINS", "https://partner.example"),
        ]);
        let (ws, events, api) = (&c.api_routes[0], &c.api_routes[1], &c.api_routes[2]);
        let kind = |route, method: &str, headers: &[(&str, &str)]| {
            call_kind(&c, route, &request(method, "https://app.example.com/x", headers)).map_err(|e| e.code())
        };
        let upgrade = [("upgrade", "websocket"), ("connection", "Upgrade"), ("origin", "https://app.example.com")];
        assert_eq!(kind(ws, "GET", &upgrade), Ok(CallKind::WebSocket), "no X-CSRF needed");
        assert_eq!(
            kind(ws, "GET", &[("upgrade", "WebSocket"), ("origin", "https://partner.example")]),
            Ok(CallKind::WebSocket)
        );
        assert_eq!(kind(ws, "GET", &[("upgrade", "websocket")]), Err("csrf_check_failed"), "Origin required");
        assert_eq!(
            kind(ws, "GET", &[("upgrade", "websocket"), ("origin", "https://evil.example")]),
            Err("csrf_check_failed")
        );
        assert_eq!(kind(api, "GET", &upgrade), Err("invalid_request"), "an upgrade on a route without websocket");
        // Not an upgrade: the usual rule on the websocket route too.
        assert_eq!(kind(ws, "GET", &[("origin", "https://app.example.com")]), Err("csrf_check_failed"));
        assert_eq!(kind(ws, "GET", &[("x-csrf", "1")]), Ok(CallKind::Plain));

        let es = [("accept", "text/event-stream"), ("sec-fetch-site", "same-origin")];
        assert_eq!(kind(events, "GET", &es), Ok(CallKind::EventStream), "EventSource: no X-CSRF");
        assert_eq!(
            kind(events, "GET", &[("accept", "text/event-stream"), ("sec-fetch-site", "cross-site")]),
            Err("csrf_check_failed")
        );
        assert_eq!(kind(events, "GET", &[("accept", "text/event-stream")]), Err("csrf_check_failed"), "no header");
        assert_eq!(
            kind(
                events,
                "GET",
                &[
                    ("accept", "text/event-stream"),
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://evil.example")
                ]
            ),
            Err("csrf_check_failed")
        );
        assert_eq!(kind(events, "POST", &es), Err("csrf_check_failed"), "GET only");
        assert_eq!(kind(api, "GET", &es), Err("csrf_check_failed"), "only on event_stream routes");
        assert_eq!(kind(events, "GET", &[("sec-fetch-site", "same-origin")]), Err("csrf_check_failed"));
    }
}
