//! The authorization request (RFC 6749 §4.1.1 with PKCE S256, RFC 7636, and OIDC
//! `nonce`), and the login state that must survive until the callback.

use super::discovery::ProviderMetadata;
use crate::config::{is_local_path, Config};
use crate::crypto::{b64url, random_token};
use crate::error::BffError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest accepted `return_to`.
pub const MAX_RETURN_TO: usize = 512;
/// How long a login may take, in seconds (login cookie `Max-Age`).
pub const LOGIN_TTL: u64 = 600;

/// What the login cookie carries from `/login` to `/callback`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct LoginState {
    /// `state`, 256 random bits.
    pub state: String,
    /// `nonce`, 256 random bits.
    pub nonce: String,
    /// PKCE code verifier, 256 random bits.
    pub verifier: String,
    /// Where to send the browser after login.
    pub return_to: String,
    /// Unix time the login began.
    pub created_at: u64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl LoginState {
    /// A fresh login with new random state, nonce and verifier.
    pub fn new(return_to: String, now: u64) -> Result<Self, BffError> {
        Ok(Self {
            state: random_token()?,
            nonce: random_token()?,
            verifier: random_token()?,
            return_to,
            created_at: now,
        })
    }

    /// Whether the login is older than [`LOGIN_TTL`] (or from the future).
    pub fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.created_at) > LOGIN_TTL || self.created_at > now + 60
    }

    /// The PKCE S256 challenge of the verifier.
    pub fn code_challenge(&self) -> String {
        b64url(&Sha256::digest(self.verifier.as_bytes()))
    }
}

/// `return_to` if it is a safe same-origin path, else `/` (SECURITY.md group 1).
pub fn sanitize_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(path) if path.len() <= MAX_RETURN_TO && is_local_path(path) && !has_encoded_separator(path) => {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

fn has_encoded_separator(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%00")
        || lower.contains("%0a")
        || lower.contains("%0d")
}

/// Extra parameters a caller may pass, filtered by `ALLOWED_AUTH_PARAMS`.
pub fn allowed_params<'a>(
    config: &Config,
    candidates: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    candidates
        .filter(|(k, v)| config.allowed_auth_params.iter().any(|a| a == k) && v.len() <= 256)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The full authorization URL for `login`.
pub fn authorization_url(
    config: &Config,
    meta: &ProviderMetadata,
    login: &LoginState,
    extra: &[(String, String)],
) -> String {
    let mut url = meta.authorization_endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &config.redirect_uri())
            .append_pair("scope", &config.scopes.join(" "))
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce)
            .append_pair("code_challenge", &login.code_challenge())
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.into()
}
