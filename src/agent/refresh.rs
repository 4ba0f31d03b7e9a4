//! Refreshing a session's tokens, coalesced per isolate, and `POST /refresh`.

use super::{load_required, request_cookies, require_csrf, short_id, AgentContext};
use crate::error::BffError;
use crate::oidc::id_token::{self, Expectations};
use crate::oidc::provider::verify_signed;
use crate::oidc::token::{self, TokenError};
use crate::session::coalesce::{key_of, WAIT_TICK_MS};
use crate::session::store::Handle;
use crate::session::{access_token_expiry, Session};
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;

/// The tokens a successful refresh produced (shared between coalesced requests).
#[derive(Clone)]
pub struct Refreshed {
    access_token: String,
    access_expires_at: u64,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

/// Why a refresh failed (shared between coalesced requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant` and the like).
    Rejected(String),
    /// The provider refused the client itself: a configuration problem.
    ClientRefused(String),
    /// Network failure, timeout, 5xx.
    Unavailable(String),
    /// The refreshed ID token is invalid or names another issuer or subject.
    InvalidIdToken(String),
}

/// The result shared through the per-isolate coalescer.
pub type RefreshResult = Result<Refreshed, RefreshError>;

impl From<RefreshError> for BffError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Rejected(code) => BffError::SessionExpired(format!("refresh token refused: {code}")),
            RefreshError::ClientRefused(code) => {
                BffError::Configuration(format!("CLIENT_ID/CLIENT_SECRET: token endpoint refused the client ({code})"))
            }
            RefreshError::Unavailable(d) => BffError::IdpUnavailable(d),
            RefreshError::InvalidIdToken(d) => BffError::SessionExpired(format!("refreshed ID token refused: {d}")),
        }
    }
}

/// Refresh `session`'s tokens. Concurrent refreshes of the same refresh token in this
/// isolate make one token-endpoint call; a refresh finished in the last 30 s is reused.
/// In KV mode a refused refresh token first re-reads the record: another isolate may
/// have refreshed (and rotated) it already. The absolute expiry never moves.
/// Returns the new session and whether this request produced it (the "leader", which
/// alone writes it to KV).
pub async fn refresh_session(
    ctx: &AgentContext<'_>,
    session: &Session,
    handle: &Handle,
) -> Result<(Session, bool), BffError> {
    let Some(refresh_token) = session.refresh_token.as_deref() else {
        return Err(BffError::SessionExpired("no refresh token and the access token expired".into()));
    };
    let (result, led) = ctx
        .shared
        .refreshes
        .run(
            key_of(refresh_token),
            ctx.now,
            || call_token_endpoint(ctx, session, refresh_token),
            || ctx.http.sleep(WAIT_TICK_MS),
        )
        .await;
    if !led {
        log::info!("refresh for sub {} served by a concurrent or recent refresh", short_id(&session.sub));
    }
    let refreshed = match result {
        Ok(r) => r,
        Err(RefreshError::Rejected(code)) => {
            if let Some(current) = ctx.store.reload(handle, ctx.now).await {
                if current.refresh_token != session.refresh_token
                    && current.check_active(ctx.now, ctx.config.session_idle_timeout).is_ok()
                {
                    log::info!("refresh token refused ({code}) but the stored session was refreshed elsewhere");
                    return Ok((current, false));
                }
            }
            // The session is over: remove its server-side state too (KV mode).
            ctx.store.delete(Some(handle), &[]).await;
            return Err(RefreshError::Rejected(code).into());
        }
        Err(e) => return Err(e.into()),
    };
    let mut next = session.clone();
    next.access_token = refreshed.access_token;
    next.access_expires_at = refreshed.access_expires_at;
    if let Some(rt) = refreshed.refresh_token {
        next.refresh_token = Some(rt);
    }
    if let Some(it) = refreshed.id_token {
        next.id_token = it;
    }
    next.last_seen = ctx.now;
    Ok((next, led))
}

async fn call_token_endpoint(ctx: &AgentContext<'_>, session: &Session, refresh_token: &str) -> RefreshResult {
    let meta = ctx.metadata().await.map_err(|e| RefreshError::Unavailable(e.to_string()))?;
    let tokens = token::refresh(ctx.http, ctx.config, &meta, refresh_token).await.map_err(|e| match e {
        TokenError::Refused(code)
            if matches!(code.as_str(), "invalid_client" | "unauthorized_client" | "unsupported_grant_type") =>
        {
            RefreshError::ClientRefused(code)
        }
        TokenError::Refused(code) => RefreshError::Rejected(code),
        TokenError::Unavailable(d) => RefreshError::Unavailable(d),
    })?;
    if let Some(id_token) = &tokens.id_token {
        // OIDC Core §12.2: same iss and sub; signature and audience as at login.
        let claims = verify_signed(ctx.provider(), ctx.http, &meta, id_token, ctx.now)
            .await
            .map_err(|e| RefreshError::InvalidIdToken(e.to_string()))?;
        let validated = id_token::validate(
            claims,
            Expectations { issuer: &ctx.config.issuer, client_id: &ctx.config.client_id, nonce: None, now: ctx.now },
        )
        .map_err(|e| RefreshError::InvalidIdToken(e.to_string()))?;
        if validated.sub != session.sub {
            return Err(RefreshError::InvalidIdToken("sub changed".into()));
        }
    }
    log::info!("refreshed tokens for sub {}", short_id(&session.sub));
    Ok(Refreshed {
        access_expires_at: access_token_expiry(&tokens.access_token, tokens.expires_in, ctx.now),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
    })
}

/// `POST /refresh`: refresh now; 200 `{"access_token_expires_at"}`.
pub async fn handle(ctx: &AgentContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    require_csrf(ctx.config, request)?;
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let (session, handle) = load_required(ctx, &cookies).await?;
    let (next, led) = refresh_session(ctx, &session, &handle).await?;
    let mut response =
        json_response(StatusCode::OK, &serde_json::json!({ "access_token_expires_at": next.access_expires_at }));
    add_set_cookies(&mut response, &ctx.store.update(&next, &handle, &present, ctx.now, led).await?);
    Ok(response)
}
