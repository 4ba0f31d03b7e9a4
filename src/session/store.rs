//! Where a session lives between requests: the one interface ([`SessionStore`]) and what
//! it hands back ([`Loaded`], [`Handle`]). Two implementations build on it, sealed cookies
//! ([`super::cookie_store::CookieStore`]) and Workers KV ([`super::kv_store::KvStore`]);
//! one test suite runs against both (`store_suite`). This file imports neither.

use super::Session;
use crate::error::BffError;
use crate::web::client::LocalFuture;

/// What a store remembers about a loaded session to write it back. Its `Debug` hides the
/// KV session id, which opens the session like the cookie does.
#[derive(Clone, PartialEq, Eq)]
pub struct Handle {
    /// KV mode: the random session id in the cookie.
    pub(crate) kv_id: Option<[u8; 32]>,
    /// The cookie was sealed under an older key (re-seal on the next write).
    pub(crate) stale_key: bool,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("kv_id", &self.kv_id.map(|_| "[redacted]"))
            .field("stale_key", &self.stale_key)
            .finish()
    }
}

impl Handle {
    /// Whether the next response should rewrite the cookie even if nothing else changed.
    pub fn needs_reseal(&self) -> bool {
        self.stale_key
    }
}

/// The request's session, as a store found it.
#[derive(Debug)]
pub enum Loaded {
    /// No session cookie at all.
    Absent,
    /// Session cookies that do not open (tampered, foreign, removed key): clear them.
    Invalid,
    /// KV mode: the cookie opens but its record cannot be had: not logged in for this
    /// request, and the cookie is left alone (the record may still arrive).
    Missing {
        /// The session id from the cookie (a logout still deletes the record by it).
        handle: Handle,
        /// Not found, or KV failed.
        why: Missing,
    },
    /// A session.
    Valid {
        /// The session.
        session: Box<Session>,
        /// How to write it back.
        handle: Handle,
    },
}

/// Why a KV record could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No record under the key: expired, deleted, or not yet replicated to this location.
    NotFound,
    /// KV failed, or the record does not open (logged with the detail).
    Unreadable,
}

/// The session store interface. Futures are `!Send` (Workers are single-threaded).
pub trait SessionStore {
    /// Read the session named by the request's cookies.
    fn load<'a>(&'a self, cookies: &'a [(&'a str, &'a str)], now: u64) -> LocalFuture<'a, Loaded>;

    /// Store a new session (after login); `Set-Cookie` values for the response.
    fn create<'a>(
        &'a self,
        session: &'a Session,
        present: &'a [&'a str],
        now: u64,
    ) -> LocalFuture<'a, Result<Vec<String>, BffError>>;

    /// Store a changed session. `leader` is false when another request produced the same
    /// change (a coalesced refresh) and stored it: KV then writes nothing (one write per
    /// change, KV allows one per second per key); cookies are always rewritten.
    fn update<'a>(
        &'a self,
        session: &'a Session,
        handle: &'a Handle,
        present: &'a [&'a str],
        now: u64,
        leader: bool,
    ) -> LocalFuture<'a, Result<Vec<String>, BffError>>;

    /// End the session: delete server-side state (by the handle, also when the record
    /// was missing); `Set-Cookie` values clearing cookies.
    fn delete<'a>(&'a self, handle: Option<&'a Handle>, present: &'a [&'a str]) -> LocalFuture<'a, Vec<String>>;

    /// Read the stored session again (KV: another isolate may have refreshed it).
    fn reload<'a>(&'a self, handle: &'a Handle, now: u64) -> LocalFuture<'a, Option<Session>>;
}
