//! App-only tokens (docs/api.md section 4, "Route tokens"): the `client_credentials` grant
//! for `token: client` routes (and `access_or_client` without a session), with the route's
//! `token_request`. Each isolate keeps the newest token per request until
//! [`crate::session::REFRESH_MARGIN`] before it expires; concurrent needs make one grant.
//! The provider stays the source of truth: a token lost with its isolate is granted anew.

use super::protocol::REFRESH_DEADLINE_MS;
use super::RequestContext;
use crate::coalesce::{key_of, Coalescer, Timing, WAIT_TICK_MS};
use crate::config::token_request::TokenRequest;
use crate::error::BffError;
use crate::oidc::token::{self, TokenError};
use crate::session::{access_token_expiry, refresh_margin_reached};
use crate::web::client::race_timeout;
use std::cell::RefCell;
use std::collections::HashMap;

/// An app-only access token.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientToken {
    /// The access token.
    pub access_token: String,
    /// When it expires (Unix seconds).
    pub expires_at: u64,
    /// DPoP-bound (`token_type` `DPoP`).
    pub dpop: bool,
}

impl std::fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientToken")
            .field("expires_at", &self.expires_at)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

/// Why a client grant failed (shared between coalesced needs).
#[derive(Debug, Clone, PartialEq, Eq)]
enum GrantError {
    /// The provider refused the grant (its error code): 403 `token_unavailable`.
    Refused(String),
    /// Network failure, timeout, 5xx: 502 `idp_unavailable`.
    Unavailable(String),
}

type GrantResult = Result<ClientToken, GrantError>;

/// The isolate's app-only tokens, by token-request key ("" for a route without one).
#[derive(Default)]
pub struct ClientTokens {
    newest: RefCell<HashMap<String, ClientToken>>,
    grants: Coalescer<GrantResult>,
}

/// The app-only token for `request`: the isolate's while it is not due and is not `stale`
/// (the token an upstream just refused), else a new grant. Errors: the provider refusing
/// → `token_unavailable` (a `warn` line names `route`); unreachable → `idp_unavailable`.
pub async fn client_token(
    ctx: &RequestContext<'_>,
    route: &str,
    request: Option<&TokenRequest>,
    stale: Option<&str>,
) -> Result<ClientToken, BffError> {
    let key = request.map_or("", |r| r.key.as_str());
    let tokens = &ctx.shared.client_tokens;
    let kept = tokens.newest.borrow().get(key).cloned();
    if let Some(token) = kept {
        if !refresh_margin_reached(token.expires_at, ctx.now) && Some(token.access_token.as_str()) != stale {
            return Ok(token);
        }
    }
    let timing = Timing {
        clock: || ctx.http.now_ms(),
        tick: || ctx.http.sleep(WAIT_TICK_MS),
        leader_deadline_ms: u64::from(REFRESH_DEADLINE_MS) + 1_000,
    };
    // Needs that replace the same token (or find none) share one grant.
    let flight = key_of(&format!("client\0{key}\0{}", stale.unwrap_or_default()));
    let work = grant(ctx, request);
    let (result, _) = tokens.grants.run(flight, ctx.now, move || work, timing).await;
    match result {
        Ok(token) => {
            tokens.newest.borrow_mut().insert(key.to_string(), token.clone());
            Ok(token)
        }
        Err(GrantError::Refused(code)) => {
            log::warn!("route {route}: the provider refused the client credentials grant ({code})");
            Err(BffError::TokenUnavailable(format!("client credentials grant refused: {code}")))
        }
        Err(GrantError::Unavailable(detail)) => Err(BffError::IdpUnavailable(detail)),
    }
}

/// One `client_credentials` grant, bounded by [`REFRESH_DEADLINE_MS`].
async fn grant(ctx: &RequestContext<'_>, request: Option<&TokenRequest>) -> GrantResult {
    let work = async {
        let meta = ctx.metadata().await.map_err(|e| GrantError::Unavailable(e.to_string()))?;
        let form = request.map(TokenRequest::form).unwrap_or_default();
        let tokens = token::client_credentials(&ctx.client_call(), &meta, &form).await.map_err(|e| match e {
            TokenError::Refused(code) if code == "use_dpop_nonce" => {
                GrantError::Unavailable("token endpoint asked for a DPoP nonce twice".into())
            }
            TokenError::Refused(code) => GrantError::Refused(code),
            TokenError::Unavailable(detail) => GrantError::Unavailable(detail),
        })?;
        log::info!("client credentials token granted");
        Ok(ClientToken {
            expires_at: access_token_expiry(&tokens.access_token, tokens.expires_in, ctx.now),
            access_token: tokens.access_token,
            dpop: tokens.dpop,
        })
    };
    match race_timeout(work, ctx.http.sleep(REFRESH_DEADLINE_MS)).await {
        Some(result) => result,
        None => {
            Err(GrantError::Unavailable(format!("client credentials grant took longer than {REFRESH_DEADLINE_MS} ms")))
        }
    }
}
