//! The login cookies: one per login attempt, so that a second login in another tab
//! does not overwrite the first one's state (its callback would fail with
//! `state_mismatch`). Each is named `{prefix}-login.<tag>`, the tag derived from the
//! attempt's `state`, so the callback finds its own cookie by the `state` it carries;
//! the cookie's name is its associated data, so a value moved to another name does not
//! open. At most [`MAX_LOGINS_IN_FLIGHT`] exist at once (each is about 1 KB): a new
//! login clears stale ones, then the oldest.

use crate::config::Config;
use crate::crypto::{b64url, ct_eq, open, seal, Purpose};
use crate::error::BffError;
use crate::oidc::authorize::{LoginState, LOGIN_TTL};
use crate::web::cookies::{clear_cookie, lookup, set_cookie, Lookup, SameSite};
use sha2::{Digest, Sha256};

/// Most login attempts in flight per browser (tabs logging in at once).
pub const MAX_LOGINS_IN_FLIGHT: usize = 3;
/// Characters of the tag: 96 bits of the state's SHA-256, in base64url.
const TAG_LEN: usize = 16;

/// The cookie name of the login attempt with `state`.
pub fn name_for(config: &Config, state: &str) -> String {
    let digest = b64url(&Sha256::digest(state.as_bytes()));
    format!("{}.{}", config.login_cookie_name(), &digest[..TAG_LEN])
}

/// The `Set-Cookie` value that stores `login` in its own cookie.
pub fn store(config: &Config, login: &LoginState) -> Result<String, BffError> {
    let name = name_for(config, &login.state);
    let json = serde_json::to_vec(login).map_err(|e| BffError::Server(format!("login state: {e}")))?;
    let sealed = seal(&config.cookie_keys, Purpose::Cookie, name.as_bytes(), &json)?;
    Ok(set_cookie(&name, &sealed, LOGIN_TTL, SameSite::Lax))
}

/// `Set-Cookie` values that make room for one more login attempt: every login cookie of
/// the request that does not open or is stale is cleared, then the oldest ones until
/// fewer than [`MAX_LOGINS_IN_FLIGHT`] remain.
pub fn make_room(config: &Config, cookies: &[(&str, &str)], now: u64) -> Vec<String> {
    let mut clear = Vec::new();
    let mut live: Vec<(u64, &str)> = Vec::new();
    for (name, value) in cookies.iter().filter(|(n, _)| config.is_login_cookie_name(n)) {
        match open_login(config, name, value) {
            Some(login) if !login.is_stale(now) && !live.iter().any(|(_, n)| n == name) => {
                live.push((login.created_at, name))
            }
            _ => clear.push(*name),
        }
    }
    live.sort_unstable();
    let excess = (live.len() + 1).saturating_sub(MAX_LOGINS_IN_FLIGHT);
    clear.extend(live.iter().take(excess).map(|(_, n)| *n));
    clear.sort_unstable();
    clear.dedup();
    clear.into_iter().map(|n| clear_cookie(n, SameSite::Lax)).collect()
}

/// What the callback finds for its `state`.
#[derive(Debug)]
pub enum Found {
    /// The attempt's login state, and the name of its cookie (cleared by the callback).
    Login(Box<LoginState>, String),
    /// No login cookie at all (`login_expired`).
    NoCookie,
    /// Login cookies, but none for this `state` (`state_mismatch`).
    OtherStates,
    /// The attempt's cookie does not open or is duplicated (`login_expired`).
    Unusable(String, &'static str),
}

/// The login state of the attempt whose callback carries `state`. The attempt's own
/// cookie is looked up by name (the tag says nothing secret: `state` is in the URL), then
/// its state compared with `state` in constant time. A bare `{prefix}-login` cookie of
/// an earlier release is accepted when its state matches.
pub fn find(config: &Config, cookies: &[(&str, &str)], state: &str) -> Found {
    let name = name_for(config, state);
    let (name, value) = match lookup(cookies, &name) {
        Lookup::One(value) => (name, value),
        Lookup::Duplicated => return Found::Unusable(name, "two login cookies of one name"),
        Lookup::Absent => {
            let legacy = config.login_cookie_name();
            match lookup(cookies, &legacy) {
                Lookup::One(value) => (legacy, value),
                _ if cookies.iter().any(|(n, _)| config.is_login_cookie_name(n)) => return Found::OtherStates,
                _ => return Found::NoCookie,
            }
        }
    };
    let Some(login) = open_login(config, &name, value) else {
        return Found::Unusable(name, "login cookie does not open");
    };
    if !ct_eq(state.as_bytes(), login.state.as_bytes()) {
        return Found::OtherStates;
    }
    Found::Login(Box::new(login), name)
}

fn open_login(config: &Config, name: &str, value: &str) -> Option<LoginState> {
    let plain = open(&config.cookie_keys, Purpose::Cookie, name.as_bytes(), value)?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config_with;

    const NOW: u64 = 1_800_000_000;

    fn cookie(config: &Config, login: &LoginState) -> (String, String) {
        let set = store(config, login).unwrap();
        let pair = set.split(';').next().unwrap();
        let (n, v) = pair.split_once('=').unwrap();
        (n.to_string(), v.to_string())
    }

    #[test]
    fn each_attempt_has_its_own_cookie_and_finds_it() {
        let c = config_with(&[]);
        let a = LoginState::new("/a".into(), NOW).unwrap();
        let b = LoginState::new("/b".into(), NOW).unwrap();
        let (na, va) = cookie(&c, &a);
        let (nb, vb) = cookie(&c, &b);
        assert_ne!(na, nb);
        assert!(c.is_login_cookie_name(&na) && na.starts_with("__Host-bff-login."));
        let jar = [(na.as_str(), va.as_str()), (nb.as_str(), vb.as_str())];
        match find(&c, &jar, &a.state) {
            Found::Login(login, name) => assert_eq!((login.return_to.as_str(), name), ("/a", na.clone())),
            other => panic!("{other:?}"),
        }
        match find(&c, &jar, &b.state) {
            Found::Login(login, _) => assert_eq!(login.return_to, "/b"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(find(&c, &jar, "forged"), Found::OtherStates));
        assert!(matches!(find(&c, &[], &a.state), Found::NoCookie));
        // A value moved to another attempt's name does not open.
        assert!(matches!(find(&c, &[(na.as_str(), vb.as_str())], &a.state), Found::Unusable(..)));
        // Two cookies of the attempt's name: neither is used.
        let doubled = [(na.as_str(), va.as_str()), (na.as_str(), va.as_str())];
        assert!(matches!(find(&c, &doubled, &a.state), Found::Unusable(..)));
    }

    #[test]
    fn a_legacy_login_cookie_still_completes_its_login() {
        let c = config_with(&[]);
        let login = LoginState::new("/old".into(), NOW).unwrap();
        let name = c.login_cookie_name();
        let sealed =
            seal(&c.cookie_keys, Purpose::Cookie, name.as_bytes(), &serde_json::to_vec(&login).unwrap()).unwrap();
        assert!(matches!(find(&c, &[(name.as_str(), sealed.as_str())], &login.state), Found::Login(..)));
        assert!(matches!(find(&c, &[(name.as_str(), sealed.as_str())], "other"), Found::OtherStates));
    }

    #[test]
    fn room_is_made_by_clearing_stale_then_oldest() {
        let c = config_with(&[]);
        let logins: Vec<LoginState> =
            (0..4).map(|i| LoginState::new(format!("/{i}"), NOW - 100 + i * 10).unwrap()).collect();
        let cookies: Vec<(String, String)> = logins.iter().map(|l| cookie(&c, l)).collect();
        let jar: Vec<(&str, &str)> = cookies.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        // Two in flight: room for a third without clearing.
        assert!(make_room(&c, &jar[..2], NOW).is_empty());
        // Three in flight: the oldest goes.
        let cleared = make_room(&c, &jar[..3], NOW);
        assert_eq!(cleared.len(), 1);
        assert!(cleared[0].starts_with(&format!("{}=;", cookies[0].0)), "{cleared:?}");
        // Four: the two oldest.
        assert_eq!(make_room(&c, &jar, NOW).len(), 2);
        // Stale and unopenable ones go first, whatever their number.
        let stale = cookie(&c, &LoginState::new("/s".into(), NOW - 700).unwrap());
        let broken = (cookies[0].0.clone(), "k1.garbage".to_string());
        let jar = [(stale.0.as_str(), stale.1.as_str()), (broken.0.as_str(), broken.1.as_str())];
        assert_eq!(make_room(&c, &jar, NOW).len(), 2);
    }
}
