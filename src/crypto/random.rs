//! Randomness from the platform CSPRNG (`crypto.getRandomValues` in the Worker).

use crate::error::BffError;

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], BffError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| BffError::Server(format!("CSPRNG failed: {e}")))?;
    Ok(bytes)
}

/// 256 random bits as base64url (43 characters): state, nonce, PKCE verifier.
pub fn random_token() -> Result<String, BffError> {
    Ok(super::b64url(&random_bytes::<32>()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_and_fresh() {
        let a = super::random_token().unwrap();
        let b = super::random_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
