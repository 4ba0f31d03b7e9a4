//! The Worker's [`Signer`]: the runtime's WebCrypto (`glue.js` `signJws`), constant-time
//! native code for every algorithm, RSA included.

use super::js;
use crate::crypto::signing::{PrivateKey, SignError, Signer};
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
