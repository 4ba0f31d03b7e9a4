//! ID token validation (OpenID Connect Core 1.0 §3.1.3.7), after the signature has been
//! verified by [`super::jws`]: `iss`, `aud`, `azp`, `exp`, `iat`, `sub` and `nonce`, and
//! (items 11–13) `acr` and `auth_time` when the login asked for `acr_values` or `max_age`.

use super::jws::Claims;
use crate::crypto::ct_eq;
use serde_json::Value;

/// Allowed clock difference between edge-bff and the provider, in seconds.
pub const CLOCK_SKEW: u64 = 60;

/// What an ID token must match.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The configured issuer (exact match).
    pub issuer: &'a str,
    /// Our client id (must be in `aud`; `azp` when present).
    pub client_id: &'a str,
    /// The nonce sent in the authorization request; `None` skips the check (refresh).
    pub nonce: Option<&'a str>,
    /// Current Unix time.
    pub now: u64,
    /// The login's step-up and freshness requests; `None` for a refresh.
    pub requested: Option<&'a Requested>,
}

/// What a login asked the provider for that its ID token must show (OIDC Core 3.1.3.7
/// items 11–13).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requested {
    /// `acr_values`: `acr` must be one of them (space separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// `max_age`: `auth_time` must be present and at most this many seconds old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// Why an ID token's claims were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// `iss` missing or different.
    #[error("iss does not match")]
    Issuer,
    /// `aud` missing or without our client id.
    #[error("aud does not contain the client id")]
    Audience,
    /// `azp` present and not our client id, or missing with several audiences.
    #[error("azp does not match")]
    AuthorizedParty,
    /// `exp` missing or in the past.
    #[error("expired or no exp")]
    Expired,
    /// `iat` missing, or in the future.
    #[error("iat missing or in the future")]
    IssuedAt,
    /// `sub` missing or empty.
    #[error("sub missing")]
    Subject,
    /// `nonce` missing or different.
    #[error("nonce does not match")]
    Nonce,
    /// `acr_values` was requested and `acr` is missing or not one of them.
    #[error("acr is not one of the requested acr_values")]
    Acr,
    /// `max_age` was requested and `auth_time` is missing, or older than `max_age`.
    #[error("auth_time missing or older than max_age")]
    AuthTime,
}

/// The claims edge-bff keeps from a validated ID token.
#[derive(Debug, Clone)]
pub struct ValidatedIdToken {
    /// `sub`.
    pub sub: String,
    /// `sid`, when the provider sends one (back-channel logout).
    pub sid: Option<String>,
    /// `exp`.
    pub exp: u64,
    /// Every claim except `nonce`, `at_hash` and `c_hash` (the `/session` user object).
    pub user_claims: Claims,
}

fn number(claims: &Claims, name: &str) -> Option<u64> {
    match claims.get(name)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
}

/// Check the claims of a verified ID token.
pub fn validate(mut claims: Claims, expect: Expectations<'_>) -> Result<ValidatedIdToken, ClaimsError> {
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(ClaimsError::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(ClaimsError::Audience),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(ClaimsError::Audience);
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expect.client_id => {}
        Some(_) => return Err(ClaimsError::AuthorizedParty),
        None if audiences.len() > 1 => return Err(ClaimsError::AuthorizedParty),
        None => {}
    }
    let exp = number(&claims, "exp").ok_or(ClaimsError::Expired)?;
    if exp.saturating_add(CLOCK_SKEW) <= expect.now {
        return Err(ClaimsError::Expired);
    }
    let iat = number(&claims, "iat").ok_or(ClaimsError::IssuedAt)?;
    if iat > expect.now.saturating_add(CLOCK_SKEW) {
        return Err(ClaimsError::IssuedAt);
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ClaimsError::Subject),
    };
    if let Some(expected) = expect.nonce {
        match claims.get("nonce").and_then(Value::as_str) {
            Some(n) if ct_eq(n.as_bytes(), expected.as_bytes()) => {}
            _ => return Err(ClaimsError::Nonce),
        }
    }
    if let Some(requested) = expect.requested {
        check_requested(&claims, requested, expect.now)?;
    }
    let sid = claims.get("sid").and_then(Value::as_str).map(str::to_string);
    for private in ["nonce", "at_hash", "c_hash"] {
        claims.remove(private);
    }
    Ok(ValidatedIdToken { sub, sid, exp, user_claims: claims })
}

/// Items 11–13: `acr` among the requested values; `auth_time` present and recent
/// enough for `max_age` (with [`CLOCK_SKEW`]), and not in the future.
fn check_requested(claims: &Claims, requested: &Requested, now: u64) -> Result<(), ClaimsError> {
    if let Some(values) = requested.acr_values.as_deref() {
        let acr = claims.get("acr").and_then(Value::as_str).ok_or(ClaimsError::Acr)?;
        if !values.split(' ').any(|v| !v.is_empty() && v == acr) {
            return Err(ClaimsError::Acr);
        }
    }
    if let Some(max_age) = requested.max_age {
        let auth_time = number(claims, "auth_time").ok_or(ClaimsError::AuthTime)?;
        if auth_time.saturating_add(max_age).saturating_add(CLOCK_SKEW) < now
            || auth_time > now.saturating_add(CLOCK_SKEW)
        {
            return Err(ClaimsError::AuthTime);
        }
    }
    Ok(())
}
