//! The cookie-mode deny-list (docs/api.md section 3, back-channel logout): a sealed cookie
//! cannot be revoked, so a back-channel logout writes a KV entry by `sid` (or `sub`) that
//! every later load of a session of that login reads, from the edge cache, before it
//! opens.

use super::kv::{hash_hex, KvBackend, KvError, KV_MIN_TTL};
use super::Session;

/// Edge cache time of deny-list reads (how long a back-channel logout may take to reach
/// every location in cookie mode).
pub const DENY_LIST_CACHE_TTL: u64 = 60;

fn deny_key(kind: &str, value: &str) -> String {
    format!("deny:{kind}:{}", hash_hex(value.as_bytes()))
}

/// Whether a back-channel logout covers `session` in cookie mode: a deny entry for its
/// `sid` or its `sub` whose logout token was issued at or after the session's login
/// (sessions created after the logout are unaffected). A KV failure counts as "not
/// denied" (logged): the deny-list narrows sessions, it never breaks them.
pub async fn is_denied(kv: &dyn KvBackend, session: &Session) -> bool {
    let sub_key = deny_key("sub", &session.sub);
    let sid_key = session.sid.as_deref().map(|sid| deny_key("sid", sid));
    let sub_read = kv.get(&sub_key, Some(DENY_LIST_CACHE_TTL));
    let (by_sub, by_sid) = match &sid_key {
        Some(key) => {
            let (a, b) = futures_util::future::join(sub_read, kv.get(key, Some(DENY_LIST_CACHE_TTL))).await;
            (a, Some(b))
        }
        None => (sub_read.await, None),
    };
    [Some(by_sub), by_sid].into_iter().flatten().any(|read| match read {
        Ok(Some(value)) => denies(&value, session.created_at),
        Ok(None) => false,
        Err(e) => {
            log::error!("{e} (deny-list read)");
            false
        }
    })
}

/// The `iat` bound of a deny entry's value (`iat:<logout token iat>`); `None` for the
/// entries of edge-bff before v2, which held `1` and denied every session.
fn deny_bound(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.strip_prefix("iat:")?.parse().ok()
}

/// Whether a deny entry's value covers a session created at `created_at`.
fn denies(value: &[u8], created_at: u64) -> bool {
    deny_bound(value).is_none_or(|iat| created_at <= iat)
}

/// Put a back-channel logout on the cookie-mode deny-list for `ttl` seconds
/// (`SESSION_MAX_AGE`): by `sid` when the logout token has one, else by `sub`, covering
/// sessions created up to the token's `iat`.
pub async fn deny(kv: &dyn KvBackend, sid: Option<&str>, sub: Option<&str>, iat: u64, ttl: u64) -> Result<(), KvError> {
    let key = match (sid, sub) {
        (Some(sid), _) => deny_key("sid", sid),
        (None, Some(sub)) => deny_key("sub", sub),
        (None, None) => return Ok(()),
    };
    // A later logout token already recorded keeps its (higher) bound: an older token
    // arriving late, or replayed, never lets sessions in again.
    if let Some(recorded) = kv.get(&key, None).await?.as_deref().and_then(deny_bound) {
        if recorded >= iat {
            return Ok(());
        }
    }
    kv.put(&key, format!("iat:{iat}").into_bytes(), ttl.max(KV_MIN_TTL)).await
}
