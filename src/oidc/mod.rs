//! OpenID Connect relying-party rules: discovery, JWKS, JWS verification, ID token
//! validation, the authorization request and the token exchange; DPoP proofs; the logout URL. It may use
//! `session`, `router`, `config`, `coalesce`, `crypto`, `error` and `web`; never the
//! lifecycle, the proxy, the agent or the runtime.

pub mod authorize;
pub mod discovery;
pub mod dpop;
pub mod id_token;
pub mod jwk;
pub mod jws;
pub mod logout;
pub mod oauth_error;
pub mod provider;
pub mod tenant;
pub mod token;

#[cfg(test)]
mod tests;
