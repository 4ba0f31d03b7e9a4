//! Cookie mode: the whole [`Session`] sealed into `{prefix}-session`, cut into
//! `{prefix}-session.1`, `.2`, … when the sealed text passes [`CHUNK_SIZE`] bytes.
//! Every write also clears the session cookies it no longer uses.

use super::deny_list::is_denied;
use super::kv::KvBackend;
use super::opened_cache::{OpenedCache, OpenedSession};
use super::store::{Handle, Loaded, SessionStore};
use super::Session;
use crate::config::Config;
use crate::crypto::{open, seal, Purpose};
use crate::error::BffError;
use crate::web::client::LocalFuture;
use crate::web::cookies::{clear_cookie, set_cookie, SameSite};
use std::rc::Rc;

/// Largest sealed text in one cookie (docs/api.md section 7).
pub const CHUNK_SIZE: usize = 3800;
/// Most chunks read or written (about 38 KB; larger sessions need `SESSION_STORE=kv`).
pub const MAX_CHUNKS: usize = 10;

/// Whether `name` is one of edge-bff's session cookies: the main one, or a chunk named
/// exactly as edge-bff names them (`.1` to `.10`: no sign, no leading zero), so that no
/// other spelling of a chunk's number counts as one.
pub fn is_session_cookie(config: &Config, name: &str) -> bool {
    match config.after_session_cookie_name(name) {
        Some("") => true,
        Some(rest) => rest.strip_prefix('.').is_some_and(is_chunk_number),
        None => false,
    }
}

/// Whether the request's `cookies` hold any of edge-bff's session cookies
/// ([`is_session_cookie`]); without one there is no session to open.
pub fn has_session_cookie(config: &Config, cookies: &[(&str, &str)]) -> bool {
    cookies.iter().any(|(name, _)| is_session_cookie(config, name))
}

/// `1` to [`MAX_CHUNKS`] in edge-bff's own spelling.
fn is_chunk_number(n: &str) -> bool {
    !n.starts_with('0')
        && n.bytes().all(|b| b.is_ascii_digit())
        && n.parse::<usize>().is_ok_and(|n| (1..=MAX_CHUNKS).contains(&n))
}

/// Whether the request holds two cookies of one session-cookie name (the main one or a
/// chunk): a tossed cookie beside edge-bff's, so no session (docs/security.md group 12). Every
/// cookie of the request is compared, however many there are.
pub fn has_duplicates(config: &Config, cookies: &[(&str, &str)]) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    cookies.iter().map(|(n, _)| *n).filter(|n| is_session_cookie(config, n)).any(|name| {
        if seen.contains(&name) {
            return true;
        }
        seen.push(name);
        false
    })
}

/// The sealed session text the cookies carry: the main cookie's value, or its chunks
/// joined in order (empty when there is none).
pub fn sealed_text<'a>(config: &Config, cookies: &[(&str, &'a str)]) -> std::borrow::Cow<'a, str> {
    let base = config.session_cookie_name();
    if let Some((_, v)) = cookies.iter().find(|(n, v)| *n == base && !v.is_empty()) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut joined = String::new();
    for i in 1..=MAX_CHUNKS {
        let name = format!("{base}.{i}");
        match cookies.iter().find(|(n, _)| *n == name) {
            Some((_, v)) if !v.is_empty() => joined.push_str(v),
            _ => break,
        }
    }
    std::borrow::Cow::Owned(joined)
}

/// Read the session from the request's cookies.
pub fn load(config: &Config, cookies: &[(&str, &str)]) -> Loaded {
    load_cached(config, cookies, None)
}

/// [`load`], remembering opened cookies in `cache` (see [`super::opened_cache`]).
pub fn load_cached(config: &Config, cookies: &[(&str, &str)], cache: Option<&OpenedCache>) -> Loaded {
    match open_cached(config, cookies, cache) {
        Opened::Absent => Loaded::Absent,
        Opened::Invalid => Loaded::Invalid,
        // A copy only when the isolate also keeps the session (the caller may change it).
        Opened::Valid { handle, opened } => {
            Loaded::Valid { handle, session: Box::new(Rc::unwrap_or_clone(opened.session)) }
        }
    }
}

/// What [`open_cached`] found: [`Loaded`]'s cookie-mode cases, with the session shared
/// with the isolate's memory of the cookie rather than copied.
pub enum Opened {
    /// No session cookie at all.
    Absent,
    /// Session cookies that do not open (tampered, foreign, removed key, duplicated).
    Invalid,
    /// A session.
    Valid {
        /// How to write it back.
        handle: Handle,
        /// The session and its `/session` answer memo.
        opened: OpenedSession,
    },
}

/// The request's cookie session, looked up once in `cache` (exact sealed text) and
/// opened only when not remembered; an opened cookie is then remembered.
pub fn open_cached(config: &Config, cookies: &[(&str, &str)], cache: Option<&OpenedCache>) -> Opened {
    let base = config.session_cookie_name();
    if !has_session_cookie(config, cookies) {
        return Opened::Absent;
    }
    if has_duplicates(config, cookies) {
        log::warn!("two session cookies of one name (a cookie set for a parent domain?): treated as no session");
        return Opened::Invalid;
    }
    let sealed = sealed_text(config, cookies);
    let handle = Handle {
        kv_id: None,
        stale_key: crate::crypto::seal::kid_of(&sealed) != Some(config.cookie_keys.current().kid()),
    };
    if let Some(opened) = cache.and_then(|c| c.get(&sealed)) {
        return Opened::Valid { handle, opened };
    }
    let Some(plain) = open(&config.cookie_keys, Purpose::Cookie, base.as_bytes(), &sealed) else {
        return Opened::Invalid;
    };
    match serde_json::from_slice::<Session>(&plain) {
        Ok(session) => {
            let opened = OpenedSession::new(session);
            if let Some(cache) = cache {
                cache.put(sealed.into_owned(), opened.clone());
            }
            Opened::Valid { handle, opened }
        }
        Err(_) => Opened::Invalid,
    }
}

/// Whether `session` fits in [`MAX_CHUNKS`] cookies once sealed (about 38 KB of sealed
/// text; docs/sessions.md has the arithmetic). A session that does not is refused before it
/// is written, never cut.
pub fn fits(config: &Config, session: &Session) -> bool {
    sealed_session(config, session).is_ok_and(|sealed| within_limit(&sealed))
}

/// `session` sealed for the session cookie (its name as associated data).
fn sealed_session(config: &Config, session: &Session) -> Result<String, BffError> {
    let json = serde_json::to_vec(session).map_err(|e| BffError::Server(format!("session serialise: {e}")))?;
    seal(&config.cookie_keys, Purpose::Cookie, config.session_cookie_name().as_bytes(), &json)
}

/// Whether sealed session text fits in [`MAX_CHUNKS`] cookies of [`CHUNK_SIZE`].
fn within_limit(sealed: &str) -> bool {
    sealed.len() <= CHUNK_SIZE * MAX_CHUNKS
}

/// `Set-Cookie` values that store `session`, clearing any of `present` (names of the
/// request's cookies) that the new layout does not use.
pub fn store(config: &Config, session: &Session, present: &[&str], now: u64) -> Result<Vec<String>, BffError> {
    let base = config.session_cookie_name();
    let sealed = sealed_session(config, session)?;
    if !within_limit(&sealed) {
        return Err(BffError::Server(format!(
            "sealed session is {} bytes, over the cookie limit; use SESSION_STORE=kv",
            sealed.len()
        )));
    }
    let max_age = session.expires_at.saturating_sub(now);
    let mut written: Vec<String> = Vec::new();
    let mut headers = Vec::new();
    if sealed.len() <= CHUNK_SIZE {
        headers.push(set_cookie(&base, &sealed, max_age, SameSite::Strict));
        written.push(base.clone());
    } else {
        let chunks: Vec<&str> = sealed
            .as_bytes()
            .chunks(CHUNK_SIZE)
            // base64url and the kid are ASCII, so byte chunks are valid UTF-8.
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let name = format!("{base}.{}", i + 1);
            headers.push(set_cookie(&name, chunk, max_age, SameSite::Strict));
            written.push(name);
        }
        if present.contains(&base.as_str()) {
            headers.push(clear_cookie(&base, SameSite::Strict));
        }
    }
    for name in present {
        if is_session_cookie(config, name) && !written.iter().any(|w| w == name) && *name != base {
            headers.push(clear_cookie(name, SameSite::Strict));
        }
    }
    Ok(headers)
}

/// `Set-Cookie` values that delete every session cookie in `present`, and always the
/// main one (so a logout clears it even when the browser sent nothing).
pub fn clear(config: &Config, present: &[&str]) -> Vec<String> {
    let base = config.session_cookie_name();
    let mut headers = vec![clear_cookie(&base, SameSite::Strict)];
    for name in present {
        if is_session_cookie(config, name) && *name != base {
            headers.push(clear_cookie(name, SameSite::Strict));
        }
    }
    headers
}

/// Cookie mode: the whole session sealed into cookies (this module).
pub struct CookieStore<'a> {
    /// Keys and cookie names.
    pub config: &'a Config,
    /// Optional deny-list of back-channel-logged-out `sid`s (when KV is bound).
    pub deny_list: Option<&'a dyn KvBackend>,
    /// Per-isolate memory of opened cookies (saves AES-GCM and JSON per request).
    pub cache: Option<&'a OpenedCache>,
}

impl SessionStore for CookieStore<'_> {
    fn load<'a>(&'a self, cookies: &'a [(&'a str, &'a str)], _now: u64) -> LocalFuture<'a, Loaded> {
        Box::pin(async move {
            let loaded = load_cached(self.config, cookies, self.cache);
            if let (Some(kv), Loaded::Valid { session, .. }) = (self.deny_list, &loaded) {
                if is_denied(kv, session).await {
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
        Box::pin(async move { store(self.config, session, present, now) })
    }

    fn update<'a>(
        &'a self,
        session: &'a Session,
        _handle: &'a Handle,
        present: &'a [&'a str],
        now: u64,
        _leader: bool,
    ) -> LocalFuture<'a, Result<Vec<String>, BffError>> {
        Box::pin(async move { store(self.config, session, present, now) })
    }

    fn delete<'a>(&'a self, _handle: Option<&'a Handle>, present: &'a [&'a str]) -> LocalFuture<'a, Vec<String>> {
        Box::pin(async move { clear(self.config, present) })
    }

    fn reload<'a>(&'a self, _handle: &'a Handle, _now: u64) -> LocalFuture<'a, Option<Session>> {
        Box::pin(async { None })
    }
}
