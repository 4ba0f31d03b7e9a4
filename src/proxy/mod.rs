//! The API proxy's decisions (API.md section 4): which upstream URL, which headers,
//! whether the session's token must be refreshed first, and what to do with an upstream
//! 401. The forwarding itself (streamed bodies) is in `runtime::proxy`.

pub mod direct;
pub mod headers;
pub mod path;
pub mod require;

use crate::config::{ApiRoute, Config};
use crate::error::BffError;
use crate::web::csrf::require as require_csrf;
use crate::web::response::HttpRequest;
use http::Method;

pub use crate::session::REFRESH_MARGIN;
/// Time limit for an upstream's response headers, in milliseconds.
#[cfg(not(feature = "test-hooks"))]
pub const UPSTREAM_TIMEOUT_MS: u32 = 30_000;
/// Test builds (`build-test/`): short, so the integration tests can exercise it.
#[cfg(feature = "test-hooks")]
pub const UPSTREAM_TIMEOUT_MS: u32 = 2_000;

/// Whether `method` is safe to send twice (API.md section 4: GET, HEAD, OPTIONS).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The upstream URL for a request, after the CSRF, method and path checks.
/// `request` carries the method, URI and headers (its body is not looked at).
pub fn target(config: &Config, route: &ApiRoute, rest: &str, request: &HttpRequest) -> Result<String, BffError> {
    require_csrf(config, request)?;
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
    Ok(url)
}

/// The route's `require` check (API.md section 4): 403 `forbidden` unless `session`'s
/// claims meet it. Runs after the session check, before any refresh or upstream call.
pub fn authorize(route: &ApiRoute, session: &crate::session::Session) -> Result<(), BffError> {
    match &route.require {
        Some(require) if !require.met_by(&session.user_claims()) => Err(BffError::Forbidden),
        _ => Ok(()),
    }
}

/// What to do with an upstream answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterUpstream {
    /// Stream it back.
    Return,
    /// Refresh the token and send the request once more (safe methods, first 401).
    RefreshAndRetry,
    /// Answer 401 `token_rejected`.
    Reject,
}

/// The rule for upstream 401s: one refresh and one retry for safe methods that carried a
/// token, when the session has a refresh token; `token_rejected` otherwise (the session
/// is kept: the provider did not refuse it, an API refused one call).
pub fn after_upstream(
    status: u16,
    method: &Method,
    sent_token: bool,
    retried: bool,
    can_refresh: bool,
) -> AfterUpstream {
    if status != 401 || !sent_token {
        return AfterUpstream::Return;
    }
    if is_safe(method) && !retried && can_refresh {
        AfterUpstream::RefreshAndRetry
    } else {
        AfterUpstream::Reject
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
    fn upstream_401_rules() {
        assert_eq!(after_upstream(200, &Method::GET, true, false, true), AfterUpstream::Return);
        assert_eq!(after_upstream(401, &Method::GET, true, false, true), AfterUpstream::RefreshAndRetry);
        assert_eq!(after_upstream(401, &Method::GET, true, true, true), AfterUpstream::Reject);
        assert_eq!(after_upstream(401, &Method::POST, true, false, true), AfterUpstream::Reject);
        assert_eq!(after_upstream(401, &Method::GET, false, false, true), AfterUpstream::Return);
        assert_eq!(after_upstream(500, &Method::POST, true, false, true), AfterUpstream::Return);
        // No refresh token: nothing to refresh, the 401 is the API's answer to this call.
        assert_eq!(after_upstream(401, &Method::GET, true, false, false), AfterUpstream::Reject);
    }
}
