//! Sealed values: `<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>` with AES-256-GCM, a fresh
//! 96-bit random nonce, and caller-chosen associated data (the cookie's name, or the KV
//! key) so a value moved elsewhere does not open (docs/api.md section 7).
//!
//! Opening never says why it failed: unknown kid, bad base64, short input and a failed
//! tag all give `None`, which callers treat as "no value".

use super::keys::{KeyRing, Purpose};
use crate::error::BffError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// Nonce length of AES-GCM.
pub const NONCE_LEN: usize = 12;
/// Tag length of AES-GCM.
pub const TAG_LEN: usize = 16;
/// Longest sealed text `open` looks at (bounds work on hostile input).
pub const MAX_SEALED_LEN: usize = 64 * 1024;

/// Seal `plaintext` under the ring's current key for `purpose`, bound to `aad`.
pub fn seal(ring: &KeyRing, purpose: Purpose, aad: &[u8], plaintext: &[u8]) -> Result<String, BffError> {
    let nonce = super::random_bytes::<NONCE_LEN>()?;
    let key = ring.current();
    Ok(seal_with_nonce(key.kid(), key.key(purpose), &nonce, aad, plaintext))
}

/// Deterministic core of [`seal`], public for known-answer tests and benchmarks.
pub fn seal_with_nonce(kid: &str, key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new(key.into());
    // Encryption only fails for inputs over 64 GiB; sessions are kilobytes.
    let sealed = cipher.encrypt(&Nonce::from(*nonce), Payload { msg: plaintext, aad }).unwrap_or_default();
    let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
    raw.extend_from_slice(nonce);
    raw.extend_from_slice(&sealed);
    format!("{kid}.{}", super::b64url(&raw))
}

/// Open a sealed value with whichever ring key its kid names.
pub fn open(ring: &KeyRing, purpose: Purpose, aad: &[u8], sealed: &str) -> Option<Vec<u8>> {
    if sealed.len() > MAX_SEALED_LEN {
        return None;
    }
    let (kid, body) = sealed.split_once('.')?;
    let key = ring.find(kid)?;
    let raw = super::b64url_decode(body)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let cipher = Aes256Gcm::new(key.key(purpose).into());
    cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad }).ok()
}

/// The kid a sealed value names, without opening it (to detect values sealed under an
/// older key that should be re-sealed).
pub fn kid_of(sealed: &str) -> Option<&str> {
    sealed.split_once('.').map(|(kid, _)| kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    fn ring(spec: &str) -> KeyRing {
        KeyRing::parse(spec).unwrap()
    }

    #[test]
    fn round_trip_and_binding_to_name_and_purpose() {
        let r = ring(&format!("a:{K1}"));
        let s = seal(&r, Purpose::Cookie, b"name", b"hello").unwrap();
        assert!(s.starts_with("a."));
        assert_eq!(open(&r, Purpose::Cookie, b"name", &s).as_deref(), Some(&b"hello"[..]));
        assert_eq!(open(&r, Purpose::Cookie, b"other", &s), None);
        assert_eq!(open(&r, Purpose::KvRecord, b"name", &s), None);
        assert!(!s.contains("hello"));
        assert_ne!(s, seal(&r, Purpose::Cookie, b"name", b"hello").unwrap(), "fresh nonce each time");
    }

    #[test]
    fn rotation_old_key_opens_removed_key_does_not() {
        let old = ring(&format!("old:{K1}"));
        let sealed = seal(&old, Purpose::Cookie, b"n", b"x").unwrap();
        let rotated = ring(&format!("new:{K2} old:{K1}"));
        assert_eq!(open(&rotated, Purpose::Cookie, b"n", &sealed).as_deref(), Some(&b"x"[..]));
        assert_eq!(kid_of(&sealed), Some("old"));
        let removed = ring(&format!("new:{K2}"));
        assert_eq!(open(&removed, Purpose::Cookie, b"n", &sealed), None);
    }

    #[test]
    fn known_answer_pins_wire_format() {
        let r = ring(&format!("k1:{K1}"));
        let key = r.current().key(Purpose::Cookie);
        let sealed = seal_with_nonce("k1", key, &[7u8; 12], b"__Host-bff-session", b"{}");
        // Independently computed with Python (`cryptography` AESGCM over the HKDF key).
        assert_eq!(sealed, "k1.BwcHBwcHBwcHBwcHQo6ne3pjURplmxwNnPii-8nh");
        assert_eq!(open(&r, Purpose::Cookie, b"__Host-bff-session", &sealed).as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn tampering_truncation_and_garbage_give_none() {
        let r = ring(&format!("a:{K1}"));
        let s = seal(&r, Purpose::Cookie, b"n", b"payload").unwrap();
        for i in 2..s.len() {
            let mut bytes = s.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(bytes).unwrap();
            assert_eq!(open(&r, Purpose::Cookie, b"n", &t), None, "flip at {i}");
        }
        for cut in 0..s.len() {
            assert_eq!(open(&r, Purpose::Cookie, b"n", &s[..cut]), None);
        }
        for junk in ["", ".", "a.", "a.!!!", "zz.AAAA", "a..", "\u{0}.\u{0}"] {
            assert_eq!(open(&r, Purpose::Cookie, b"n", junk), None);
        }
        assert_eq!(open(&r, Purpose::Cookie, b"n", &"a".repeat(MAX_SEALED_LEN + 1)), None);
    }

    #[test]
    fn fuzz_open_never_panics_and_never_accepts_mutations() {
        let r = ring(&format!("a:{K1} b:{K2}"));
        let good = seal(&r, Purpose::Cookie, b"n", b"{\"sub\":\"x\"}").unwrap();
        let mut rng = crate::testutil::Rng::new(42);
        for _ in 0..5000 {
            let mutated = rng.mutate(&good);
            if mutated != good {
                // A mutation may only "succeed" by changing base64 padding bits.
                if let Some(plain) = open(&r, Purpose::Cookie, b"n", &mutated) {
                    assert_eq!(plain, b"{\"sub\":\"x\"}");
                }
            }
            let random: String = (0..rng.below(200)).map(|_| (rng.below(95) as u8 + 32) as char).collect();
            assert_eq!(open(&r, Purpose::Cookie, b"n", &random), None);
        }
    }
}
