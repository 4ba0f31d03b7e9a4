//! Compact JWS (RFC 7515) parsing and signature verification. An [`UntrustedJws`] is
//! only parsed; its claims become reachable only through [`UntrustedJws::verify`].
//!
//! Accepted algorithms: RS256, PS256, ES256, EdDSA. `none` and every HMAC algorithm are
//! refused; `jku`, `x5u` and `jwk` headers are ignored (keys come only from the
//! provider's JWKS); a `crit` header is refused (we understand no extensions).

use super::jwk::JwkSet;
use crate::crypto::b64url_decode;
pub use crate::crypto::jose::{Alg, Claims};
use crate::crypto::verifying::{Signed, Verifier};
use serde::Deserialize;

/// Longest compact JWS accepted.
pub const MAX_JWS_LEN: usize = 64 * 1024;

/// Why a JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts with JSON header and payload.
    #[error("malformed JWS")]
    Malformed,
    /// `alg` is `none`, HMAC, or otherwise not accepted.
    #[error("algorithm {0} not accepted")]
    AlgorithmNotAccepted(String),
    /// A `crit` header names extensions we do not implement.
    #[error("unsupported critical header")]
    CriticalHeader,
    /// The header's `kid` is not in the JWKS (a re-fetch may help).
    #[error("unknown key id")]
    UnknownKid,
    /// The token names no key but the set has several.
    #[error("kid absent but the JWKS has several keys")]
    KidRequired,
    /// No key of the set can check this algorithm.
    #[error("no matching key")]
    NoMatchingKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A parsed, not yet verified, compact JWS. Its `Debug` shows the header's `alg` and
/// `kid` only: the token itself is a credential (an ID or logout token).
pub struct UntrustedJws<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    alg: Alg,
    kid: Option<String>,
    payload: Vec<u8>,
}

impl std::fmt::Debug for UntrustedJws<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UntrustedJws").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl<'a> UntrustedJws<'a> {
    /// Parse `token` without trusting it.
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        if token.len() > MAX_JWS_LEN {
            return Err(JwsError::Malformed);
        }
        let mut parts = token.split('.');
        let (h, p, s) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(s), None) => (h, p, s),
            _ => return Err(JwsError::Malformed),
        };
        let header: Header =
            serde_json::from_slice(&b64url_decode(h).ok_or(JwsError::Malformed)?).map_err(|_| JwsError::Malformed)?;
        let alg = Alg::from_name(&header.alg)
            .ok_or_else(|| JwsError::AlgorithmNotAccepted(header.alg.chars().take(16).collect()))?;
        if header.crit.is_some() {
            return Err(JwsError::CriticalHeader);
        }
        let payload = b64url_decode(p).ok_or(JwsError::Malformed)?;
        let signature = b64url_decode(s).ok_or(JwsError::Malformed)?;
        if payload.is_empty() || signature.is_empty() {
            return Err(JwsError::Malformed);
        }
        Ok(Self { signing_input: &token[..h.len() + 1 + p.len()], signature, alg, kid: header.kid, payload })
    }

    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The header's algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// [`Self::verify`] with [`crate::crypto::verifying::RustCryptoVerifier`], whose answer
    /// is ready at once: for tests, fuzz targets and benchmarks.
    #[cfg(feature = "rust-crypto")]
    pub fn verify_in_rust(&self, keys: &JwkSet) -> Result<Claims, JwsError> {
        use futures_util::FutureExt;
        let verifier = crate::crypto::verifying::RustCryptoVerifier;
        // Never pending: every step of the Rust verifier is synchronous.
        self.verify(keys, &verifier).now_or_never().unwrap_or(Err(JwsError::NoMatchingKey))
    }

    /// Verify the signature with a key from `keys`, checked by `verifier`, and return the
    /// claims.
    ///
    /// With a `kid`, only keys with that `kid` are tried ([`JwsError::UnknownKid`] if
    /// none). Without one, the set must hold a single usable key (OIDC Core §10.1:
    /// "if there are multiple keys … a kid value MUST be provided").
    pub async fn verify(&self, keys: &JwkSet, verifier: &dyn Verifier) -> Result<Claims, JwsError> {
        match &self.kid {
            Some(kid) if !keys.has_kid(kid) => return Err(JwsError::UnknownKid),
            None if keys.keys.len() > 1 => return Err(JwsError::KidRequired),
            _ => {}
        }
        let mut tried = false;
        for jwk in &keys.keys {
            if self.kid.is_some() && jwk.kid != self.kid {
                continue;
            }
            if jwk.alg.as_deref().is_some_and(|a| a != self.alg.name()) {
                continue;
            }
            // `None`: a key of another family, or one the verifier cannot use.
            let signed = Signed { alg: self.alg, message: self.signing_input.as_bytes(), signature: &self.signature };
            let Some(ok) = verifier.verify(&jwk.key, signed).await else {
                continue;
            };
            tried = true;
            if ok {
                let claims: serde_json::Value =
                    serde_json::from_slice(&self.payload).map_err(|_| JwsError::Malformed)?;
                return match claims {
                    serde_json::Value::Object(map) => Ok(map),
                    _ => Err(JwsError::Malformed),
                };
            }
        }
        Err(if tried { JwsError::BadSignature } else { JwsError::NoMatchingKey })
    }
}
