//! Provider metadata (OpenID Connect Discovery 1.0), validated against the configured
//! issuer: a document naming another issuer is a configuration error (docs/api.md section 2).

use serde::Deserialize;

/// The provider metadata edge-bff uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// `issuer`, equal to `OIDC_ISSUER`.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: url::Url,
    /// `token_endpoint`.
    pub token_endpoint: url::Url,
    /// `jwks_uri`.
    pub jwks_uri: url::Url,
    /// `userinfo_endpoint`.
    pub userinfo_endpoint: Option<url::Url>,
    /// `end_session_endpoint` (RP-Initiated Logout).
    pub end_session_endpoint: Option<url::Url>,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation_endpoint: Option<url::Url>,
    /// RFC 9207: the provider sends `iss` in authorization responses.
    pub iss_parameter_supported: bool,
    /// `pushed_authorization_request_endpoint` (RFC 9126).
    pub par_endpoint: Option<url::Url>,
    /// `require_pushed_authorization_requests`: the provider takes pushed requests only.
    pub par_required: bool,
}

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// Not JSON, or required members missing.
    #[error("discovery document is malformed or lacks required members")]
    Malformed,
    /// `issuer` differs from `OIDC_ISSUER` (or, with `ALLOWED_TENANTS`, is not its
    /// multi-tenant template).
    #[error("discovery document names another issuer")]
    IssuerMismatch,
    /// An endpoint is not https (http only for localhost).
    #[error("endpoint {0} is not an allowed URL")]
    BadEndpoint(&'static str),
    /// The provider does not support PKCE S256.
    #[error("provider does not support PKCE S256")]
    NoPkceS256,
}

#[derive(Deserialize)]
struct Raw {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<bool>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pushed_authorization_request_endpoint: Option<String>,
    #[serde(default)]
    require_pushed_authorization_requests: Option<bool>,
}

/// The discovery URL for `issuer`.
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

impl ProviderMetadata {
    /// Parse and validate a discovery document for `expected_issuer` (exact match).
    pub fn parse(body: &[u8], expected_issuer: &str) -> Result<Self, DiscoveryError> {
        Self::parse_for(body, expected_issuer, false)
    }

    /// Parse and validate a discovery document for the configured issuer; with
    /// `multi_tenant` (`ALLOWED_TENANTS`) its `issuer` must be the configured issuer's
    /// multi-tenant template ([`crate::oidc::tenant`]), and is kept as the template.
    pub fn parse_for(body: &[u8], configured_issuer: &str, multi_tenant: bool) -> Result<Self, DiscoveryError> {
        let raw: Raw = serde_json::from_slice(body).map_err(|_| DiscoveryError::Malformed)?;
        if !crate::oidc::tenant::discovery_issuer_fits(configured_issuer, &raw.issuer, multi_tenant) {
            return Err(DiscoveryError::IssuerMismatch);
        }
        if let Some(methods) = &raw.code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(DiscoveryError::NoPkceS256);
            }
        }
        let url = |name: &'static str, v: &str| {
            crate::config::check_endpoint_url(v).map_err(|_| DiscoveryError::BadEndpoint(name))
        };
        let opt = |name: &'static str, v: Option<String>| v.map(|v| url(name, &v)).transpose();
        Ok(Self {
            authorization_endpoint: url("authorization_endpoint", &raw.authorization_endpoint)?,
            token_endpoint: url("token_endpoint", &raw.token_endpoint)?,
            jwks_uri: url("jwks_uri", &raw.jwks_uri)?,
            userinfo_endpoint: opt("userinfo_endpoint", raw.userinfo_endpoint)?,
            end_session_endpoint: opt("end_session_endpoint", raw.end_session_endpoint)?,
            revocation_endpoint: opt("revocation_endpoint", raw.revocation_endpoint)?,
            iss_parameter_supported: raw.authorization_response_iss_parameter_supported.unwrap_or(false),
            par_endpoint: opt("pushed_authorization_request_endpoint", raw.pushed_authorization_request_endpoint)?,
            par_required: raw.require_pushed_authorization_requests.unwrap_or(false),
            issuer: raw.issuer,
        })
    }
}
