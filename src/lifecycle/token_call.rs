//! One refresh at the token endpoint, for an isolate or a login's object: the call
//! (bounded by [`REFRESH_DEADLINE_MS`]), the provider's refusals sorted as docs/api.md section 5
//! says, and the checks of a refreshed ID token (OIDC Core §12.2).

use super::protocol::{RefreshError, TokenSet, REFRESH_DEADLINE_MS};
use super::short_id;
use crate::config::token_request::TokenRequest;
use crate::config::Config;
use crate::oidc::id_token::{self, Expectations};
use crate::oidc::provider::{self, verify_signed, ProviderCache};
use crate::oidc::token::{self, TokenError};
use crate::session::{access_token_expiry, RouteTokenEntry};
use crate::web::client::{race_timeout, HttpClient};
use std::cell::RefCell;

/// The refresh failure of a token-endpoint error (docs/api.md section 5, "Refresh answers"):
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

/// The failure of a route's token request (docs/api.md section 4, "Route tokens"): an OAuth
/// error code other than `invalid_grant` is the route's alone (`token_unavailable`, the
/// session kept); `invalid_grant`, or a 4xx without a readable code, refuses the refresh
/// token as in [`refusal`].
fn route_refusal(e: TokenError) -> RefreshError {
    match e {
        TokenError::Refused(code)
            if code != "invalid_grant" && code != "use_dpop_nonce" && !code.starts_with("status ") =>
        {
            RefreshError::TokenUnavailable(code)
        }
        other => refusal(other),
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
    /// Checks refreshed ID tokens' signatures.
    pub verifier: &'a dyn crate::crypto::verifying::Verifier,
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
    /// The token set that follows `base` after this grant, one generation on, the refresh
    /// token kept when the provider sent no new one. For the login (`route` `None`): its
    /// access token replaced, and its ID token when the answer has one. For a route: that
    /// route's token replaced, the login's tokens kept (an ID token in the answer is not
    /// used).
    pub fn after(self, base: &TokenSet, route: Option<&TokenRequest>) -> TokenSet {
        let refresh_token = self.refresh_token.or_else(|| base.refresh_token.clone());
        let generation = base.generation + 1;
        let Some(request) = route else {
            return TokenSet {
                access_token: self.access_token,
                access_expires_at: self.access_expires_at,
                refresh_token,
                id_token: self.id_token.or_else(|| base.id_token.clone()),
                generation,
                dpop: self.dpop,
                route_tokens: base.route_tokens.clone(),
            };
        };
        let mut route_tokens: Vec<RouteTokenEntry> =
            base.route_tokens.iter().filter(|t| t.key != request.key).cloned().collect();
        route_tokens.push(RouteTokenEntry {
            key: request.key.clone(),
            access_token: self.access_token,
            expires_at: self.access_expires_at,
            dpop: self.dpop,
        });
        TokenSet { refresh_token, generation, route_tokens, ..base.clone() }
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
/// With `route`, the grant carries the route's token request and its answer's ID token
/// is not used.
pub async fn call_token_endpoint(
    call: &TokenCall<'_>,
    login: Login<'_>,
    refresh_token: &str,
    route: Option<&TokenRequest>,
) -> Result<TokenResponse, RefreshError> {
    let work = token_call(call, login, refresh_token, route);
    match race_timeout(work, call.http.sleep(REFRESH_DEADLINE_MS)).await {
        Some(result) => result,
        None => Err(RefreshError::Unavailable(format!("refresh took longer than {REFRESH_DEADLINE_MS} ms"))),
    }
}

async fn token_call(
    call: &TokenCall<'_>,
    login: Login<'_>,
    refresh_token: &str,
    route: Option<&TokenRequest>,
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
    let form = route.map(TokenRequest::form).unwrap_or_default();
    let refused = if route.is_some() { route_refusal } else { refusal };
    let tokens = token::refresh(&client, &meta, refresh_token, &form).await.map_err(refused)?;
    // A route token's answer: its ID token is not used (the session's claims come from
    // the login and its own refreshes).
    let id_token = if route.is_some() { None } else { tokens.id_token.as_deref() };
    if let Some(id_token) = id_token {
        // OIDC Core §12.2: same iss and sub; signature and audience as at login.
        let claims = verify_signed(call.provider, call.http, call.verifier, &meta, id_token, call.now)
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
    match route {
        Some(_) => log::info!("route token granted for sub {}", short_id(login.sub)),
        None => log::info!("refreshed tokens for sub {}", short_id(login.sub)),
    }
    Ok(TokenResponse {
        access_expires_at: access_token_expiry(&tokens.access_token, tokens.expires_in, call.now),
        id_token: if route.is_some() { None } else { tokens.id_token },
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        dpop: tokens.dpop,
    })
}
