//! DPoP (RFC 9449): the key and its proofs, the `ath` of an access token, nonce
//! challenges and the nonce memory. The token endpoint's client is
//! [`crate::oidc::token::TokenHttp`]. docs/api.md section 4 "DPoP"; docs/design.md.

use crate::crypto::b64url;
pub use crate::crypto::dpop_key::{ath, htu, DpopKey};
use crate::crypto::signing::{SignError, Signer};
use std::cell::RefCell;

/// The error a server answers when a proof must carry its nonce.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// A DPoP proof for `method` on `url` at `now` (see [`DpopKey::proof_input`]), signed.
pub async fn proof(
    signer: &dyn Signer,
    key: &DpopKey,
    method: &str,
    url: &str,
    nonce: Option<&str>,
    access_token: Option<&str>,
    now: u64,
) -> Result<String, SignError> {
    let input = key.proof_input(method, url, nonce, access_token, now)?;
    let signature = signer.sign(key.key(), input.as_bytes()).await?;
    Ok(format!("{input}.{}", b64url(&signature)))
}

/// A nonce as RFC 9449 section 8.1 allows it (`1*NQCHAR`), at most 512 characters.
pub fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.len() <= 512 && nonce.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A resource server's nonce challenge (RFC 9449 section 9): a 401 whose
/// `WWW-Authenticate` holds a `DPoP` challenge with `error="use_dpop_nonce"`, and its
/// `DPoP-Nonce`. The caller has checked the status. A runtime may join several
/// `WWW-Authenticate` headers into one value with commas; either form is read.
pub fn resource_challenge<'a>(
    mut www_authenticate: impl Iterator<Item = &'a str>,
    dpop_nonce: Option<&str>,
) -> Option<String> {
    let nonce = dpop_nonce.filter(|n| valid_nonce(n))?;
    let is_dpop_scheme = |segment: &str| {
        let segment = segment.trim_start();
        segment.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("dpop")) && segment[4..].starts_with([' ', '\t'])
    };
    let challenged = www_authenticate.any(|v| v.contains(USE_DPOP_NONCE) && v.split(',').any(is_dpop_scheme));
    challenged.then(|| nonce.to_string())
}

/// Most servers a nonce is remembered for; beyond it (impossible with a sane
/// configuration) the oldest is forgotten.
const MAX_REMEMBERED_NONCES: usize = 64;

/// The last nonce each resource server gave, by origin (`scheme://host:port`), kept per
/// isolate: an optimisation only, as a server with no remembered nonce answers a
/// challenge. A handful of servers at most (the API routes' upstreams and the provider):
/// a list, looked through in order.
#[derive(Debug, Default)]
pub struct NonceMemory(RefCell<Vec<(String, String)>>);

impl NonceMemory {
    /// The nonce last given by the server at `origin`.
    pub fn get(&self, origin: &str) -> Option<String> {
        self.0.borrow().iter().find(|(o, _)| o == origin).map(|(_, n)| n.clone())
    }

    /// Remember `nonce` for the server at `origin`.
    pub fn remember(&self, origin: &str, nonce: String) {
        let mut list = self.0.borrow_mut();
        if let Some(entry) = list.iter_mut().find(|(o, _)| o == origin) {
            entry.1 = nonce;
            return;
        }
        if list.len() >= MAX_REMEMBERED_NONCES {
            list.remove(0);
        }
        list.push((origin.to_string(), nonce));
    }
}

/// The origin part of `url` (`scheme://host:port`, before the path): the key of
/// [`NonceMemory`].
pub fn origin_of(url: &url::Url) -> &str {
    &url[..url::Position::BeforePath]
}

/// Whether `response` is a `use_dpop_nonce` challenge, and its nonce: a 400 (token
/// endpoint, JSON `error`) or 401 (resource server, [`resource_challenge`]) with a
/// `DPoP-Nonce` header.
pub fn nonce_challenge(response: &http::Response<Vec<u8>>) -> Option<String> {
    let nonce = response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok());
    match response.status().as_u16() {
        400 => {
            let nonce = nonce.filter(|n| valid_nonce(n))?;
            (crate::oidc::oauth_error::error_code(response.body()).as_deref() == Some(USE_DPOP_NONCE))
                .then(|| nonce.to_string())
        }
        401 => resource_challenge(
            response.headers().get_all(http::header::WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()),
            nonce,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::signing::{parse_private_keys, NativeSigner, SigningAlg};
    use crate::oidc::jwk::JwkSet;
    use crate::oidc::jws::UntrustedJws;
    use crate::testutil::{block_on, TestKeys};
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn key(alg: &str) -> DpopKey {
        let jwk = TestKeys::new().private_jwk(alg, "dpop-1").to_string();
        DpopKey::new(parse_private_keys(&jwk, &[SigningAlg::Es256, SigningAlg::EdDsa]).unwrap().remove(0))
    }

    /// The proof's header and verified claims (verified with the key in its own header).
    fn open_proof(proof: &str) -> (serde_json::Value, serde_json::Value) {
        let header: serde_json::Value =
            serde_json::from_slice(&crate::crypto::b64url_decode(proof.split('.').next().unwrap()).unwrap()).unwrap();
        let set = JwkSet::parse(json!({ "keys": [header["jwk"]] }).to_string().as_bytes()).unwrap();
        let claims = UntrustedJws::parse(proof).unwrap().verify_in_rust(&set).unwrap();
        (header, serde_json::Value::Object(claims))
    }

    #[test]
    fn proofs_carry_rfc_9449_claims() {
        for alg in ["ES256", "EdDSA"] {
            let key = key(alg);
            let url = "https://api.example.com/v1/things?x=1#frag";
            let p = block_on(proof(&NativeSigner, &key, "GET", url, Some("n-1"), Some("at-123"), NOW)).unwrap();
            let (header, claims) = open_proof(&p);
            assert_eq!(header["typ"], "dpop+jwt");
            assert_eq!(header["alg"], alg);
            assert!(header.get("kid").is_none() && header["jwk"].get("d").is_none());
            assert_eq!(claims["htm"], "GET");
            assert_eq!(claims["htu"], "https://api.example.com/v1/things");
            assert_eq!(claims["iat"], NOW);
            assert_eq!(claims["nonce"], "n-1");
            assert_eq!(claims["ath"], ath("at-123"));
            let again = block_on(proof(&NativeSigner, &key, "GET", url, None, None, NOW)).unwrap();
            let (_, again) = open_proof(&again);
            assert_ne!(again["jti"], claims["jti"], "a fresh jti per proof");
            assert!(again.get("nonce").is_none() && again.get("ath").is_none());
        }
        // RFC 9449 section 7.1's example: ath of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
        assert_eq!(ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
    }

    #[test]
    fn nonce_challenges_are_recognised_only_as_rfc_9449_writes_them() {
        fn response(status: u16, body: &str, headers: &[(&'static str, &str)]) -> http::Response<Vec<u8>> {
            let mut r = http::Response::new(body.as_bytes().to_vec());
            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
            for (k, v) in headers {
                r.headers_mut().append(*k, http::HeaderValue::from_str(v).unwrap());
            }
            r
        }
        let nonce = ("dpop-nonce", "n");
        assert_eq!(nonce_challenge(&response(400, r#"{"error":"use_dpop_nonce"}"#, &[nonce])).as_deref(), Some("n"));
        let www = ("www-authenticate", r#"DPoP error="use_dpop_nonce", error_description="fresh nonce""#);
        assert_eq!(nonce_challenge(&response(401, "", &[nonce, www])).as_deref(), Some("n"));
        assert_eq!(nonce_challenge(&response(400, r#"{"error":"invalid_grant"}"#, &[nonce])), None);
        assert_eq!(nonce_challenge(&response(400, r#"{"error":"use_dpop_nonce"}"#, &[])), None);
        assert_eq!(
            nonce_challenge(&response(401, "", &[nonce, ("www-authenticate", "Bearer error=\"invalid_token\"")])),
            None
        );
        assert_eq!(nonce_challenge(&response(500, r#"{"error":"use_dpop_nonce"}"#, &[nonce])), None);
    }
}
