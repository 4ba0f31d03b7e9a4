//! The provider's metadata and keys, fetched over [`HttpClient`] and cached per isolate
//! with a TTL. An unknown `kid` causes at most one JWKS re-fetch per
//! [`JWKS_REFETCH_INTERVAL`] (OIDC Core §10.1.1 key rotation).

use super::discovery::{discovery_url, DiscoveryError, ProviderMetadata};
use super::jwk::JwkSet;
use super::jws::{Claims, JwsError, UntrustedJws};
use crate::crypto::verifying::Verifier;
use crate::web::client::HttpClient;
use std::cell::RefCell;
use std::rc::Rc;

/// How long metadata is reused, in seconds.
pub const METADATA_TTL: u64 = 3600;
/// How long a JWKS is reused, in seconds.
pub const JWKS_TTL: u64 = 3600;
/// Least time between two forced JWKS re-fetches, in seconds (docs/api.md section 5).
pub const JWKS_REFETCH_INTERVAL: u64 = 10;
/// Largest metadata or JWKS document accepted.
pub const MAX_DOCUMENT: usize = 256 * 1024;
/// How long the outcome of a discovery fetch answers `/health`, in milliseconds: at most
/// one discovery fetch per this interval per isolate, however many checks arrive.
pub const HEALTH_INTERVAL_MS: u64 = 10_000;

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

/// The discovery fetch `/health` answers from.
enum DiscoveryCheck {
    /// A check is fetching: which one, and since when (ms).
    Running { check: u64, since_ms: u64 },
    /// The last fetch's outcome and when it started (ms).
    Done { outcome: Result<(), ProviderError>, started_ms: u64 },
}

/// Per-isolate cache of metadata and keys.
#[derive(Default)]
pub struct ProviderCache {
    metadata: Option<Cached<ProviderMetadata>>,
    jwks: Option<Cached<JwkSet>>,
    last_forced_jwks: Option<u64>,
    /// Sticky: once the discovery document names another issuer, every request fails.
    misconfigured: Option<String>,
    /// The last discovery fetch (by `/health` or for a login), for `/health`.
    discovery_check: Option<DiscoveryCheck>,
    /// The number of the next `/health` check that fetches.
    next_check: u64,
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
    let started_ms = http.now_ms();
    let fetched = discover(http, config).await;
    let mut c = cache.borrow_mut();
    // What `/health` reports next, unless a check of its own is fetching.
    if !matches!(c.discovery_check, Some(DiscoveryCheck::Running { .. })) {
        let outcome = fetched.as_ref().map(|_| ()).map_err(Clone::clone);
        c.discovery_check = Some(DiscoveryCheck::Done { outcome, started_ms });
    }
    match c.store_discovered(fetched, now) {
        // A failed refresh keeps serving the last good document.
        Err(ProviderError::Unavailable(e)) => stale.ok_or(ProviderError::Unavailable(e)),
        stored => stored,
    }
}

/// Fetch and check the discovery document.
async fn discover(http: &dyn HttpClient, config: &crate::config::Config) -> Result<ProviderMetadata, ProviderError> {
    let issuer = config.issuer.as_str();
    let body = get_document(http, &discovery_url(issuer)).await?;
    ProviderMetadata::parse_for(&body, issuer, config.allowed_tenants.is_some()).map_err(|e| match e {
        DiscoveryError::IssuerMismatch | DiscoveryError::BadEndpoint(_) | DiscoveryError::NoPkceS256 => {
            ProviderError::Misconfigured(e.to_string())
        }
        DiscoveryError::Malformed => ProviderError::Unavailable(e.to_string()),
    })
}

impl ProviderCache {
    /// Keep what a discovery fetch brought: a good document is the cached metadata from
    /// `now`; a document that contradicts the configuration makes the isolate refuse the
    /// provider from then on; a failure changes nothing.
    fn store_discovered(
        &mut self,
        fetched: Result<ProviderMetadata, ProviderError>,
        now: u64,
    ) -> Result<Rc<ProviderMetadata>, ProviderError> {
        match fetched {
            Ok(meta) => {
                let value = Rc::new(meta);
                self.metadata = Some(Cached { value: value.clone(), fetched_at: now });
                Ok(value)
            }
            Err(ProviderError::Misconfigured(reason)) => {
                self.misconfigured = Some(reason.clone());
                Err(ProviderError::Misconfigured(reason))
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether the provider's discovery document can be had, as `/health` reports it (docs/api.md
/// section 3): the outcome of a discovery fetch that started less than
/// [`HEALTH_INTERVAL_MS`] ago (this check's, an earlier one's, or a login's), else of a
/// fresh fetch. At most one check fetches at a time and at most one per interval: the
/// others wait for it, looking on their own timer as [`crate::coalesce`]'s
/// waiters do, and share its outcome; a check that fetches for longer than the interval
/// (its request was cancelled) is taken over. So a burst of checks costs one fetch, an
/// outage shows within the interval and its end likewise. Unlike [`metadata`], a stale
/// document never answers: a failed fetch is a failed check. A good document also
/// renews the cached metadata; one that contradicts the configuration is refused from
/// then on, as for a login.
pub async fn discovery_health(
    cache: &RefCell<ProviderCache>,
    http: &dyn HttpClient,
    config: &crate::config::Config,
    now: u64,
) -> Result<(), ProviderError> {
    let mut waited = false;
    let (check, started_ms) = loop {
        let now_ms = http.now_ms();
        {
            let mut c = cache.borrow_mut();
            if let Some(reason) = &c.misconfigured {
                return Err(ProviderError::Misconfigured(reason.clone()));
            }
            match &c.discovery_check {
                Some(DiscoveryCheck::Done { outcome, started_ms })
                    if waited || now_ms.saturating_sub(*started_ms) < HEALTH_INTERVAL_MS =>
                {
                    return outcome.clone();
                }
                Some(DiscoveryCheck::Running { since_ms, .. })
                    if now_ms.saturating_sub(*since_ms) < HEALTH_INTERVAL_MS => {}
                _ => {
                    let check = c.next_check;
                    c.next_check += 1;
                    c.discovery_check = Some(DiscoveryCheck::Running { check, since_ms: now_ms });
                    break (check, now_ms);
                }
            }
        }
        http.sleep(crate::coalesce::WAIT_TICK_MS).await;
        waited = true;
    };
    let mut guard = CheckGuard { cache, check, finished: false };
    let fetched = discover(http, config).await;
    guard.finished = true;
    let mut c = cache.borrow_mut();
    let outcome = c.store_discovered(fetched, now).map(|_| ());
    c.discovery_check = Some(DiscoveryCheck::Done { outcome: outcome.clone(), started_ms });
    outcome
}

/// Releases the waiters of a `/health` check whose future is dropped unfinished: the
/// next of them fetches.
struct CheckGuard<'a> {
    cache: &'a RefCell<ProviderCache>,
    check: u64,
    finished: bool,
}

impl Drop for CheckGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(mut c) = self.cache.try_borrow_mut() {
            if matches!(c.discovery_check, Some(DiscoveryCheck::Running { check, .. }) if check == self.check) {
                c.discovery_check = None;
            }
        }
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
    verifier: &dyn Verifier,
    meta: &ProviderMetadata,
    token: &str,
    now: u64,
) -> Result<Claims, VerifyError> {
    let jws = UntrustedJws::parse(token)?;
    let keys = jwks(cache, http, meta, now, false).await?;
    match jws.verify(&keys, verifier).await {
        Err(JwsError::UnknownKid) | Err(JwsError::NoMatchingKey) => {
            let may_refetch =
                cache.borrow().last_forced_jwks.is_none_or(|t| now.saturating_sub(t) >= JWKS_REFETCH_INTERVAL);
            if !may_refetch {
                return Err(JwsError::UnknownKid.into());
            }
            let keys = jwks(cache, http, meta, now, true).await?;
            Ok(jws.verify(&keys, verifier).await?)
        }
        other => Ok(other?),
    }
}
