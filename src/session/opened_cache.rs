//! Per-isolate memory of recently opened session cookies: the sealed text → its session.
//!
//! Opening a session cookie (AES-GCM over 1–4 KB plus JSON) is the largest CPU cost of a
//! proxied request in wasm (docs/performance.md). A browser sends the same cookie until
//! the session is rewritten, so the isolate remembers the last [`CAPACITY`] results.
//! Only a request presenting the exact sealed text finds an entry, which is what opening
//! it would have required anyway; the key ring cannot change within an isolate.

use super::Session;
use std::cell::{OnceCell, RefCell};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::rc::Rc;

/// Most remembered cookies; the memory is emptied when full.
pub const CAPACITY: usize = 256;
/// Longer sealed texts (chunked sessions) are not remembered: at most ~2 MB in all.
pub const MAX_SEALED: usize = 8 * 1024;
/// How much of the end of a sealed text is hashed to find its entry: the end holds the
/// AES-GCM tag, which differs between any two seals, so hashing the whole 1–4 KB text
/// would only cost time. A lookup still compares the whole text.
const HASHED_TAIL: usize = 32;

/// One remembered cookie.
struct Remembered {
    /// The whole sealed text.
    sealed: String,
    /// What it opened to.
    session: Rc<Session>,
    /// The body of the `/session` answer for this session, made the first time it is
    /// asked for (it depends on the session alone).
    session_answer: OnceCell<Rc<[u8]>>,
}

/// The cache (one per isolate, in `agent::SharedState`).
#[derive(Default)]
pub struct OpenedCache {
    /// Hash of the sealed text's tail → the remembered cookie.
    entries: RefCell<HashMap<u64, Remembered>>,
    hasher: RandomState,
}

impl OpenedCache {
    fn key(&self, sealed: &str) -> u64 {
        let bytes = sealed.as_bytes();
        self.hasher.hash_one(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..])
    }

    /// The session previously opened from exactly `sealed`.
    pub fn get(&self, sealed: &str) -> Option<Rc<Session>> {
        self.with_entry(sealed, |entry| entry.session.clone())
    }

    /// The `/session` answer body remembered for exactly `sealed`, made by `make` from
    /// its session the first time; `None` when `sealed` is not remembered.
    pub fn session_answer(&self, sealed: &str, make: impl FnOnce(&Session) -> Vec<u8>) -> Option<Rc<[u8]>> {
        self.with_entry(sealed, |entry| entry.session_answer.get_or_init(|| make(&entry.session).into()).clone())
    }

    fn with_entry<T>(&self, sealed: &str, f: impl FnOnce(&Remembered) -> T) -> Option<T> {
        let entries = self.entries.borrow();
        let entry = entries.get(&self.key(sealed))?;
        // A sealed cookie is a bearer secret: compare in constant time.
        crate::crypto::ct_eq(entry.sealed.as_bytes(), sealed.as_bytes()).then(|| f(entry))
    }

    /// Remember that `sealed` opened to `session`.
    pub fn put(&self, sealed: String, session: Rc<Session>) {
        if sealed.len() > MAX_SEALED {
            return;
        }
        let key = self.key(&sealed);
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, Remembered { sealed, session, session_answer: OnceCell::new() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(sub: &str) -> Rc<Session> {
        Rc::new(Session {
            access_token: "at".into(),
            access_expires_at: 2,
            refresh_token: None,
            id_token: "it".into(),
            sub: sub.into(),
            sid: None,
            created_at: 1,
            expires_at: 3,
            last_seen: 1,
            login: None,
            generation: 0,
            dpop: false,
        })
    }

    #[test]
    fn finds_only_the_exact_text() {
        let cache = OpenedCache::default();
        let tail = "T".repeat(HASHED_TAIL);
        cache.put(format!("k1.aaaa{tail}"), session("a"));
        assert_eq!(cache.get(&format!("k1.aaaa{tail}")).map(|s| s.sub.clone()), Some("a".into()));
        // Same hashed tail, different text: a miss, never the other session.
        assert!(cache.get(&format!("k1.bbbb{tail}")).is_none());
        assert!(cache.get("k1.aaaa").is_none());
        assert!(cache.get("").is_none());
        // The newer of two texts with one tail replaces the older.
        cache.put(format!("k1.bbbb{tail}"), session("b"));
        assert_eq!(cache.get(&format!("k1.bbbb{tail}")).map(|s| s.sub.clone()), Some("b".into()));
        assert!(cache.get(&format!("k1.aaaa{tail}")).is_none());
    }

    #[test]
    fn remembers_the_session_answer_per_exact_text() {
        let cache = OpenedCache::default();
        let tail = "T".repeat(HASHED_TAIL);
        assert!(cache.session_answer("unknown", |_| b"x".to_vec()).is_none());
        cache.put(format!("k1.aaaa{tail}"), session("a"));
        let made = cache.session_answer(&format!("k1.aaaa{tail}"), |s| s.sub.clone().into_bytes()).unwrap();
        assert_eq!(&*made, b"a");
        // Made once: a later call gets the remembered body, not `make`'s.
        let again = cache.session_answer(&format!("k1.aaaa{tail}"), |_| b"other".to_vec()).unwrap();
        assert_eq!(&*again, b"a");
        // Another text with the same tail finds nothing.
        assert!(cache.session_answer(&format!("k1.bbbb{tail}"), |_| b"b".to_vec()).is_none());
        // A new session for a text starts without an answer.
        cache.put(format!("k1.aaaa{tail}"), session("c"));
        assert_eq!(&*cache.session_answer(&format!("k1.aaaa{tail}"), |s| s.sub.clone().into_bytes()).unwrap(), b"c");
    }

    #[test]
    fn bounded() {
        let cache = OpenedCache::default();
        cache.put("x".repeat(MAX_SEALED + 1), session("big"));
        assert!(cache.get(&"x".repeat(MAX_SEALED + 1)).is_none());
        for i in 0..=CAPACITY {
            cache.put(format!("sealed-{i}"), session("s"));
        }
        assert!(cache.entries.borrow().len() <= CAPACITY);
        assert!(cache.get(&format!("sealed-{CAPACITY}")).is_some());
    }
}
