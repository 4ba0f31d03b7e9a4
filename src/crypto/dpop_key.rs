//! The DPoP key (`DPOP_KEY`, RFC 9449) and the signing input of its proofs: the key's
//! proof header and thumbprint are made once, when the configuration is read. Signing,
//! nonces and the token endpoint's client are in [`crate::oidc::dpop`].

use super::signing::{PrivateKey, SignError};
use super::{b64url, random_token};
use serde_json::json;
use sha2::{Digest, Sha256};

/// `DPOP_KEY`: the private key, its proofs' header (encoded once) and its thumbprint.
#[derive(Debug, Clone)]
pub struct DpopKey {
    key: PrivateKey,
    /// base64url of the proof header: `typ`, `alg` and the bare public `jwk`.
    header: String,
    /// The JWK SHA-256 thumbprint (RFC 7638): `dpop_jkt`, and the `jkt` a provider binds
    /// tokens to.
    jkt: String,
}

impl DpopKey {
    /// The DPoP key for `key` (ES256 or EdDSA, checked by the configuration).
    pub fn new(key: PrivateKey) -> Self {
        let header = json!({ "typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.bare_public_jwk() });
        Self { header: b64url(header.to_string().as_bytes()), jkt: key.jwk_thumbprint(), key }
    }

    /// The private key (for the signer).
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// `dpop_jkt` of the authorization request.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The signing input of a proof for `method` on `url` at `now` (`header.claims`, both
    /// base64url): a fresh `jti`, the server's `nonce` when it gave one, and `ath` when
    /// the proof goes with an access token. Made without I/O, so the runtime can sign it
    /// outside async Rust (the direct path).
    pub fn proof_input(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
        now: u64,
    ) -> Result<String, SignError> {
        let jti = random_token().map_err(|e| SignError(e.to_string()))?;
        // Written directly (every string value JSON-escaped): the proof is made on every
        // DPoP call, and a `serde_json::Value` per call costs time and Worker size.
        let text = |v: &str| serde_json::to_string(v).unwrap_or_default();
        let mut claims = format!(r#"{{"jti":"{jti}","htm":{},"htu":{},"iat":{now}"#, text(method), text(htu(url)));
        if let Some(nonce) = nonce {
            claims.push_str(&format!(r#","nonce":{}"#, text(nonce)));
        }
        if let Some(token) = access_token {
            claims.push_str(&format!(r#","ath":"{}""#, ath(token)));
        }
        claims.push('}');
        Ok(format!("{}.{}", self.header, b64url(claims.as_bytes())))
    }
}

/// `htu`: the request's URL without query and fragment (RFC 9449 section 4.2).
pub fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// `ath`: base64url of SHA-256 of the access token (RFC 9449 section 4.2).
pub fn ath(access_token: &str) -> String {
    b64url(&Sha256::digest(access_token.as_bytes()))
}
