//! Property and fuzz targets for every parser of outside input (docs/security.md "every parse
//! of outside input total"): generated input (proptest), checked for two things: the
//! parser never panics, and what it accepts keeps the rule it exists for (a confined
//! proxy path never escapes, a tampered sealed value never opens, a `return_to` never
//! leaves the origin, …).
//!
//! `cargo test` runs every target briefly ([`SMOKE_CASES`] cases). `scripts/fuzz.sh`
//! runs each for a fixed time (`FUZZ_SECONDS` per target) in a release build and prints
//! one line per target: `# fuzz <target>: <cases> cases, 0 failures`. A failure stops
//! the run with proptest's minimised input.

use crate::agent::backchannel::validate_logout_claims;
use crate::config::Config;
use crate::crypto::signing::NativeSigner;
use crate::crypto::{open, seal, KeyRing, Purpose};
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::jwk::JwkSet;
use crate::oidc::jws::UntrustedJws;
use crate::oidc::token::{exchange_code, ClientCall};
use crate::proxy::path::confine;
use crate::session::cookie_store;
use crate::session::kv::MemoryKv;
use crate::session::kv_store::KvStore;
use crate::session::store::{Loaded, SessionStore};
use crate::session::Session;
use crate::testutil::{block_on, config_with, discovery_json, session_at, vars_with, FakeHttp, TestKeys, KEY};
use crate::web::cookies::{lookup, parse_cookie_header, Lookup};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngSeed, TestCaseError, TestRunner};
use std::time::{Duration, Instant};

/// Cases per target in a plain `cargo test` run.
const SMOKE_CASES: u32 = 200;
/// Cases per runner between checks of the time budget.
const BATCH: u32 = 500;
const NOW: u64 = 1_800_000_000;

/// Run `test` on values of `strategy`: [`SMOKE_CASES`] cases from a fixed seed (the
/// same every run, so `cargo test` is repeatable), or batches from fresh random seeds
/// until `FUZZ_SECONDS` have passed. Prints the number of cases run.
fn drive<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let budget = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok()).map(Duration::from_secs);
    let started = Instant::now();
    let mut cases: u64 = 0;
    loop {
        let (batch, rng_seed) = match budget {
            Some(_) => (BATCH, RngSeed::Random),
            None => (SMOKE_CASES, RngSeed::Fixed(0xED6E_B0FF)),
        };
        let config = RunnerConfig { cases: batch, failure_persistence: None, rng_seed, ..RunnerConfig::default() };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("fuzz {name}: failed after {cases} cases: {e}");
        }
        cases += u64::from(batch);
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break;
        }
    }
    // On a line of its own: the test harness writes "test … ... " before it.
    println!("\n# fuzz {name}: {cases} cases, 0 failures, {:.1} s", started.elapsed().as_secs_f64());
}

/// `base` with a few byte edits (replace, insert, delete) from a hostile alphabet:
/// inputs near a valid one, where parsers' edge cases are.
fn mutated(base: String) -> impl Strategy<Value = String> {
    const ALPHABET: &[u8] = b"ABCxyz019-_.=%;,\\/\"{}[]: \t\r\n\x00\x7f\xc0\xff";
    prop::collection::vec((any::<prop::sample::Index>(), 0..ALPHABET.len(), 0..3u8), 1..6).prop_map(move |edits| {
        let mut bytes = base.clone().into_bytes();
        for (at, b, op) in edits {
            let b = ALPHABET[b];
            let at = at.index(bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = b,
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Text built from `pieces`, up to `max` of them: structured input that reaches deeper
/// than random characters.
fn from_pieces(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..max).prop_map(|v| v.concat())
}

/// Any text, text from `pieces`, or near-misses of `valid`.
fn input(pieces: &'static [&'static str], valid: String) -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), from_pieces(pieces, 40), mutated(valid)]
}

#[test]
fn cookie_header() {
    const PIECES: &[&str] =
        &["a=1", "; ", ";", "=", "\"", "__Host-bff-session", "=x", " ", "b", "\t", ",", "==", "%3B"];
    drive("cookie_header", input(PIECES, "a=1; __Host-bff-session=k1.abc; b=\"2\"".into()), |header| {
        let cookies = parse_cookie_header([header.as_str()].into_iter());
        prop_assert!(cookies.len() <= 200);
        for (name, value) in &cookies {
            prop_assert!(!name.is_empty() && !name.contains(';') && !value.contains(';'));
            prop_assert_eq!(*name, name.trim());
            let n = cookies.iter().filter(|(m, _)| m == name).count();
            match lookup(&cookies, name) {
                Lookup::One(v) => prop_assert!(n == 1 && v == *value),
                Lookup::Duplicated => prop_assert!(n > 1),
                Lookup::Absent => prop_assert!(false, "a parsed cookie is absent"),
            }
        }
        Ok(())
    });
}

#[test]
fn sealed_values() {
    let ring = KeyRing::parse(&format!("k1:{KEY}")).unwrap();
    let valid = seal(&ring, Purpose::Cookie, b"__Host-bff-session", b"{\"plain\":true}").unwrap();
    const PIECES: &[&str] = &["k1", ".", "AAAA", "____", "-", "=", "k2", "..", "\u{e9}"];
    drive("sealed_values", input(PIECES, valid.clone()), |text| {
        let opened = open(&ring, Purpose::Cookie, b"__Host-bff-session", &text);
        // Only the untouched value opens; a change anywhere is refused.
        prop_assert_eq!(opened.is_some(), text == valid, "{:?}", text);
        prop_assert!(open(&ring, Purpose::KvRecord, b"__Host-bff-session", &text).is_none());
        prop_assert!(open(&ring, Purpose::Cookie, b"__Host-bff-other", &text).is_none());
        Ok(())
    });
}

#[test]
fn session_cookies_and_chunks() {
    let config = config_with(&[]);
    let original = Session { id_token: "i".repeat(6000), ..session_at(NOW) };
    let set = cookie_store::store(&config, &original, &[], NOW).unwrap();
    let chunks: Vec<(String, String)> = set
        .iter()
        .map(|line| {
            let (n, v) = line.split(';').next().unwrap().split_once('=').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    assert!(chunks.len() >= 2, "the fuzzed session is chunked");
    let names: Vec<String> = (0..=12)
        .map(|i| if i == 0 { "__Host-bff-session".to_string() } else { format!("__Host-bff-session.{i}") })
        .chain(["__Host-bff-session.x".into(), "__Host-bff-session.+1".into(), "other".into()])
        .collect();
    let values: Vec<String> =
        chunks.iter().map(|(_, v)| v.clone()).chain(["".into(), "k1.AAAA".into(), "garbage".into()]).collect();
    let cookie = (0..names.len(), 0..values.len());
    let kv = MemoryKv::default();
    let kv_store = KvStore { config: &config, kv: &kv };
    drive("session_cookies_and_chunks", prop::collection::vec(cookie, 0..8), |picked| {
        let pairs: Vec<(&str, &str)> = picked.iter().map(|&(n, v)| (names[n].as_str(), values[v].as_str())).collect();
        match cookie_store::load(&config, &pairs) {
            Loaded::Valid { session, .. } => prop_assert_eq!(&*session, &original),
            Loaded::Absent | Loaded::Invalid | Loaded::Missing { .. } => {}
        }
        // KV mode reads the same cookies: never a panic.
        let _ = block_on(kv_store.load(&pairs, NOW));
        Ok(())
    });
}

#[test]
fn jws_and_jwks() {
    let keys = TestKeys::new();
    let jwks_text = keys.jwks().to_string();
    let set = JwkSet::parse(jwks_text.as_bytes()).unwrap();
    let token = keys.sign("ES256", &serde_json::json!({"iss": "https://idp.example.com", "sub": "u"}));
    let signed_part = token.rsplit_once('.').unwrap().0.to_string();
    const PIECES: &[&str] = &["eyJ", "hbGciOi", ".", "..", "AAAA", "-_", "=", "e30", "bnVsbA"];
    drive("jws", input(PIECES, token.clone()), |text| {
        if let Ok(jws) = UntrustedJws::parse(&text) {
            if jws.verify_in_rust(&set).is_ok() {
                // Whatever verifies was signed: the header and payload are the original's.
                prop_assert_eq!(text.rsplit_once('.').map(|(s, _)| s), Some(signed_part.as_str()));
            }
        }
        Ok(())
    });
    const JSON_PIECES: &[&str] = &[
        "{", "}", "[", "]", "\"keys\"", ":", ",", "\"kty\"", "\"RSA\"", "\"EC\"", "\"OKP\"", "\"n\"", "\"AQAB\"",
        "null", "1e999",
    ];
    drive("jwks", input(JSON_PIECES, jwks_text), |text| {
        let _ = JwkSet::parse(text.as_bytes());
        Ok(())
    });
}

#[test]
fn discovery_documents() {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "\"issuer\"",
        ":",
        ",",
        "\"https://idp.example.com\"",
        "\"token_endpoint\"",
        "\"http://x\"",
        "null",
        "[]",
    ];
    drive("discovery", input(PIECES, discovery_json()), |text| {
        if let Ok(meta) = ProviderMetadata::parse(text.as_bytes(), "https://idp.example.com") {
            prop_assert_eq!(meta.issuer.as_str(), "https://idp.example.com");
            prop_assert!(meta.token_endpoint.scheme() == "https");
        }
        Ok(())
    });
}

#[test]
fn token_responses() {
    let config = config_with(&[]);
    let meta = ProviderMetadata::parse(discovery_json().as_bytes(), "https://idp.example.com").unwrap();
    let valid = serde_json::json!({"access_token": "at", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt", "id_token": "a.b.c"}).to_string();
    const PIECES: &[&str] = &[
        "{",
        "}",
        "\"access_token\"",
        "\"token_type\"",
        "\"Bearer\"",
        ":",
        ",",
        "\"expires_in\"",
        "-1",
        "1e999",
        "\"error\"",
        "null",
    ];
    let status = prop::sample::select(vec![200u16, 201, 400, 401, 500]);
    drive("token_responses", (input(PIECES, valid), status), |(body, status)| {
        let http = FakeHttp::default();
        http.route("/token", status, body);
        let call = ClientCall { config: &config, http: &http, signer: &NativeSigner, nonces: None, now: NOW };
        let _ = block_on(exchange_code(&call, &meta, "code", "verifier"));
        Ok(())
    });
}

#[test]
fn logout_tokens() {
    let valid = serde_json::json!({
        "iss": "https://idp.example.com", "aud": "spa", "iat": NOW, "jti": "j",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}, "sid": "s",
    })
    .to_string();
    const PIECES: &[&str] = &[
        "{",
        "}",
        "\"iss\"",
        "\"aud\"",
        "\"events\"",
        "\"sid\"",
        "\"sub\"",
        "\"nonce\"",
        ":",
        ",",
        "[",
        "]",
        "1800000000",
        "-5",
        "1e30",
        "\"spa\"",
    ];
    drive("logout_tokens", input(PIECES, valid), |text| {
        if let Ok(claims) = serde_json::from_str::<crate::oidc::jws::Claims>(&text) {
            if let Ok(target) = validate_logout_claims(&claims, "https://idp.example.com", "spa", NOW) {
                prop_assert!(target.sid.is_some() || target.sub.is_some());
                prop_assert!(claims.get("nonce").is_none());
            }
        }
        Ok(())
    });
}

#[test]
fn proxy_paths() {
    const PIECES: &[&str] = &[
        "a", "/", ".", "..", ";", ";x=1", "%2e", "%2E", "%2f", "%5c", "%25", "%252e", "%3b", "%00", "%c0", "%ae",
        "%af", "%e0", "%80", "%", "2", "e", "b", "\\", "%C3%A9", "%7f", "%+1",
    ];
    drive("proxy_paths", prop_oneof![any::<String>(), from_pieces(PIECES, 30)], |path| {
        if let Ok(out) = confine(&path) {
            crate::proxy::path::assert_confined(&path, &out);
        }
        Ok(())
    });
}

#[test]
fn return_to() {
    let config = config_with(&[]);
    let origin = url::Url::parse(&config.public_origin).unwrap();
    const PIECES: &[&str] = &[
        "/",
        "//",
        ".",
        "..",
        "%2e",
        "%2f",
        "%5c",
        "\\",
        "evil.example",
        "?",
        "#",
        "@",
        ":",
        "a",
        "\u{ff0f}",
        "\u{e9}",
        "%0a",
        "\t",
        "https:",
        "javascript:",
        "%252f",
    ];
    drive("return_to", prop_oneof![any::<String>(), from_pieces(PIECES, 20)], |raw| {
        let out = crate::oidc::authorize::sanitize_return_to(&config, Some(&raw));
        prop_assert!(out.is_ascii() && out.starts_with('/') && !out.starts_with("//") && !out.contains('\\'));
        let target = origin.join(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(target.origin(), origin.origin());
        prop_assert!(!target.path().starts_with("//"));
        prop_assert_eq!(crate::oidc::authorize::sanitize_return_to(&config, Some(&out)), out.clone());
        Ok(())
    });
}

#[test]
fn private_keys() {
    use crate::crypto::signing::{parse_private_keys, sign_native, signs_for_its_public_half, SigningAlg};
    let keys = TestKeys::new();
    let valid =
        serde_json::json!({ "keys": [keys.private_jwk("ES256", "a"), keys.private_jwk("EdDSA", "b")] }).to_string();
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"keys\"",
        "\"kty\"",
        "\"EC\"",
        "\"OKP\"",
        "\"RSA\"",
        "\"d\"",
        "\"alg\"",
        "\"ES256\"",
        ":",
        ",",
        "\"AAAA\"",
    ];
    let algs = [SigningAlg::Rs256, SigningAlg::Ps256, SigningAlg::Es256, SigningAlg::EdDsa];
    drive("private_keys", input(PIECES, valid), |text| {
        if let Ok(parsed) = parse_private_keys(&text, &algs) {
            for key in &parsed {
                prop_assert!(key.public_jwk().get("d").is_none());
                // What configuration accepts (the shape, then the pairwise test), the
                // signer can use (RSA is WebCrypto's in the Worker; natively it signs in
                // tests too).
                let verifier = crate::crypto::verifying::RustCryptoVerifier;
                if block_on(signs_for_its_public_half(&NativeSigner, &verifier, key)) {
                    prop_assert!(sign_native(key, b"input").is_ok(), "{:?}", key);
                }
            }
        }
        Ok(())
    });
}

/// The settings from outside: their names, and pieces their values are built from.
const SETTINGS: &[&str] = &[
    "OIDC_ISSUER",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CLIENT_AUTH",
    "PUBLIC_ORIGIN",
    "AUTH_PATH",
    "SCOPES",
    "API_ROUTES",
    "SESSION_STORE",
    "COOKIE_KEYS",
    "COOKIE_PREFIX",
    "SESSION_MAX_AGE",
    "SESSION_IDLE_TIMEOUT",
    "TRUSTED_ORIGINS",
    "POST_LOGOUT_REDIRECT_URI",
    "ALLOWED_AUTH_PARAMS",
    "AUTH_PARAMS",
    "CLIENT_PRIVATE_KEY",
    "CLIENT_ASSERTION_AUDIENCE",
    "LOGIN_ERROR_PATH",
    "CONTENT_SECURITY_POLICY",
    "HSTS",
];

#[test]
fn configuration_values() {
    const PIECES: &[&str] = &[
        "https://",
        "http://",
        "localhost",
        "app.example.com",
        "/",
        "[",
        "]",
        "{",
        "}",
        "\"prefix\"",
        "\"upstream\"",
        ":",
        ",",
        "k1:",
        "AAAA",
        " ",
        "60",
        "-1",
        "99999999999999999999",
        "off",
        "max-age=",
        "kv",
        "none",
        "\u{e9}",
        "%",
        "%C3%A9",
    ];
    let value = prop_oneof![any::<String>(), from_pieces(PIECES, 12)];
    let overrides = prop::collection::vec((0..SETTINGS.len(), value), 0..6);
    drive("configuration_values", overrides, |overrides| {
        let mut vars = vars_with(&[]);
        for (i, v) in overrides {
            vars.insert(SETTINGS[i].to_string(), v);
        }
        if let Ok(config) = Config::from_vars(&vars) {
            prop_assert!(!config.cookie_keys.current().kid().is_empty());
            let _ = config.warnings();
        }
        Ok(())
    });
}
