//! The session lifecycle, one home for the agent and the proxy: open the request's
//! session (load, check, record activity), refresh it (per isolate, or through the
//! login's coordinator), write it back, and map errors to responses. It may use `oidc`,
//! `session` and the layers below them, never `proxy`, `agent` or `runtime`. Inside it,
//! `protocol` (the coordinator protocol) and `token_call` (one refresh at the token
//! endpoint) are used by both `coordinator` and `refresh`, which do not use each other.
//!
//! The rules it keeps (docs/api.md sections 7 and 8, docs/security.md group 11):
//! - tokens obtained by a refresh are stored as soon as the refresh succeeds (KV) and their
//!   cookies go out with every response of the request, whatever happens next;
//! - a KV record that is missing or unreadable is "not logged in" for that request only:
//!   401 `unauthorized`, and the cookie is kept;
//! - best-effort writes (activity, re-seal) never fail a request;
//! - a refused refresh (any 4xx but a DPoP nonce challenge) or a refreshed ID token that
//!   fails its checks ends the session: cookies cleared, and in KV the record deleted when
//!   it still holds the refused refresh token (a record refreshed elsewhere meanwhile is
//!   used instead, or left alone).

pub mod client_token;
pub mod coordinator;
pub mod outcome;
pub mod protocol;
pub mod refresh;
pub mod token_call;

use crate::coalesce::Coalescer;
use crate::config::token_request::TokenRequest;
use crate::config::{Config, SessionStoreKind};
use crate::error::BffError;
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::provider::{self, ProviderCache, ProviderError};
use crate::session::cookie_store;
use crate::session::kv::KvBackend;
use crate::session::store::{Handle, Loaded, Missing, SessionStore};
use crate::session::{Inactive, RouteTokenEntry, Session};
use crate::web::client::HttpClient;
use crate::web::response::HttpResponse;
use coordinator::Coordinator;
use std::cell::RefCell;
use std::rc::Rc;

/// How long to wait before the one retry of a KV write that must not be lost (a refresh's
/// tokens): KV allows one write per second per key.
pub const KV_RETRY_MS: u32 = 1_100;

/// State that lives as long as the isolate: provider caches and refresh coalescing.
#[derive(Default)]
pub struct SharedState {
    /// Provider metadata and keys.
    pub provider: RefCell<ProviderCache>,
    /// Refreshes in flight and recently finished, by refresh-token hash.
    pub refreshes: Coalescer<protocol::RefreshResult>,
    /// Recently opened session cookies.
    pub opened: crate::session::opened_cache::OpenedCache,
    /// The DPoP nonces resource servers (APIs, the provider's UserInfo) last gave.
    pub dpop_nonces: crate::oidc::dpop::NonceMemory,
    /// App-only tokens (`token: client` routes), by token request.
    pub client_tokens: client_token::ClientTokens,
}

/// Everything a request's handling needs: configuration, per-isolate state, outgoing
/// I/O, the session store, the optional coordinator and the current time.
pub struct RequestContext<'a> {
    /// Validated configuration.
    pub config: &'a Config,
    /// Per-isolate caches.
    pub shared: &'a SharedState,
    /// Outgoing HTTP (timeouts, no redirects) and timers.
    pub http: &'a dyn HttpClient,
    /// Signs edge-bff's JWTs (client assertions).
    pub signer: &'a dyn crate::crypto::signing::Signer,
    /// Checks the provider's signatures (ID and logout tokens).
    pub verifier: &'a dyn crate::crypto::verifying::Verifier,
    /// Where sessions live (cookies or KV).
    pub store: &'a dyn SessionStore,
    /// The `SESSIONS` KV namespace, when bound (back-channel logout).
    pub kv: Option<&'a dyn KvBackend>,
    /// The `COORDINATOR` Durable Object namespace, when bound (docs/api.md section 8).
    pub coordinator: Option<&'a dyn Coordinator>,
    /// Current Unix time in seconds.
    pub now: u64,
    /// What the request came to so far (the access line's and metrics' `outcome`).
    pub outcome: outcome::OutcomeCell,
}

impl RequestContext<'_> {
    /// The provider cache.
    pub fn provider(&self) -> &RefCell<ProviderCache> {
        &self.shared.provider
    }

    /// A client-authenticated call's context (token, revocation, PAR endpoints).
    pub fn client_call(&self) -> crate::oidc::token::ClientCall<'_> {
        crate::oidc::token::ClientCall {
            config: self.config,
            http: self.http,
            signer: self.signer,
            nonces: Some(&self.shared.dpop_nonces),
            now: self.now,
        }
    }

    /// The provider's metadata (cached).
    pub async fn metadata(&self) -> Result<Rc<ProviderMetadata>, BffError> {
        provider::metadata(self.provider(), self.http, self.config, self.now).await.map_err(provider_error)
    }
}

/// Map a provider failure to the client-facing error.
pub fn provider_error(e: ProviderError) -> BffError {
    match e {
        ProviderError::Unavailable(d) => BffError::IdpUnavailable(d),
        ProviderError::Misconfigured(d) => BffError::Configuration(format!("OIDC_ISSUER: {d}")),
    }
}

/// A request's session from its opening to its write-back.
pub struct SessionCall {
    session: Session,
    handle: Handle,
    /// Names of the cookies the request carried (a cookie write clears unused chunks).
    present: Vec<String>,
    /// `Set-Cookie` values already decided (a refresh's); every response carries them.
    set_cookies: Vec<String>,
    /// A best-effort write is pending: activity to record or a cookie to re-seal.
    touch: bool,
    refreshed: bool,
}

/// A user's token for a route, from [`SessionCall::token_for`]. `Debug` shows no token.
pub struct UserToken {
    /// The access token.
    pub token: String,
    /// DPoP-bound.
    pub dpop: bool,
    /// Obtained by this request (a grant), not taken from the session as it came.
    pub granted: bool,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken").field("dpop", &self.dpop).field("granted", &self.granted).finish_non_exhaustive()
    }
}

/// Open the request's session, which must exist and be active. Activity is recorded
/// (written back by [`SessionCall::finish`]) when it is due.
/// Errors: no session or one that does not open → `unauthorized` (cookies cleared); a KV
/// record missing or unreadable → `unauthorized` with the cookie kept; past the maximum
/// age or the idle timeout → `unauthorized`; an expired access token without a refresh
/// token → `session_expired`.
pub async fn open(ctx: &RequestContext<'_>, cookies: &[(&str, &str)]) -> Result<SessionCall, BffError> {
    let present = cookies.iter().map(|(n, _)| n.to_string()).collect();
    match ctx.store.load(cookies, ctx.now).await {
        Loaded::Absent | Loaded::Invalid => Err(BffError::Unauthorized),
        Loaded::Missing { why, .. } => Err(BffError::SessionUnavailable(match why {
            Missing::NotFound => "no record (not replicated yet, expired or deleted)".into(),
            Missing::Unreadable => "record unreadable".into(),
        })),
        Loaded::Valid { session, handle } => {
            let mut session = *session;
            match session.check_active(ctx.now, ctx.config.session_idle_timeout) {
                Ok(()) => {}
                Err(Inactive::AccessExpiredNoRefresh) => {
                    return Err(BffError::SessionExpired("access token expired and no refresh token".into()))
                }
                Err(why) => {
                    log::info!("session ended: {why:?}");
                    return Err(BffError::Unauthorized);
                }
            }
            let activity = session.activity_due(ctx.now, ctx.config.session_idle_timeout);
            if activity {
                session.last_seen = ctx.now;
            }
            let touch = activity || handle.needs_reseal();
            Ok(SessionCall { session, handle, present, set_cookies: Vec::new(), touch, refreshed: false })
        }
    }
}

impl SessionCall {
    /// The session (after any refresh).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether this request refreshed the tokens.
    pub fn refreshed(&self) -> bool {
        self.refreshed
    }

    /// Refresh the tokens now, and store them at once: KV is written before this returns,
    /// and the new cookies go out with every later response of the request.
    pub async fn refresh(&mut self, ctx: &RequestContext<'_>) -> Result<(), BffError> {
        self.grant(ctx, None).await
    }

    /// The user's token for a route (docs/api.md section 4, "Route tokens"): without a
    /// `request` the login's own; with one the route's, from [`SessionCall::route_token`].
    /// `granted`: this call obtained it (it replaced what the request's cookie held).
    pub async fn token_for(
        &mut self,
        ctx: &RequestContext<'_>,
        request: Option<&TokenRequest>,
        renew: bool,
    ) -> Result<UserToken, BffError> {
        let Some(request) = request else {
            let session = &self.session;
            return Ok(UserToken { token: session.access_token.clone(), dpop: session.dpop, granted: false });
        };
        let held = !renew && self.session.route_token(&request.key, ctx.now).is_some();
        let token = self.route_token(ctx, request, renew).await?;
        Ok(UserToken { token: token.access_token, dpop: token.dpop, granted: !held })
    }

    /// The token of the routes with `request` (docs/api.md section 4, "Route tokens"): the
    /// session's when it holds one that is not due, unless `renew` (an upstream refused
    /// it); else a grant of the login's refresh token, stored at once as a refresh's
    /// tokens are.
    pub async fn route_token(
        &mut self,
        ctx: &RequestContext<'_>,
        request: &TokenRequest,
        renew: bool,
    ) -> Result<RouteTokenEntry, BffError> {
        if !renew {
            if let Some(token) = self.session.route_token(&request.key, ctx.now) {
                return Ok(token.clone());
            }
        }
        self.grant(ctx, Some(request)).await?;
        self.session
            .route_tokens
            .iter()
            .find(|t| t.key == request.key)
            .cloned()
            .ok_or_else(|| BffError::Server("a route token grant left no token".into()))
    }

    /// One grant of the login's refresh token (a refresh, or with `route` a route token),
    /// its tokens stored at once.
    async fn grant(&mut self, ctx: &RequestContext<'_>, route: Option<&TokenRequest>) -> Result<(), BffError> {
        let (next, produced) = match refresh::refresh_session(ctx, &self.session, &self.handle, route).await {
            Ok(refreshed) => refreshed,
            Err(e) => {
                // A route's token refused is not a failed refresh: the session goes on.
                ctx.outcome.note(match &e {
                    BffError::TokenUnavailable(_) => outcome::Outcome::of_error(&e),
                    _ => outcome::Outcome::RefreshFailed,
                });
                return Err(e);
            }
        };
        ctx.outcome.note(outcome::Outcome::Refreshed);
        let claims_changed = next.id_token != self.session.id_token;
        let mut next = next;
        let mut refused = None;
        if let Some(request) = route {
            if ctx.config.session_store == SessionStoreKind::Cookie && !cookie_store::fits(ctx.config, &next) {
                // The session is kept without the new token (its rotated refresh token above
                // all); the route is refused, never the session cut.
                next.route_tokens.retain(|t| t.key != request.key);
                refused = Some(BffError::TokenUnavailable(format!(
                    "the route's token would take the session cookie past {} chunks; use SESSION_STORE=kv",
                    cookie_store::MAX_CHUNKS
                )));
            }
        }
        self.session = next;
        self.session.last_seen = ctx.now;
        self.refreshed |= route.is_none() || claims_changed;
        self.touch = false;
        self.write(ctx, produced, true).await;
        refused.map_or(Ok(()), Err)
    }

    /// Refresh first when the access token is due (and can be refreshed).
    pub async fn refresh_if_due(&mut self, ctx: &RequestContext<'_>) -> Result<(), BffError> {
        if self.session.refresh_due(ctx.now) {
            self.refresh(ctx).await?;
        }
        Ok(())
    }

    /// Write the session: `leader` when this request produced the change (KV writes then
    /// only), `required` for tokens that must not be lost (retried once after
    /// [`KV_RETRY_MS`]). A failure is logged; it never fails the request.
    async fn write(&mut self, ctx: &RequestContext<'_>, leader: bool, required: bool) {
        let present: Vec<&str> = self.present.iter().map(String::as_str).collect();
        let mut result = ctx.store.update(&self.session, &self.handle, &present, ctx.now, leader).await;
        if result.is_err() && required && leader {
            ctx.http.sleep(KV_RETRY_MS).await;
            result = ctx.store.update(&self.session, &self.handle, &present, ctx.now, leader).await;
        }
        match result {
            Ok(lines) => {
                if !lines.is_empty() {
                    self.set_cookies = lines;
                }
            }
            Err(e) if required => log::error!("refreshed session not stored: {e}"),
            Err(e) => log::warn!("session activity or re-seal not stored (best effort): {e}"),
        }
    }

    /// The `Set-Cookie` values of the response, after any pending best-effort write.
    pub async fn finish(mut self, ctx: &RequestContext<'_>) -> Vec<String> {
        self.write_pending(ctx).await;
        self.set_cookies
    }

    /// The best-effort write, if one is pending (activity, re-seal). Tokens that are newer
    /// than the ones this request opened with (another request refreshed meanwhile) are
    /// written instead of its own: an activity record never puts older tokens back.
    async fn write_pending(&mut self, ctx: &RequestContext<'_>) {
        if !self.touch {
            return;
        }
        self.touch = false;
        if !self.refreshed {
            if let Some(newer) = refresh::newer_known(ctx, &self.session, &self.handle).await {
                let seen = self.session.last_seen;
                self.session = newer;
                self.session.last_seen = self.session.last_seen.max(seen);
            }
        }
        self.write(ctx, true, false).await;
    }

    /// The error response for `e` in the middle of this call: the error's own cookie rule,
    /// and otherwise the cookies of this request's session (a refresh's, and activity
    /// recorded): tokens are never dropped, and a request that fails still counts as
    /// activity.
    pub async fn fail(
        &mut self,
        ctx: &RequestContext<'_>,
        request_cookies: &[(&str, &str)],
        e: &BffError,
    ) -> HttpResponse {
        let mut response = error_response(ctx, request_cookies, e);
        if !clears_session(e) {
            self.write_pending(ctx).await;
            crate::web::response::add_set_cookies(&mut response, &self.set_cookies);
        }
        response
    }
}

/// Whether the response to `e` clears the session cookies.
fn clears_session(e: &BffError) -> bool {
    matches!(e, BffError::SessionExpired(_) | BffError::Unauthorized)
}

/// The response for `e`, logged and noted as the request's outcome, in one place for
/// the agent and the proxy. For
/// `unauthorized` (a session that does not open or has ended) and `session_expired`
/// every session cookie the request carried is cleared in the same response; a missing
/// KV record (also `unauthorized`) keeps them.
pub fn error_response(ctx: &RequestContext<'_>, request_cookies: &[(&str, &str)], e: &BffError) -> HttpResponse {
    let config = ctx.config;
    log_error(e);
    ctx.outcome.note(outcome::Outcome::of_error(e));
    let mut response = e.to_response();
    if clears_session(e) {
        let present: Vec<&str> = request_cookies.iter().map(|(n, _)| *n).collect();
        if matches!(e, BffError::SessionExpired(_))
            || present.iter().any(|n| cookie_store::is_session_cookie(config, n))
        {
            let cleared = cookie_store::clear(config, &present);
            crate::web::response::add_set_cookies(&mut response, &cleared);
        }
    }
    response
}

/// Log an error's detail at a level that fits it.
pub fn log_error(e: &BffError) {
    if e.is_server_side() {
        log::error!("{e}");
    } else {
        log::info!("{e}");
    }
}

/// The first characters of an identifier (`sub`), enough to correlate log lines
/// without logging the whole identifier.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

#[cfg(test)]
mod tests;
