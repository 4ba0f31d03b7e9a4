//! Helpers shared by the native unit tests.

use crate::config::Config;
use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// A 32-byte test key, base64url.
pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// Run a future whose I/O is all in memory to completion.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("future did not complete: test I/O must be in memory");
}

/// A future that is pending once, then ready (a timer tick that needs no runtime).
pub async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// A session created at `now`, lasting an hour, its access token good for ten minutes,
/// with a refresh token and a `sid`; tests change what they need with `..`.
pub fn session_at(now: u64) -> crate::session::Session {
    crate::session::Session {
        access_token: "at-secret-value".into(),
        access_expires_at: now + 600,
        refresh_token: Some("rt-secret-value".into()),
        id_token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.sig".into(),
        sub: "u".into(),
        sid: Some("sid-1".into()),
        created_at: now,
        expires_at: now + 3600,
        last_seen: now,
        login: None,
        generation: 0,
        dpop: false,
        route_tokens: Vec::new(),
    }
}

/// A valid configuration with `overrides` applied (empty value = unset).
pub fn config_with(overrides: &[(&str, &str)]) -> Config {
    Config::from_vars(&vars_with(overrides)).expect("test configuration is valid")
}

/// The variables of a valid configuration with `overrides` applied (empty value = unset).
pub fn vars_with(overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("OIDC_ISSUER", "https://idp.example.com"),
        ("CLIENT_ID", "spa"),
        ("CLIENT_SECRET", "client-secret-value"),
        ("PUBLIC_ORIGIN", "https://app.example.com"),
        ("COOKIE_KEYS", &format!("k1:{KEY}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        if v.is_empty() {
            vars.remove(*k);
        } else {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    vars
}

/// Keys that sign test tokens with every accepted algorithm (and some refused ones).
pub struct TestKeys {
    rsa: rsa::RsaPrivateKey,
    ec: p256::ecdsa::SigningKey,
    ed: ed25519_dalek::SigningKey,
}

impl TestKeys {
    /// Fixed keys (RSA from a test-only PEM, EC and Ed25519 from fixed seeds).
    pub fn new() -> Self {
        Self::with_seed(7)
    }

    /// Keys whose EC and Ed25519 parts come from `seed` (another seed: an attacker's keys).
    pub fn with_seed(seed: u8) -> Self {
        use rsa::pkcs8::DecodePrivateKey;
        let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("oidc/testdata/rs2048-test-only.pem"))
            .expect("test RSA key");
        let ec = p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).expect("test EC key");
        let ed = ed25519_dalek::SigningKey::from_bytes(&[seed.wrapping_add(2); 32]);
        Self { rsa, ec, ed }
    }

    /// The EC public key as a JWK (for tokens that embed their own key).
    pub fn ec_public_jwk(&self) -> serde_json::Value {
        let point = self.ec.verifying_key().to_encoded_point(false);
        let b = crate::crypto::b64url;
        serde_json::json!({ "kty": "EC", "crv": "P-256", "x": b(point.x().unwrap()), "y": b(point.y().unwrap()) })
    }

    /// The private JWK of the key for `alg` (`RS256`, `PS256`, `ES256`, `EdDSA`) with `kid`.
    pub fn private_jwk(&self, alg: &str, kid: &str) -> serde_json::Value {
        let b = crate::crypto::b64url;
        match alg {
            "RS256" | "PS256" => rsa_private_jwk(&self.rsa, alg, kid),
            "ES256" => {
                let mut jwk = self.ec_public_jwk();
                jwk["d"] = b(&self.ec.to_bytes()).into();
                jwk["kid"] = kid.into();
                jwk["alg"] = alg.into();
                jwk
            }
            _ => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
                "x": b(self.ed.verifying_key().as_bytes()), "d": b(&self.ed.to_bytes()),
            }),
        }
    }

    /// The public JWKS: kids `rsa1`, `ec1`, `ed1`.
    pub fn jwks(&self) -> serde_json::Value {
        use rsa::traits::PublicKeyParts;
        let b = crate::crypto::b64url;
        let rsa_pub = self.rsa.to_public_key();
        let point = self.ec.verifying_key().to_encoded_point(false);
        serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "rsa1", "use": "sig", "n": b(&rsa_pub.n().to_bytes_be()), "e": b(&rsa_pub.e().to_bytes_be()) },
            { "kty": "EC", "kid": "ec1", "crv": "P-256", "x": b(point.x().unwrap()), "y": b(point.y().unwrap()) },
            { "kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b(self.ed.verifying_key().as_bytes()) },
            { "kty": "RSA", "kid": "enc1", "use": "enc", "n": b(&rsa_pub.n().to_bytes_be()), "e": "AQAB" },
        ]})
    }

    /// Sign `claims` with `header` (must name `alg`; `HS256` uses `hmac_key`, `none`
    /// gives an empty signature).
    pub fn sign_with_header(&self, header: &serde_json::Value, claims: &serde_json::Value, hmac_key: &[u8]) -> String {
        use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
        use sha2::Sha256;
        let b = crate::crypto::b64url;
        let input = format!("{}.{}", b(header.to_string().as_bytes()), b(claims.to_string().as_bytes()));
        let sig: Vec<u8> = match header["alg"].as_str().unwrap_or("none") {
            "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(self.rsa.clone()).sign(input.as_bytes()).to_vec(),
            "PS256" => rsa::pss::SigningKey::<Sha256>::new(self.rsa.clone())
                .sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes())
                .to_vec(),
            "ES256" => {
                let s: p256::ecdsa::Signature = self.ec.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            "EdDSA" => ed25519_dalek::Signer::sign(&self.ed, input.as_bytes()).to_bytes().to_vec(),
            "HS256" => hmac_sha256(hmac_key, input.as_bytes()).to_vec(),
            _ => Vec::new(),
        };
        format!("{input}.{}", b(&sig))
    }

    /// Sign with the key of `alg` and its kid.
    pub fn sign(&self, alg: &str, claims: &serde_json::Value) -> String {
        let kid = match alg {
            "RS256" | "PS256" => "rsa1",
            "ES256" => "ec1",
            "EdDSA" => "ed1",
            _ => "none",
        };
        self.sign_with_header(&serde_json::json!({ "alg": alg, "kid": kid, "typ": "JWT" }), claims, b"")
    }
}

/// A second RSA key, unrelated to [`TestKeys`]' (for key pairs that do not match).
pub fn other_rsa_key() -> rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("oidc/testdata/rs2048-b-test-only.pem")).expect("test RSA key")
}

/// The private JWK of an RSA `key` with every CRT member, `alg` and `kid`.
pub fn rsa_private_jwk(key: &rsa::RsaPrivateKey, alg: &str, kid: &str) -> serde_json::Value {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let b = crate::crypto::b64url;
    let mut key = key.clone();
    key.precompute().expect("precompute");
    let primes = key.primes();
    let qi = key.qinv().expect("qinv").to_biguint().expect("positive qinv");
    serde_json::json!({
        "kty": "RSA", "kid": kid, "alg": alg,
        "n": b(&key.n().to_bytes_be()), "e": b(&key.e().to_bytes_be()), "d": b(&key.d().to_bytes_be()),
        "p": b(&primes[0].to_bytes_be()), "q": b(&primes[1].to_bytes_be()),
        "dp": b(&key.dp().expect("dp").to_bytes_be()), "dq": b(&key.dq().expect("dq").to_bytes_be()),
        "qi": b(&qi.to_bytes_be()),
    })
}

/// HMAC-SHA256 (RFC 2104), to forge HS256 tokens in tests.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(message.iter().copied()).collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner_hash.iter().copied()).collect();
    Sha256::digest(&outer).into()
}

/// An in-memory identity provider: answers outgoing requests from a table keyed by
/// URL path and records every request.
#[derive(Default)]
pub struct FakeHttp {
    /// path → (status, body)
    pub routes: std::cell::RefCell<HashMap<String, (u16, String)>>,
    /// Requests seen: (method, path, body).
    pub seen: std::cell::RefCell<Vec<(String, String, String)>>,
    /// The headers of the requests seen, in the same order.
    pub seen_headers: std::cell::RefCell<Vec<http::HeaderMap>>,
    /// path → extra response headers.
    pub response_headers: std::cell::RefCell<HashMap<String, Vec<(String, String)>>>,
    /// The clock `now_ms` reads.
    pub clock_ms: std::cell::Cell<u64>,
    /// How many polls each answer takes after its request is recorded (0: at once), so
    /// that concurrent requests are in flight together.
    pub send_polls: std::cell::Cell<u32>,
}

impl FakeHttp {
    /// Answer `path` with `status` and `body`.
    pub fn route(&self, path: &str, status: u16, body: impl Into<String>) {
        self.routes.borrow_mut().insert(path.to_string(), (status, body.into()));
    }

    /// Answer `path` with `status`, `body` and the extra `headers`.
    pub fn route_with_headers(&self, path: &str, status: u16, body: impl Into<String>, headers: &[(&str, &str)]) {
        self.route(path, status, body);
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.response_headers.borrow_mut().insert(path.to_string(), headers);
    }

    /// How many requests went to `path`.
    pub fn count(&self, path: &str) -> usize {
        self.seen.borrow().iter().filter(|(_, p, _)| p == path).count()
    }
}

impl crate::web::client::HttpClient for FakeHttp {
    /// A timer that needs one poll per 10 ms of its duration (so a long timeout loses a
    /// race against work that finishes within a few polls) and moves the clock when done.
    fn sleep(&self, ms: u32) -> crate::web::client::LocalFuture<'_, ()> {
        let mut polls_left = (ms / 10).max(1);
        Box::pin(std::future::poll_fn(move |cx| {
            if polls_left == 0 {
                self.clock_ms.set(self.clock_ms.get() + u64::from(ms));
                return Poll::Ready(());
            }
            polls_left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }))
    }

    fn now_ms(&self) -> u64 {
        self.clock_ms.get()
    }

    fn send(
        &self,
        request: crate::web::client::OutgoingRequest,
    ) -> crate::web::client::LocalFuture<
        '_,
        Result<crate::web::client::IncomingResponse, crate::web::client::TransportError>,
    > {
        let path = request.uri().path().to_string();
        self.seen.borrow_mut().push((
            request.method().to_string(),
            path.clone(),
            String::from_utf8_lossy(request.body()).into_owned(),
        ));
        self.seen_headers.borrow_mut().push(request.headers().clone());
        let extra = self.response_headers.borrow().get(&path).cloned().unwrap_or_default();
        let answer = match self.routes.borrow().get(&path) {
            Some((status, body)) => extra
                .iter()
                .fold(
                    http::Response::builder().status(*status).header("content-type", "application/json"),
                    |b, (k, v)| b.header(k.as_str(), v.as_str()),
                )
                .body(body.clone().into_bytes())
                .map_err(|e| crate::web::client::TransportError::Network(e.to_string())),
            None => Err(crate::web::client::TransportError::Network(format!("no route {path}"))),
        };
        let mut answer = Some(answer);
        let mut polls_left = self.send_polls.get();
        Box::pin(std::future::poll_fn(move |cx| {
            if polls_left == 0 {
                return Poll::Ready(answer.take().expect("polled after completion"));
            }
            polls_left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }))
    }
}

/// The discovery document of the fake provider at `https://idp.example.com`.
pub fn discovery_json() -> String {
    serde_json::json!({
        "issuer": "https://idp.example.com",
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
        "userinfo_endpoint": "https://idp.example.com/userinfo",
        "end_session_endpoint": "https://idp.example.com/logout",
        "authorization_response_iss_parameter_supported": true,
        "code_challenge_methods_supported": ["S256"],
    })
    .to_string()
}

/// A small deterministic PRNG (xorshift64*) for fuzz-style tests.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `input` with 1-4 random byte flips, insertions or deletions, as text.
    pub fn mutate(&mut self, input: &str) -> String {
        const ALPHABET: &[u8] = b"ABCxyz019-_.=%\\/\"{}[]:, \x00\xff";
        let mut bytes = input.as_bytes().to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(bytes.len() + 1);
            let b = ALPHABET[self.below(ALPHABET.len())];
            match self.below(3) {
                0 if at < bytes.len() => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.push(b),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
