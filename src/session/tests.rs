use super::cookie_store::{self, is_session_cookie, CHUNK_SIZE};
use super::store::Loaded;
use super::*;
use crate::testutil::{config_with, KEY};
use crate::web::cookies::parse_cookie_header;

const NOW: u64 = 1_800_000_000;

fn session(id_token_len: usize) -> Session {
    Session {
        access_token: "at-secret-value".into(),
        access_expires_at: NOW + 300,
        refresh_token: Some("rt-secret-value".into()),
        id_token: format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.{}", "s".repeat(id_token_len)),
        sub: "u".into(),
        sid: Some("sid-1".into()),
        created_at: NOW,
        expires_at: NOW + 3600,
        last_seen: NOW,
        login: None,
        generation: 0,
        dpop: false,
        route_tokens: Vec::new(),
    }
}

/// Turn `Set-Cookie` lines into the `Cookie` header a browser would send next.
fn browser_after(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn small_session_round_trips_in_one_cookie() {
    let config = config_with(&[]);
    let s = session(10);
    let set = cookie_store::store(&config, &s, &[], NOW).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set[0].starts_with("__Host-bff-session=k1."));
    assert!(set[0].contains("Max-Age=3600; Secure; HttpOnly; SameSite=Strict"));
    assert!(!set[0].contains("at-secret-value") && !set[0].contains("rt-secret-value"));
    let header = browser_after(&set);
    let cookies = parse_cookie_header([header.as_str()].into_iter());
    match cookie_store::load(&config, &cookies) {
        Loaded::Valid { session, handle } => {
            assert_eq!(*session, s);
            assert!(!handle.needs_reseal());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn large_session_is_chunked_and_old_layout_cleared() {
    let config = config_with(&[]);
    let s = session(9000);
    // The browser previously held the single cookie and a stale fourth chunk.
    let present = ["__Host-bff-session", "__Host-bff-session.9", "other"];
    let set = cookie_store::store(&config, &s, &present, NOW).unwrap();
    let names: Vec<&str> = set.iter().map(|c| c.split('=').next().unwrap()).collect();
    let chunks = set.len() - 2;
    assert!(chunks >= 3, "a 9 KB ID token needs several chunks");
    for (i, name) in names[..chunks].iter().enumerate() {
        assert_eq!(*name, format!("__Host-bff-session.{}", i + 1));
    }
    assert_eq!(&names[chunks..], &["__Host-bff-session", "__Host-bff-session.9"]);
    for c in &set[..chunks] {
        let value = c.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(value.len() <= CHUNK_SIZE);
        assert!(c.len() < 4096, "cookie line under the browser limit");
    }
    assert!(set[chunks].contains("Max-Age=0") && set[chunks + 1].contains("Max-Age=0"));
    assert!(!set.iter().any(|c| c.starts_with("other")), "foreign cookies untouched");
    let header = browser_after(&set);
    let cookies = parse_cookie_header([header.as_str()].into_iter());
    assert!(matches!(cookie_store::load(&config, &cookies), Loaded::Valid { .. }));

    // Shrinking back to one cookie clears the chunks.
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let set = cookie_store::store(&config, &session(10), &present, NOW).unwrap();
    assert_eq!(set.len(), 1 + chunks);
    assert!(set[1..].iter().all(|c| c.contains("Max-Age=0")));
}

#[test]
fn chunks_out_of_order_or_missing_do_not_open() {
    let config = config_with(&[]);
    let set = cookie_store::store(&config, &session(9000), &[], NOW).unwrap();
    let values: Vec<String> = set.iter().map(|c| c.split(';').next().unwrap().to_string()).collect();
    let swapped = format!("{}; {}", values[0].replace(".1=", ".2="), values[1].replace(".2=", ".1="));
    let missing = values[0].clone();
    for header in [swapped, missing] {
        let cookies = parse_cookie_header([header.as_str()].into_iter());
        assert!(matches!(cookie_store::load(&config, &cookies), Loaded::Invalid), "{header:.40}");
    }
}

#[test]
fn oversized_session_is_an_error_not_a_broken_cookie() {
    let config = config_with(&[]);
    assert!(cookie_store::store(&config, &session(60_000), &[], NOW).is_err());
}

#[test]
fn key_rotation_opens_old_and_reports_stale() {
    let old = config_with(&[]);
    let set = cookie_store::store(&old, &session(10), &[], NOW).unwrap();
    let header = browser_after(&set);
    let cookies = parse_cookie_header([header.as_str()].into_iter());
    let rotated = config_with(&[("COOKIE_KEYS", &format!("k2:{} k1:{KEY}", "A".repeat(43)))]);
    match cookie_store::load(&rotated, &cookies) {
        Loaded::Valid { handle, .. } => assert!(handle.needs_reseal()),
        other => panic!("{other:?}"),
    }
    let removed = config_with(&[("COOKIE_KEYS", &format!("k2:{}", "A".repeat(43)))]);
    assert!(matches!(cookie_store::load(&removed, &cookies), Loaded::Invalid));
}

#[test]
fn session_cookie_names() {
    let config = config_with(&[]);
    for yes in ["__Host-bff-session", "__Host-bff-session.1", "__Host-bff-session.10"] {
        assert!(is_session_cookie(&config, yes), "{yes}");
    }
    for no in [
        "__Host-bff-session.0",
        "__Host-bff-session.11",
        "__Host-bff-session.x",
        "__Host-bff-login",
        "__Host-bff-sessionx",
        "__Host-bff-session.",
        "__Host-bff-session.+1",
        "__Host-bff-session.01x",
        "__Host-bff-session.01",
        "__Host-bff-session.001",
        "__Host-bff-session.010",
        "__Host-bff-session.00000000000000000001",
        "__Host-bff-session-1",
        "session",
    ] {
        assert!(!is_session_cookie(&config, no), "{no}");
    }
    let clear = cookie_store::clear(&config, &["__Host-bff-session.2", "x"]);
    assert_eq!(clear.len(), 2);
}

/// The padding-cookie attack (issue 24): with a prefix lacking `__Host-`, a sibling
/// subdomain sets chunk-like cookies and its own session cookie before the user's. Neither
/// padding nor a full set of real chunk names hides the second session cookie.
#[test]
fn padding_cookies_do_not_hide_a_second_session_cookie() {
    let config = config_with(&[("COOKIE_PREFIX", "bff")]);
    let set = cookie_store::store(&config, &session(10), &[], NOW).unwrap();
    let header = browser_after(&set);
    let real = parse_cookie_header([header.as_str()].into_iter());
    assert!(matches!(cookie_store::load(&config, &real), Loaded::Valid { .. }));
    let padding: Vec<String> = (1..=11).map(|zeros| format!("bff-session.{}1", "0".repeat(zeros))).collect();
    let chunks: Vec<String> = (1..=10).map(|n| format!("bff-session.{n}")).collect();
    for fillers in [&padding, &chunks] {
        let mut cookies: Vec<(&str, &str)> = fillers.iter().map(|n| (n.as_str(), "x")).collect();
        cookies.push(("bff-session", "attacker-session"));
        cookies.extend(real.iter().copied());
        assert!(cookie_store::has_duplicates(&config, &cookies), "{fillers:?}");
        assert!(matches!(cookie_store::load(&config, &cookies), Loaded::Invalid), "{fillers:?}");
    }
    // Padding alone is no session cookie: the real session still opens beside it.
    let mut cookies: Vec<(&str, &str)> = padding.iter().map(|n| (n.as_str(), "x")).collect();
    cookies.extend(real.iter().copied());
    assert!(matches!(cookie_store::load(&config, &cookies), Loaded::Valid { .. }));
}

#[test]
fn activity_rules() {
    let s = session(1);
    assert!(s.check_active(NOW, 0).is_ok());
    assert_eq!(s.check_active(NOW + 3600, 0), Err(Inactive::MaxAge));
    assert_eq!(s.check_active(NOW + 601, 600), Err(Inactive::Idle));
    assert!(s.check_active(NOW + 599, 600).is_ok());
    let mut no_refresh = session(1);
    no_refresh.refresh_token = None;
    assert!(no_refresh.check_active(NOW + 299, 0).is_ok());
    assert_eq!(no_refresh.check_active(NOW + 300, 0), Err(Inactive::AccessExpiredNoRefresh));
}

#[test]
fn access_token_expiry_sources() {
    assert_eq!(access_token_expiry("opaque", Some(60), NOW), NOW + 60);
    assert_eq!(access_token_expiry("opaque", None, NOW), NOW + DEFAULT_ACCESS_TOKEN_LIFETIME);
    let jwt = format!("eyJhbGciOiJub25lIn0.{}.sig", crate::crypto::b64url(br#"{"exp":1800000123}"#));
    assert_eq!(access_token_expiry(&jwt, None, NOW), 1_800_000_123);
}

#[test]
fn user_claims_hide_private_members_and_debug_hides_tokens() {
    let mut s = session(1);
    s.id_token =
        format!("h.{}.s", crate::crypto::b64url(br#"{"sub":"u","nonce":"n","at_hash":"a","c_hash":"c","name":"N"}"#));
    let claims = s.user_claims();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims["name"], "N");
    let debug = format!("{s:?}");
    assert!(!debug.contains("at-secret-value") && !debug.contains("rt-secret-value"));
}

/// The KV session id opens the session like the cookie: `Debug` of a handle hides it.
#[test]
fn debug_of_a_handle_hides_the_session_id() {
    let handle = super::store::Handle { kv_id: Some([0xab; 32]), stale_key: true };
    let shown = format!("{handle:?}");
    assert!(shown.contains("[redacted]") && shown.contains("stale_key: true"), "{shown}");
    assert!(!shown.contains("171"), "no byte of the id: {shown}");
}

/// A session of typical size (a 1.2 KB login access token and a 1.2 KB ID token) with
/// `count` route tokens of `token_len` bytes each.
fn with_route_tokens(count: usize, token_len: usize) -> Session {
    let jwt = |len: usize| format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "p".repeat(len.saturating_sub(24)));
    Session {
        access_token: jwt(1_200),
        id_token: jwt(1_200),
        refresh_token: Some("r".repeat(64)),
        route_tokens: (0..count)
            .map(|i| RouteTokenEntry {
                key: format!("{i:016}"),
                access_token: jwt(token_len),
                expires_at: NOW + 3600,
                dpop: false,
            })
            .collect(),
        ..session(0)
    }
}

/// The figures of docs/sessions.md ("Route tokens and the cookie limit"): how many route
/// tokens fit beside a typical login in the 10 cookies of cookie mode.
#[test]
fn how_many_route_tokens_fit_in_cookies() {
    let config = config_with(&[]);
    let most = |token_len: usize| {
        (0..100).take_while(|&n| cookie_store::fits(&config, &with_route_tokens(n, token_len))).last()
    };
    // 1 KB (a compact JWT), 2 KB (Entra ID, many claims) and 4 KB tokens.
    assert_eq!(most(1_000), Some(24));
    assert_eq!(most(2_000), Some(12));
    assert_eq!(most(4_000), Some(6));
    // What fits is stored, in 10 cookies at most; one more token is refused by `fits`.
    let set = cookie_store::store(&config, &with_route_tokens(24, 1_000), &[], NOW).unwrap();
    assert!(set.len() <= cookie_store::MAX_CHUNKS, "{}", set.len());
    assert!(cookie_store::store(&config, &with_route_tokens(25, 1_000), &[], NOW).is_err());
}

/// Sessions written before v3 (no `rtk`) still open, and a session without route tokens
/// is written as before (an older release can open it after a rollback).
#[test]
fn sessions_without_route_tokens_read_and_write_as_before() {
    let v2 = r#"{"at":"a","ate":1800000300,"rt":"r","it":"i","sub":"u","ct":1800000000,"exp":1800003600,"ls":1800000000,"lid":"l","g":2}"#;
    let session: Session = serde_json::from_str(v2).unwrap();
    assert!(session.route_tokens.is_empty());
    assert_eq!(session.generation, 2);
    assert!(!serde_json::to_string(&session).unwrap().contains("rtk"));
    let with = Session {
        route_tokens: vec![RouteTokenEntry { key: "k".into(), access_token: "t".into(), expires_at: NOW, dpop: false }],
        ..session
    };
    let text = serde_json::to_string(&with).unwrap();
    assert!(text.contains(r#""rtk":[{"k":"k","at":"t","ate":1800000000}]"#), "{text}");
    assert_eq!(serde_json::from_str::<Session>(&text).unwrap().route_tokens, with.route_tokens);
}
