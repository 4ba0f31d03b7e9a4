//! The Workers KV operations edge-bff needs, as a trait ([`KvBackend`]) the runtime binds
//! to the `SESSIONS` namespace (in memory in native tests), and how keys are named after
//! values that must not be stored in clear. Used by the KV session store and the
//! cookie-mode deny-list.

use crate::web::client::LocalFuture;
use sha2::{Digest, Sha256};

/// KV's smallest `expirationTtl`.
pub const KV_MIN_TTL: u64 = 60;
/// Why a KV operation failed (detail for the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("KV: {0}")]
pub struct KvError(pub String);

/// The few Workers KV operations edge-bff needs; in-memory in native tests.
pub trait KvBackend {
    /// The value under `key`; `cache_ttl` lets the edge cache it that many seconds.
    fn get<'a>(&'a self, key: &'a str, cache_ttl: Option<u64>) -> LocalFuture<'a, Result<Option<Vec<u8>>, KvError>>;
    /// Store `value` under `key`, expiring after `ttl` seconds (at least 60).
    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: u64) -> LocalFuture<'a, Result<(), KvError>>;
    /// Delete `key` (no error if absent).
    fn delete<'a>(&'a self, key: &'a str) -> LocalFuture<'a, Result<(), KvError>>;
    /// Keys starting with `prefix` (at most 1000).
    fn list<'a>(&'a self, prefix: &'a str) -> LocalFuture<'a, Result<Vec<String>, KvError>>;
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex of SHA-256 of `text`: how edge-bff names KV keys after values it must
/// not store in clear.
pub(crate) fn hash_hex(text: &[u8]) -> String {
    hex(&Sha256::digest(text))
}

/// An in-memory [`KvBackend`] with KV's TTL rule, for native tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryKv {
    /// key → (value, expires at)
    pub entries: std::cell::RefCell<std::collections::BTreeMap<String, (Vec<u8>, u64)>>,
    /// Writes seen, by key.
    pub writes: std::cell::RefCell<Vec<String>>,
    /// The clock used for expiry.
    pub now: std::cell::Cell<u64>,
    /// How many of the next writes fail (KV's one-write-per-second limit, an outage);
    /// `u32::MAX` for all of them.
    pub failing_writes: std::cell::Cell<u32>,
}

#[cfg(test)]
impl KvBackend for MemoryKv {
    fn get<'a>(&'a self, key: &'a str, _cache_ttl: Option<u64>) -> LocalFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        let now = self.now.get();
        let value = self.entries.borrow().get(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone());
        Box::pin(std::future::ready(Ok(value)))
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: u64) -> LocalFuture<'a, Result<(), KvError>> {
        let result = if ttl < KV_MIN_TTL {
            Err(KvError(format!("expirationTtl {ttl} under {KV_MIN_TTL}")))
        } else if self.failing_writes.get() > 0 {
            let left = self.failing_writes.get();
            if left != u32::MAX {
                self.failing_writes.set(left - 1);
            }
            Err(KvError("429 too many writes".into()))
        } else {
            self.entries.borrow_mut().insert(key.to_string(), (value, self.now.get() + ttl));
            self.writes.borrow_mut().push(key.to_string());
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }

    fn delete<'a>(&'a self, key: &'a str) -> LocalFuture<'a, Result<(), KvError>> {
        self.entries.borrow_mut().remove(key);
        Box::pin(std::future::ready(Ok(())))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> LocalFuture<'a, Result<Vec<String>, KvError>> {
        let keys = self.entries.borrow().keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        Box::pin(std::future::ready(Ok(keys)))
    }
}
