//! `GET /callback`: finish the login. Every failure redirects to
//! `LOGIN_ERROR_PATH?auth_error=<code>` with no session set; the attempt's login cookie
//! is cleared either way, so a callback URL works once. Other attempts' login cookies
//! (logins in other tabs) are left alone.

use super::login_cookie::{self, Found};
use super::{request_cookies, RequestContext};
use crate::lifecycle::short_id;
use crate::oidc::id_token::{self, Expectations};
use crate::oidc::provider::{verify_signed, ProviderError, VerifyError};
use crate::oidc::tenant;
use crate::oidc::token::exchange_code;
use crate::session::{access_token_expiry, Session};
use crate::web::cookies::{clear_cookie, SameSite};
use crate::web::query::{parse_query, single};
use crate::web::response::{add_set_cookies, redirect, HttpRequest, HttpResponse};

/// The `auth_error` codes of docs/api.md section 5.
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
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let mut used_cookie: Option<String> = None;
    let mut set_cookies = Vec::new();
    let location = match complete(ctx, request, &cookies, &mut used_cookie).await {
        Ok((session, return_to)) => match ctx.store.create(&session, &present, ctx.now).await {
            Ok(headers) => {
                log::info!("login complete for sub {}", short_id(&session.sub));
                ctx.outcome.note(crate::lifecycle::outcome::Outcome::LoggedIn);
                set_cookies.extend(headers);
                return_to
            }
            Err(e) => {
                log::error!("{e}");
                ctx.outcome.note(crate::lifecycle::outcome::Outcome::LoginFailed);
                error_location(ctx, CallbackError::Internal)
            }
        },
        Err((code, detail)) => {
            log::warn!("callback refused: {} ({detail})", code.code());
            ctx.outcome.note(crate::lifecycle::outcome::Outcome::LoginFailed);
            error_location(ctx, code)
        }
    };
    if let Some(name) = used_cookie {
        set_cookies.insert(0, clear_cookie(&name, SameSite::Lax));
    }
    let mut response = redirect(&location);
    response.headers_mut().insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    add_set_cookies(&mut response, &set_cookies);
    response
}

fn error_location(ctx: &RequestContext<'_>, code: CallbackError) -> String {
    format!("{}?auth_error={}", ctx.config.login_error_path, code.code())
}

type Failure = (CallbackError, String);

/// The callback's checks and the code exchange; `used_cookie` is set to the name of the
/// attempt's login cookie as soon as it is known (it is cleared whatever happens next).
async fn complete(
    ctx: &RequestContext<'_>,
    request: &HttpRequest,
    cookies: &[(&str, &str)],
    used_cookie: &mut Option<String>,
) -> Result<(Session, String), Failure> {
    let query = parse_query(request.uri().query());
    let param = |name: &str| -> Result<Option<&str>, Failure> {
        single(&query, name).map_err(|_| (CallbackError::LoginFailed, format!("parameter {name} repeated")))
    };

    // 1.–2. The attempt's login cookie, found by `state` and compared with it in constant
    // time; present, opens, fresh.
    let state = param("state")?.unwrap_or("");
    let login = match login_cookie::find(ctx.config, cookies, state) {
        Found::Login(login, name) => {
            *used_cookie = Some(name);
            login
        }
        Found::NoCookie => return Err((CallbackError::LoginExpired, "no login cookie".into())),
        Found::OtherStates => {
            return Err((CallbackError::StateMismatch, "state matches no login cookie".into()));
        }
        Found::Unusable(name, why) => {
            *used_cookie = Some(name);
            return Err((CallbackError::LoginExpired, why.into()));
        }
    };
    if login.is_stale(ctx.now) {
        return Err((CallbackError::LoginExpired, "login cookie older than 10 minutes".into()));
    }

    // 3. iss (RFC 9207), before anything else from the response is believed.
    let meta = ctx.metadata().await.map_err(|e| (CallbackError::Internal, e.to_string()))?;
    let response_iss = param("iss")?;
    match response_iss {
        Some(iss) if tenant::response_issuer_fits(ctx.config, &meta.issuer, iss) => {}
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
    let tokens = exchange_code(&ctx.client_call(), &meta, code, &login.verifier)
        .await
        .map_err(|e| (CallbackError::TokenExchangeFailed, e.to_string()))?;

    // 6. The ID token: signature against the JWKS, then the claims.
    let id_token = tokens.id_token.ok_or((CallbackError::InvalidIdToken, "token response has no id_token".into()))?;
    let claims = verify_signed(ctx.provider(), ctx.http, ctx.verifier, &meta, &id_token, ctx.now).await.map_err(
        |e| match e {
            VerifyError::Provider(ProviderError::Unavailable(d)) => {
                (CallbackError::TokenExchangeFailed, format!("JWKS: {d}"))
            }
            other => (CallbackError::InvalidIdToken, other.to_string()),
        },
    )?;
    let issuer = tenant::expected_issuer(ctx.config, &meta.issuer, &claims)
        .map_err(|e| (CallbackError::InvalidIdToken, e.to_string()))?;
    // A multi-tenant response's `iss` named a tenant: the ID token's must be the same.
    if response_iss.is_some_and(|iss| iss != issuer) {
        return Err((CallbackError::IssuerMismatch, "iss parameter differs from the ID token's issuer".into()));
    }
    let validated = id_token::validate(
        claims,
        Expectations {
            issuer: &issuer,
            client_id: &ctx.config.client_id,
            nonce: Some(&login.nonce),
            now: ctx.now,
            requested: Some(&login.requested),
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
        dpop: tokens.dpop,
        route_tokens: Vec::new(),
    };
    let return_to = login.return_to.clone();
    Ok((session, return_to))
}
