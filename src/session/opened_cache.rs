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
    /// What it opened to, with its answer memo.
    opened: OpenedSession,
}

/// A session opened from a cookie, shared with the isolate's memory of that cookie
/// (cheap to clone: two reference counts).
#[derive(Clone)]
pub struct OpenedSession {
    /// What the cookie opened to.
    pub session: Rc<Session>,
    /// The body of the `/session` answer for this session, made the first time it is
    /// asked for (it depends on the session alone).
    session_answer: Rc<OnceCell<Rc<[u8]>>>,
}

impl OpenedSession {
    /// A freshly opened session, with no answer made yet.
    pub fn new(session: Session) -> Self {
        Self { session: Rc::new(session), session_answer: Rc::default() }
    }

    /// The `/session` answer body, made by `make` the first time it is asked for (for a
    /// remembered cookie, the first time in the isolate).
    pub fn session_answer(&self, make: impl FnOnce(&Session) -> Vec<u8>) -> Rc<[u8]> {
        self.session_answer.get_or_init(|| make(&self.session).into()).clone()
    }
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

    /// The session previously opened from exactly `sealed` (one hash and one
    /// constant-time comparison of the whole text).
    pub fn get(&self, sealed: &str) -> Option<OpenedSession> {
        let entries = self.entries.borrow();
        let entry = entries.get(&self.key(sealed))?;
        // A sealed cookie is a bearer secret: compare in constant time.
        crate::crypto::ct_eq(entry.sealed.as_bytes(), sealed.as_bytes()).then(|| entry.opened.clone())
    }

    /// Remember that `sealed` opened to `opened`.
    pub fn put(&self, sealed: String, opened: OpenedSession) {
        if sealed.len() > MAX_SEALED {
            return;
        }
        let key = self.key(&sealed);
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, Remembered { sealed, opened });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(sub: &str) -> OpenedSession {
        OpenedSession::new(Session {
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
            route_tokens: Vec::new(),
        })
    }

    #[test]
    fn finds_only_the_exact_text() {
        let cache = OpenedCache::default();
        let tail = "T".repeat(HASHED_TAIL);
        cache.put(format!("k1.aaaa{tail}"), session("a"));
        assert_eq!(cache.get(&format!("k1.aaaa{tail}")).map(|s| s.session.sub.clone()), Some("a".into()));
        // Same hashed tail, different text: a miss, never the other session.
        assert!(cache.get(&format!("k1.bbbb{tail}")).is_none());
        assert!(cache.get("k1.aaaa").is_none());
        assert!(cache.get("").is_none());
        // The newer of two texts with one tail replaces the older.
        cache.put(format!("k1.bbbb{tail}"), session("b"));
        assert_eq!(cache.get(&format!("k1.bbbb{tail}")).map(|s| s.session.sub.clone()), Some("b".into()));
        assert!(cache.get(&format!("k1.aaaa{tail}")).is_none());
    }

    #[test]
    fn remembers_the_session_answer_per_exact_text() {
        let cache = OpenedCache::default();
        let tail = "T".repeat(HASHED_TAIL);
        cache.put(format!("k1.aaaa{tail}"), session("a"));
        let found = cache.get(&format!("k1.aaaa{tail}")).unwrap();
        assert_eq!(&*found.session_answer(|s| s.sub.clone().into_bytes()), b"a");
        // Made once: a later lookup gets the remembered body, not `make`'s.
        let again = cache.get(&format!("k1.aaaa{tail}")).unwrap();
        assert_eq!(&*again.session_answer(|_| b"other".to_vec()), b"a");
        // A new session for a text starts without an answer.
        cache.put(format!("k1.aaaa{tail}"), session("c"));
        let renewed = cache.get(&format!("k1.aaaa{tail}")).unwrap();
        assert_eq!(&*renewed.session_answer(|s| s.sub.clone().into_bytes()), b"c");
        // A session that is not remembered makes its answer once too.
        let alone = session("d");
        assert_eq!(&*alone.session_answer(|s| s.sub.clone().into_bytes()), b"d");
        assert_eq!(&*alone.session_answer(|_| b"other".to_vec()), b"d");
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
