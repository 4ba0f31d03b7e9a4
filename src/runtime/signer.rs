//! The Worker's [`Signer`] and [`Verifier`]: the runtime's WebCrypto (`glue.js` `signJws`,
//! `verifyJws`), constant-time native code for every algorithm, RSA included, and no
//! signature arithmetic in the module.

use super::js;
use crate::crypto::signing::{PrivateKey, SignError, Signer};
use crate::crypto::verifying::{PublicKey, Signed, Verifier};
use crate::web::client::LocalFuture;
use worker::js_sys;
use worker::wasm_bindgen_futures::JsFuture;

/// Signs with WebCrypto; imported keys are cached per isolate by `glue.js`.
pub struct WebCryptoSigner;

impl Signer for WebCryptoSigner {
    fn sign<'a>(&'a self, key: &'a PrivateKey, input: &'a [u8]) -> LocalFuture<'a, Result<Vec<u8>, SignError>> {
        Box::pin(async move {
            let signed = JsFuture::from(js::sign_jws(key.private_jwk(), key.alg().name(), input))
                .await
                .map_err(|_| SignError(format!("WebCrypto refused key {} ({})", key.kid(), key.alg().name())))?;
            Ok(js_sys::Uint8Array::new(&signed).to_vec())
        })
    }
}

/// Verifies with WebCrypto; imported keys are cached per isolate by `glue.js`.
pub struct WebCryptoVerifier;

impl Verifier for WebCryptoVerifier {
    fn verify<'a>(&'a self, key: &'a PublicKey, signed: Signed<'a>) -> LocalFuture<'a, Option<bool>> {
        Box::pin(async move {
            if !key.fits(signed.alg) {
                return None;
            }
            let call = js::verify_jws(&key.jwk(), signed.alg.name(), signed.message, signed.signature);
            let verdict = JsFuture::from(call).await;
            // A rejection (WebCrypto refused the key) counts as an unusable key, as `null` does.
            verdict.ok().and_then(|v| v.as_bool())
        })
    }
}
