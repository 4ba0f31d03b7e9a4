//! Checking JWS signatures: the public keys edge-bff verifies with (the provider's, and the
//! public halves of its own keys) and the [`Verifier`] that checks a signature with one.
//!
//! The check itself is the platform's, as signing is ([`super::signing::Signer`]): in the
//! Worker the runtime's WebCrypto (native code, and no RSA, P-256 or Ed25519 arithmetic in
//! the module), natively [`RustCryptoVerifier`] (feature `rust-crypto`: the RustCrypto
//! crates, for tests, fuzz targets and benchmarks). A [`PublicKey`] is therefore plain
//! bytes checked for shape here; whether a point lies on its curve is the verifier's
//! question, and a key it cannot use is answered as unusable, not as a bad signature.

use super::jose::Alg;
use crate::web::client::LocalFuture;

/// Smallest RSA modulus accepted (bits), for the provider's keys and for `CLIENT_PRIVATE_KEY`.
pub use super::jose::MIN_RSA_BITS;

/// Largest RSA modulus accepted for verifying (bits): the provider's keys and the public
/// halves of edge-bff's own. Larger keys are left out of a key set, as before this check
/// moved to the platform.
pub const MAX_RSA_VERIFY_BITS: usize = 4096;

/// Largest RSA public exponent accepted (2^33 − 1), a bound common to verifiers.
const MAX_RSA_EXPONENT: u64 = (1 << 33) - 1;

/// A public key of one of the accepted algorithm families, as its members' bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA (RS256, PS256): modulus and public exponent, big-endian, no leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// P-256 (ES256): the point's affine coordinates.
    P256 {
        /// x coordinate.
        x: [u8; 32],
        /// y coordinate.
        y: [u8; 32],
    },
    /// Ed25519 (EdDSA): the encoded point.
    Ed25519 {
        /// The public key.
        x: [u8; 32],
    },
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Rsa { .. } => "PublicKey::Rsa",
            Self::P256 { .. } => "PublicKey::P256",
            Self::Ed25519 { .. } => "PublicKey::Ed25519",
        })
    }
}

/// Big-endian bytes without their leading zeros.
pub(crate) fn trimmed(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros..]
}

/// The number of bits of a big-endian number without leading zeros.
fn bit_length(trimmed: &[u8]) -> usize {
    trimmed.first().map_or(0, |top| trimmed.len() * 8 - top.leading_zeros() as usize)
}

impl PublicKey {
    /// An RSA key from its JWK members (decoded): a modulus of at least [`MIN_RSA_BITS`]
    /// bits in whole bytes (so 256 bytes whatever its top bit) and at most `max_bits` bits
    /// ([`MAX_RSA_VERIFY_BITS`] for the provider's keys), and an exponent from 2 to
    /// 2^33 − 1; `None` otherwise.
    pub fn rsa(n: &[u8], e: &[u8], max_bits: usize) -> Option<Self> {
        let (n, e) = (trimmed(n), trimmed(e));
        let exponent = (e.len() <= 8).then(|| e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))?;
        let bits = bit_length(n);
        let fits = n.len() * 8 >= MIN_RSA_BITS && bits <= max_bits && (2..=MAX_RSA_EXPONENT).contains(&exponent);
        fits.then(|| Self::Rsa { n: n.to_vec(), e: e.to_vec() })
    }

    /// Whether this key can check `alg` at all (its family).
    pub fn fits(&self, alg: Alg) -> bool {
        matches!(
            (alg, self),
            (Alg::Rs256 | Alg::Ps256, Self::Rsa { .. })
                | (Alg::Es256, Self::P256 { .. })
                | (Alg::EdDsa, Self::Ed25519 { .. })
        )
    }

    /// The key as a public JWK (`kty`, `crv`, the key members only), JSON text: what
    /// WebCrypto imports.
    pub fn jwk(&self) -> String {
        use super::b64url;
        match self {
            Self::Rsa { n, e } => format!(r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#, b64url(n), b64url(e)),
            Self::P256 { x, y } => {
                format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#, b64url(x), b64url(y))
            }
            Self::Ed25519 { x } => format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, b64url(x)),
        }
    }
}

/// A message and the signature to check on it.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The algorithm the signature claims.
    pub alg: Alg,
    /// The signed bytes (a JWS signing input).
    pub message: &'a [u8],
    /// The signature, in JWS form (`r ‖ s` for ES256).
    pub signature: &'a [u8],
}

/// Checks JWS signatures.
pub trait Verifier {
    /// Whether `signed` carries `key`'s signature; `None` when the key cannot check the
    /// algorithm or is not a valid key (a point off its curve), so that the key counts as
    /// unusable, not as a bad signature.
    fn verify<'a>(&'a self, key: &'a PublicKey, signed: Signed<'a>) -> LocalFuture<'a, Option<bool>>;
}

/// The verifier in Rust (RustCrypto's `rsa`, `p256`, `ed25519-dalek`), for native tests,
/// fuzz targets and benchmarks. The Worker verifies with WebCrypto.
#[cfg(feature = "rust-crypto")]
#[derive(Debug, Default, Clone, Copy)]
pub struct RustCryptoVerifier;

#[cfg(feature = "rust-crypto")]
impl Verifier for RustCryptoVerifier {
    fn verify<'a>(&'a self, key: &'a PublicKey, signed: Signed<'a>) -> LocalFuture<'a, Option<bool>> {
        let verdict = verify_in_rust(key, signed);
        Box::pin(async move { verdict })
    }
}

/// [`RustCryptoVerifier`]'s check, synchronous.
#[cfg(feature = "rust-crypto")]
pub fn verify_in_rust(key: &PublicKey, Signed { alg, message, signature }: Signed<'_>) -> Option<bool> {
    use rsa::signature::Verifier as _;
    use sha2::Sha256;
    if !key.fits(alg) {
        return None;
    }
    Some(match key {
        PublicKey::Rsa { n, e } => {
            let (n, e) = (rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e));
            // The size was bounded when the key was made (PublicKey::rsa).
            let key = rsa::RsaPublicKey::new_with_max_size(n, e, super::jose::MAX_RSA_BITS).ok()?;
            if alg == Alg::Rs256 {
                let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
                rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|s| vk.verify(message, &s).is_ok())
            } else {
                let vk = rsa::pss::VerifyingKey::<Sha256>::new(key);
                rsa::pss::Signature::try_from(signature).is_ok_and(|s| vk.verify(message, &s).is_ok())
            }
        }
        PublicKey::P256 { x, y } => {
            let point = p256::EncodedPoint::from_affine_coordinates(&(*x).into(), &(*y).into(), false);
            let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?;
            p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| vk.verify(message, &s).is_ok())
        }
        PublicKey::Ed25519 { x } => {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(x).ok()?;
            ed25519_dalek::Signature::from_slice(signature).is_ok_and(|s| vk.verify_strict(message, &s).is_ok())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_are_bounded_as_verifiers_bound_them() {
        let n = |bits: usize| {
            let mut n = vec![0u8; bits.div_ceil(8)];
            n[0] = 1 << ((bits - 1) % 8);
            n
        };
        let rsa = |n: &[u8], e: &[u8]| PublicKey::rsa(n, e, MAX_RSA_VERIFY_BITS);
        assert!(rsa(&n(2048), &[1, 0, 1]).is_some());
        assert!(rsa(&n(4096), &[1, 0, 1]).is_some());
        // Leading zero bytes count for nothing.
        let mut padded = vec![0, 0];
        padded.extend(n(2048));
        assert_eq!(rsa(&padded, &[0, 1, 0, 1]), rsa(&n(2048), &[1, 0, 1]));
        assert!(rsa(&n(2041), &[1, 0, 1]).is_some(), "256 bytes");
        assert!(rsa(&n(2040), &[1, 0, 1]).is_none(), "255 bytes");
        assert!(rsa(&n(4097), &[1, 0, 1]).is_none(), "over 4096 bits");
        assert!(PublicKey::rsa(&n(8192), &[1, 0, 1], 16_384).is_some(), "a larger bound");
        assert!(rsa(&n(2048), &[1]).is_none(), "e = 1");
        assert!(rsa(&n(2048), &[]).is_none(), "no e");
        assert!(rsa(&n(2048), &[2, 0, 0, 0, 0]).is_none(), "e = 2^33");
        assert!(rsa(&n(2048), &[1, 255, 255, 255, 255]).is_some(), "e = 2^33 - 1");
        assert!(rsa(&n(2048), &[0; 9]).is_none(), "e = 0 in nine bytes");
    }

    #[test]
    fn a_public_jwk_carries_the_key_members_only() {
        let key = PublicKey::Ed25519 { x: [7; 32] };
        let jwk: serde_json::Value = serde_json::from_str(&key.jwk()).unwrap();
        assert_eq!(jwk.as_object().unwrap().len(), 3);
        assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
        assert!(key.fits(Alg::EdDsa) && !key.fits(Alg::Es256));
        assert_eq!(format!("{key:?}"), "PublicKey::Ed25519");
    }

    #[test]
    fn a_point_off_the_curve_is_unusable_not_a_bad_signature() {
        let off = PublicKey::P256 { x: [1; 32], y: [2; 32] };
        let signed = |alg| Signed { alg, message: b"m", signature: &[1; 64] };
        assert_eq!(verify_in_rust(&off, signed(Alg::Es256)), None);
        assert_eq!(verify_in_rust(&off, signed(Alg::Rs256)), None, "wrong family");
    }
}
