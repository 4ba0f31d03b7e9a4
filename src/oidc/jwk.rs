//! JSON Web Key sets (RFC 7517): the provider's signing keys, parsed once per fetch into
//! ready-to-use verifying keys. Keys edge-bff cannot use (encryption keys, other curves,
//! RSA under 2048 bits) are skipped, not errors.

use crate::crypto::b64url_decode;
use serde::Deserialize;

/// A verifying key of one of the accepted algorithm families.
#[derive(Clone)]
pub enum PublicKey {
    /// RSA, for RS256 and PS256.
    Rsa(rsa::RsaPublicKey),
    /// P-256, for ES256.
    P256(p256::ecdsa::VerifyingKey),
    /// Ed25519, for EdDSA.
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// One usable key of the set.
#[derive(Clone)]
pub struct Jwk {
    /// `kid`, if the provider gave one.
    pub kid: Option<String>,
    /// `alg`, if the provider restricted the key to one algorithm.
    pub alg: Option<String>,
    /// The key itself.
    pub key: PublicKey,
}

/// The usable keys of a JWKS document.
#[derive(Clone, Default)]
pub struct JwkSet {
    /// Keys in document order.
    pub keys: Vec<Jwk>,
}

impl std::fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")).collect();
        f.debug_struct("JwkSet").field("kids", &kids).finish()
    }
}

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON of the form `{"keys":[…]}`.
    #[error("JWKS is not a JSON object with a keys array")]
    Malformed,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

pub use crate::crypto::jose::MIN_RSA_BITS;

impl JwkSet {
    /// Parse a JWKS document; unusable keys are left out.
    pub fn parse(body: &[u8]) -> Result<Self, JwksError> {
        let raw: RawSet = serde_json::from_slice(body).map_err(|_| JwksError::Malformed)?;
        let keys =
            raw.keys.into_iter().filter_map(|v| serde_json::from_value::<RawKey>(v).ok()).filter_map(convert).collect();
        Ok(Self { keys })
    }

    /// Whether some key carries `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn convert(raw: RawKey) -> Option<Jwk> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let key = match raw.kty.as_str() {
        "RSA" => {
            let n = b64url_decode(raw.n.as_deref()?)?;
            let e = b64url_decode(raw.e.as_deref()?)?;
            let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from_bytes_be(&e)).ok()?;
            if rsa::traits::PublicKeyParts::size(&key) * 8 < MIN_RSA_BITS {
                return None;
            }
            PublicKey::Rsa(key)
        }
        "EC" if raw.crv.as_deref() == Some("P-256") => {
            let x: [u8; 32] = b64url_decode(raw.x.as_deref()?)?.try_into().ok()?;
            let y: [u8; 32] = b64url_decode(raw.y.as_deref()?)?.try_into().ok()?;
            let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
            PublicKey::P256(p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?)
        }
        "OKP" if raw.crv.as_deref() == Some("Ed25519") => {
            let x: [u8; 32] = b64url_decode(raw.x.as_deref()?)?.try_into().ok()?;
            PublicKey::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).ok()?)
        }
        _ => return None,
    };
    Some(Jwk { kid: raw.kid, alg: raw.alg, key })
}
