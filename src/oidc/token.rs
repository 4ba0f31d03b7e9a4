//! Calls to the token endpoint through the `oauth2` crate, over our own
//! [`HttpClient`] (no redirects, bounded time), and the revocation call; each
//! authenticates the client as `CLIENT_AUTH` says (a shared secret, or a fresh
//! private_key_jwt assertion, RFC 7523).

use super::discovery::ProviderMetadata;
use crate::config::{AssertionAudience, ClientAuth, Config};
use crate::crypto::signing::{sign_jwt, Signer};
use crate::oidc::dpop::{self, DpopKey, NonceMemory};
use crate::oidc::oauth_error::error_code;
use crate::web::client::{HttpClient, LocalFuture, TransportError};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// The `id_token` member OIDC adds to the token response (its `Debug` says only whether
/// there is one).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    /// The ID token, when the provider sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.id_token.as_ref().map(|_| "[redacted]");
        f.debug_struct("IdTokenField").field("id_token", &shown).finish()
    }
}

impl ExtraTokenFields for IdTokenField {}

type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

type OidcClient = oauth2::Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The tokens of a successful token response.
pub struct TokenSet {
    /// `access_token`.
    pub access_token: String,
    /// `expires_in`, when given.
    pub expires_in: Option<u64>,
    /// `refresh_token`, when given.
    pub refresh_token: Option<String>,
    /// `id_token`, when given.
    pub id_token: Option<String>,
    /// `token_type` is `DPoP` (RFC 9449 section 5): the access token is bound to
    /// `DPOP_KEY`. Any other type is used as Bearer.
    pub dpop: bool,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSet([redacted])")
    }
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The provider answered with an OAuth error (e.g. `invalid_grant`).
    #[error("token endpoint refused: {0}")]
    Refused(String),
    /// Network failure, timeout, 5xx, or a response that is not a token response.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(String),
}

/// What a client-authenticated call to the provider needs besides its parameters.
#[derive(Clone, Copy)]
pub struct ClientCall<'a> {
    /// Client settings (`CLIENT_ID`, `CLIENT_AUTH`, secret or private key).
    pub config: &'a Config,
    /// Outgoing HTTP.
    pub http: &'a dyn HttpClient,
    /// Signs client assertions (`private_key_jwt`) and DPoP proofs.
    pub signer: &'a dyn Signer,
    /// The isolate's DPoP nonces: the token endpoint's is kept there between requests, so
    /// a provider that requires nonces costs one extra round trip per isolate, not per
    /// request. `None`: each request starts without one.
    pub nonces: Option<&'a NonceMemory>,
    /// Current Unix time in seconds.
    pub now: u64,
}

/// `client_assertion_type` of RFC 7523 section 2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion, in seconds (docs/api.md: at most 60).
pub const ASSERTION_LIFETIME: u64 = 60;

/// A fresh client assertion for a call to `endpoint` (RFC 7523 section 3): `iss` = `sub`
/// = `CLIENT_ID`, `aud` the issuer (or `endpoint` with `CLIENT_ASSERTION_AUDIENCE=endpoint`),
/// a random `jti`, `exp` 60 s after `iat`; signed with the first `CLIENT_PRIVATE_KEY`.
/// `None` unless `CLIENT_AUTH=private_key_jwt`.
pub async fn client_assertion(call: &ClientCall<'_>, endpoint: &url::Url) -> Result<Option<String>, TokenError> {
    if call.config.client_auth != ClientAuth::PrivateKeyJwt {
        return Ok(None);
    }
    let key = call
        .config
        .client_private_keys
        .first()
        .ok_or_else(|| TokenError::Unavailable("CLIENT_PRIVATE_KEY missing".into()))?;
    let audience = match call.config.client_assertion_audience {
        // The configured issuer: the discovered one, or with ALLOWED_TENANTS the
        // multi-tenant endpoint rather than its `{tenantid}` template.
        AssertionAudience::Issuer => call.config.issuer.as_str(),
        AssertionAudience::Endpoint => endpoint.as_str(),
    };
    let jti = crate::crypto::random_token().map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let claims = serde_json::json!({
        "iss": call.config.client_id, "sub": call.config.client_id, "aud": audience, "jti": jti,
        "iat": call.now, "exp": call.now + ASSERTION_LIFETIME,
    });
    let mut header = serde_json::Map::new();
    header.insert("typ".into(), serde_json::json!("JWT"));
    sign_jwt(call.signer, key, header, &claims).await.map(Some).map_err(|e| TokenError::Unavailable(e.to_string()))
}

fn client(config: &Config, meta: &ProviderMetadata) -> OidcClient {
    let mut client = oauth2::Client::new(ClientId::new(config.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(meta.token_endpoint.clone()))
        .set_auth_type(match config.client_auth {
            ClientAuth::SecretBasic => AuthType::BasicAuth,
            ClientAuth::SecretPost | ClientAuth::None | ClientAuth::PrivateKeyJwt => AuthType::RequestBody,
        });
    if let Some(secret) = &config.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    if let Ok(redirect) = RedirectUrl::new(config.redirect_uri()) {
        client = client.set_redirect_uri(redirect);
    }
    client
}

/// The error of a failed token request. `status` is the HTTP status of the answer, when
/// one came: a 4xx whose body is not an OAuth error (Glewlwyd answers a spent refresh
/// token with `400` and no body) is still a refusal, named by its status.
fn map_error<E: std::error::Error>(e: RequestTokenError<E, BasicErrorResponse>, status: Option<u16>) -> TokenError {
    match (e, status) {
        (RequestTokenError::ServerResponse(r), _) => TokenError::Refused(r.error().as_ref().to_string()),
        (RequestTokenError::Request(e), _) => TokenError::Unavailable(e.to_string()),
        (_, Some(status @ 400..=499)) => TokenError::Refused(format!("status {status}")),
        (RequestTokenError::Parse(_, _), _) => TokenError::Unavailable("response is not a token response".into()),
        (RequestTokenError::Other(m), _) => TokenError::Unavailable(m),
    }
}

fn into_set(r: OidcTokenResponse) -> TokenSet {
    TokenSet {
        access_token: r.access_token().secret().clone(),
        expires_in: r.expires_in().map(|d| d.as_secs()),
        refresh_token: r.refresh_token().map(|t| t.secret().clone()),
        id_token: r.extra_fields().id_token.clone(),
        dpop: matches!(r.token_type(), BasicTokenType::Extension(t) if t.eq_ignore_ascii_case("dpop")),
    }
}

/// Redeem an authorization code with its PKCE verifier.
pub async fn exchange_code(
    call: &ClientCall<'_>,
    meta: &ProviderMetadata,
    code: &str,
    verifier: &str,
) -> Result<TokenSet, TokenError> {
    let http = TokenHttp::new(*call, meta);
    let response = client(call.config, meta)
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&http)
        .await
        .map_err(|e| map_error(e, http.status.get()))?;
    Ok(into_set(response))
}

/// The `oauth2` crate's HTTP client for token requests. With `CLIENT_AUTH=private_key_jwt`
/// every request sent gets a fresh client assertion in its form (an assertion's `jti` is
/// single-use, so a resent request needs a new one). With `DPOP_KEY` every request sent
/// gets a fresh proof in its `DPoP` header, and a `use_dpop_nonce` answer is retried once
/// with the nonce (kept for later calls). One type for every case, so the `oauth2`
/// crate's generic request code is compiled once.
pub struct TokenHttp<'a> {
    call: ClientCall<'a>,
    meta: &'a ProviderMetadata,
    nonce: RefCell<Option<String>>,
    /// The status of the last answer (read when the `oauth2` crate cannot parse it).
    status: std::cell::Cell<Option<u16>>,
}

impl<'a> TokenHttp<'a> {
    /// The client for `call`'s token requests to `meta`'s token endpoint.
    pub fn new(call: ClientCall<'a>, meta: &'a ProviderMetadata) -> Self {
        let remembered = call.nonces.and_then(|n| n.get(dpop::origin_of(&meta.token_endpoint)));
        Self { call, meta, nonce: RefCell::new(remembered), status: std::cell::Cell::new(None) }
    }

    /// Keep the token endpoint's new `nonce`, here and in the isolate's memory.
    fn remember(&self, nonce: String) {
        if let Some(memory) = self.call.nonces {
            memory.remember(dpop::origin_of(&self.meta.token_endpoint), nonce.clone());
        }
        *self.nonce.borrow_mut() = Some(nonce);
    }

    /// The token endpoint's last DPoP nonce.
    pub fn nonce(&self) -> Option<String> {
        self.nonce.borrow().clone()
    }

    /// Send `request` with the client's assertion (if any) and, with `key`, a DPoP proof:
    /// both made afresh for this send.
    async fn send(
        &self,
        request: &oauth2::HttpRequest,
        key: Option<&DpopKey>,
    ) -> Result<oauth2::HttpResponse, TransportError> {
        let mut outgoing = http::Request::new(self.with_assertion(request.body()).await?);
        *outgoing.method_mut() = request.method().clone();
        *outgoing.uri_mut() = request.uri().clone();
        *outgoing.headers_mut() = request.headers().clone();
        if let Some(key) = key {
            let url = request.uri().to_string();
            let nonce = self.nonce();
            let method = request.method().as_str();
            let proof = dpop::proof(self.call.signer, key, method, &url, nonce.as_deref(), None, self.call.now)
                .await
                .map_err(|e| TransportError::Network(format!("DPoP proof: {e}")))?;
            let value =
                http::HeaderValue::from_str(&proof).map_err(|_| TransportError::Network("DPoP proof header".into()))?;
            outgoing.headers_mut().insert("dpop", value);
        }
        self.call.http.send(outgoing).await
    }

    /// `form` with a fresh client assertion appended (`private_key_jwt`), else as it is.
    async fn with_assertion(&self, form: &[u8]) -> Result<Vec<u8>, TransportError> {
        let assertion = client_assertion(&self.call, &self.meta.token_endpoint)
            .await
            .map_err(|e| TransportError::Network(e.to_string()))?;
        let mut body = form.to_vec();
        if let Some(assertion) = assertion {
            let mut extra = url::form_urlencoded::Serializer::new(String::new());
            extra
                .append_pair("client_assertion_type", JWT_BEARER_ASSERTION)
                .append_pair("client_assertion", &assertion);
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend_from_slice(extra.finish().as_bytes());
        }
        Ok(body)
    }
}

/// A `DPoP-Nonce` sent with an answer that is not a challenge (the server's next nonce).
fn next_nonce(response: &oauth2::HttpResponse) -> Option<String> {
    let nonce = response.headers().get("dpop-nonce")?.to_str().ok()?;
    dpop::valid_nonce(nonce).then(|| nonce.to_string())
}

impl<'c> oauth2::AsyncHttpClient<'c> for TokenHttp<'_> {
    type Error = TransportError;
    type Future = LocalFuture<'c, Result<oauth2::HttpResponse, TransportError>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let key = self.call.config.dpop_key.as_ref();
            let mut response = self.send(&request, key).await?;
            if key.is_some() {
                if let Some(nonce) = dpop::nonce_challenge(&response) {
                    self.remember(nonce);
                    response = self.send(&request, key).await?;
                } else if let Some(nonce) = next_nonce(&response) {
                    // RFC 9449 section 8.2: a server may hand out its next nonce with any
                    // answer.
                    self.remember(nonce);
                }
            }
            self.status.set(Some(response.status().as_u16()));
            if response.status().is_server_error() {
                return Err(TransportError::ServerError(response.status().as_u16()));
            }
            Ok(response)
        })
    }
}

/// Redeem a refresh token (RFC 6749 §6).
/// `extra` are a route's token-request parameters (`resource`, `scope`, others), in
/// order; empty for the login's own token.
pub async fn refresh(
    call: &ClientCall<'_>,
    meta: &ProviderMetadata,
    refresh_token: &str,
    extra: &[(&str, &str)],
) -> Result<TokenSet, TokenError> {
    let http = TokenHttp::new(*call, meta);
    let refresh_token = RefreshToken::new(refresh_token.to_string());
    let client = client(call.config, meta);
    let mut request = client.exchange_refresh_token(&refresh_token);
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let response = request.request_async(&http).await.map_err(|e| map_error(e, http.status.get()))?;
    Ok(into_set(response))
}

/// An app-only token (RFC 6749 §4.4, the `client_credentials` grant), with a route's
/// token-request parameters `extra` in order.
pub async fn client_credentials(
    call: &ClientCall<'_>,
    meta: &ProviderMetadata,
    extra: &[(&str, &str)],
) -> Result<TokenSet, TokenError> {
    let http = TokenHttp::new(*call, meta);
    let client = client(call.config, meta);
    let mut request = client.exchange_client_credentials();
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let response = request.request_async(&http).await.map_err(|e| map_error(e, http.status.get()))?;
    Ok(into_set(response))
}

/// Add the client's authentication to a hand-built form request to `endpoint`, as
/// `CLIENT_AUTH` says: HTTP Basic, `client_secret` in the form, a client assertion in
/// the form, or `client_id` alone. `has_client_id`: the form already carries
/// `client_id` (a pushed authorization request), which is then not added again.
pub async fn authenticate(
    call: &ClientCall<'_>,
    endpoint: &url::Url,
    mut request: http::request::Builder,
    form: &mut url::form_urlencoded::Serializer<'_, String>,
    has_client_id: bool,
) -> Result<http::request::Builder, TokenError> {
    use base64::Engine;
    let config = call.config;
    let assertion = client_assertion(call, endpoint).await?;
    match (config.client_auth, &config.client_secret) {
        (ClientAuth::SecretBasic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&config.client_id), enc(secret.expose()));
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            request = request.header("authorization", format!("Basic {basic}"));
        }
        (ClientAuth::SecretPost, Some(secret)) => {
            if !has_client_id {
                form.append_pair("client_id", &config.client_id);
            }
            form.append_pair("client_secret", secret.expose());
        }
        _ => {
            if !has_client_id {
                form.append_pair("client_id", &config.client_id);
            }
            if let Some(assertion) = &assertion {
                form.append_pair("client_assertion_type", JWT_BEARER_ASSERTION)
                    .append_pair("client_assertion", assertion);
            }
        }
    }
    Ok(request)
}

/// Revoke a refresh token at `revocation_endpoint` (RFC 7009), authenticating the client
/// as `CLIENT_AUTH` says. Built by hand: the `oauth2` crate refuses `http://` revocation
/// URLs, which edge-bff allows for localhost development.
pub async fn revoke_refresh_token(
    call: &ClientCall<'_>,
    revocation_endpoint: &url::Url,
    refresh_token: &str,
) -> Result<(), TokenError> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", refresh_token).append_pair("token_type_hint", "refresh_token");
    let request = http::Request::post(revocation_endpoint.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    let request = authenticate(call, revocation_endpoint, request, &mut form, false).await?;
    let http = call.http;
    let request = request.body(form.finish().into_bytes()).map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let response = http.send(request).await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_server_error() {
        return Err(TokenError::Unavailable(format!("revocation endpoint status {}", status.as_u16())));
    }
    let code = error_code(response.body()).unwrap_or_else(|| format!("status {}", status.as_u16()));
    Err(TokenError::Refused(code))
}
