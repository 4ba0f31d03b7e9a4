//! Known-answer and negative tests of JWS verification, ID token rules and discovery.

use super::discovery::{DiscoveryError, ProviderMetadata};
use super::id_token::{validate, ClaimsError, Expectations};
use super::jwk::JwkSet;
use super::jws::{JwsError, UntrustedJws};
use crate::testutil::{discovery_json, TestKeys};
use serde_json::json;

const NOW: u64 = 1_800_000_000;

fn claims() -> serde_json::Value {
    json!({
        "iss": "https://idp.example.com", "aud": "spa", "sub": "user-1", "nonce": "n-123",
        "iat": NOW - 5, "exp": NOW + 300, "name": "Ada", "at_hash": "x", "sid": "s-1",
    })
}

fn keys() -> (TestKeys, JwkSet) {
    let k = TestKeys::new();
    let set = JwkSet::parse(k.jwks().to_string().as_bytes()).unwrap();
    (k, set)
}

#[test]
fn jwks_skips_encryption_and_unusable_keys() {
    let (_, set) = keys();
    assert_eq!(set.keys.len(), 3);
    assert!(set.has_kid("rsa1") && set.has_kid("ec1") && set.has_kid("ed1") && !set.has_kid("enc1"));
    let weird = br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-384","x":"AA","y":"AA"},{"kty":"oct","k":"AAAA"},7,{"kty":"OKP","crv":"Ed25519","x":"short"}]}"#;
    assert_eq!(JwkSet::parse(weird).unwrap().keys.len(), 0);
    assert!(JwkSet::parse(b"[]").is_err());
    assert!(JwkSet::parse(b"not json").is_err());
}

#[test]
fn every_accepted_algorithm_verifies() {
    let (k, set) = keys();
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let token = k.sign(alg, &claims());
        let jws = UntrustedJws::parse(&token).unwrap();
        let c = jws.verify_in_rust(&set).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(c["sub"], "user-1", "{alg}");
    }
}

#[test]
fn none_and_hmac_are_refused_before_any_key_is_used() {
    let (k, _) = keys();
    for alg in ["none", "HS256", "HS384", "HS512", "RS512", "ES384", "None", ""] {
        let token = k.sign_with_header(&json!({ "alg": alg }), &claims(), b"client-secret-value");
        assert!(
            matches!(UntrustedJws::parse(&token), Err(JwsError::AlgorithmNotAccepted(_))),
            "alg {alg:?} must be refused"
        );
    }
}

#[test]
fn bad_signature_wrong_key_and_algorithm_confusion() {
    let (k, set) = keys();
    let token = k.sign("RS256", &claims());
    // Changed payload, same signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = crate::crypto::b64url(json!({"sub":"admin"}).to_string().as_bytes());
    let forged = parts.join(".");
    assert_eq!(UntrustedJws::parse(&forged).unwrap().verify_in_rust(&set), Err(JwsError::BadSignature));
    // ES256 signature presented as the RSA key's.
    let es = k.sign_with_header(&json!({"alg":"ES256","kid":"rsa1"}), &claims(), b"");
    assert_eq!(UntrustedJws::parse(&es).unwrap().verify_in_rust(&set), Err(JwsError::NoMatchingKey));
    // Unknown kid.
    let unknown = k.sign_with_header(&json!({"alg":"RS256","kid":"rotated-2"}), &claims(), b"");
    assert_eq!(UntrustedJws::parse(&unknown).unwrap().verify_in_rust(&set), Err(JwsError::UnknownKid));
    // No kid: refused while the set has several keys, accepted with a single key.
    let no_kid = k.sign_with_header(&json!({"alg":"ES256"}), &claims(), b"");
    assert_eq!(UntrustedJws::parse(&no_kid).unwrap().verify_in_rust(&set), Err(JwsError::KidRequired));
    let single = JwkSet::parse(json!({"keys":[k.jwks()["keys"][1].clone()]}).to_string().as_bytes()).unwrap();
    assert!(UntrustedJws::parse(&no_kid).unwrap().verify_in_rust(&single).is_ok());
    let wrong_single = JwkSet::parse(json!({"keys":[k.jwks()["keys"][0].clone()]}).to_string().as_bytes()).unwrap();
    assert_eq!(UntrustedJws::parse(&no_kid).unwrap().verify_in_rust(&wrong_single), Err(JwsError::NoMatchingKey));
}

#[test]
fn embedded_keys_are_ignored_and_crit_refused() {
    let (k, set) = keys();
    // A token signed by a key the provider does not have, carrying that key inline.
    let attacker = TestKeys::with_seed(42);
    let header = json!({"alg":"ES256","kid":"ec1","jwk": attacker.ec_public_jwk(),"jku":"https://evil.example/jwks","x5u":"https://evil.example/x"});
    let token = attacker.sign_with_header(&header, &claims(), b"");
    assert_eq!(UntrustedJws::parse(&token).unwrap().verify_in_rust(&set), Err(JwsError::BadSignature));
    let crit = k.sign_with_header(&json!({"alg":"ES256","kid":"ec1","crit":["exp"]}), &claims(), b"");
    assert_eq!(UntrustedJws::parse(&crit).unwrap_err(), JwsError::CriticalHeader);
}

#[test]
fn malformed_tokens_are_errors() {
    for bad in ["", ".", "..", "a.b.c", "a.b.c.d", "eyJhbGciOiJSUzI1NiJ9..", "eyJhbGciOiJSUzI1NiJ9.!!.AA"] {
        assert!(UntrustedJws::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(UntrustedJws::parse(&"a".repeat(70_000)).unwrap_err(), JwsError::Malformed);
}

fn expect<'a>(nonce: Option<&'a str>) -> Expectations<'a> {
    Expectations { issuer: "https://idp.example.com", client_id: "spa", nonce, now: NOW, requested: None }
}

fn with(
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<super::id_token::ValidatedIdToken, ClaimsError> {
    let mut c = claims().as_object().unwrap().clone();
    change(&mut c);
    validate(c, expect(Some("n-123")))
}

#[test]
fn id_token_claims_rules() {
    let ok = with(|_| {}).unwrap();
    assert_eq!(ok.sub, "user-1");
    assert_eq!(ok.sid.as_deref(), Some("s-1"));
    assert!(ok.user_claims.get("nonce").is_none() && ok.user_claims.get("at_hash").is_none());
    assert_eq!(ok.user_claims["name"], "Ada");

    assert_eq!(
        with(|c| {
            c.insert("iss".into(), json!("https://idp.example.com/"));
        })
        .unwrap_err(),
        ClaimsError::Issuer
    );
    assert_eq!(
        with(|c| {
            c.remove("iss");
        })
        .unwrap_err(),
        ClaimsError::Issuer
    );
    assert_eq!(
        with(|c| {
            c.insert("aud".into(), json!("other"));
        })
        .unwrap_err(),
        ClaimsError::Audience
    );
    assert_eq!(
        with(|c| {
            c.remove("aud");
        })
        .unwrap_err(),
        ClaimsError::Audience
    );
    assert!(with(|c| {
        c.insert("aud".into(), json!(["spa"]));
    })
    .is_ok());
    assert_eq!(
        with(|c| {
            c.insert("aud".into(), json!(["spa", "api"]));
        })
        .unwrap_err(),
        ClaimsError::AuthorizedParty
    );
    assert!(with(|c| {
        c.insert("aud".into(), json!(["spa", "api"]));
        c.insert("azp".into(), json!("spa"));
    })
    .is_ok());
    assert_eq!(
        with(|c| {
            c.insert("azp".into(), json!("other"));
        })
        .unwrap_err(),
        ClaimsError::AuthorizedParty
    );
    assert_eq!(
        with(|c| {
            c.insert("exp".into(), json!(NOW - 61));
        })
        .unwrap_err(),
        ClaimsError::Expired
    );
    assert!(
        with(|c| {
            c.insert("exp".into(), json!(NOW - 30));
        })
        .is_ok(),
        "within clock skew"
    );
    assert_eq!(
        with(|c| {
            c.insert("exp".into(), json!("soon"));
        })
        .unwrap_err(),
        ClaimsError::Expired
    );
    assert_eq!(
        with(|c| {
            c.remove("iat");
        })
        .unwrap_err(),
        ClaimsError::IssuedAt
    );
    assert_eq!(
        with(|c| {
            c.insert("iat".into(), json!(NOW + 3600));
        })
        .unwrap_err(),
        ClaimsError::IssuedAt
    );
    assert_eq!(
        with(|c| {
            c.remove("sub");
        })
        .unwrap_err(),
        ClaimsError::Subject
    );
    assert_eq!(
        with(|c| {
            c.insert("sub".into(), json!(""));
        })
        .unwrap_err(),
        ClaimsError::Subject
    );
    assert_eq!(
        with(|c| {
            c.insert("nonce".into(), json!("n-124"));
        })
        .unwrap_err(),
        ClaimsError::Nonce
    );
    assert_eq!(
        with(|c| {
            c.remove("nonce");
        })
        .unwrap_err(),
        ClaimsError::Nonce
    );
    let mut c = claims().as_object().unwrap().clone();
    c.remove("nonce");
    assert!(validate(c, expect(None)).is_ok(), "refresh: nonce not required");
}

#[test]
fn discovery_validation() {
    let meta = ProviderMetadata::parse(discovery_json().as_bytes(), "https://idp.example.com").unwrap();
    assert!(meta.iss_parameter_supported);
    assert_eq!(meta.token_endpoint.as_str(), "https://idp.example.com/token");
    assert_eq!(
        ProviderMetadata::parse(discovery_json().as_bytes(), "https://idp.example.com/").unwrap_err(),
        DiscoveryError::IssuerMismatch
    );
    let http_endpoint = discovery_json().replace("https://idp.example.com/token", "http://idp.example.com/token");
    assert_eq!(
        ProviderMetadata::parse(http_endpoint.as_bytes(), "https://idp.example.com").unwrap_err(),
        DiscoveryError::BadEndpoint("token_endpoint")
    );
    // A percent-encoded non-ASCII host with an upper-case letter: refused before the URL
    // parser, whose IDNA stand-in asserts on it in debug builds (found by src/fuzz.rs).
    let encoded_host = discovery_json().replace("https://idp.example.com/token", "https://A%C3%A9.example/token");
    assert_eq!(
        ProviderMetadata::parse(encoded_host.as_bytes(), "https://idp.example.com").unwrap_err(),
        DiscoveryError::BadEndpoint("token_endpoint")
    );
    let plain_only = discovery_json().replace(r#"["S256"]"#, r#"["plain"]"#);
    assert_eq!(
        ProviderMetadata::parse(plain_only.as_bytes(), "https://idp.example.com").unwrap_err(),
        DiscoveryError::NoPkceS256
    );
    assert_eq!(ProviderMetadata::parse(b"{}", "https://idp.example.com").unwrap_err(), DiscoveryError::Malformed);
}

#[test]
fn fuzz_jws_parser_and_verifier_never_panic() {
    let (k, set) = keys();
    let seeds: Vec<String> = ["RS256", "PS256", "ES256", "EdDSA"].iter().map(|a| k.sign(a, &claims())).collect();
    let mut rng = crate::testutil::Rng::new(0x5eed);
    let mut accepted = 0;
    for i in 0..4000 {
        let input = if i % 5 == 0 {
            // Random structure: three random base64url-ish parts.
            (0..3)
                .map(|_| (0..rng.below(40)).map(|_| (b'A' + rng.below(26) as u8) as char).collect::<String>())
                .collect::<Vec<_>>()
                .join(".")
        } else {
            let pick = rng.below(seeds.len());
            rng.mutate(&seeds[pick])
        };
        if let Ok(jws) = UntrustedJws::parse(&input) {
            if jws.verify_in_rust(&set).is_ok() {
                accepted += 1;
            }
        }
    }
    // Mutations that only touch base64 padding bits may still verify; anything else must not.
    assert!(accepted < 40, "{accepted} mutated tokens verified");
}

#[test]
fn fuzz_claims_validation_never_panics() {
    let mut rng = crate::testutil::Rng::new(77);
    let base = claims().to_string();
    for _ in 0..3000 {
        let text = rng.mutate(&base);
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text) {
            let _ = validate(map, expect(Some("n-123")));
        }
        let _ = ProviderMetadata::parse(rng.mutate(&discovery_json()).as_bytes(), "https://idp.example.com");
        let _ = JwkSet::parse(rng.mutate(&TestKeys::new().jwks().to_string()).as_bytes());
    }
}

#[test]
fn requested_acr_and_max_age_are_checked() {
    use super::id_token::Requested;
    let check = |requested: Requested, change: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut c = claims().as_object().unwrap().clone();
        change(&mut c);
        validate(c, Expectations { requested: Some(&requested), ..expect(Some("n-123")) })
    };
    let acr = |v: &str| Requested { acr_values: Some(v.into()), max_age: None };
    let max_age = |n: u64| Requested { acr_values: None, max_age: Some(n) };
    let set = |name: &'static str, value: serde_json::Value| {
        move |c: &mut serde_json::Map<String, serde_json::Value>| {
            c.insert(name.into(), value.clone());
        }
    };
    // acr: one of the requested values, exactly.
    assert!(check(acr("urn:mfa urn:pwd"), &set("acr", json!("urn:mfa"))).is_ok());
    assert_eq!(check(acr("urn:mfa"), &set("acr", json!("urn:pwd"))).unwrap_err(), ClaimsError::Acr);
    assert_eq!(check(acr("urn:mfa"), &set("acr", json!("urn:mf"))).unwrap_err(), ClaimsError::Acr);
    assert_eq!(check(acr("urn:mfa"), &set("acr", json!(["urn:mfa"]))).unwrap_err(), ClaimsError::Acr);
    assert_eq!(check(acr("urn:mfa"), &|_| {}).unwrap_err(), ClaimsError::Acr);
    // max_age: auth_time present, within max_age plus the skew, not in the future.
    assert!(check(max_age(300), &set("auth_time", json!(NOW - 200))).is_ok());
    assert!(check(max_age(300), &set("auth_time", json!(NOW - 300 - super::id_token::CLOCK_SKEW))).is_ok());
    assert_eq!(
        check(max_age(300), &set("auth_time", json!(NOW - 301 - super::id_token::CLOCK_SKEW))).unwrap_err(),
        ClaimsError::AuthTime
    );
    assert_eq!(check(max_age(0), &set("auth_time", json!(NOW - 3600))).unwrap_err(), ClaimsError::AuthTime);
    assert_eq!(check(max_age(300), &set("auth_time", json!(NOW + 3600))).unwrap_err(), ClaimsError::AuthTime);
    assert_eq!(check(max_age(300), &set("auth_time", json!("recent"))).unwrap_err(), ClaimsError::AuthTime);
    assert_eq!(check(max_age(300), &|_| {}).unwrap_err(), ClaimsError::AuthTime);
    // Nothing requested: neither claim is needed, and both stay in the user's claims.
    let plain = check(Requested::default(), &|c| {
        c.insert("acr".into(), json!("urn:pwd"));
        c.insert("amr".into(), json!(["pwd"]));
        c.insert("auth_time".into(), json!(NOW - 99_999));
    })
    .unwrap();
    for claim in ["acr", "amr", "auth_time"] {
        assert!(plain.user_claims.contains_key(claim), "{claim}");
    }
}

#[test]
fn private_key_jwt_assertions_carry_the_rfc_7523_claims() {
    use crate::crypto::signing::NativeSigner;
    use crate::oidc::discovery::ProviderMetadata;
    use crate::oidc::token::{exchange_code, ClientCall, JWT_BEARER_ASSERTION};
    use crate::testutil::{block_on, config_with, discovery_json, FakeHttp};
    let keys = TestKeys::new();
    let jwk = keys.private_jwk("ES256", "client-k1").to_string();
    let meta = ProviderMetadata::parse(discovery_json().as_bytes(), "https://idp.example.com").unwrap();
    for (audience, expected_aud) in
        [("issuer", "https://idp.example.com"), ("endpoint", "https://idp.example.com/token")]
    {
        let config = config_with(&[
            ("CLIENT_AUTH", "private_key_jwt"),
            ("CLIENT_PRIVATE_KEY", &jwk),
            ("CLIENT_SECRET", ""),
            ("CLIENT_ASSERTION_AUDIENCE", audience),
        ]);
        let http = FakeHttp::default();
        http.route("/token", 200, json!({"access_token": "at", "token_type": "Bearer"}).to_string());
        let call = ClientCall { config: &config, http: &http, signer: &NativeSigner, nonces: None, now: NOW };
        block_on(exchange_code(&call, &meta, "code", "verifier")).unwrap();
        block_on(exchange_code(&call, &meta, "code", "verifier")).unwrap();
        let seen = http.seen.borrow();
        let forms: Vec<Vec<(String, String)>> = seen
            .iter()
            .filter(|(_, p, _)| p == "/token")
            .map(|(_, _, body)| url::form_urlencoded::parse(body.as_bytes()).into_owned().collect())
            .collect();
        let mut jtis = Vec::new();
        for form in &forms {
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(get("client_assertion_type").as_deref(), Some(JWT_BEARER_ASSERTION));
            assert_eq!(get("client_id").as_deref(), Some("spa"));
            assert_eq!(get("client_secret"), None);
            let assertion = get("client_assertion").unwrap();
            let public = json!({ "keys": [config.client_private_keys[0].public_jwk()] });
            let set = crate::oidc::jwk::JwkSet::parse(public.to_string().as_bytes()).unwrap();
            let jws = UntrustedJws::parse(&assertion).unwrap();
            assert_eq!(jws.kid(), Some("client-k1"));
            let claims = jws.verify_in_rust(&set).unwrap();
            assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("spa"), Some("spa")));
            assert_eq!(claims["aud"], expected_aud);
            assert_eq!(claims["iat"], NOW);
            assert_eq!(claims["exp"], NOW + 60);
            jtis.push(claims["jti"].as_str().unwrap().to_string());
        }
        assert_eq!(jtis.len(), 2);
        assert_ne!(jtis[0], jtis[1], "a fresh jti per assertion");
    }
}

/// A configuration with `DPOP_KEY` set to a fresh key of `alg`.
fn dpop_config(alg: &str) -> crate::config::Config {
    let jwk = TestKeys::new().private_jwk(alg, "dpop-k1").to_string();
    crate::testutil::config_with(&[("DPOP_KEY", &jwk)])
}

/// The header and claims of a DPoP proof, verified with the key in its own header.
fn open_proof(proof: &str) -> (serde_json::Value, serde_json::Map<String, serde_json::Value>) {
    let header: serde_json::Value =
        serde_json::from_slice(&crate::crypto::b64url_decode(proof.split('.').next().unwrap()).unwrap()).unwrap();
    let set = crate::oidc::jwk::JwkSet::parse(json!({ "keys": [header["jwk"]] }).to_string().as_bytes()).unwrap();
    (header, UntrustedJws::parse(proof).unwrap().verify_in_rust(&set).unwrap())
}

#[test]
fn dpop_key_setting_takes_one_es256_or_eddsa_key() {
    use crate::testutil::vars_with;
    let keys = TestKeys::new();
    for alg in ["ES256", "EdDSA"] {
        let c = dpop_config(alg);
        let key = c.dpop_key.as_ref().expect("DPOP_KEY parsed");
        assert_eq!(key.key().alg().name(), alg);
        assert_eq!(key.jkt(), key.key().jwk_thumbprint());
        assert!(!format!("{c:?}").contains(keys.private_jwk(alg, "dpop-k1")["d"].as_str().unwrap()));
    }
    assert!(crate::testutil::config_with(&[]).dpop_key.is_none());
    let two = json!({ "keys": [keys.private_jwk("ES256", "a"), keys.private_jwk("EdDSA", "b")] }).to_string();
    let rsa = keys.private_jwk("RS256", "r").to_string();
    let mut public_only = keys.private_jwk("ES256", "p");
    public_only.as_object_mut().unwrap().remove("d");
    for bad in [two, rsa, public_only.to_string(), "not json".to_string()] {
        let e = crate::config::Config::from_vars(&vars_with(&[("DPOP_KEY", &bad)])).unwrap_err();
        assert_eq!(e.setting, "DPOP_KEY", "{bad}");
    }
}

#[test]
fn dpop_binds_the_code_and_proves_possession_at_the_token_endpoint() {
    use crate::crypto::signing::NativeSigner;
    use crate::oidc::authorize::{authorization_params, LoginState};
    use crate::oidc::discovery::ProviderMetadata;
    use crate::oidc::token::{exchange_code, refresh, ClientCall};
    use crate::testutil::{block_on, discovery_json, FakeHttp};
    let config = dpop_config("ES256");
    let key = config.dpop_key.as_ref().unwrap();
    let login = LoginState::new("/".into(), NOW).unwrap();
    let params = authorization_params(&config, &login, &[]);
    assert_eq!(
        params.iter().filter(|(k, _)| k == "dpop_jkt").map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        [key.jkt()]
    );
    let plain = authorization_params(&crate::testutil::config_with(&[]), &login, &[]);
    assert!(plain.iter().all(|(k, _)| k != "dpop_jkt"));

    let meta = ProviderMetadata::parse(discovery_json().as_bytes(), "https://idp.example.com").unwrap();
    let http = FakeHttp::default();
    http.route("/token", 200, json!({"access_token": "at", "token_type": "DPoP", "refresh_token": "rt"}).to_string());
    let call = ClientCall { config: &config, http: &http, signer: &NativeSigner, nonces: None, now: NOW };
    assert!(block_on(exchange_code(&call, &meta, "code", "verifier")).unwrap().dpop);
    assert!(block_on(refresh(&call, &meta, "rt", &[])).unwrap().dpop);
    for headers in http.seen_headers.borrow().iter() {
        let (header, claims) =
            open_proof(headers.get("dpop").expect("a proof on every token request").to_str().unwrap());
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(
            (claims["htm"].as_str(), claims["htu"].as_str()),
            (Some("POST"), Some("https://idp.example.com/token"))
        );
        assert!(claims.get("ath").is_none(), "no access token goes with a token request");
    }
    // Any other token type is Bearer; without DPOP_KEY no proof is sent.
    let bearer = FakeHttp::default();
    bearer.route("/token", 200, json!({"access_token": "at", "token_type": "bearer"}).to_string());
    let plain_config = crate::testutil::config_with(&[]);
    let plain_call = ClientCall { config: &plain_config, http: &bearer, signer: &NativeSigner, nonces: None, now: NOW };
    assert!(!block_on(exchange_code(&plain_call, &meta, "code", "verifier")).unwrap().dpop);
    assert!(bearer.seen_headers.borrow()[0].get("dpop").is_none());
}

#[test]
fn resource_server_nonce_challenges() {
    use crate::oidc::dpop::{resource_challenge, NonceMemory};
    let dpop = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
    assert_eq!(resource_challenge([dpop].into_iter(), Some("n-1")).as_deref(), Some("n-1"));
    // A runtime joins several WWW-Authenticate headers with commas.
    let joined = format!("Bearer realm=\"api\", {dpop}");
    assert_eq!(resource_challenge([joined.as_str()].into_iter(), Some("n-1")).as_deref(), Some("n-1"));
    assert_eq!(resource_challenge(["dpop error=\"use_dpop_nonce\""].into_iter(), Some("n")).as_deref(), Some("n"));
    assert_eq!(resource_challenge([dpop].into_iter(), None), None, "no nonce, nothing to retry with");
    assert_eq!(resource_challenge([dpop].into_iter(), Some("bad nonce")), None, "space is not NQCHAR");
    assert_eq!(resource_challenge([dpop].into_iter(), Some(&"n".repeat(513))), None);
    assert_eq!(resource_challenge(["Bearer error=\"use_dpop_nonce\""].into_iter(), Some("n")), None);
    assert_eq!(resource_challenge(["DPoP error=\"invalid_token\""].into_iter(), Some("n")), None);
    assert_eq!(resource_challenge(["DPoPx error=\"use_dpop_nonce\""].into_iter(), Some("n")), None);

    let memory = NonceMemory::default();
    let api = url::Url::parse("https://api.example.com:8443/v1/things?x=1").unwrap();
    assert_eq!(crate::oidc::dpop::origin_of(&api), "https://api.example.com:8443");
    memory.remember("https://api.example.com:8443", "n-1".into());
    memory.remember("https://api.example.com:8443", "n-2".into());
    assert_eq!(memory.get("https://api.example.com:8443").as_deref(), Some("n-2"));
    assert_eq!(memory.get("https://other.example.com"), None);
    for i in 0..100 {
        memory.remember(&format!("https://h{i}.example"), "n".into());
    }
    assert!(memory.get("https://h99.example").is_some(), "bounded, the newest kept");
    assert!(memory.get("https://h0.example").is_none(), "the oldest forgotten");
    assert!(memory.get("https://api.example.com:8443").is_none());
}

#[test]
fn token_requests_answer_one_nonce_challenge_with_a_fresh_proof_and_assertion() {
    use crate::crypto::signing::NativeSigner;
    use crate::oidc::discovery::ProviderMetadata;
    use crate::oidc::token::{exchange_code, ClientCall, TokenError, TokenHttp};
    use crate::testutil::{block_on, config_with, discovery_json, FakeHttp};
    use oauth2::AsyncHttpClient;
    let keys = TestKeys::new();
    let config = config_with(&[
        ("DPOP_KEY", &keys.private_jwk("ES256", "dpop-k1").to_string()),
        ("CLIENT_AUTH", "private_key_jwt"),
        ("CLIENT_PRIVATE_KEY", &keys.private_jwk("EdDSA", "client-k1").to_string()),
        ("CLIENT_SECRET", ""),
    ]);
    let meta = ProviderMetadata::parse(discovery_json().as_bytes(), "https://idp.example.com").unwrap();
    let http = FakeHttp::default();
    // The fake challenges every time; the client resends once only.
    http.route_with_headers(
        "/token",
        400,
        json!({"error": "use_dpop_nonce"}).to_string(),
        &[("dpop-nonce", "nonce-1")],
    );
    let call = ClientCall { config: &config, http: &http, signer: &NativeSigner, nonces: None, now: NOW };
    let outcome = block_on(exchange_code(&call, &meta, "code", "verifier"));
    assert_eq!(outcome.unwrap_err(), TokenError::Refused("use_dpop_nonce".into()));
    assert_eq!(http.count("/token"), 2, "one resend");
    let headers = http.seen_headers.borrow().clone();
    let (_, first) = open_proof(headers[0].get("dpop").unwrap().to_str().unwrap());
    let (_, second) = open_proof(headers[1].get("dpop").unwrap().to_str().unwrap());
    assert!(first.get("nonce").is_none());
    assert_eq!(second["nonce"], "nonce-1");
    assert_ne!(first["jti"], second["jti"]);
    // A client assertion's jti is single-use: the resend carries a fresh assertion, and
    // otherwise the same form.
    let seen = http.seen.borrow().clone();
    let forms: Vec<Vec<(String, String)>> =
        seen.iter().map(|(_, _, body)| url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()).collect();
    let assertion_jti = |form: &[(String, String)]| {
        let assertion = &form.iter().find(|(k, _)| k == "client_assertion").unwrap().1;
        let payload = crate::crypto::b64url_decode(assertion.split('.').nth(1).unwrap()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["jti"].as_str().unwrap().to_string()
    };
    assert_ne!(assertion_jti(&forms[0]), assertion_jti(&forms[1]));
    let without_assertion =
        |form: &[(String, String)]| form.iter().filter(|(k, _)| k != "client_assertion").cloned().collect::<Vec<_>>();
    assert_eq!(without_assertion(&forms[0]), without_assertion(&forms[1]));

    // The nonce is kept for the client's later requests.
    let client = TokenHttp::new(call, &meta);
    let request = http::Request::post("https://idp.example.com/token").body(b"grant_type=x".to_vec()).unwrap();
    assert_eq!(block_on(client.call(request)).unwrap().status(), 400);
    assert_eq!(client.nonce().as_deref(), Some("nonce-1"));
}

#[test]
fn the_token_endpoints_nonce_is_kept_for_the_isolates_next_requests() {
    use crate::crypto::signing::NativeSigner;
    use crate::oidc::discovery::ProviderMetadata;
    use crate::oidc::dpop::NonceMemory;
    use crate::oidc::token::{refresh, ClientCall};
    use crate::testutil::{block_on, config_with, discovery_json, FakeHttp};
    let config = config_with(&[("DPOP_KEY", &TestKeys::new().private_jwk("ES256", "dpop-k1").to_string())]);
    let meta = ProviderMetadata::parse(discovery_json().as_bytes(), "https://idp.example.com").unwrap();
    let memory = NonceMemory::default();
    let http = FakeHttp::default();
    // A success that hands out the next nonce (RFC 9449 section 8.2).
    http.route_with_headers(
        "/token",
        200,
        json!({"access_token": "at", "token_type": "DPoP"}).to_string(),
        &[("dpop-nonce", "next-1")],
    );
    let call = ClientCall { config: &config, http: &http, signer: &NativeSigner, nonces: Some(&memory), now: NOW };
    block_on(refresh(&call, &meta, "rt", &[])).unwrap();
    assert_eq!(memory.get("https://idp.example.com").as_deref(), Some("next-1"));
    block_on(refresh(&call, &meta, "rt", &[])).unwrap();
    let headers = http.seen_headers.borrow().clone();
    let (_, first) = open_proof(headers[0].get("dpop").unwrap().to_str().unwrap());
    let (_, second) = open_proof(headers[1].get("dpop").unwrap().to_str().unwrap());
    assert!(first.get("nonce").is_none());
    assert_eq!(second["nonce"], "next-1", "a later request starts with the remembered nonce");
    assert_eq!(http.count("/token"), 2, "no challenge round trip");
}

/// Tokens are credentials: the `Debug` of what holds one never shows it.
#[test]
fn debug_never_shows_a_token() {
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let token = format!("{}.{}.c2lnbmF0dXJl", b64(r#"{"alg":"RS256","kid":"k1"}"#), b64(r#"{"sub":"secret-sub"}"#));
    let jws = super::jws::UntrustedJws::parse(&token).unwrap();
    let shown = format!("{jws:?}");
    assert!(shown.contains("k1") && !shown.contains("c2lnbmF0dXJl") && !shown.contains(&token[..20]), "{shown}");
    let field = super::token::IdTokenField { id_token: Some(token.clone()) };
    let shown = format!("{field:?}");
    assert!(shown.contains("[redacted]") && !shown.contains(&token[..20]), "{shown}");
}
