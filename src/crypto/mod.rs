//! Cryptography: the cookie key ring, AES-256-GCM sealing, edge-bff's own signing keys
//! and its DPoP key, public keys and signature checks (`verifying`), the JOSE vocabulary
//! (`jose`), randomness and constant-time comparison. It may use `error` and the HTTP building blocks of `web` only.

pub mod dpop_key;
pub mod jose;
pub mod keys;
pub mod random;
pub mod seal;
pub mod signing;
pub mod verifying;

pub use keys::{KeyRing, KeyRingError, Purpose};
pub use random::{random_bytes, random_token};
pub use seal::{open, seal};

/// Constant-time equality of two byte strings (length is not secret). Every byte is
/// read whatever the differences, eight at a time, and the running difference passes
/// through `black_box` after each word so the optimiser cannot add an early exit.
/// (`subtle`'s byte-at-a-time comparison costs ~8× more on a 1–4 KB sealed cookie.)
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |chunk: &[u8]| u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in a_words.remainder().iter().zip(b_words.remainder()) {
        diff |= u64::from(x ^ y);
    }
    for (x, y) in a_words.zip(b_words) {
        diff = std::hint::black_box(diff | (word(x) ^ word(y)));
    }
    diff == 0
}

/// base64url without padding, the encoding of every sealed value and random token.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url without padding; `None` on any invalid input.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn ct_eq_sees_every_byte_of_every_length() {
        assert!(!ct_eq(b"a", b""));
        for len in [1usize, 7, 8, 9, 16, 33, 1500] {
            let a: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert!(ct_eq(&a, &a.clone()), "{len}");
            for i in 0..len {
                for bit in [1u8, 0x80] {
                    let mut b = a.clone();
                    b[i] ^= bit;
                    assert!(!ct_eq(&a, &b), "len {len}, byte {i}");
                }
            }
            assert!(!ct_eq(&a, &a[..len - 1]), "{len}");
        }
    }
}
