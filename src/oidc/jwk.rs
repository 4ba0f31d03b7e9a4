//! JSON Web Key sets (RFC 7517): the provider's signing keys, parsed once per fetch into
//! [`PublicKey`]s. Keys edge-bff cannot use (encryption keys, other curves, RSA under 2048
//! or over 4096 bits, members of the wrong size) are skipped, not errors; a point off its
//! curve is found by the verifier, which then counts the key as unusable.

use crate::crypto::b64url_decode;
pub use crate::crypto::verifying::PublicKey;
use serde::Deserialize;

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

pub use crate::crypto::verifying::{MAX_RSA_VERIFY_BITS, MIN_RSA_BITS};

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
            let (n, e) = (b64url_decode(raw.n.as_deref()?)?, b64url_decode(raw.e.as_deref()?)?);
            PublicKey::rsa(&n, &e, MAX_RSA_VERIFY_BITS)?
        }
        "EC" if raw.crv.as_deref() == Some("P-256") => PublicKey::P256 {
            x: b64url_decode(raw.x.as_deref()?)?.try_into().ok()?,
            y: b64url_decode(raw.y.as_deref()?)?.try_into().ok()?,
        },
        "OKP" if raw.crv.as_deref() == Some("Ed25519") => {
            PublicKey::Ed25519 { x: b64url_decode(raw.x.as_deref()?)?.try_into().ok()? }
        }
        _ => return None,
    };
    Some(Jwk { kid: raw.kid, alg: raw.alg, key })
}
