//! Calls to the token endpoint through the `oauth2` crate, over our own
//! [`HttpClient`] (no redirects, bounded time).

use super::discovery::ProviderMetadata;
use crate::config::{ClientAuth, Config};
use crate::web::client::{HttpClient, OAuthHttp};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

/// The `id_token` member OIDC adds to the token response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    /// The ID token, when the provider sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
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

fn client(config: &Config, meta: &ProviderMetadata) -> OidcClient {
    let mut client = oauth2::Client::new(ClientId::new(config.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(meta.token_endpoint.clone()))
        .set_auth_type(match config.client_auth {
            ClientAuth::SecretBasic => AuthType::BasicAuth,
            ClientAuth::SecretPost | ClientAuth::None => AuthType::RequestBody,
        });
    if let Some(secret) = &config.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    if let Ok(redirect) = RedirectUrl::new(config.redirect_uri()) {
        client = client.set_redirect_uri(redirect);
    }
    client
}

fn map_error<E: std::error::Error>(e: RequestTokenError<E, BasicErrorResponse>) -> TokenError {
    match e {
        RequestTokenError::ServerResponse(r) => TokenError::Refused(r.error().as_ref().to_string()),
        RequestTokenError::Request(e) => TokenError::Unavailable(e.to_string()),
        RequestTokenError::Parse(_, _) => TokenError::Unavailable("response is not a token response".into()),
        RequestTokenError::Other(m) => TokenError::Unavailable(m),
    }
}

fn into_set(r: OidcTokenResponse) -> TokenSet {
    TokenSet {
        access_token: r.access_token().secret().clone(),
        expires_in: r.expires_in().map(|d| d.as_secs()),
        refresh_token: r.refresh_token().map(|t| t.secret().clone()),
        id_token: r.extra_fields().id_token.clone(),
    }
}

/// Redeem an authorization code with its PKCE verifier.
pub async fn exchange_code(
    http: &dyn HttpClient,
    config: &Config,
    meta: &ProviderMetadata,
    code: &str,
    verifier: &str,
) -> Result<TokenSet, TokenError> {
    let response = client(config, meta)
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&OAuthHttp(http))
        .await
        .map_err(map_error)?;
    Ok(into_set(response))
}

/// Redeem a refresh token (RFC 6749 §6).
pub async fn refresh(
    http: &dyn HttpClient,
    config: &Config,
    meta: &ProviderMetadata,
    refresh_token: &str,
) -> Result<TokenSet, TokenError> {
    let response = client(config, meta)
        .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
        .request_async(&OAuthHttp(http))
        .await
        .map_err(map_error)?;
    Ok(into_set(response))
}

/// Revoke a refresh token at `revocation_endpoint` (RFC 7009), authenticating the client
/// as `CLIENT_AUTH` says. Built by hand: the `oauth2` crate refuses `http://` revocation
/// URLs, which edge-bff allows for localhost development.
pub async fn revoke_refresh_token(
    http: &dyn HttpClient,
    config: &Config,
    revocation_endpoint: &url::Url,
    refresh_token: &str,
) -> Result<(), TokenError> {
    use base64::Engine;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", refresh_token).append_pair("token_type_hint", "refresh_token");
    let mut request = http::Request::post(revocation_endpoint.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    match (config.client_auth, &config.client_secret) {
        (ClientAuth::SecretBasic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&config.client_id), enc(secret.expose()));
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            request = request.header("authorization", format!("Basic {basic}"));
        }
        (ClientAuth::SecretPost, Some(secret)) => {
            form.append_pair("client_id", &config.client_id).append_pair("client_secret", secret.expose());
        }
        _ => {
            form.append_pair("client_id", &config.client_id);
        }
    }
    let request = request.body(form.finish().into_bytes()).map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let response = http.send(request).await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_server_error() {
        return Err(TokenError::Unavailable(format!("revocation endpoint status {}", status.as_u16())));
    }
    let code = serde_json::from_slice::<serde_json::Value>(response.body())
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(|e| e.chars().take(40).collect::<String>()))
        .unwrap_or_else(|| format!("status {}", status.as_u16()));
    Err(TokenError::Refused(code))
}
