//! `GET /callback`: finish the login. Every failure redirects to
//! `LOGIN_ERROR_PATH?auth_error=<code>` with no session set; the login cookie is cleared
//! either way, so a callback URL works once.

use super::{request_cookies, RequestContext};
use crate::crypto::{ct_eq, open, Purpose};
use crate::lifecycle::short_id;
use crate::oidc::authorize::LoginState;
use crate::oidc::id_token::{self, Expectations};
use crate::oidc::provider::{verify_signed, ProviderError, VerifyError};
use crate::oidc::token::exchange_code;
use crate::session::{access_token_expiry, Session};
use crate::web::cookies::{clear_cookie, find, SameSite};
use crate::web::query::{parse_query, single};
use crate::web::response::{add_set_cookies, redirect, HttpRequest, HttpResponse};

/// The `auth_error` codes of API.md section 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    /// The provider's own error, when it is one of the four passed through.
    Provider(&'static str),
    /// Any other provider error, or a callback without a code.
    LoginFailed,
    /// `state` differs from the login cookie's.
    StateMismatch,
    /// No login cookie, one that does not open, or one over 10 minutes old.
    LoginExpired,
    /// Wrong `iss`, or none although the provider advertises RFC 9207 support.
    IssuerMismatch,
    /// The code exchange failed.
    TokenExchangeFailed,
    /// The ID token is missing or invalid.
    InvalidIdToken,
    /// The provider or edge-bff's configuration failed (reported as `login_failed`).
    Internal,
}

impl CallbackError {
    /// The `auth_error` value.
    pub fn code(self) -> &'static str {
        match self {
            Self::Provider(code) => code,
            Self::LoginFailed | Self::Internal => "login_failed",
            Self::StateMismatch => "state_mismatch",
            Self::LoginExpired => "login_expired",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::TokenExchangeFailed => "token_exchange_failed",
            Self::InvalidIdToken => "invalid_id_token",
        }
    }
}

const PASSED_THROUGH: [&str; 4] = ["access_denied", "login_required", "consent_required", "interaction_required"];

/// Handle the callback; always a redirect.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest) -> HttpResponse {
    let login_cookie = ctx.config.login_cookie_name();
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let mut set_cookies = vec![clear_cookie(&login_cookie, SameSite::Lax)];
    let location = match complete(ctx, request, &cookies).await {
        Ok((session, return_to)) => match ctx.store.create(&session, &present, ctx.now).await {
            Ok(headers) => {
                log::info!("login complete for sub {}", short_id(&session.sub));
                set_cookies.extend(headers);
                return_to
            }
            Err(e) => {
                log::error!("{e}");
                error_location(ctx, CallbackError::Internal)
            }
        },
        Err((code, detail)) => {
            log::warn!("callback refused: {} ({detail})", code.code());
            error_location(ctx, code)
        }
    };
    let mut response = redirect(&location);
    response.headers_mut().insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    add_set_cookies(&mut response, &set_cookies);
    response
}

fn error_location(ctx: &RequestContext<'_>, code: CallbackError) -> String {
    format!("{}?auth_error={}", ctx.config.login_error_path, code.code())
}

type Failure = (CallbackError, String);

async fn complete(
    ctx: &RequestContext<'_>,
    request: &HttpRequest,
    cookies: &[(&str, &str)],
) -> Result<(Session, String), Failure> {
    let login_name = ctx.config.login_cookie_name();
    let query = parse_query(request.uri().query());
    let param = |name: &str| -> Result<Option<&str>, Failure> {
        single(&query, name).map_err(|_| (CallbackError::LoginFailed, format!("parameter {name} repeated")))
    };

    // 1. The login cookie: present, opens, fresh.
    let sealed = find(cookies, &login_name).ok_or((CallbackError::LoginExpired, "no login cookie".into()))?;
    let login: LoginState = open(&ctx.config.cookie_keys, Purpose::Cookie, login_name.as_bytes(), sealed)
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .ok_or((CallbackError::LoginExpired, "login cookie does not open".into()))?;
    if login.is_stale(ctx.now) {
        return Err((CallbackError::LoginExpired, "login cookie older than 10 minutes".into()));
    }

    // 2. state, in constant time.
    let state = param("state")?.unwrap_or("");
    if !ct_eq(state.as_bytes(), login.state.as_bytes()) {
        return Err((CallbackError::StateMismatch, "state differs from the login cookie".into()));
    }

    // 3. iss (RFC 9207), before anything else from the response is believed.
    let meta = ctx.metadata().await.map_err(|e| (CallbackError::Internal, e.to_string()))?;
    match param("iss")? {
        Some(iss) if iss == meta.issuer => {}
        Some(_) => return Err((CallbackError::IssuerMismatch, "iss parameter differs".into())),
        None if meta.iss_parameter_supported => {
            return Err((CallbackError::IssuerMismatch, "iss parameter missing but advertised".into()))
        }
        None => {}
    }

    // 4. The provider's own error.
    if let Some(error) = param("error")? {
        let code = PASSED_THROUGH
            .iter()
            .find(|c| **c == error)
            .map_or(CallbackError::LoginFailed, |c| CallbackError::Provider(c));
        return Err((code, format!("provider returned error {:.40}", error.escape_default())));
    }
    let code = param("code")?.filter(|c| !c.is_empty()).ok_or((CallbackError::LoginFailed, "no code".into()))?;

    // 5. Code exchange with the PKCE verifier.
    let tokens = exchange_code(ctx.http, ctx.config, &meta, code, &login.verifier)
        .await
        .map_err(|e| (CallbackError::TokenExchangeFailed, e.to_string()))?;

    // 6. The ID token: signature against the JWKS, then the claims.
    let id_token = tokens.id_token.ok_or((CallbackError::InvalidIdToken, "token response has no id_token".into()))?;
    let claims = verify_signed(ctx.provider(), ctx.http, &meta, &id_token, ctx.now).await.map_err(|e| match e {
        VerifyError::Provider(ProviderError::Unavailable(d)) => {
            (CallbackError::TokenExchangeFailed, format!("JWKS: {d}"))
        }
        other => (CallbackError::InvalidIdToken, other.to_string()),
    })?;
    let validated = id_token::validate(
        claims,
        Expectations {
            issuer: &ctx.config.issuer,
            client_id: &ctx.config.client_id,
            nonce: Some(&login.nonce),
            now: ctx.now,
        },
    )
    .map_err(|e| (CallbackError::InvalidIdToken, e.to_string()))?;

    let session = Session {
        access_expires_at: access_token_expiry(&tokens.access_token, tokens.expires_in, ctx.now),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        id_token,
        sub: validated.sub,
        sid: validated.sid,
        created_at: ctx.now,
        expires_at: ctx.now.saturating_add(ctx.config.session_max_age),
        last_seen: ctx.now,
        login: Some(crate::crypto::b64url(
            &crate::crypto::random_bytes::<16>().map_err(|e| (CallbackError::Internal, e.to_string()))?,
        )),
        generation: 0,
    };
    Ok((session, login.return_to))
}
