//! `COOKIE_KEYS`: the key ring. Each entry is `kid:key` with a 32-byte base64url key;
//! the first entry seals, every entry opens (rotation). Keys are never used directly:
//! HKDF-SHA256 derives one AES-256 key per [`Purpose`], so a cookie can never be opened
//! as a KV record and the other way round.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What a derived key is for (HKDF `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Browser cookies (session, chunks, login).
    Cookie,
    /// KV session records.
    KvRecord,
    /// The coordinator's stored token sets (docs/api.md section 8).
    Coordinator,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::Cookie => b"edge-bff v1 cookie",
            Purpose::KvRecord => b"edge-bff v1 kv-record",
            Purpose::Coordinator => b"edge-bff v1 coordinator",
        }
    }
}

/// Longest accepted key id.
pub const MAX_KID_LEN: usize = 16;

/// One key of the ring with its derived per-purpose keys. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RingKey {
    #[zeroize(skip)]
    kid: String,
    cookie_key: [u8; 32],
    kv_key: [u8; 32],
    coordinator_key: [u8; 32],
}

impl RingKey {
    /// The key id written in front of every sealed value.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The AES-256 key for `purpose`.
    pub fn key(&self, purpose: Purpose) -> &[u8; 32] {
        match purpose {
            Purpose::Cookie => &self.cookie_key,
            Purpose::KvRecord => &self.kv_key,
            Purpose::Coordinator => &self.coordinator_key,
        }
    }
}

/// The ordered set of cookie keys: `keys[0]` seals.
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeyRing").field("kids", &kids).field("keys", &"[redacted]").finish()
    }
}

/// Why `COOKIE_KEYS` was refused. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// No entries at all.
    #[error("no keys")]
    Empty,
    /// Entry `n` (1-based) is not `kid:key`.
    #[error("entry {0} is not of the form kid:key")]
    Malformed(usize),
    /// Entry `n` has a kid that is empty, too long or not `[A-Za-z0-9_-]`.
    #[error("entry {0} has an invalid kid (1-16 characters of A-Z a-z 0-9 _ -)")]
    BadKid(usize),
    /// Entry `n`'s key is not 32 bytes of base64url.
    #[error("entry {0}: key is not 32 bytes of base64url")]
    BadKey(usize),
    /// Two entries share a kid.
    #[error("entry {0} repeats an earlier kid")]
    DuplicateKid(usize),
}

impl KeyRing {
    /// Parse the space-separated `kid:key` list.
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        let mut keys: Vec<RingKey> = Vec::new();
        for (index, entry) in text.split_whitespace().enumerate() {
            let n = index + 1;
            let (kid, key_text) = entry.split_once(':').ok_or(KeyRingError::Malformed(n))?;
            if kid.is_empty()
                || kid.len() > MAX_KID_LEN
                || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(KeyRingError::BadKid(n));
            }
            if keys.iter().any(|k| k.kid == kid) {
                return Err(KeyRingError::DuplicateKid(n));
            }
            let mut raw = super::b64url_decode(key_text.trim_end_matches('=')).ok_or(KeyRingError::BadKey(n))?;
            if raw.len() != 32 {
                raw.zeroize();
                return Err(KeyRingError::BadKey(n));
            }
            keys.push(RingKey {
                kid: kid.to_string(),
                cookie_key: derive(&raw, Purpose::Cookie),
                kv_key: derive(&raw, Purpose::KvRecord),
                coordinator_key: derive(&raw, Purpose::Coordinator),
            });
            raw.zeroize();
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self { keys })
    }

    /// The key that seals new values.
    pub fn current(&self) -> &RingKey {
        &self.keys[0]
    }

    /// The key with id `kid`, if it is in the ring.
    pub fn find(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

fn derive(ikm: &[u8], purpose: Purpose) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"edge-bff"), ikm);
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    hk.expand(purpose.info(), &mut out).unwrap_or_default();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn parses_rotation_list_first_seals() {
        let ring = KeyRing::parse(&format!("new:{K1}  old:{}A", "B".repeat(42))).unwrap();
        assert_eq!(ring.current().kid(), "new");
        assert!(ring.find("old").is_some());
        assert!(ring.find("nope").is_none());
        assert_ne!(ring.current().key(Purpose::Cookie), ring.current().key(Purpose::KvRecord));
    }

    #[test]
    fn refuses_bad_entries_without_echoing_keys() {
        assert_eq!(KeyRing::parse("").unwrap_err(), KeyRingError::Empty);
        assert_eq!(KeyRing::parse(K1).unwrap_err(), KeyRingError::Malformed(1));
        assert_eq!(KeyRing::parse(&format!("a:{K1} b:c2hvcnQ")).unwrap_err(), KeyRingError::BadKey(2));
        assert_eq!(KeyRing::parse(&format!("a.b:{K1}")).unwrap_err(), KeyRingError::BadKid(1));
        assert_eq!(KeyRing::parse(&format!("a:{K1} a:{K1}")).unwrap_err(), KeyRingError::DuplicateKid(2));
        assert_eq!(KeyRing::parse("a:!!!!").unwrap_err(), KeyRingError::BadKey(1));
        let debug = format!("{:?}", KeyRing::parse(&format!("a:{K1}")).unwrap());
        assert!(!debug.contains(K1) && debug.contains("redacted"));
    }

    #[test]
    fn hkdf_known_answer_pins_derivation() {
        // Pins salt and info: changing either would silently log every user out.
        let ring = KeyRing::parse(&format!("k:{K1}")).unwrap();
        let hex: String = ring.current().key(Purpose::Cookie).iter().map(|b| format!("{b:02x}")).collect();
        // Independently computed with Python (hmac + hashlib, RFC 5869).
        assert_eq!(hex, "9535911e6a4785f5a7cbbd413ab51933f9531067a7a39a46c0c15f63c586aa5f");
    }
}
