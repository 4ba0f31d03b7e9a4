//! `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0): the provider
//! ends sessions server to server with a signed `logout_token`. KV mode deletes the
//! matching records (by `sid`, else every session of the `sub`) and ends their logins'
//! coordinator objects; cookie mode puts the `sid` (or, without one, the `sub`) on a
//! deny-list for `SESSION_MAX_AGE`, covering the sessions created up to the logout
//! token's `iat` (a later login with the same `sid` is unaffected). Needs the `SESSIONS`
//! KV binding.

use super::RequestContext;
use crate::config::SessionStoreKind;
use crate::error::BffError;
use crate::lifecycle::coordinator;
use crate::oidc::jws::Claims;
use crate::oidc::provider::verify_signed;
use crate::session::deny_list::deny;
use crate::session::kv_store::end_sessions;
use crate::web::query::{parse_query, single};
use crate::web::response::{json_response, HttpRequest, HttpResponse};
use http::StatusCode;
use serde_json::Value;

/// The event member every logout token carries (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Largest accepted age of a logout token's `iat`, in seconds.
pub const MAX_TOKEN_AGE: u64 = 600;

/// Why a logout token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// `iss` is not the provider's.
    #[error("iss does not match")]
    Issuer,
    /// `aud` does not hold our client id.
    #[error("aud does not contain the client id")]
    Audience,
    /// `iat` missing, in the future, or too old.
    #[error("iat missing, in the future or too old")]
    IssuedAt,
    /// `exp` present and past.
    #[error("expired")]
    Expired,
    /// No `events` object with the back-channel logout member.
    #[error("events claim missing or without the logout event")]
    Events,
    /// A `nonce` is present (forbidden: it would let an ID token pass as a logout token).
    #[error("nonce present")]
    Nonce,
    /// Neither `sid` nor `sub`.
    #[error("neither sid nor sub")]
    NoSubject,
}

/// Who a validated logout token logs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutTarget {
    /// `sid`, when present.
    pub sid: Option<String>,
    /// `sub`, when present.
    pub sub: Option<String>,
    /// When the logout token was issued: sessions created after it are not ended.
    pub iat: u64,
}

/// Check a verified logout token's claims (§2.6).
pub fn validate_logout_claims(
    claims: &Claims,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<LogoutTarget, LogoutTokenError> {
    let skew = crate::oidc::id_token::CLOCK_SKEW;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(LogoutTokenError::Issuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(LogoutTokenError::Audience);
    }
    let iat = claims.get("iat").and_then(Value::as_u64).ok_or(LogoutTokenError::IssuedAt)?;
    if iat > now + skew || now.saturating_sub(iat) > MAX_TOKEN_AGE {
        return Err(LogoutTokenError::IssuedAt);
    }
    if let Some(exp) = claims.get("exp") {
        if exp.as_u64().is_none_or(|exp| exp + skew <= now) {
            return Err(LogoutTokenError::Expired);
        }
    }
    match claims.get("events").and_then(Value::as_object).and_then(|e| e.get(LOGOUT_EVENT)) {
        Some(Value::Object(_)) => {}
        _ => return Err(LogoutTokenError::Events),
    }
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::Nonce);
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let target = LogoutTarget { sid: text("sid"), sub: text("sub"), iat };
    if target.sid.is_none() && target.sub.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    Ok(target)
}

/// Answer `/backchannel-logout`.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    let Some(kv) = ctx.kv else {
        return Err(BffError::NotFound);
    };
    let form = parse_query(std::str::from_utf8(request.body()).ok());
    let token = single(&form, "logout_token")
        .ok()
        .flatten()
        .ok_or_else(|| BffError::InvalidRequest("no single logout_token".into()))?;
    let meta = ctx.metadata().await?;
    let claims = verify_signed(ctx.provider(), ctx.http, ctx.verifier, &meta, token, ctx.now)
        .await
        .map_err(|e| BffError::InvalidRequest(format!("logout_token: {e}")))?;
    let issuer = crate::oidc::tenant::expected_issuer(ctx.config, &meta.issuer, &claims)
        .map_err(|e| BffError::InvalidRequest(format!("logout_token: {e}")))?;
    let target = validate_logout_claims(&claims, &issuer, &ctx.config.client_id, ctx.now)
        .map_err(|e| BffError::InvalidRequest(format!("logout_token: {e}")))?;
    match ctx.config.session_store {
        SessionStoreKind::Kv => {
            let ended = end_sessions(kv, target.sid.as_deref(), target.sub.as_deref())
                .await
                .map_err(|e| BffError::Server(e.to_string()))?;
            log::info!("back-channel logout ended {} session(s)", ended.len());
            if let Some(coordinator) = ctx.coordinator {
                // Concurrently: each waits at most a few seconds, the provider's call less.
                let until = ctx.now + ctx.config.session_max_age;
                futures_util::future::join_all(
                    ended.iter().map(|login| coordinator::end_login(coordinator, ctx.http, login, until)),
                )
                .await;
            }
        }
        SessionStoreKind::Cookie => {
            deny(kv, target.sid.as_deref(), target.sub.as_deref(), target.iat, ctx.config.session_max_age)
                .await
                .map_err(|e| BffError::Server(e.to_string()))?;
            let by = if target.sid.is_some() { "sid" } else { "sub" };
            log::info!("back-channel logout: {by} put on the deny-list");
        }
    }
    ctx.outcome.note(crate::lifecycle::outcome::Outcome::BackchannelLogout);
    let mut response = json_response(StatusCode::OK, &serde_json::json!({}));
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn claims(change: impl FnOnce(&mut Claims)) -> Result<LogoutTarget, LogoutTokenError> {
        let mut c = json!({
            "iss": "https://idp.example.com", "aud": "spa", "iat": NOW - 5, "jti": "j1",
            "events": { LOGOUT_EVENT: {} }, "sid": "s-1", "sub": "u-1",
        })
        .as_object()
        .unwrap()
        .clone();
        change(&mut c);
        validate_logout_claims(&c, "https://idp.example.com", "spa", NOW)
    }

    #[test]
    fn logout_token_rules() {
        assert_eq!(
            claims(|_| {}).unwrap(),
            LogoutTarget { sid: Some("s-1".into()), sub: Some("u-1".into()), iat: NOW - 5 }
        );
        assert!(claims(|c| {
            c.remove("sid");
        })
        .is_ok());
        assert!(claims(|c| {
            c.remove("sub");
        })
        .is_ok());
        type Change = Box<dyn FnOnce(&mut Claims)>;
        let cases: Vec<(LogoutTokenError, Change)> = vec![
            (
                LogoutTokenError::Issuer,
                Box::new(|c| {
                    c.insert("iss".into(), json!("https://evil"));
                }),
            ),
            (
                LogoutTokenError::Audience,
                Box::new(|c| {
                    c.insert("aud".into(), json!("other"));
                }),
            ),
            (
                LogoutTokenError::IssuedAt,
                Box::new(|c| {
                    c.remove("iat");
                }),
            ),
            (
                LogoutTokenError::IssuedAt,
                Box::new(|c| {
                    c.insert("iat".into(), json!(NOW + 3600));
                }),
            ),
            (
                LogoutTokenError::IssuedAt,
                Box::new(|c| {
                    c.insert("iat".into(), json!(NOW - 3600));
                }),
            ),
            (
                LogoutTokenError::Expired,
                Box::new(|c| {
                    c.insert("exp".into(), json!(NOW - 120));
                }),
            ),
            (
                LogoutTokenError::Events,
                Box::new(|c| {
                    c.remove("events");
                }),
            ),
            (
                LogoutTokenError::Events,
                Box::new(|c| {
                    c.insert("events".into(), json!({ "other": {} }));
                }),
            ),
            (
                LogoutTokenError::Events,
                Box::new(|c| {
                    c.insert("events".into(), json!({ LOGOUT_EVENT: "x" }));
                }),
            ),
            (
                LogoutTokenError::Nonce,
                Box::new(|c| {
                    c.insert("nonce".into(), json!("n"));
                }),
            ),
            (
                LogoutTokenError::NoSubject,
                Box::new(|c| {
                    c.remove("sid");
                    c.remove("sub");
                }),
            ),
        ];
        for (expected, change) in cases {
            assert_eq!(claims(change).unwrap_err(), expected);
        }
    }
}
