//! HTTP free of runtime types, in two layers. The building blocks (`client`, the outgoing
//! HTTP client trait; `cookies`; `percent`; `query`; `response`) use nothing of edge-bff
//! and sit below everything else. The policies (`cors`, `csrf`, `security_headers`) read
//! the settings, so they sit above `config` and may use it, `error` and the blocks.

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
