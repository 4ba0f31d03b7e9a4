//! Per-isolate memory of recently opened session cookies: the sealed text → its session.
//!
//! Opening a session cookie (AES-GCM over 1–4 KB plus JSON) is the largest CPU cost of a
//! proxied request in wasm (docs/performance.md). A browser sends the same cookie until
//! the session is rewritten, so the isolate remembers the last [`CAPACITY`] results.
//! Only a request presenting the exact sealed text finds an entry, which is what opening
//! it would have required anyway; the key ring cannot change within an isolate.

use super::Session;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Most remembered cookies; the memory is emptied when full.
pub const CAPACITY: usize = 256;
/// Longer sealed texts (chunked sessions) are not remembered: at most ~2 MB in all.
pub const MAX_SEALED: usize = 8 * 1024;

/// The cache (one per isolate, in `agent::SharedState`).
#[derive(Default)]
pub struct OpenedCache {
    entries: RefCell<HashMap<String, Rc<Session>>>,
}

impl OpenedCache {
    /// The session previously opened from exactly `sealed`.
    pub fn get(&self, sealed: &str) -> Option<Rc<Session>> {
        self.entries.borrow().get(sealed).cloned()
    }

    /// Remember that `sealed` opened to `session`.
    pub fn put(&self, sealed: String, session: Rc<Session>) {
        if sealed.len() > MAX_SEALED {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(sealed, session);
    }
}
