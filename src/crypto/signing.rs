//! edge-bff's own signing keys (`CLIENT_PRIVATE_KEY` for private_key_jwt client
//! assertions, RFC 7523; later `DPOP_KEY`): private JWKs parsed and checked at
//! configuration time, their public halves for `{AUTH_PATH}/jwks`, and the [`Signer`]
//! that makes JWS signatures with them.
//!
//! The signature itself is made by a [`Signer`]: in the Worker the runtime's WebCrypto
//! (constant-time native code; RSA private-key operations in pure Rust are not constant
//! time, RUSTSEC-2023-0071, and take tens of milliseconds in wasm), natively
//! [`NativeSigner`] (the same algorithms in Rust, for tests and benchmarks).

use super::jose::MAX_RSA_BITS;
use crate::crypto::verifying::{trimmed, PublicKey, Signed, Verifier};
use crate::crypto::{b64url, b64url_decode};
use crate::web::client::LocalFuture;
use serde_json::{json, Map, Value};
use std::fmt;

/// The JWS algorithms edge-bff signs with: the ones it verifies ([`super::jose::Alg`]).
pub use super::jose::Alg as SigningAlg;

/// Why a private key setting was refused (never the key material itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a JWK object or a JWK Set with at least one key.
    #[error("is not a private JWK or a JWK Set of them")]
    Malformed,
    /// A key has no `kid`, or two keys share one.
    #[error("key {0}: needs a kid of its own")]
    Kid(usize),
    /// `alg` missing, or not one edge-bff signs with (or not allowed here).
    #[error("key {0}: alg must be one of {1}")]
    Alg(usize, &'static str),
    /// The key does not fit its `alg` (type, curve, missing private members, RSA < 2048).
    #[error("key {0}: not a usable private key for its alg")]
    Material(usize),
    /// The members are not one key pair: what the private members sign, the public ones
    /// do not verify ([`signs_for_its_public_half`]; RSA: the primes, exponents and CRT
    /// members disagree, or belong to another key).
    #[error("key {0}: its public and private members are not one key pair")]
    Pair(usize),
}

/// A private signing key: its `kid`, `alg`, the private JWK (for the signer) and its
/// public half. `Debug` never shows the private members.
#[derive(Clone)]
pub struct PrivateKey {
    kid: String,
    alg: SigningAlg,
    /// The private JWK as JSON text (what WebCrypto imports).
    private_jwk: String,
    public_jwk: Value,
    /// The public members, for the pairwise test.
    public_key: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// Members of a JWK that hold private material.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl PrivateKey {
    /// `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm it signs with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The private JWK as JSON text, for the signer only.
    pub fn private_jwk(&self) -> &str {
        &self.private_jwk
    }

    /// The public JWK (`kty`, the public members, `kid`, `alg`, `x5c`/`x5t`/`x5t#S256`
    /// when given, `use: sig`).
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// The members RFC 7638 hashes, in its (lexicographic) order: `crv`, `kty`, `x`, `y`
    /// for EC; `crv`, `kty`, `x` for OKP; `e`, `kty`, `n` for RSA.
    fn required_members(&self) -> &'static [&'static str] {
        match self.alg {
            SigningAlg::Es256 => &["crv", "kty", "x", "y"],
            SigningAlg::EdDsa => &["crv", "kty", "x"],
            SigningAlg::Rs256 | SigningAlg::Ps256 => &["e", "kty", "n"],
        }
    }

    /// The bare public key (only the required members): the `jwk` of a DPoP proof.
    pub fn bare_public_jwk(&self) -> Value {
        let bare: Map<String, Value> = self
            .required_members()
            .iter()
            .filter_map(|m| self.public_jwk.get(*m).map(|v| ((*m).to_string(), v.clone())))
            .collect();
        Value::Object(bare)
    }

    /// The JWK SHA-256 thumbprint (RFC 7638), base64url: DPoP's `jkt`. The hashed text
    /// is written member by member, so no map ordering is relied on.
    pub fn jwk_thumbprint(&self) -> String {
        use sha2::Digest;
        let members: Vec<String> = self
            .required_members()
            .iter()
            .map(|m| format!("\"{m}\":{}", self.public_jwk.get(*m).map(Value::to_string).unwrap_or_default()))
            .collect();
        b64url(&sha2::Sha256::digest(format!("{{{}}}", members.join(",")).as_bytes()))
    }

    /// The certificate thumbprints of the key (`x5t#S256`, `x5t`) when its JWK names
    /// them: providers that register certificates (Microsoft Entra ID) find the key by
    /// these header members rather than by `kid`.
    pub fn thumbprints(&self) -> impl Iterator<Item = (&str, &Value)> {
        ["x5t#S256", "x5t"].into_iter().filter_map(|name| self.public_jwk.get(name).map(|v| (name, v)))
    }
}

/// Parse a private JWK or a JWK Set (`{"keys":[…]}`; the first key signs, the others are
/// published too, for rotation). `algs` are the algorithms allowed for this setting.
pub fn parse_private_keys(text: &str, algs: &[SigningAlg]) -> Result<Vec<PrivateKey>, KeyError> {
    let value: Value = serde_json::from_str(text).map_err(|_| KeyError::Malformed)?;
    let raw: Vec<Map<String, Value>> = match value {
        Value::Object(mut o) if o.contains_key("keys") => match o.remove("keys") {
            Some(Value::Array(keys)) if !keys.is_empty() => keys
                .into_iter()
                .map(|k| match k {
                    Value::Object(k) => Ok(k),
                    _ => Err(KeyError::Malformed),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(KeyError::Malformed),
        },
        Value::Object(o) => vec![o],
        _ => return Err(KeyError::Malformed),
    };
    let allowed = match algs {
        [SigningAlg::Es256, SigningAlg::EdDsa] => "ES256, EdDSA",
        _ => "RS256, PS256, ES256, EdDSA",
    };
    let mut keys: Vec<PrivateKey> = Vec::new();
    for (i, jwk) in raw.into_iter().enumerate() {
        let n = i + 1;
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let kid = text("kid").filter(|k| !k.is_empty() && k.len() <= 128).ok_or(KeyError::Kid(n))?.to_string();
        if keys.iter().any(|k| k.kid == kid) {
            return Err(KeyError::Kid(n));
        }
        let alg = text("alg")
            .and_then(SigningAlg::from_name)
            .filter(|a| algs.contains(a))
            .ok_or(KeyError::Alg(n, allowed))?;
        let public_key = public_key_of(&jwk, alg).ok_or(KeyError::Material(n))?;
        let mut public: Map<String, Value> = jwk
            .iter()
            .filter(|(k, _)| !PRIVATE_MEMBERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        public.retain(|k, _| {
            matches!(k.as_str(), "kty" | "crv" | "n" | "e" | "x" | "y" | "kid" | "alg" | "x5c" | "x5t" | "x5t#S256")
        });
        public.insert("use".into(), json!("sig"));
        keys.push(PrivateKey {
            kid,
            alg,
            private_jwk: Value::Object(jwk).to_string(),
            public_jwk: Value::Object(public),
            public_key,
        });
    }
    Ok(keys)
}

/// The public key of a private JWK for `alg` when its members have the right shape: the
/// right type and curve, every member the algorithm needs, decodable and of the right
/// length, and (RSA) a modulus of 2048 to 16384 bits, an odd public exponent from 3 to
/// 2^33 − 1, and no other member longer than the modulus. Whether the members are one key
/// pair is [`signs_for_its_public_half`]'s question: it needs a signature, which is the
/// platform's.
fn public_key_of(jwk: &Map<String, Value>, alg: SigningAlg) -> Option<PublicKey> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(b64url_decode).filter(|b| !b.is_empty());
    let fixed = |name: &str| bytes(name).and_then(|b| <[u8; 32]>::try_from(b).ok());
    match alg {
        SigningAlg::Rs256 | SigningAlg::Ps256 => {
            if text("kty") != Some("RSA") {
                return None;
            }
            let (n, e) = (bytes("n")?, bytes("e")?);
            let key = PublicKey::rsa(&n, &e, MAX_RSA_BITS)?;
            let PublicKey::Rsa { n, e } = &key else { return None };
            let longest = n.len();
            // `PublicKey::rsa` already refused an exponent under 2.
            let odd = e.last().is_some_and(|b| b & 1 == 1);
            let private_fit = ["d", "p", "q", "dp", "dq", "qi"]
                .iter()
                .all(|m| bytes(m).is_some_and(|b| trimmed(&b).len() <= longest));
            (odd && private_fit).then_some(key)
        }
        SigningAlg::Es256 => {
            if text("kty") != Some("EC") || text("crv") != Some("P-256") {
                return None;
            }
            fixed("d")?;
            Some(PublicKey::P256 { x: fixed("x")?, y: fixed("y")? })
        }
        SigningAlg::EdDsa => {
            if text("kty") != Some("OKP") || text("crv") != Some("Ed25519") {
                return None;
            }
            fixed("d")?;
            Some(PublicKey::Ed25519 { x: fixed("x")? })
        }
    }
}

/// The fixed input of [`signs_for_its_public_half`].
const PAIRWISE_INPUT: &[u8] = b"edge-bff: pairwise consistency test of a configured key";

/// Whether `key`'s private members make a signature its public members verify: a
/// pairwise consistency test (as FIPS 140-3 asks of a key pair), run once per isolate
/// before a configured key is used. It catches keys assembled wrongly: the halves, or the
/// RSA primes and CRT members, of two keys. A key the signer refuses fails too.
pub async fn signs_for_its_public_half(signer: &dyn Signer, verifier: &dyn Verifier, key: &PrivateKey) -> bool {
    match signer.sign(key, PAIRWISE_INPUT).await {
        Ok(signature) => {
            let signed = Signed { alg: key.alg, message: PAIRWISE_INPUT, signature: &signature };
            verifier.verify(&key.public_key, signed).await == Some(true)
        }
        Err(_) => false,
    }
}

/// Why a signature could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// Makes JWS signatures with a [`PrivateKey`].
pub trait Signer {
    /// The signature of `input` (the JWS signing input) under `key`, in JWS form.
    fn sign<'a>(&'a self, key: &'a PrivateKey, input: &'a [u8]) -> LocalFuture<'a, Result<Vec<u8>, SignError>>;
}

/// A compact JWS of `claims` signed with `key`; `header` is extended with `alg`, and with
/// `kid` (and certificate thumbprints) unless it carries the public key itself (`jwk`,
/// as a DPoP proof does).
pub async fn sign_jwt(
    signer: &dyn Signer,
    key: &PrivateKey,
    mut header: Map<String, Value>,
    claims: &Value,
) -> Result<String, SignError> {
    header.insert("alg".into(), json!(key.alg.name()));
    if !header.contains_key("jwk") {
        header.entry("kid").or_insert_with(|| json!(key.kid));
        for (name, value) in key.thumbprints() {
            header.entry(name).or_insert_with(|| value.clone());
        }
    }
    let input =
        format!("{}.{}", b64url(Value::Object(header).to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signature = signer.sign(key, input.as_bytes()).await?;
    Ok(format!("{input}.{}", b64url(&signature)))
}

/// The signer in Rust (feature `rust-crypto`): P-256 via `p256`, Ed25519 via
/// `ed25519-dalek`, and in tests RSA via the `rsa` crate with blinding. The Worker signs
/// with WebCrypto.
#[cfg(feature = "rust-crypto")]
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeSigner;

#[cfg(feature = "rust-crypto")]
impl Signer for NativeSigner {
    fn sign<'a>(&'a self, key: &'a PrivateKey, input: &'a [u8]) -> LocalFuture<'a, Result<Vec<u8>, SignError>> {
        Box::pin(async move { sign_native(key, input) })
    }
}

/// A signature made in Rust (see [`NativeSigner`]).
#[cfg(feature = "rust-crypto")]
pub fn sign_native(key: &PrivateKey, input: &[u8]) -> Result<Vec<u8>, SignError> {
    let fail = |what: &str| SignError(format!("{what} (key {})", key.kid));
    let jwk: Map<String, Value> = serde_json::from_str(&key.private_jwk).map_err(|_| fail("private JWK"))?;
    let bytes = |name: &str| jwk.get(name).and_then(Value::as_str).and_then(b64url_decode).ok_or_else(|| fail(name));
    match key.alg {
        SigningAlg::Es256 => {
            use p256::ecdsa::signature::Signer as _;
            let signing = p256::ecdsa::SigningKey::from_slice(&bytes("d")?).map_err(|_| fail("P-256 key"))?;
            let signature: p256::ecdsa::Signature = signing.sign(input);
            Ok(signature.to_bytes().to_vec())
        }
        SigningAlg::EdDsa => {
            use ed25519_dalek::Signer as _;
            let d: [u8; 32] = bytes("d")?.try_into().map_err(|_| fail("Ed25519 key"))?;
            Ok(ed25519_dalek::SigningKey::from_bytes(&d).sign(input).to_bytes().to_vec())
        }
        #[cfg(test)]
        SigningAlg::Rs256 => rs256_with_own_crt_members(&jwk, input).ok_or_else(|| fail("RSA key")),
        #[cfg(test)]
        SigningAlg::Ps256 => {
            use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
            let big = |name: &str| bytes(name).map(|b| rsa::BigUint::from_bytes_be(&b));
            let private =
                rsa::RsaPrivateKey::from_components(big("n")?, big("e")?, big("d")?, vec![big("p")?, big("q")?])
                    .map_err(|_| fail("RSA key"))?;
            let mut rng = rand::rngs::OsRng;
            Ok(rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(private).sign_with_rng(&mut rng, input).to_vec())
        }
        // Outside tests RSA keys are used by WebCrypto only (constant time, native speed).
        #[cfg(not(test))]
        SigningAlg::Rs256 | SigningAlg::Ps256 => Err(fail("RSA signing is WebCrypto's")),
    }
}

/// An RS256 signature made, as WebCrypto makes it, with the JWK's own CRT members
/// (`p`, `q`, `dp`, `dq`, `qi`; RFC 8017 §5.1.2), so that the pairwise test sees members
/// that disagree. Tests only: this arithmetic is not constant time.
#[cfg(all(test, feature = "rust-crypto"))]
fn rs256_with_own_crt_members(jwk: &Map<String, Value>, input: &[u8]) -> Option<Vec<u8>> {
    use rsa::BigUint;
    use sha2::Digest;
    let big =
        |name: &str| jwk.get(name).and_then(Value::as_str).and_then(b64url_decode).map(|b| BigUint::from_bytes_be(&b));
    let (n, p, q, dp, dq, qi) = (big("n")?, big("p")?, big("q")?, big("dp")?, big("dq")?, big("qi")?);
    let two = BigUint::from(2u8);
    if p < two || q < two || n < two {
        return None;
    }
    // EMSA-PKCS1-v1_5 (RFC 8017 §9.2): 00 01 FF… 00, SHA-256's DigestInfo, the digest.
    const DIGEST_INFO: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ];
    let k = n.bits().div_ceil(8);
    let t = [&DIGEST_INFO[..], &sha2::Sha256::digest(input)[..]].concat();
    let mut encoded = vec![0x00, 0x01];
    encoded.resize(k.checked_sub(t.len() + 1)?, 0xff);
    encoded.push(0);
    encoded.extend(t);
    let m = BigUint::from_bytes_be(&encoded);
    let (m1, m2) = (m.modpow(&dp, &p), m.modpow(&dq, &q));
    let h = (&qi * (&m1 + &p - (&m2 % &p))) % &p;
    let s = (m2 + h * &q) % &n;
    let bytes = s.to_bytes_be();
    Some([vec![0u8; k.saturating_sub(bytes.len())], bytes].concat())
}

/// [`signs_for_its_public_half`] for each key of a setting: [`KeyError::Pair`] names the
/// first (1-based) that fails.
pub async fn check_pairs(keys: &[PrivateKey], signer: &dyn Signer, verifier: &dyn Verifier) -> Result<(), KeyError> {
    for (i, key) in keys.iter().enumerate() {
        if !signs_for_its_public_half(signer, verifier, key).await {
            return Err(KeyError::Pair(i + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::jwk::JwkSet;
    use crate::oidc::jws::UntrustedJws;
    use crate::testutil::{block_on, TestKeys};

    const ALL: &[SigningAlg] = &[SigningAlg::Rs256, SigningAlg::Ps256, SigningAlg::Es256, SigningAlg::EdDsa];

    /// What configuration accepts: the keys' shape ([`parse_private_keys`]), then the
    /// pairwise test with the Rust signer and verifier.
    fn checked(text: &str) -> Result<Vec<PrivateKey>, KeyError> {
        let keys = parse_private_keys(text, ALL)?;
        block_on(check_pairs(&keys, &NativeSigner, &crate::crypto::verifying::RustCryptoVerifier))?;
        Ok(keys)
    }

    #[test]
    fn every_algorithm_signs_what_the_verifier_accepts() {
        let keys = TestKeys::new();
        for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
            let parsed = parse_private_keys(&keys.private_jwk(alg, "k-1").to_string(), ALL).unwrap();
            let key = &parsed[0];
            assert_eq!((key.kid(), key.alg().name()), ("k-1", alg));
            // The public half verifies what the private half signs.
            let public = serde_json::json!({ "keys": [key.public_jwk()] });
            for member in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.public_jwk().get(member).is_none(), "{alg}: {member} published");
            }
            assert!(!format!("{key:?}").contains(&keys.private_jwk(alg, "k-1")["d"].as_str().unwrap()[..10]));
            let set = JwkSet::parse(public.to_string().as_bytes()).unwrap();
            let claims = serde_json::json!({"iss": "client", "n": 1});
            let jwt = block_on(sign_jwt(&NativeSigner, key, Map::new(), &claims)).unwrap();
            let verified = UntrustedJws::parse(&jwt).unwrap().verify_in_rust(&set).unwrap();
            assert_eq!(verified["iss"], "client", "{alg}");
        }
    }

    #[test]
    fn certificate_thumbprints_ride_in_the_header_and_the_public_key() {
        let keys = TestKeys::new();
        let mut jwk = keys.private_jwk("RS256", "cert-1");
        jwk["x5t#S256"] = "dGh1bWJwcmludC1zaGEyNTY".into();
        jwk["x5t"] = "dGh1bWJwcmludC1zaGEx".into();
        let key = &parse_private_keys(&jwk.to_string(), ALL).unwrap()[0];
        assert_eq!(key.public_jwk()["x5t#S256"], "dGh1bWJwcmludC1zaGEyNTY");
        let jwt = block_on(sign_jwt(&NativeSigner, key, Map::new(), &serde_json::json!({}))).unwrap();
        let header: Value =
            serde_json::from_slice(&crate::crypto::b64url_decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["x5t#S256"], "dGh1bWJwcmludC1zaGEyNTY");
        assert_eq!(header["x5t"], "dGh1bWJwcmludC1zaGEx");
        assert_eq!(header["kid"], "cert-1");
    }

    #[test]
    fn jwk_thumbprint_matches_rfc_7638() {
        // RFC 7638 section 3.1's example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let rsa = serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"});
        let key = PrivateKey {
            kid: "2011-04-29".into(),
            alg: SigningAlg::Rs256,
            private_jwk: String::new(),
            public_key: PublicKey::rsa(&b64url_decode(n).unwrap(), &[1, 0, 1], MAX_RSA_BITS).unwrap(),
            public_jwk: rsa,
        };
        assert_eq!(key.jwk_thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        // EC keys hash crv, kty, x, y only; the bare key has exactly those members.
        let ec = &parse_private_keys(&TestKeys::new().private_jwk("ES256", "e").to_string(), ALL).unwrap()[0];
        let bare = ec.bare_public_jwk();
        assert_eq!(bare.as_object().unwrap().keys().cloned().collect::<Vec<_>>(), ["crv", "kty", "x", "y"]);
        assert_eq!(ec.jwk_thumbprint().len(), 43);
    }

    #[test]
    fn a_set_signs_with_its_first_key_and_publishes_all() {
        let keys = TestKeys::new();
        let set = serde_json::json!({ "keys": [keys.private_jwk("ES256", "new"), keys.private_jwk("RS256", "old")] });
        let parsed = parse_private_keys(&set.to_string(), ALL).unwrap();
        assert_eq!(parsed.iter().map(PrivateKey::kid).collect::<Vec<_>>(), ["new", "old"]);
    }

    #[test]
    fn unusable_keys_are_refused_without_echoing_them() {
        let keys = TestKeys::new();
        let ec = keys.private_jwk("ES256", "k");
        let without = |member: &str| {
            let mut k = ec.clone();
            k.as_object_mut().unwrap().remove(member);
            k.to_string()
        };
        let with = |member: &str, value: serde_json::Value| {
            let mut k = ec.clone();
            k[member] = value;
            k.to_string()
        };
        let other_ec = TestKeys::with_seed(9).private_jwk("ES256", "k");
        let mut mismatched = ec.clone();
        mismatched["x"] = other_ec["x"].clone();
        for (text, expected) in [
            ("not json".to_string(), KeyError::Malformed),
            ("[]".to_string(), KeyError::Malformed),
            (r#"{"keys":[]}"#.to_string(), KeyError::Malformed),
            (without("kid"), KeyError::Kid(1)),
            (without("alg"), KeyError::Alg(1, "RS256, PS256, ES256, EdDSA")),
            (with("alg", "HS256".into()), KeyError::Alg(1, "RS256, PS256, ES256, EdDSA")),
            (without("d"), KeyError::Material(1)),
            (with("crv", "P-384".into()), KeyError::Material(1)),
            (with("alg", "EdDSA".into()), KeyError::Material(1)),
            (mismatched.to_string(), KeyError::Pair(1)),
            (serde_json::json!({"keys": [ec, ec]}).to_string(), KeyError::Kid(2)),
        ] {
            let e = checked(&text).unwrap_err();
            assert_eq!(e, expected, "{text}");
            assert!(!e.to_string().contains(ec["d"].as_str().unwrap()));
        }
        // DPoP allows elliptic keys only.
        let rsa = keys.private_jwk("RS256", "r").to_string();
        assert_eq!(
            parse_private_keys(&rsa, &[SigningAlg::Es256, SigningAlg::EdDsa]).unwrap_err(),
            KeyError::Alg(1, "ES256, EdDSA")
        );
    }

    #[test]
    fn rsa_keys_are_checked_as_one_pair() {
        use crate::testutil::{other_rsa_key, rsa_private_jwk};
        let b = crate::crypto::b64url;
        let good = TestKeys::new().private_jwk("RS256", "r");
        let other = rsa_private_jwk(&other_rsa_key(), "RS256", "r");
        assert!(checked(&good.to_string()).is_ok());
        assert!(checked(&other.to_string()).is_ok());
        let with = |changes: &[(&str, Value)]| {
            let mut k = good.clone();
            for (member, value) in changes {
                k[*member] = value.clone();
            }
            k.to_string()
        };
        let from_other = |members: &[&str]| -> Vec<(&'static str, Value)> {
            ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
                .into_iter()
                .filter(|m| members.contains(m))
                .map(|m| (m, other[m].clone()))
                .collect()
        };
        let n = b64url_decode(good["n"].as_str().unwrap()).unwrap();
        let zero_padded = |pad: usize| b(&[vec![0u8; pad], n.clone()].concat());
        let small = b(&[0u8; 257]);
        for (text, expected) in [
            // An empty modulus once underflowed the bit count (a panic in debug builds, a
            // huge "size" that passed the 2048-bit rule in release builds).
            (with(&[("n", "".into())]), KeyError::Material(1)),
            // Bits are counted on the number: 257 zero bytes are not a 2048-bit modulus.
            (with(&[("n", small.into())]), KeyError::Material(1)),
            (with(&[("e", "".into())]), KeyError::Material(1)),
            // The public half of one key with the private members of another.
            (with(&from_other(&["n", "e"])), KeyError::Pair(1)),
            (with(&from_other(&["d", "p", "q", "dp", "dq", "qi"])), KeyError::Pair(1)),
            // Each member that WebCrypto signs with must agree with the rest.
            (with(&from_other(&["p", "q"])), KeyError::Pair(1)),
            (with(&from_other(&["dp"])), KeyError::Pair(1)),
            (with(&from_other(&["dq"])), KeyError::Pair(1)),
            (with(&from_other(&["qi"])), KeyError::Pair(1)),
            (with(&[("p", good["q"].clone()), ("q", good["p"].clone())]), KeyError::Pair(1)),
            // Degenerate values are refused, never divided by.
            (with(&[("p", "AQ".into())]), KeyError::Pair(1)),
            (with(&[("q", "AA".into())]), KeyError::Pair(1)),
            (with(&[("e", "AQ".into()), ("d", "AQ".into())]), KeyError::Material(1)),
            (with(&[("e", "AQAA".into())]), KeyError::Material(1)),
            (with(&[("e", "Aw".into())]), KeyError::Pair(1)),
            (with(&[("d", b(&[0xff; 300]).into())]), KeyError::Material(1)),
        ] {
            let e = checked(&text).unwrap_err();
            assert_eq!(e, expected, "{text}");
            assert!(!e.to_string().contains(good["d"].as_str().unwrap()));
        }
        // `d` alone is not used to sign when the CRT members are there (WebCrypto, like
        // this test signer, signs with p, q, dp, dq and qi), so another key's `d` goes
        // unnoticed: the key still signs what its public half verifies.
        assert!(checked(&with(&from_other(&["d"]))).is_ok());
        // Leading zero bytes change nothing about a good key.
        assert!(checked(&with(&[("n", zero_padded(3).into())])).is_ok());
    }
}
