//! OAuth error answers (RFC 6749 section 5.2), as every endpoint of the provider that
//! edge-bff calls by hand (PAR, revocation, the DPoP nonce challenge) reads them.

/// The OAuth `error` code of a JSON error body (RFC 6749 section 5.2), at most 40
/// characters (it reaches the log); `None` when the body is not one.
pub fn error_code(body: &[u8]) -> Option<String> {
    let value = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    Some(value.get("error")?.as_str()?.chars().take(40).collect())
}
