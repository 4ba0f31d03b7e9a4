//! The CSRF guard of state-changing agent calls and proxied calls (docs/api.md section 3,
//! docs/security.md group 5): `X-CSRF: 1`, a trusted `Origin` when one is sent, and no
//! cross-site or untrusted same-site fetch.

use crate::error::BffError;

/// What the guard reads from a request.
#[derive(Debug, Default, Clone, Copy)]
pub struct CsrfInputs<'a> {
    /// `X-CSRF` header.
    pub x_csrf: Option<&'a str>,
    /// `Origin` header.
    pub origin: Option<&'a str>,
    /// `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'a str>,
}

/// Apply the guard to `request` with the configured origins.
pub fn require(config: &crate::config::Config, request: &crate::web::response::HttpRequest) -> Result<(), BffError> {
    use crate::web::response::header_str;
    check(
        CsrfInputs {
            x_csrf: header_str(request, "x-csrf"),
            origin: header_str(request, "origin"),
            sec_fetch_site: header_str(request, "sec-fetch-site"),
        },
        &config.public_origin,
        &config.trusted_origins,
    )
}

/// Check a request against `public_origin` and `trusted_origins`.
pub fn check(inputs: CsrfInputs<'_>, public_origin: &str, trusted_origins: &[String]) -> Result<(), BffError> {
    if inputs.x_csrf.map(str::trim) != Some("1") {
        return Err(BffError::CsrfCheckFailed("missing X-CSRF: 1"));
    }
    let origin_trusted = match inputs.origin {
        None => None,
        Some(origin) => {
            if origin == public_origin {
                Some(OriginKind::Own)
            } else if trusted_origins.iter().any(|t| t == origin) {
                Some(OriginKind::Trusted)
            } else {
                // Includes `Origin: null` (sandboxed frames, some redirects).
                return Err(BffError::CsrfCheckFailed("untrusted Origin"));
            }
        }
    };
    match inputs.sec_fetch_site.map(str::trim) {
        Some("cross-site") | Some("same-site") if origin_trusted != Some(OriginKind::Trusted) => {
            Err(BffError::CsrfCheckFailed("cross-site or untrusted same-site request"))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum OriginKind {
    Own,
    Trusted,
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://app.example.com";

    fn run(x: Option<&str>, origin: Option<&str>, site: Option<&str>) -> bool {
        let trusted = vec!["https://admin.example.com".to_string()];
        check(CsrfInputs { x_csrf: x, origin, sec_fetch_site: site }, OWN, &trusted).is_ok()
    }

    #[test]
    fn accepts_same_origin_and_trusted() {
        assert!(run(Some("1"), None, None));
        assert!(run(Some("1"), Some(OWN), Some("same-origin")));
        assert!(run(Some("1"), Some("https://admin.example.com"), Some("same-site")));
    }

    #[test]
    fn refuses_missing_header_bad_origin_cross_site() {
        assert!(!run(None, Some(OWN), None));
        assert!(!run(Some("0"), Some(OWN), None));
        assert!(!run(Some("1"), Some("null"), None));
        assert!(!run(Some("1"), Some("https://evil.example"), None));
        assert!(!run(Some("1"), Some(OWN), Some("cross-site")));
        assert!(!run(Some("1"), None, Some("cross-site")));
        assert!(!run(Some("1"), None, Some("same-site")));
        assert!(!run(Some("1"), Some("https://app.example.com.evil"), None));
    }
}
