//! HTTP building blocks free of runtime types: cookies, the CSRF guard, responses,
//! query strings, percent-encoding, and the outgoing HTTP client trait.

pub mod client;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod percent;
pub mod query;
pub mod response;
pub mod security_headers;

/// A header value as text. `HeaderValue` already excludes control characters (CR, LF,
/// NUL), so only UTF-8 is checked: faster than `HeaderValue::to_str` on long values such
/// as a sealed-session `Cookie` (a word at a time), and non-ASCII UTF-8 is kept rather
/// than making the whole header unreadable.
pub fn header_text(value: &http::HeaderValue) -> Option<&str> {
    std::str::from_utf8(value.as_bytes()).ok()
}
