//! KV mode (docs/api.md section 7): the cookie holds the sealed raw 32 bytes of a random
//! session id; the record lives under `session:` + hex(SHA-256(id)), sealed with the
//! KV-record key and that KV key as associated data, with an `expirationTtl` of the
//! remaining lifetime (at least KV's minimum of 60 s). Index entries
//! `idx:sid:<hash>:<record hash>` and `idx:sub:<hash>:<record hash>` let back-channel
//! logout find every session of a `sid` or `sub` with a prefix listing.

use super::kv::{hash_hex, KvBackend, KvError, KV_MIN_TTL};
use super::store::{Handle, Loaded, Missing, SessionStore};
use super::{cookie_store, Session};
use crate::config::Config;
use crate::crypto::{open, random_bytes, seal, Purpose};
use crate::error::BffError;
use crate::web::client::LocalFuture;
use crate::web::cookies::{clear_cookie, set_cookie, SameSite};

/// The KV key of the record of session id `id`.
pub fn record_key(id: &[u8; 32]) -> String {
    format!("session:{}", hash_hex(id))
}

fn sid_prefix(sid: &str) -> String {
    format!("idx:sid:{}:", hash_hex(sid.as_bytes()))
}

fn sub_prefix(sub: &str) -> String {
    format!("idx:sub:{}:", hash_hex(sub.as_bytes()))
}

/// The coordinator name of the login of KV session `id` (docs/api.md section 8): derived from
/// the id, so a logout whose record is missing, and a back-channel logout that finds the
/// record through its index, still name the login.
pub fn login_of_record(id: &[u8; 32]) -> String {
    login_of_record_hash(&hash_hex(id))
}

/// The coordinator name of the login of the KV session a request's `handle` names, known
/// even when its record is missing (`None` in cookie mode).
pub fn login_of_handle(handle: &Handle) -> Option<String> {
    handle.kv_id.as_ref().map(login_of_record)
}

fn login_of_record_hash(record_hash: &str) -> String {
    let short: String = record_hash.chars().take(32).collect();
    format!("kv-{short}")
}

/// End every KV session with this `sid` (if given) or else of this `sub`: every record the
/// index names is deleted, also one not visible here yet (KV replicates slowly; a delete
/// of a missing key is harmless). Returns the logins (coordinator names) of them all.
pub async fn end_sessions(kv: &dyn KvBackend, sid: Option<&str>, sub: Option<&str>) -> Result<Vec<String>, KvError> {
    let prefix = match (sid, sub) {
        (Some(sid), _) => sid_prefix(sid),
        (None, Some(sub)) => sub_prefix(sub),
        (None, None) => return Ok(Vec::new()),
    };
    let mut ended = Vec::new();
    for index_key in kv.list(&prefix).await? {
        if let Some(record_hash) = index_key.rsplit(':').next() {
            kv.delete(&format!("session:{record_hash}")).await?;
            ended.push(login_of_record_hash(record_hash));
        }
        kv.delete(&index_key).await?;
    }
    Ok(ended)
}

/// KV mode session store.
pub struct KvStore<'a> {
    /// Keys, names and lifetimes.
    pub config: &'a Config,
    /// The `SESSIONS` namespace.
    pub kv: &'a dyn KvBackend,
}

impl KvStore<'_> {
    fn cookie_name(&self) -> String {
        self.config.session_cookie_name()
    }

    fn open_id(&self, cookies: &[(&str, &str)]) -> Result<Option<([u8; 32], bool)>, ()> {
        let name = self.cookie_name();
        if cookie_store::has_duplicates(self.config, cookies) {
            log::warn!("two session cookies of one name (a cookie set for a parent domain?): treated as no session");
            return Err(());
        }
        let Some((_, value)) = cookies.iter().find(|(n, v)| *n == name && !v.is_empty()) else {
            return if cookie_store::has_session_cookie(self.config, cookies) { Err(()) } else { Ok(None) };
        };
        let plain = open(&self.config.cookie_keys, Purpose::Cookie, name.as_bytes(), value).ok_or(())?;
        let id: [u8; 32] = plain.try_into().map_err(|_| ())?;
        let stale = crate::crypto::seal::kid_of(value) != Some(self.config.cookie_keys.current().kid());
        Ok(Some((id, stale)))
    }

    async fn read(&self, id: &[u8; 32]) -> Result<Option<Session>, KvError> {
        let key = record_key(id);
        let Some(sealed) = self.kv.get(&key, None).await? else {
            return Ok(None);
        };
        let text = String::from_utf8(sealed).map_err(|_| KvError("record is not text".into()))?;
        let plain = open(&self.config.cookie_keys, Purpose::KvRecord, key.as_bytes(), &text)
            .ok_or_else(|| KvError("record does not open (foreign or removed key)".into()))?;
        serde_json::from_slice(&plain).map(Some).map_err(|_| KvError("record is not a session".into()))
    }

    async fn write(&self, id: &[u8; 32], session: &Session, now: u64) -> Result<(), BffError> {
        let key = record_key(id);
        let json = serde_json::to_vec(session).map_err(|e| BffError::Server(format!("session serialise: {e}")))?;
        let sealed = seal(&self.config.cookie_keys, Purpose::KvRecord, key.as_bytes(), &json)?;
        let ttl = session.expires_at.saturating_sub(now).max(KV_MIN_TTL);
        self.kv.put(&key, sealed.into_bytes(), ttl).await.map_err(|e| BffError::Server(e.to_string()))
    }

    fn id_cookie(&self, id: &[u8; 32], session: &Session, now: u64) -> Result<String, BffError> {
        let name = self.cookie_name();
        let sealed = seal(&self.config.cookie_keys, Purpose::Cookie, name.as_bytes(), id)?;
        Ok(set_cookie(&name, &sealed, session.expires_at.saturating_sub(now), SameSite::Strict))
    }
}

impl SessionStore for KvStore<'_> {
    fn load<'a>(&'a self, cookies: &'a [(&'a str, &'a str)], _now: u64) -> LocalFuture<'a, Loaded> {
        Box::pin(async move {
            let (id, stale_key) = match self.open_id(cookies) {
                Ok(None) => return Loaded::Absent,
                Err(()) => return Loaded::Invalid,
                Ok(Some(found)) => found,
            };
            let handle = Handle { kv_id: Some(id), stale_key };
            match self.read(&id).await {
                Ok(Some(session)) => Loaded::Valid { session: Box::new(session), handle },
                Ok(None) => Loaded::Missing { handle, why: Missing::NotFound },
                Err(e) => {
                    log::error!("{e} (session record read)");
                    Loaded::Missing { handle, why: Missing::Unreadable }
                }
            }
        })
    }

    fn create<'a>(
        &'a self,
        session: &'a Session,
        present: &'a [&'a str],
        now: u64,
    ) -> LocalFuture<'a, Result<Vec<String>, BffError>> {
        Box::pin(async move {
            let id = random_bytes::<32>()?;
            let mut session = session.clone();
            session.login = Some(login_of_record(&id));
            let session = &session;
            self.write(&id, session, now).await?;
            let record_hash = hash_hex(&id);
            let ttl = session.expires_at.saturating_sub(now).max(KV_MIN_TTL);
            let mut index = vec![format!("{}{record_hash}", sub_prefix(&session.sub))];
            if let Some(sid) = &session.sid {
                index.push(format!("{}{record_hash}", sid_prefix(sid)));
            }
            for key in index {
                if let Err(e) = self.kv.put(&key, Vec::new(), ttl).await {
                    // The session works without its index; only back-channel logout misses it.
                    log::error!("{e} (index write)");
                }
            }
            let name = self.cookie_name();
            let mut headers = vec![self.id_cookie(&id, session, now)?];
            for old in present.iter().filter(|n| cookie_store::is_session_cookie(self.config, n) && **n != name) {
                headers.push(clear_cookie(old, SameSite::Strict));
            }
            Ok(headers)
        })
    }

    fn update<'a>(
        &'a self,
        session: &'a Session,
        handle: &'a Handle,
        _present: &'a [&'a str],
        now: u64,
        leader: bool,
    ) -> LocalFuture<'a, Result<Vec<String>, BffError>> {
        Box::pin(async move {
            let id = handle.kv_id.ok_or_else(|| BffError::Server("KV update without a session id".into()))?;
            if leader {
                self.write(&id, session, now).await?;
            }
            if handle.stale_key {
                return Ok(vec![self.id_cookie(&id, session, now)?]);
            }
            Ok(Vec::new())
        })
    }

    fn delete<'a>(&'a self, handle: Option<&'a Handle>, present: &'a [&'a str]) -> LocalFuture<'a, Vec<String>> {
        Box::pin(async move {
            if let Some(id) = handle.and_then(|h| h.kv_id) {
                if let Err(e) = self.kv.delete(&record_key(&id)).await {
                    log::error!("{e} (record delete at the end of a session)");
                }
            }
            cookie_store::clear(self.config, present)
        })
    }

    fn reload<'a>(&'a self, handle: &'a Handle, _now: u64) -> LocalFuture<'a, Option<Session>> {
        Box::pin(async move {
            let id = handle.kv_id?;
            self.read(&id).await.ok().flatten()
        })
    }
}
