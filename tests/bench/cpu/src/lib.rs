//! The hot paths of edge-bff, each as a function that runs `n` times and returns a
//! checksum (so the work cannot be optimised away). Timed by `main.rs` natively and by
//! `tests/bench/cpu.mjs` in wasm32 under Node.
#![allow(missing_docs)]

use edge_bff::agent;
use edge_bff::config::Config;
use edge_bff::crypto::{b64url, seal, Purpose};
use edge_bff::lifecycle::{RequestContext, SharedState};
use edge_bff::oidc::authorize::{authorization_url, LoginState};
use edge_bff::oidc::discovery::ProviderMetadata;
use edge_bff::oidc::id_token::{validate, Expectations};
use edge_bff::oidc::jwk::JwkSet;
use edge_bff::oidc::jws::UntrustedJws;
use edge_bff::proxy;
use edge_bff::proxy::headers::{upstream_request_headers, Forwarding};
use edge_bff::session::cookie_store::CookieStore;
use edge_bff::session::{cookie_store, Session};
use edge_bff::web::client::{HttpClient, IncomingResponse, LocalFuture, OutgoingRequest, TransportError};
use edge_bff::web::cookies::parse_cookie_header;
use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::prelude::wasm_bindgen;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp.example.com";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// Every benchmark's name, in the order the tables print them.
pub const OPS: &[&str] = &[
    "seal_session_4k",
    "open_session_4k",
    "open_session_4k_cached",
    "parse_cookie_header",
    "rewrite_upstream_headers",
    "proxied_request_hot_path",
    "proxied_request_remembered",
    "verify_id_token_rs256",
    "verify_id_token_es256",
    "login_redirect",
    "callback_without_network",
    "dpop_proof_es256",
    "dpop_proof_input",
    "dpop_proof_eddsa",
    "aes_gcm_open_512",
    "aes_gcm_open_1536",
    "aes_gcm_open_4096",
    "config_from_vars",
];

/// The associated data of the AES-GCM rows (a session cookie's name).
const AAD: &[u8] = b"__Host-bff-session";

/// A sealed text of `size` plaintext bytes under the bench key ring's cookie key, as a
/// session cookie holds it (`<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>`).
#[wasm_bindgen]
pub fn sealed_of_size(size: usize) -> String {
    edge_bff::crypto::seal(&config().cookie_keys, Purpose::Cookie, AAD, &vec![b'x'; size]).expect("seal")
}

/// The raw AES-256 key of the bench ring's cookie purpose (for the WebCrypto rows of
/// `tests/bench/cpu.mjs`, which open the same sealed texts).
#[wasm_bindgen]
pub fn cookie_key() -> Vec<u8> {
    config().cookie_keys.current().key(Purpose::Cookie).to_vec()
}

/// The associated data of [`sealed_of_size`]'s texts.
#[wasm_bindgen]
pub fn cookie_aad() -> Vec<u8> {
    AAD.to_vec()
}

/// The private JWKs of the DPoP rows: the bench's P-256 key, and an Ed25519 key from a
/// fixed seed.
fn dpop_key(alg: &str) -> edge_bff::oidc::dpop::DpopKey {
    use edge_bff::crypto::signing::{parse_private_keys, SigningAlg};
    let jwk = if alg == "ES256" {
        let ec = keys().ec;
        let point = ec.verifying_key().to_encoded_point(false);
        serde_json::json!({ "kty": "EC", "crv": "P-256", "kid": "d1", "alg": "ES256",
            "x": b64url(point.x().unwrap()), "y": b64url(point.y().unwrap()), "d": b64url(&ec.to_bytes()) })
    } else {
        let ed = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "kid": "d1", "alg": "EdDSA",
            "x": b64url(ed.verifying_key().as_bytes()), "d": b64url(&ed.to_bytes()) })
    };
    let key = parse_private_keys(&jwk.to_string(), &[SigningAlg::Es256, SigningAlg::EdDsa]).expect("DPoP key");
    edge_bff::oidc::dpop::DpopKey::new(key.into_iter().next().expect("one key"))
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn config() -> Config {
    let vars: HashMap<String, String> = [
        ("OIDC_ISSUER", ISSUER),
        ("CLIENT_ID", "spa"),
        ("CLIENT_SECRET", "client-secret"),
        ("PUBLIC_ORIGIN", "https://app.example.com"),
        ("COOKIE_KEYS", &format!("k1:{KEY}")),
        ("API_ROUTES", r#"[{"prefix":"/api/","upstream":"https://api.internal/v1/"}]"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Config::from_vars(&vars).expect("bench config")
}

struct Keys {
    rsa: rsa::RsaPrivateKey,
    ec: p256::ecdsa::SigningKey,
}

fn keys() -> Keys {
    use rsa::pkcs8::DecodePrivateKey;
    Keys {
        rsa: rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("../../../../src/oidc/testdata/rs2048-test-only.pem"))
            .expect("test RSA key"),
        ec: p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).expect("EC key"),
    }
}

fn jwks(k: &Keys) -> String {
    use rsa::traits::PublicKeyParts;
    let public = k.rsa.to_public_key();
    let point = k.ec.verifying_key().to_encoded_point(false);
    serde_json::json!({ "keys": [
        { "kty": "RSA", "kid": "rsa1", "n": b64url(&public.n().to_bytes_be()), "e": b64url(&public.e().to_bytes_be()) },
        { "kty": "EC", "kid": "ec1", "crv": "P-256", "x": b64url(point.x().unwrap()), "y": b64url(point.y().unwrap()) },
    ]})
    .to_string()
}

fn sign(k: &Keys, alg: &str, claims: &serde_json::Value) -> String {
    use rsa::signature::{SignatureEncoding, Signer};
    let kid = if alg == "RS256" { "rsa1" } else { "ec1" };
    let header = serde_json::json!({ "alg": alg, "kid": kid, "typ": "JWT" });
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let sig = if alg == "RS256" {
        rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.rsa.clone()).sign(input.as_bytes()).to_vec()
    } else {
        let s: p256::ecdsa::Signature = k.ec.sign(input.as_bytes());
        s.to_bytes().to_vec()
    };
    format!("{input}.{}", b64url(&sig))
}

fn claims(nonce: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER, "aud": "spa", "sub": "248289761001", "nonce": nonce, "iat": NOW, "exp": NOW + 3600,
        "name": "Jane Doe", "email": "jane@example.com", "email_verified": true, "sid": "08a5019c-17e1-4977-8f42-65a12843ea02",
    })
}

/// A session whose sealed cookie is about `size` bytes (a JWT access token dominates).
fn session(size: usize) -> Session {
    Session {
        access_token: format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "a".repeat(size.saturating_sub(900) * 3 / 4)),
        access_expires_at: NOW + 3600,
        refresh_token: Some("8xLOxBtZp8".repeat(4)),
        id_token: format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", b64url(claims("n").to_string().as_bytes())),
        sub: "248289761001".into(),
        sid: Some("08a5019c-17e1-4977-8f42-65a12843ea02".into()),
        created_at: NOW,
        expires_at: NOW + 28_800,
        last_seen: NOW,
        login: None,
        generation: 0,
        dpop: false,
        route_tokens: Vec::new(),
    }
}

fn cookie_header(config: &Config, s: &Session) -> String {
    let set = cookie_store::store(config, s, &[], NOW).expect("store");
    let mut parts: Vec<String> = set.iter().map(|c| c.split(';').next().unwrap().to_string()).collect();
    parts.insert(0, "_ga=GA1.2.1234567890.1700000000; theme=dark; lang=en-GB".into());
    parts.join("; ")
}

/// An in-memory provider for the callback benchmark.
struct MemoryIdp {
    discovery: String,
    jwks: String,
    token: std::cell::RefCell<String>,
}

impl HttpClient for MemoryIdp {
    fn sleep(&self, _ms: u32) -> LocalFuture<'_, ()> {
        Box::pin(async {})
    }

    fn now_ms(&self) -> u64 {
        NOW * 1000
    }

    fn send(&self, request: OutgoingRequest) -> LocalFuture<'_, Result<IncomingResponse, TransportError>> {
        let body = match request.uri().path() {
            "/.well-known/openid-configuration" => self.discovery.clone(),
            "/jwks" => self.jwks.clone(),
            "/token" => self.token.borrow().clone(),
            _ => String::new(),
        };
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(body.into_bytes())
            .map_err(|e| TransportError::Network(e.to_string()));
        Box::pin(std::future::ready(response))
    }
}

fn discovery() -> String {
    serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
        "end_session_endpoint": "https://idp.example.com/logout",
        "authorization_response_iss_parameter_supported": true,
    })
    .to_string()
}

/// Run benchmark `op` `n` times; returns a checksum.
/// The benchmark names, comma-separated (for `tests/bench/cpu.mjs`).
#[wasm_bindgen]
pub fn ops() -> String {
    OPS.join(",")
}

#[wasm_bindgen]
pub fn run(op: &str, n: u32) -> u32 {
    let config = config();
    let mut sum: u32 = 0;
    match op {
        "seal_session_4k" => {
            let s = session(4096);
            for _ in 0..n {
                sum = sum.wrapping_add(cookie_store::store(&config, &s, &[], NOW).expect("store")[0].len() as u32);
            }
        }
        "open_session_4k" => {
            let header = cookie_header(&config, &session(4096));
            let cookies = parse_cookie_header([header.as_str()].into_iter());
            for _ in 0..n {
                if let edge_bff::session::store::Loaded::Valid { session, .. } = cookie_store::load(&config, &cookies) {
                    sum = sum.wrapping_add(session.access_token.len() as u32);
                }
            }
        }
        "open_session_4k_cached" => {
            let header = cookie_header(&config, &session(4096));
            let cookies = parse_cookie_header([header.as_str()].into_iter());
            let cache = edge_bff::session::opened_cache::OpenedCache::default();
            for _ in 0..n {
                if let edge_bff::session::store::Loaded::Valid { session, .. } =
                    cookie_store::load_cached(&config, &cookies, Some(&cache))
                {
                    sum = sum.wrapping_add(session.access_token.len() as u32);
                }
            }
        }
        "parse_cookie_header" => {
            let header = cookie_header(&config, &session(1500));
            for _ in 0..n {
                sum = sum.wrapping_add(parse_cookie_header([header.as_str()].into_iter()).len() as u32);
            }
        }
        "rewrite_upstream_headers" => {
            let request = proxied_request(&config, 1500);
            for _ in 0..n {
                let out = upstream_request_headers(&config, request.headers(), forwarding("at-value"));
                sum = sum.wrapping_add(out.len() as u32);
            }
        }
        "proxied_request_hot_path" => {
            // Everything edge-bff does for a proxied GET before and around the fetch:
            // cookies, open the session, activity, CSRF + path, upstream headers.
            let request = proxied_request(&config, 1500);
            let route = &config.api_routes[0];
            for _ in 0..n {
                let cookies = agent::request_cookies(&request);
                let edge_bff::session::store::Loaded::Valid { session, .. } = cookie_store::load(&config, &cookies)
                else {
                    continue;
                };
                let _ = session.check_active(NOW, 0);
                let target = proxy::target(&config, route, "orders/42", &request).expect("target");
                let out = upstream_request_headers(&config, request.headers(), forwarding(&session.access_token));
                sum = sum.wrapping_add((out.len() + target.len()) as u32);
            }
        }
        "proxied_request_remembered" => {
            // What the Worker runs per proxied GET once the isolate has seen the cookie: the
            // direct path's whole decision (cookies, the session from the opened-cookie
            // memory, CSRF + path, the upstream's header list, CORS).
            let request = proxied_request(&config, 1500);
            let shared = SharedState::default();
            for _ in 0..n {
                let call =
                    edge_bff::proxy::direct::direct_call(&config, 0, "orders/42", &request, false, Some(&shared), NOW)
                        .expect("a direct call");
                sum = sum.wrapping_add((call.headers.len() + call.target.len() + call.response_headers.len()) as u32);
            }
        }
        "verify_id_token_rs256" | "verify_id_token_es256" => {
            let k = keys();
            let set = JwkSet::parse(jwks(&k).as_bytes()).expect("jwks");
            let alg = if op.ends_with("rs256") { "RS256" } else { "ES256" };
            let token = sign(&k, alg, &claims("n-1"));
            for _ in 0..n {
                let verified = UntrustedJws::parse(&token).and_then(|j| j.verify_in_rust(&set)).expect("verify");
                let v = validate(
                    verified,
                    Expectations { issuer: ISSUER, client_id: "spa", nonce: Some("n-1"), now: NOW, requested: None },
                )
                .expect("valid");
                sum = sum.wrapping_add(v.sub.len() as u32);
            }
        }
        // A DPoP proof for an upstream call (RFC 9449: jwk header, htm, htu, iat, jti, ath),
        // signed in Rust: what a synchronous direct path would pay per call.
        "dpop_proof_es256" | "dpop_proof_eddsa" => {
            let key = dpop_key(if op.ends_with("es256") { "ES256" } else { "EdDSA" });
            let signer = edge_bff::crypto::signing::NativeSigner;
            for _ in 0..n {
                let proof = block_on(edge_bff::oidc::dpop::proof(
                    &signer,
                    &key,
                    "GET",
                    "https://api.internal.example/v1/things/42?x=1",
                    None,
                    Some("access-token-of-about-forty-characters-xx"),
                    NOW,
                ))
                .expect("proof");
                sum = sum.wrapping_add(proof.len() as u32);
            }
        }
        // What the direct path adds in Rust for a DPoP-bound token: the proof's signing
        // input (jti, claims, ath); the runtime's WebCrypto signs it.
        "dpop_proof_input" => {
            let key = dpop_key("ES256");
            for _ in 0..n {
                let input = key
                    .proof_input(
                        "GET",
                        "https://api.internal.example/v1/things/42?x=1",
                        None,
                        Some("access-token-of-about-forty-characters-xx"),
                        NOW,
                    )
                    .expect("input");
                sum = sum.wrapping_add(input.len() as u32);
            }
        }
        "login_redirect" => {
            let meta = ProviderMetadata::parse(discovery().as_bytes(), ISSUER).expect("meta");
            let name = config.login_cookie_name();
            for _ in 0..n {
                let login = LoginState::new("/orders".into(), NOW).expect("login");
                let url = authorization_url(&config, &meta, &login, &[]);
                let json = serde_json::to_vec(&login).expect("json");
                let cookie = seal(&config.cookie_keys, Purpose::Cookie, name.as_bytes(), &json).expect("seal");
                sum = sum.wrapping_add((url.len() + cookie.len()) as u32);
            }
        }
        "callback_without_network" => {
            let k = keys();
            let idp = MemoryIdp { discovery: discovery(), jwks: jwks(&k), token: Default::default() };
            let shared = SharedState::default();
            let store = CookieStore { config: &config, deny_list: None, cache: None };
            let name = config.login_cookie_name();
            // Pre-build n callbacks (login state, cookie, signed ID token) outside the timing? The
            // ID token must carry each login's nonce, so signing is part of setup: use one login.
            let login = LoginState::new("/".into(), NOW).expect("login");
            let sealed =
                seal(&config.cookie_keys, Purpose::Cookie, name.as_bytes(), &serde_json::to_vec(&login).unwrap())
                    .unwrap();
            let id_token = sign(&k, "RS256", &claims(&login.nonce));
            *idp.token.borrow_mut() = serde_json::json!({
                "access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt", "id_token": id_token,
            })
            .to_string();
            let uri = format!("https://app.example.com/auth/callback?code=c&state={}&iss={}", login.state, ISSUER);
            let ctx = RequestContext {
                config: &config,
                shared: &shared,
                http: &idp,
                signer: &edge_bff::crypto::signing::NativeSigner,
                verifier: &edge_bff::crypto::verifying::RustCryptoVerifier,
                store: &store,
                kv: None,
                coordinator: None,
                now: NOW,
                outcome: Default::default(),
            };
            for _ in 0..n {
                let request = http::Request::get(uri.as_str())
                    .header("cookie", format!("{name}={sealed}"))
                    .body(Vec::new())
                    .expect("request");
                let response = block_on(agent::handle(&ctx, &request, "/callback"));
                assert_eq!(response.headers()["location"], "/", "callback succeeds");
                sum = sum.wrapping_add(response.headers().len() as u32);
            }
        }
        "aes_gcm_open_512" | "aes_gcm_open_1536" | "aes_gcm_open_4096" => {
            // The AES-GCM open alone (base64url decoding included), as `cookie_store` runs it.
            let size = op.rsplit('_').next().and_then(|n| n.parse().ok()).expect("size");
            let sealed = sealed_of_size(size);
            for _ in 0..n {
                let plain = edge_bff::crypto::open(&config.cookie_keys, Purpose::Cookie, AAD, &sealed).expect("opens");
                sum = sum.wrapping_add(plain.len() as u32);
            }
        }
        "config_from_vars" => {
            // The isolate's set-up on its first request: the variables read and checked,
            // the key ring derived (HKDF per purpose).
            for _ in 0..n {
                sum = sum.wrapping_add(self::config().api_routes.len() as u32);
            }
        }
        other => panic!("unknown benchmark {other}"),
    }
    sum
}

fn proxied_request(config: &Config, session_size: usize) -> http::Request<Vec<u8>> {
    let cookie = cookie_header(config, &session(session_size));
    http::Request::get("https://app.example.com/api/orders/42?page=2")
        .header("cookie", cookie)
        .header("x-csrf", "1")
        .header("accept", "application/json")
        .header("accept-encoding", "gzip, br")
        .header("accept-language", "en-GB,en;q=0.9")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36")
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .header("referer", "https://app.example.com/orders")
        .header("cf-connecting-ip", "203.0.113.7")
        .header("connection", "keep-alive")
        .body(Vec::new())
        .expect("request")
}

fn forwarding(access_token: &str) -> Forwarding<'_> {
    Forwarding {
        access_token: Some(access_token),
        dpop: false,
        websocket: false,
        client_ip: Some("203.0.113.7"),
        proto: "https",
        host: "app.example.com",
    }
}
