//! One test suite for every [`SessionStore`]: cookies and KV (in memory, with KV's TTL
//! rule) must behave the same wherever the contract says so.

use super::cookie_store::CookieStore;
use super::kv::{MemoryKv, KV_MIN_TTL};
use super::kv_store::{end_sessions, record_key, KvStore};
use super::store::{Loaded, SessionStore};
use super::Session;
use crate::config::Config;
use crate::testutil::{block_on, config_with, KEY};
use crate::web::cookies::parse_cookie_header;

const NOW: u64 = 1_800_000_000;
const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

fn session(id_token_len: usize, sid: &str) -> Session {
    Session {
        access_token: "at-secret".into(),
        access_expires_at: NOW + 300,
        refresh_token: Some("rt-secret".into()),
        id_token: format!("h.{}.s", "x".repeat(id_token_len)),
        sub: "user-1".into(),
        sid: Some(sid.into()),
        created_at: NOW,
        expires_at: NOW + 3600,
        last_seen: NOW,
        login: None,
        generation: 0,
        dpop: false,
        route_tokens: Vec::new(),
    }
}

/// The browser: applies Set-Cookie lines to a jar.
#[derive(Default, Clone)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn apply(&mut self, set_cookies: &[String]) {
        for line in set_cookies {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.0.retain(|(n, _)| n != name);
            if !line.contains("Max-Age=0") {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }
    fn header(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }
}

fn load(store: &dyn SessionStore, jar: &Jar) -> Loaded {
    let header = jar.header();
    let cookies = parse_cookie_header([header.as_str()].into_iter());
    block_on(store.load(&cookies, NOW))
}

/// What differs between the stores.
struct Kind {
    /// The old cookie stops working after delete (KV); cookies cannot be revoked.
    revocable: bool,
}

/// The store under test: KV when `kv` is given, cookies otherwise.
fn make<'a>(config: &'a Config, kv: Option<&'a MemoryKv>) -> Box<dyn SessionStore + 'a> {
    match kv {
        Some(kv) => Box::new(KvStore { config, kv }),
        None => Box::new(CookieStore { config, deny_list: None, cache: None }),
    }
}

fn suite(kv: Option<&MemoryKv>, kind: Kind) {
    let config = config_with(&[]);
    let store = make(&config, kv);

    // Absent without cookies.
    assert!(matches!(load(store.as_ref(), &Jar::default()), Loaded::Absent));

    // create → load round trip.
    let mut jar = Jar::default();
    let s = session(10, "sid-a");
    jar.apply(&block_on(store.create(&s, &[], NOW)).unwrap());
    let Loaded::Valid { session: loaded, handle } = load(store.as_ref(), &jar) else { panic!("created session loads") };
    // KV names the login after its record (a logout whose record is missing still can);
    // cookies keep the login's id as the callback made it.
    let s = Session { login: loaded.login.clone(), ..s };
    assert_eq!(*loaded, s);
    assert!(!handle.needs_reseal());

    // update → load sees the change.
    let mut changed = s.clone();
    changed.access_token = "at-2".into();
    let names = jar.names();
    let present: Vec<&str> = names.iter().map(String::as_str).collect();
    jar.apply(&block_on(store.update(&changed, &handle, &present, NOW, true)).unwrap());
    let Loaded::Valid { session: loaded, handle } = load(store.as_ref(), &jar) else { panic!("updated session loads") };
    assert_eq!(loaded.access_token, "at-2");

    // Tampered cookie → Invalid (never an error).
    let mut tampered = jar.clone();
    for (_, v) in tampered.0.iter_mut() {
        v.insert(5, 'A');
    }
    assert!(matches!(load(store.as_ref(), &tampered), Loaded::Invalid));

    // Two cookies of one name (one tossed in from a parent domain, or a copy of the
    // user's own): no session, whichever comes first.
    let (name, value) = jar.0[0].clone();
    for tossed in [value.clone(), "attacker-value".to_string()] {
        for tossed_first in [true, false] {
            let mut doubled = jar.clone();
            if tossed_first {
                doubled.0.insert(0, (name.clone(), tossed.clone()));
            } else {
                doubled.0.push((name.clone(), tossed.clone()));
            }
            assert!(matches!(load(store.as_ref(), &doubled), Loaded::Invalid), "duplicate {name}");
        }
    }

    // delete → every session cookie cleared; KV also revokes the old cookie.
    let before_delete = jar.clone();
    let names = jar.names();
    let present: Vec<&str> = names.iter().map(String::as_str).collect();
    jar.apply(&block_on(store.delete(Some(&handle), &present)));
    assert!(jar.names().is_empty(), "all session cookies cleared: {:?}", jar.names());
    let old = load(store.as_ref(), &before_delete);
    if kind.revocable {
        assert!(matches!(old, Loaded::Missing { .. }), "old cookie must not work after logout: {old:?}");
    } else {
        assert!(matches!(old, Loaded::Valid { .. }), "a sealed cookie cannot be revoked");
    }

    // Key rotation: an older key still opens and asks for a re-seal; after the update,
    // the old key can go.
    let mut jar = Jar::default();
    jar.apply(&block_on(store.create(&s, &[], NOW)).unwrap());
    let rotated = config_with(&[("COOKIE_KEYS", &format!("k2:{K2} k1:{KEY}"))]);
    let rotated_store = make(&rotated, kv);
    let Loaded::Valid { session: loaded, handle } = load(rotated_store.as_ref(), &jar) else { panic!("old key opens") };
    assert!(handle.needs_reseal());
    let names = jar.names();
    let present: Vec<&str> = names.iter().map(String::as_str).collect();
    jar.apply(&block_on(rotated_store.update(&loaded, &handle, &present, NOW, true)).unwrap());
    let only_new = config_with(&[("COOKIE_KEYS", &format!("k2:{K2}"))]);
    let new_store = make(&only_new, kv);
    assert!(matches!(load(new_store.as_ref(), &jar), Loaded::Valid { .. }), "re-sealed under the new key");

    // A 6 KB ID token works.
    let big = session(6000, "sid-big");
    let mut jar = Jar::default();
    jar.apply(&block_on(store.create(&big, &[], NOW)).unwrap());
    let Loaded::Valid { session: loaded, .. } = load(store.as_ref(), &jar) else { panic!("big session loads") };
    assert_eq!(loaded.id_token.len(), big.id_token.len());
    // A duplicated chunk (cookie mode) is no session either.
    if let Some((chunk, value)) = jar.0.iter().find(|(n, _)| n.ends_with(".2")).cloned() {
        let mut doubled = jar.clone();
        doubled.0.insert(0, (chunk, value));
        assert!(matches!(load(store.as_ref(), &doubled), Loaded::Invalid), "duplicate chunk");
    }
}

#[test]
fn cookie_store_passes_the_suite() {
    suite(None, Kind { revocable: false });
}

#[test]
fn kv_store_passes_the_suite() {
    let kv = MemoryKv::default();
    kv.now.set(NOW);
    suite(Some(&kv), Kind { revocable: true });
}

#[test]
fn kv_cookie_stays_small_and_records_expire() {
    let config = config_with(&[]);
    let kv = MemoryKv::default();
    kv.now.set(NOW);
    let store = KvStore { config: &config, kv: &kv };
    let set = block_on(store.create(&session(6000, "sid-1"), &[], NOW)).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set[0].len() < 200, "KV cookie is small: {} bytes", set[0].len());
    assert!(!set[0].contains("at-secret"));
    let mut jar = Jar::default();
    jar.apply(&set);
    // The record carries the remaining lifetime as TTL; after it, not logged in.
    kv.now.set(NOW + 3601);
    assert!(matches!(load(&store, &jar), Loaded::Missing { .. }));
    // TTL never under KV's minimum.
    kv.now.set(NOW);
    let mut short = session(1, "sid-2");
    short.expires_at = NOW + 5;
    block_on(store.create(&short, &[], NOW)).unwrap();
    let entries = kv.entries.borrow();
    assert!(entries.values().all(|(_, exp)| *exp >= NOW + KV_MIN_TTL));
}

#[test]
fn kv_writes_only_when_leading() {
    let config = config_with(&[]);
    let kv = MemoryKv::default();
    kv.now.set(NOW);
    let store = KvStore { config: &config, kv: &kv };
    let mut jar = Jar::default();
    jar.apply(&block_on(store.create(&session(1, "s"), &[], NOW)).unwrap());
    let Loaded::Valid { session: s, handle } = load(&store, &jar) else { panic!() };
    let writes = kv.writes.borrow().len();
    block_on(store.update(&s, &handle, &[], NOW, false)).unwrap();
    assert_eq!(kv.writes.borrow().len(), writes, "a follower of a coalesced refresh writes nothing");
    block_on(store.update(&s, &handle, &[], NOW, true)).unwrap();
    assert_eq!(kv.writes.borrow().len(), writes + 1);
    let key = record_key(&handle.kv_id.unwrap());
    assert!(kv.entries.borrow().contains_key(&key));
}

#[test]
fn back_channel_ends_sessions_by_sid_or_by_sub() {
    let config = config_with(&[]);
    let kv = MemoryKv::default();
    kv.now.set(NOW);
    let store = KvStore { config: &config, kv: &kv };
    let mut jars = Vec::new();
    for sid in ["sid-1", "sid-1", "sid-2"] {
        let mut jar = Jar::default();
        jar.apply(&block_on(store.create(&session(1, sid), &[], NOW)).unwrap());
        jars.push(jar);
    }
    let ended = block_on(end_sessions(&kv, Some("sid-1"), Some("user-1"))).unwrap();
    assert_eq!(ended.len(), 2);
    // The logins ended are the coordinator names of those sessions.
    let Loaded::Valid { session: third, .. } = load(&store, &jars[2]) else { panic!("third session loads") };
    assert!(third.login.as_deref().is_some_and(|l| l.starts_with("kv-")));
    assert!(!ended.contains(third.login.as_ref().unwrap()));
    assert!(matches!(load(&store, &jars[0]), Loaded::Missing { .. }));
    assert!(matches!(load(&store, &jars[1]), Loaded::Missing { .. }));
    assert!(matches!(load(&store, &jars[2]), Loaded::Valid { .. }), "another sid survives");
    // By sub: every session of the user, whatever the index still names.
    assert!(block_on(end_sessions(&kv, None, Some("user-1"))).unwrap().contains(third.login.as_ref().unwrap()));
    assert!(matches!(load(&store, &jars[2]), Loaded::Missing { .. }));
    assert!(block_on(end_sessions(&kv, None, None)).unwrap().is_empty());
}

#[test]
fn cookie_mode_deny_list() {
    let config = config_with(&[]);
    let kv = MemoryKv::default();
    kv.now.set(NOW);
    let store = CookieStore { config: &config, deny_list: Some(&kv), cache: None };
    let mut jar = Jar::default();
    jar.apply(&block_on(store.create(&session(1, "sid-9"), &[], NOW)).unwrap());
    assert!(matches!(load(&store, &jar), Loaded::Valid { .. }));
    // A logout token issued before the login does not end it.
    block_on(super::deny_list::deny(&kv, Some("sid-9"), Some("user-1"), NOW - 1, 3600)).unwrap();
    assert!(matches!(load(&store, &jar), Loaded::Valid { .. }), "created after the logout");
    block_on(super::deny_list::deny(&kv, Some("sid-9"), Some("user-1"), NOW, 3600)).unwrap();
    assert!(matches!(load(&store, &jar), Loaded::Invalid), "sid denied");
    // An older logout token arriving late (or replayed) does not lower the bound.
    block_on(super::deny_list::deny(&kv, Some("sid-9"), Some("user-1"), NOW - 50, 3600)).unwrap();
    assert!(matches!(load(&store, &jar), Loaded::Invalid), "still denied");
    // A later login that gets the same sid is unaffected.
    let mut later = session(1, "sid-9");
    later.created_at = NOW + 5;
    let mut new_jar = Jar::default();
    new_jar.apply(&block_on(store.create(&later, &[], NOW + 5)).unwrap());
    assert!(matches!(load(&store, &new_jar), Loaded::Valid { .. }), "a new login with the same sid");

    // By sub, when the logout token carries no sid.
    let mut jar2 = Jar::default();
    jar2.apply(&block_on(store.create(&session(1, "sid-other"), &[], NOW)).unwrap());
    assert!(matches!(load(&store, &jar2), Loaded::Valid { .. }));
    block_on(super::deny_list::deny(&kv, None, Some("user-1"), NOW + 1, 3600)).unwrap();
    assert!(matches!(load(&store, &jar2), Loaded::Invalid), "sub denied");
    assert!(matches!(load(&store, &new_jar), Loaded::Valid { .. }), "the sub's sessions after iat survive");
    let mut after_sub = session(1, "sid-x");
    after_sub.created_at = NOW + 2;
    let mut jar3 = Jar::default();
    jar3.apply(&block_on(store.create(&after_sub, &[], NOW + 2)).unwrap());
    assert!(matches!(load(&store, &jar3), Loaded::Valid { .. }), "a login after the sub logout");
}

#[test]
fn cookie_store_with_the_opened_cache_answers_the_same() {
    let config = config_with(&[]);
    let cache = super::opened_cache::OpenedCache::default();
    let cached = CookieStore { config: &config, deny_list: None, cache: Some(&cache) };
    let plain = CookieStore { config: &config, deny_list: None, cache: None };
    let mut jar = Jar::default();
    let s = session(10, "sid-c");
    jar.apply(&block_on(cached.create(&s, &[], NOW)).unwrap());
    for _ in 0..3 {
        let (Loaded::Valid { session: a, handle: ha }, Loaded::Valid { session: b, handle: hb }) =
            (load(&cached, &jar), load(&plain, &jar))
        else {
            panic!("both load");
        };
        assert_eq!(a, b);
        assert_eq!(ha, hb);
    }
    assert!(cache.get(&jar.0[0].1).is_some(), "remembered after the first open");
    let mut tampered = jar.clone();
    tampered.0[0].1.insert(5, 'A');
    assert!(matches!(load(&cached, &tampered), Loaded::Invalid), "a different text is opened, not looked up");
    let other_config = config_with(&[("COOKIE_KEYS", &format!("k2:{K2}"))]);
    let other = CookieStore { config: &other_config, deny_list: None, cache: None };
    assert!(matches!(load(&other, &jar), Loaded::Invalid));
}
