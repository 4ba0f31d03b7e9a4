//! HTTP building blocks free of runtime types: cookies, the CSRF guard, responses,
//! query strings, and the outgoing HTTP client trait.

pub mod client;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod query;
pub mod response;
pub mod security_headers;
