//! The JOSE vocabulary edge-bff shares between signing (its own JWTs: client assertions,
//! DPoP proofs) and verifying (the provider's ID and logout tokens): the algorithms, the
//! claims of a token, and the smallest RSA key accepted either way.

/// The signature algorithms edge-bff verifies, and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256 (salt 32 bytes).
    Ps256,
    /// ECDSA P-256 with SHA-256 (signature `r ‖ s`, 64 bytes).
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// The algorithm of a JOSE `alg` name; `None` for any other (`none`, HMAC, …).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// Claims of a verified token (a JSON object).
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// The claims of a compact JWS's payload, read without checking its signature: only for a
/// token edge-bff verified before it stored it (the session's ID token), or one whose
/// claims it reads as a hint (an access token's `exp`). `None` when the payload is not a
/// base64url JSON object.
pub fn unverified_claims(token: &str) -> Option<Claims> {
    let payload = super::b64url_decode(token.split('.').nth(1)?)?;
    serde_json::from_slice(&payload).ok()
}

/// Smallest RSA modulus accepted (bits), for the provider's keys and for `CLIENT_PRIVATE_KEY`.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus accepted for edge-bff's own keys (bits), far above any key in use.
pub const MAX_RSA_BITS: usize = 16_384;
