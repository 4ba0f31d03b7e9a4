//! CORS for exactly `TRUSTED_ORIGINS` (docs/api.md sections 3 and 7): credentials allowed,
//! never `*`, `Vary: Origin` on everything that depends on it. Same-origin calls from
//! `PUBLIC_ORIGIN` need no CORS headers and get none.

use crate::config::Config;
use crate::error::BffError;
use crate::web::response::HttpResponse;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

/// How long a browser may cache a preflight answer, in seconds.
pub const PREFLIGHT_MAX_AGE: &str = "600";

/// Whether the request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn trusted<'a>(config: &Config, headers: &'a HeaderMap) -> Option<&'a str> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    config.trusted_origins.iter().any(|t| t == origin).then_some(origin)
}

/// Answer a preflight: 204 with the allowed methods and headers for a trusted origin,
/// 403 `csrf_check_failed` without CORS headers for any other.
pub fn preflight(config: &Config, headers: &HeaderMap, allowed_methods: &str) -> HttpResponse {
    let Some(origin) = trusted(config, headers) else {
        let mut response = BffError::CsrfCheckFailed("preflight from an untrusted origin").to_response();
        response.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    };
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(allowed_methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    // X-CSRF and Content-Type always; other requested headers are the API's business.
    let mut allowed = String::from("X-CSRF, Content-Type");
    if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).and_then(|v| v.to_str().ok()) {
        for name in requested.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !["x-csrf", "content-type"].contains(&name.to_ascii_lowercase().as_str())
            {
                allowed.push_str(", ");
                allowed.push_str(name);
            }
        }
    }
    if let Ok(v) = HeaderValue::from_str(&allowed) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// The CORS headers for an actual (non-preflight) response. With `TRUSTED_ORIGINS` set,
/// every response depends on `Origin` (the allow headers come for a trusted one only), so
/// all carry `Vary: Origin`. Without it no response ever carries CORS headers and none
/// gets any header here: nothing to vary on (and the proxy can hand the upstream's answer
/// back as it is, without copying it to add a header).
pub fn response_headers(config: &Config, request_headers: &HeaderMap) -> Vec<(header::HeaderName, HeaderValue)> {
    if config.trusted_origins.is_empty() {
        return Vec::new();
    }
    let mut out = vec![(header::VARY, HeaderValue::from_static("Origin"))];
    if let Some(origin) = trusted(config, request_headers) {
        if let Ok(v) = HeaderValue::from_str(origin) {
            out.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, v));
            out.push((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config_with;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn preflight_for_trusted_origin_only() {
        let c = config_with(&[("TRUSTED_ORIGINS", "https://admin.example.com")]);
        let h = headers(&[
            ("origin", "https://admin.example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-csrf, x-request-id, bad header"),
        ]);
        assert!(is_preflight(&Method::OPTIONS, &h));
        let r = preflight(&c, &h, "GET, POST");
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["access-control-allow-origin"], "https://admin.example.com");
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        assert_eq!(r.headers()["access-control-allow-methods"], "GET, POST");
        assert_eq!(r.headers()["access-control-allow-headers"], "X-CSRF, Content-Type, x-request-id");
        assert_eq!(r.headers()["vary"], "Origin");

        let evil = headers(&[("origin", "https://evil.example"), ("access-control-request-method", "POST")]);
        let r = preflight(&c, &evil, "GET, POST");
        assert_eq!(r.status(), 403);
        assert!(r.headers().get("access-control-allow-origin").is_none());
        let own = headers(&[("origin", "https://app.example.com"), ("access-control-request-method", "POST")]);
        assert_eq!(preflight(&c, &own, "GET").status(), 403, "same-origin needs no preflight");
    }

    #[test]
    fn response_headers_never_wildcard() {
        let c = config_with(&[("TRUSTED_ORIGINS", "https://admin.example.com")]);
        let trusted = response_headers(&c, &headers(&[("origin", "https://admin.example.com")]));
        assert_eq!(trusted.len(), 3);
        let other = response_headers(&c, &headers(&[("origin", "https://evil.example")]));
        assert_eq!(other.len(), 1, "only Vary");
        assert_eq!(other[0], (header::VARY, HeaderValue::from_static("Origin")));
        assert!(trusted.iter().all(|(_, v)| v != "*"));
        let same_origin_only = config_with(&[]);
        let own = headers(&[("origin", "https://app.example.com")]);
        assert!(response_headers(&same_origin_only, &own).is_empty(), "no CORS, nothing to vary on");
    }
}
