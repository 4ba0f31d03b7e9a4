//! Where a session lives between requests: one interface ([`SessionStore`]) with two
//! implementations, sealed cookies ([`CookieStore`]) and Workers KV
//! ([`super::kv_store::KvStore`]). One test suite runs against both (`store_suite`).

use super::cookie_store;
use super::Session;
use crate::config::Config;
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

    /// KV mode: the login (coordinator name) of the session id, known even when its
    /// record is missing.
    pub fn kv_login(&self) -> Option<String> {
        self.kv_id.as_ref().map(super::kv_store::login_of_record)
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

/// Cookie mode: the whole session sealed into cookies ([`cookie_store`]).
pub struct CookieStore<'a> {
    /// Keys and cookie names.
    pub config: &'a Config,
    /// Optional deny-list of back-channel-logged-out `sid`s (when KV is bound).
    pub deny_list: Option<&'a dyn super::kv_store::KvBackend>,
    /// Per-isolate memory of opened cookies (saves AES-GCM and JSON per request).
    pub cache: Option<&'a super::opened_cache::OpenedCache>,
}

impl SessionStore for CookieStore<'_> {
    fn load<'a>(&'a self, cookies: &'a [(&'a str, &'a str)], _now: u64) -> LocalFuture<'a, Loaded> {
        Box::pin(async move {
            let loaded = cookie_store::load_cached(self.config, cookies, self.cache);
            if let (Some(kv), Loaded::Valid { session, .. }) = (self.deny_list, &loaded) {
                if super::kv_store::is_denied(kv, session).await {
                    log::info!("session ended by back-channel logout (deny-list)");
                    return Loaded::Invalid;
                }
            }
            loaded
        })
    }

    fn create<'a>(
        &'a self,
        session: &'a Session,
        present: &'a [&'a str],
        now: u64,
    ) -> LocalFuture<'a, Result<Vec<String>, BffError>> {
        Box::pin(async move { cookie_store::store(self.config, session, present, now) })
    }

    fn update<'a>(
        &'a self,
        session: &'a Session,
        _handle: &'a Handle,
        present: &'a [&'a str],
        now: u64,
        _leader: bool,
    ) -> LocalFuture<'a, Result<Vec<String>, BffError>> {
        Box::pin(async move { cookie_store::store(self.config, session, present, now) })
    }

    fn delete<'a>(&'a self, _handle: Option<&'a Handle>, present: &'a [&'a str]) -> LocalFuture<'a, Vec<String>> {
        Box::pin(async move { cookie_store::clear(self.config, present) })
    }

    fn reload<'a>(&'a self, _handle: &'a Handle, _now: u64) -> LocalFuture<'a, Option<Session>> {
        Box::pin(async { None })
    }
}
