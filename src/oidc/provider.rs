//! The provider's metadata and keys, fetched over [`HttpClient`] and cached per isolate
//! with a TTL. An unknown `kid` causes at most one JWKS re-fetch per
//! [`JWKS_REFETCH_INTERVAL`] (OIDC Core §10.1.1 key rotation).

use super::discovery::{discovery_url, DiscoveryError, ProviderMetadata};
use super::jwk::JwkSet;
use super::jws::{Claims, JwsError, UntrustedJws};
use crate::web::client::HttpClient;
use std::cell::RefCell;
use std::rc::Rc;

/// How long metadata is reused, in seconds.
pub const METADATA_TTL: u64 = 3600;
/// How long a JWKS is reused, in seconds.
pub const JWKS_TTL: u64 = 3600;
/// Least time between two forced JWKS re-fetches, in seconds (API.md section 5).
pub const JWKS_REFETCH_INTERVAL: u64 = 10;
/// Largest metadata or JWKS document accepted.
pub const MAX_DOCUMENT: usize = 256 * 1024;

/// Why the provider could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Network failure, timeout, or an error status (a 502 for the client).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider's documents contradict the configuration (a 500).
    #[error("provider misconfigured: {0}")]
    Misconfigured(String),
}

struct Cached<T> {
    value: Rc<T>,
    fetched_at: u64,
}

/// Per-isolate cache of metadata and keys.
#[derive(Default)]
pub struct ProviderCache {
    metadata: Option<Cached<ProviderMetadata>>,
    jwks: Option<Cached<JwkSet>>,
    last_forced_jwks: Option<u64>,
    /// Sticky: once the discovery document names another issuer, every request fails.
    misconfigured: Option<String>,
}

/// GET `url` and return the body of a 200 response.
pub async fn get_document(http: &dyn HttpClient, url: &str) -> Result<Vec<u8>, ProviderError> {
    let request = http::Request::get(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|_| ProviderError::Misconfigured(format!("bad URL {url}")))?;
    let response = http.send(request).await.map_err(|e| ProviderError::Unavailable(format!("GET {url}: {e}")))?;
    if response.status() != http::StatusCode::OK {
        return Err(ProviderError::Unavailable(format!("GET {url}: status {}", response.status().as_u16())));
    }
    if response.body().len() > MAX_DOCUMENT {
        return Err(ProviderError::Unavailable(format!("GET {url}: document too large")));
    }
    Ok(response.into_body())
}

/// The provider's metadata, from cache or freshly discovered.
pub async fn metadata(
    cache: &RefCell<ProviderCache>,
    http: &dyn HttpClient,
    config: &crate::config::Config,
    now: u64,
) -> Result<Rc<ProviderMetadata>, ProviderError> {
    let issuer = config.issuer.as_str();
    let stale = {
        let c = cache.borrow();
        if let Some(reason) = &c.misconfigured {
            return Err(ProviderError::Misconfigured(reason.clone()));
        }
        match &c.metadata {
            Some(m) if now.saturating_sub(m.fetched_at) < METADATA_TTL => return Ok(m.value.clone()),
            Some(m) => Some(m.value.clone()),
            None => None,
        }
    };
    let fetched = get_document(http, &discovery_url(issuer)).await.and_then(|body| {
        ProviderMetadata::parse_for(&body, issuer, config.allowed_tenants.is_some()).map_err(|e| match e {
            DiscoveryError::IssuerMismatch | DiscoveryError::BadEndpoint(_) | DiscoveryError::NoPkceS256 => {
                ProviderError::Misconfigured(e.to_string())
            }
            DiscoveryError::Malformed => ProviderError::Unavailable(e.to_string()),
        })
    });
    let mut c = cache.borrow_mut();
    match fetched {
        Ok(meta) => {
            let value = Rc::new(meta);
            c.metadata = Some(Cached { value: value.clone(), fetched_at: now });
            Ok(value)
        }
        Err(ProviderError::Misconfigured(reason)) => {
            c.misconfigured = Some(reason.clone());
            Err(ProviderError::Misconfigured(reason))
        }
        // A failed refresh keeps serving the last good document.
        Err(e) => stale.ok_or(e),
    }
}

async fn jwks(
    cache: &RefCell<ProviderCache>,
    http: &dyn HttpClient,
    meta: &ProviderMetadata,
    now: u64,
    force: bool,
) -> Result<Rc<JwkSet>, ProviderError> {
    let stale = {
        let c = cache.borrow();
        match &c.jwks {
            Some(k) if !force && now.saturating_sub(k.fetched_at) < JWKS_TTL => return Ok(k.value.clone()),
            Some(k) => Some(k.value.clone()),
            None => None,
        }
    };
    if force {
        cache.borrow_mut().last_forced_jwks = Some(now);
    }
    let fetched = get_document(http, meta.jwks_uri.as_str())
        .await
        .and_then(|body| JwkSet::parse(&body).map_err(|e| ProviderError::Unavailable(e.to_string())));
    match fetched {
        Ok(set) => {
            let value = Rc::new(set);
            cache.borrow_mut().jwks = Some(Cached { value: value.clone(), fetched_at: now });
            Ok(value)
        }
        Err(e) => stale.ok_or(e),
    }
}

/// Why a token from the provider could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The keys could not be had.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The token is not acceptable.
    #[error(transparent)]
    Jws(#[from] JwsError),
}

/// Verify a compact JWS signed by the provider, re-fetching the JWKS once (rate-limited)
/// when the token names a key the cached set does not have.
pub async fn verify_signed(
    cache: &RefCell<ProviderCache>,
    http: &dyn HttpClient,
    meta: &ProviderMetadata,
    token: &str,
    now: u64,
) -> Result<Claims, VerifyError> {
    let jws = UntrustedJws::parse(token)?;
    let keys = jwks(cache, http, meta, now, false).await?;
    match jws.verify(&keys) {
        Err(JwsError::UnknownKid) | Err(JwsError::NoMatchingKey) => {
            let may_refetch =
                cache.borrow().last_forced_jwks.is_none_or(|t| now.saturating_sub(t) >= JWKS_REFETCH_INTERVAL);
            if !may_refetch {
                return Err(JwsError::UnknownKid.into());
            }
            let keys = jwks(cache, http, meta, now, true).await?;
            Ok(jws.verify(&keys)?)
        }
        other => Ok(other?),
    }
}
