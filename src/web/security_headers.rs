//! Security headers: on every response `Strict-Transport-Security` per `HSTS` (docs/api.md
//! section 9); on the SPA's static assets (docs/api.md section 1, docs/security.md) a strict
//! Content-Security-Policy (operator-overridable with `CONTENT_SECURITY_POLICY`),
//! `X-Content-Type-Options`, `Referrer-Policy`, and framing refused. (Every JSON response
//! carries `X-Content-Type-Options: nosniff` from [`crate::web::response::json_response`].)

use crate::config::Config;
use crate::web::response::HttpResponse;
use http::header::{HeaderName, HeaderValue};

/// The `Strict-Transport-Security` header of `config`, when it sends one.
pub fn hsts(config: &Config) -> Option<(HeaderName, HeaderValue)> {
    let value = HeaderValue::from_str(config.hsts.as_deref()?).ok()?;
    Some((http::header::STRICT_TRANSPORT_SECURITY, value))
}

/// Add the headers every response carries to one edge-bff built itself.
pub fn add_to(config: &Config, response: &mut HttpResponse) {
    if let Some((name, value)) = hsts(config) {
        response.headers_mut().insert(name, value);
    }
}

/// Headers to add to an asset response of `content_type`.
pub fn for_asset(config: &Config, content_type: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = vec![(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"))];
    out.extend(hsts(config));
    let html = content_type.is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if html {
        if let Some(csp) = config.content_security_policy.as_deref() {
            if let Ok(v) = HeaderValue::from_str(csp) {
                out.push((HeaderName::from_static("content-security-policy"), v));
            }
        }
        out.push((HeaderName::from_static("referrer-policy"), HeaderValue::from_static("same-origin")));
        out.push((HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CSP;
    use crate::testutil::config_with;

    #[test]
    fn html_gets_the_policy_other_types_nosniff_only() {
        let c = config_with(&[]);
        let html = for_asset(&c, Some("text/html; charset=utf-8"));
        assert!(html.iter().any(|(n, v)| n == "content-security-policy" && v == DEFAULT_CSP));
        assert!(html.iter().any(|(n, v)| n == "referrer-policy" && v == "same-origin"));
        assert!(html.iter().any(|(n, v)| n == "x-content-type-options" && v == "nosniff"));
        assert!(html.iter().any(|(n, v)| n == "strict-transport-security" && v == "max-age=63072000"));
        assert_eq!(for_asset(&c, Some("text/javascript")).len(), 2);
        let local = config_with(&[("PUBLIC_ORIGIN", "http://localhost:8787")]);
        assert_eq!(for_asset(&local, Some("text/javascript")).len(), 1);
        let custom = config_with(&[("CONTENT_SECURITY_POLICY", "default-src 'self' https://cdn.example")]);
        assert!(for_asset(&custom, Some("text/html"))
            .iter()
            .any(|(n, v)| n == "content-security-policy" && v == "default-src 'self' https://cdn.example"));
        let off = config_with(&[("CONTENT_SECURITY_POLICY", "off")]);
        assert!(!for_asset(&off, Some("text/html")).iter().any(|(n, _)| n == "content-security-policy"));
    }
}
