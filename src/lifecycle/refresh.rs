//! Refreshing a session's tokens: through the login's coordinator when one is bound
//! (one token-endpoint call per login across every isolate), per isolate otherwise, and
//! in both cases coalesced within the isolate.

use super::coordinator::{self, CoordinatorRequest, RefreshAsk, TokenSet};
use super::{short_id, RequestContext};
use crate::config::Config;
use crate::error::BffError;
use crate::oidc::id_token::{self, Expectations};
use crate::oidc::provider::{self, verify_signed, ProviderCache};
use crate::oidc::token::{self, TokenError};
use crate::session::coalesce::{key_of, Timing, WAIT_TICK_MS};
use crate::session::store::Handle;
use crate::session::{access_token_expiry, Session};
use crate::web::client::{race_timeout, HttpClient};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Longest the coordinator object takes to answer an ask (its own token call, led by
/// this ask, ends first: it is bounded by [`REFRESH_DEADLINE_MS`] from a later start).
pub const OBJECT_ANSWER_DEADLINE_MS: u32 = REFRESH_DEADLINE_MS + 500;
/// Longest a whole refresh may take (discovery, token endpoint, JWKS; each call is also
/// bounded on its own): past it the refresh counts as "provider unavailable".
pub const REFRESH_DEADLINE_MS: u32 = 8_000;
/// How long after an isolate sends an ask the object may still start on it
/// (`start_by_ms`): an ask that reaches it later is answered [`Answer::Late`] with no
/// token call.
///
/// [`Answer::Late`]: super::coordinator::Answer::Late
pub const COORDINATOR_START_WINDOW_MS: u32 = 1_500;
/// Longest an isolate waits for the object to acknowledge an ask before it refreshes by
/// itself: the start window and one second for the acknowledgement to travel back (and
/// for clocks that differ). An object that is out of reach or hung costs a request this
/// much at most.
pub const COORDINATOR_ACK_WAIT_MS: u32 = COORDINATOR_START_WINDOW_MS + 1_000;
/// Longest an isolate waits for an acknowledged ask's answer. The object answers within
/// [`OBJECT_ANSWER_DEADLINE_MS`] of acknowledging (a refresh still running then is
/// answered "provider unavailable", which the isolate does not retry alone), so an isolate
/// that gives up here was not answered at all, and no call of the object's is left
/// running: the two never spend one refresh token.
pub const COORDINATOR_WAIT_MS: u32 = OBJECT_ANSWER_DEADLINE_MS + 1_500;
// An object out of reach or hung costs at most 3 s; an acknowledged ask is waited for past
// the object's own deadline (so the object and the isolate never spend one refresh token);
// the object refuses to start once the isolate may have stopped waiting for it.
const _: () = assert!(COORDINATOR_ACK_WAIT_MS <= 3_000);
const _: () = assert!(COORDINATOR_WAIT_MS > OBJECT_ANSWER_DEADLINE_MS);
const _: () = assert!(COORDINATOR_START_WINDOW_MS < COORDINATOR_ACK_WAIT_MS);

/// A coalescing leader older than this is presumed gone (its request was cancelled) and
/// the next request of the session takes its place: longer than the longest live leader
/// (the coordinator's two waits, then a refresh of its own).
pub const LEADER_DEADLINE_MS: u64 =
    COORDINATOR_ACK_WAIT_MS as u64 + COORDINATOR_WAIT_MS as u64 + REFRESH_DEADLINE_MS as u64 + 1_000;

/// The tokens a successful refresh produced (shared between coalesced requests).
#[derive(Clone)]
pub struct Refreshed {
    pub(crate) tokens: TokenSet,
    /// This request's refresh made the token call (or, through the coordinator, the
    /// coordinator made it for this request): it alone writes the KV record.
    pub(crate) fresh: bool,
}

/// Why a refresh failed (shared between coalesced requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "failure", content = "detail", rename_all = "snake_case")]
pub enum RefreshError {
    /// The provider refused the refresh token: `invalid_grant`, another OAuth error, or
    /// any 4xx without a readable error body (API.md section 5, "Refresh answers").
    Rejected(String),
    /// The provider refused the client itself (`invalid_client` and the like): the
    /// refresh token is refused all the same, and the deployment's credentials are
    /// suspect (logged as an error).
    ClientRefused(String),
    /// Network failure, timeout, 5xx.
    Unavailable(String),
    /// The refreshed ID token is invalid or names another issuer or subject.
    InvalidIdToken(String),
    /// The login was logged out (coordinator): no cookie of it may refresh again.
    Ended,
}

/// The result shared through the per-isolate coalescer.
pub type RefreshResult = Result<Refreshed, RefreshError>;

impl RefreshError {
    /// Whether the failure ends the session (401 `session_expired`, cookies cleared, KV
    /// record deleted): everything but an unreachable provider.
    pub fn ends_session(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }
}

impl From<RefreshError> for BffError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Rejected(code) => BffError::SessionExpired(format!("refresh token refused: {code}")),
            RefreshError::ClientRefused(code) => {
                BffError::SessionExpired(format!("token endpoint refused the client: {code}"))
            }
            RefreshError::Unavailable(d) => BffError::IdpUnavailable(d),
            RefreshError::InvalidIdToken(d) => BffError::SessionExpired(format!("refreshed ID token refused: {d}")),
            RefreshError::Ended => BffError::SessionExpired("the login was logged out".into()),
        }
    }
}

/// Refresh `session`'s tokens. Concurrent refreshes of the same refresh token in this
/// isolate make one call (to the coordinator when bound, else to the token endpoint); a
/// refresh finished in the last 30 s is reused. A refused refresh in KV mode first
/// re-reads the record: another isolate may have refreshed (and rotated) it already. The
/// absolute expiry never moves. Returns the new session and whether this request
/// produced it (it alone writes it to KV).
pub async fn refresh_session(
    ctx: &RequestContext<'_>,
    session: &Session,
    handle: &Handle,
) -> Result<(Session, bool), BffError> {
    let Some(refresh_token) = session.refresh_token.as_deref() else {
        return Err(BffError::SessionExpired("no refresh token and the access token expired".into()));
    };
    let timing = Timing {
        clock: || ctx.http.now_ms(),
        tick: || ctx.http.sleep(WAIT_TICK_MS),
        leader_deadline_ms: LEADER_DEADLINE_MS,
    };
    let (result, led) = ctx.shared.refreshes.run(key_of(refresh_token), ctx.now, || obtain(ctx, session), timing).await;
    if !led {
        log::info!("refresh for sub {} served by a concurrent or recent refresh", short_id(&session.sub));
    }
    match result {
        Ok(refreshed) => Ok((apply(session, &refreshed.tokens), led && refreshed.fresh)),
        Err(e) if e.ends_session() => {
            let stored = ctx.store.reload(handle, ctx.now).await;
            if let (RefreshError::Rejected(code), Some(current)) = (&e, &stored) {
                if current.refresh_token != session.refresh_token
                    && current.check_active(ctx.now, ctx.config.session_idle_timeout).is_ok()
                {
                    log::info!("refresh token refused ({code}) but the stored session was refreshed elsewhere");
                    return Ok((current.clone(), false));
                }
            }
            match &e {
                RefreshError::ClientRefused(code) => log::error!(
                    "token endpoint refused the client ({code}): check CLIENT_ID and CLIENT_SECRET or \
                     CLIENT_PRIVATE_KEY; the session of sub {} ends",
                    short_id(&session.sub)
                ),
                RefreshError::InvalidIdToken(why) => log::error!(
                    "refreshed ID token refused ({why}): none of the answer's tokens is used; the session of \
                     sub {} ends",
                    short_id(&session.sub)
                ),
                _ => {}
            }
            // KV: a record that still holds the refused refresh token is deleted. One that
            // holds another (a newer refresh elsewhere) is left alone.
            if stored.is_some_and(|current| current.refresh_token == session.refresh_token) {
                ctx.store.delete(Some(handle), &[]).await;
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Tokens newer than `session`'s that are already known, without a token call: a refresh
/// of its refresh token that this isolate finished moments ago, or (KV) a stored record
/// of a later generation. A best-effort write (activity, re-seal) takes them, so it never
/// puts older tokens over newer ones.
pub async fn newer_known(ctx: &RequestContext<'_>, session: &Session, handle: &Handle) -> Option<Session> {
    if let Some(rt) = session.refresh_token.as_deref() {
        if let Some(Ok(refreshed)) = ctx.shared.refreshes.recent(&key_of(rt), ctx.now) {
            if refreshed.tokens.generation > session.generation {
                return Some(apply(session, &refreshed.tokens));
            }
        }
    }
    ctx.store.reload(handle, ctx.now).await.filter(|stored| stored.generation > session.generation)
}

/// `session` with the tokens of a refresh.
fn apply(session: &Session, tokens: &TokenSet) -> Session {
    let mut next = session.clone();
    next.access_token = tokens.access_token.clone();
    next.access_expires_at = tokens.access_expires_at;
    if let Some(rt) = &tokens.refresh_token {
        next.refresh_token = Some(rt.clone());
    }
    if let Some(it) = &tokens.id_token {
        next.id_token = it.clone();
    }
    next.generation = tokens.generation;
    next.dpop = tokens.dpop;
    next
}

/// New tokens for `session`: from its login's coordinator when one is bound and the
/// session names its login; by calling the token endpoint here otherwise, or when the
/// coordinator cannot be had (logged as a warning).
async fn obtain(ctx: &RequestContext<'_>, session: &Session) -> RefreshResult {
    if let (Some(coordinator), Some(login)) = (ctx.coordinator, session.login.as_deref()) {
        let ask = CoordinatorRequest::Refresh(RefreshAsk {
            tokens: TokenSet::of(session),
            sub: session.sub.clone(),
            expires_at: session.expires_at,
            start_by_ms: Some(ctx.http.now_ms() + u64::from(COORDINATOR_START_WINDOW_MS)),
        });
        let asked =
            coordinator::ask_within(coordinator, ctx.http, login, &ask, COORDINATOR_ACK_WAIT_MS, COORDINATOR_WAIT_MS)
                .await;
        match asked.map(coordinator::refresh_result) {
            Ok(Some(result)) => return result,
            Ok(None) => log::warn!("coordinator took the ask too late to start on it; refreshing in this isolate"),
            Err(e) => log::warn!("{e}; refreshing in this isolate"),
        }
    }
    let refresh_token = session.refresh_token.as_deref().unwrap_or_default();
    let refreshed = call_token_endpoint(
        &TokenCall {
            config: ctx.config,
            provider: ctx.provider(),
            http: ctx.http,
            signer: ctx.signer,
            nonces: Some(&ctx.shared.dpop_nonces),
            now: ctx.now,
        },
        Login { sub: &session.sub, id_token: Some(&session.id_token) },
        refresh_token,
    )
    .await?;
    Ok(Refreshed { tokens: refreshed.after(&TokenSet::of(session)), fresh: true })
}

/// The refresh failure of a token-endpoint error (API.md section 5, "Refresh answers"):
/// every refusal ends the session, but a DPoP nonce challenge still standing after the
/// one resend, which says nothing of the refresh token.
fn refusal(e: TokenError) -> RefreshError {
    match e {
        TokenError::Refused(code) if code == "use_dpop_nonce" => {
            RefreshError::Unavailable("token endpoint asked for a DPoP nonce twice".into())
        }
        TokenError::Refused(code)
            if matches!(code.as_str(), "invalid_client" | "unauthorized_client" | "unsupported_grant_type") =>
        {
            RefreshError::ClientRefused(code)
        }
        TokenError::Refused(code) => RefreshError::Rejected(code),
        TokenError::Unavailable(d) => RefreshError::Unavailable(d),
    }
}

/// What a token-endpoint refresh needs (an isolate's or the coordinator's).
pub struct TokenCall<'a> {
    /// Client settings.
    pub config: &'a Config,
    /// Provider metadata and keys.
    pub provider: &'a RefCell<ProviderCache>,
    /// Outgoing HTTP.
    pub http: &'a dyn HttpClient,
    /// Signs client assertions and DPoP proofs.
    pub signer: &'a dyn crate::crypto::signing::Signer,
    /// The isolate's DPoP nonces (the token endpoint's), when there is an isolate state.
    pub nonces: Option<&'a crate::oidc::dpop::NonceMemory>,
    /// Current Unix time in seconds.
    pub now: u64,
}

/// The answer of the token endpoint to a refresh.
pub struct TokenResponse {
    access_token: String,
    access_expires_at: u64,
    refresh_token: Option<String>,
    id_token: Option<String>,
    dpop: bool,
}

impl TokenResponse {
    /// The token set that follows `base`: one generation on, the refresh token and ID
    /// token kept when the provider sent no new ones.
    pub fn after(self, base: &TokenSet) -> TokenSet {
        TokenSet {
            access_token: self.access_token,
            access_expires_at: self.access_expires_at,
            refresh_token: self.refresh_token.or_else(|| base.refresh_token.clone()),
            id_token: self.id_token.or_else(|| base.id_token.clone()),
            generation: base.generation + 1,
            dpop: self.dpop,
        }
    }
}

/// Who the login is, as a refreshed ID token must keep it (OIDC Core §12.2).
#[derive(Clone, Copy)]
pub struct Login<'a> {
    /// The login's `sub`.
    pub sub: &'a str,
    /// The newest ID token of the login (with `ALLOWED_TENANTS`, its `tid` is kept).
    pub id_token: Option<&'a str>,
}

/// Call the token endpoint with `refresh_token` and check a refreshed ID token (same
/// `iss`, `sub` and, multi-tenant, `tid` as `login`), all within [`REFRESH_DEADLINE_MS`].
pub async fn call_token_endpoint(
    call: &TokenCall<'_>,
    login: Login<'_>,
    refresh_token: &str,
) -> Result<TokenResponse, RefreshError> {
    match race_timeout(token_call(call, login, refresh_token), call.http.sleep(REFRESH_DEADLINE_MS)).await {
        Some(result) => result,
        None => Err(RefreshError::Unavailable(format!("refresh took longer than {REFRESH_DEADLINE_MS} ms"))),
    }
}

async fn token_call(
    call: &TokenCall<'_>,
    login: Login<'_>,
    refresh_token: &str,
) -> Result<TokenResponse, RefreshError> {
    let meta = provider::metadata(call.provider, call.http, call.config, call.now)
        .await
        .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
    let client = token::ClientCall {
        config: call.config,
        http: call.http,
        signer: call.signer,
        nonces: call.nonces,
        now: call.now,
    };
    let tokens = token::refresh(&client, &meta, refresh_token).await.map_err(refusal)?;
    if let Some(id_token) = &tokens.id_token {
        // OIDC Core §12.2: same iss and sub; signature and audience as at login.
        let claims = verify_signed(call.provider, call.http, &meta, id_token, call.now)
            .await
            .map_err(|e| RefreshError::InvalidIdToken(e.to_string()))?;
        // With ALLOWED_TENANTS: the token's own (accepted) tenant's issuer.
        let issuer = crate::oidc::tenant::expected_issuer(call.config, &meta.issuer, &claims)
            .map_err(|e| RefreshError::InvalidIdToken(e.to_string()))?;
        // Multi-tenant: the login's tenant, so the login's issuer.
        crate::oidc::tenant::same_tenant(call.config, login.id_token, &claims)
            .map_err(|e| RefreshError::InvalidIdToken(e.to_string()))?;
        let validated = id_token::validate(
            claims,
            Expectations {
                issuer: &issuer,
                client_id: &call.config.client_id,
                nonce: None,
                now: call.now,
                requested: None,
            },
        )
        .map_err(|e| RefreshError::InvalidIdToken(e.to_string()))?;
        if validated.sub != login.sub {
            return Err(RefreshError::InvalidIdToken("sub changed".into()));
        }
    }
    log::info!("refreshed tokens for sub {}", short_id(login.sub));
    Ok(TokenResponse {
        access_expires_at: access_token_expiry(&tokens.access_token, tokens.expires_in, call.now),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        dpop: tokens.dpop,
    })
}
