//! The agent natively, against an in-memory provider that signs real JWTs.

use super::*;
use crate::crypto::{seal, Purpose};
use crate::lifecycle::SharedState;
use crate::oidc::authorize::LoginState;
use crate::session::cookie_store::CookieStore;
use crate::session::store::SessionStore;
use crate::testutil::{block_on, config_with, discovery_json, FakeHttp, TestKeys};
use serde_json::json;

const NOW: u64 = 1_800_000_000;

struct Fixture {
    config: Config,
    shared: SharedState,
    http: FakeHttp,
    keys: TestKeys,
}

impl Fixture {
    fn new() -> Self {
        let keys = TestKeys::new();
        let http = FakeHttp::default();
        http.route("/.well-known/openid-configuration", 200, discovery_json());
        http.route("/jwks", 200, keys.jwks().to_string());
        Self { config: config_with(&[]), shared: SharedState::default(), http, keys }
    }

    fn ctx<'a>(&'a self, store: &'a dyn SessionStore, now: u64) -> RequestContext<'a> {
        RequestContext {
            config: &self.config,
            shared: &self.shared,
            http: &self.http,
            signer: &crate::crypto::signing::NativeSigner,
            verifier: &crate::crypto::verifying::RustCryptoVerifier,
            store,
            kv: None,
            coordinator: None,
            now,
            outcome: Default::default(),
        }
    }

    fn run(&self, request: HttpRequest, now: u64) -> HttpResponse {
        let path = request.uri().path().strip_prefix("/auth").unwrap().to_string();
        let store = CookieStore { config: &self.config, deny_list: None, cache: None };
        block_on(handle(&self.ctx(&store, now), &request, &path))
    }

    fn id_token(&self, alg: &str, nonce: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut claims = json!({
            "iss": "https://idp.example.com", "aud": "spa", "sub": "user-1", "nonce": nonce,
            "iat": NOW, "exp": NOW + 300, "name": "Ada", "sid": "sid-9",
        });
        change(&mut claims);
        self.keys.sign(alg, &claims)
    }

    fn token_response(&self, id_token: &str) {
        self.http.route(
            "/token",
            200,
            json!({ "access_token": "at-1", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-1", "id_token": id_token }).to_string(),
        );
    }

    /// A login attempt's cookie (`name=value`) and the state/nonce inside it.
    fn login_cookie(&self, created_at: u64) -> (String, LoginState) {
        self.login_cookie_for(LoginState::new("/return/here".into(), created_at).unwrap())
    }

    fn login_cookie_for(&self, login: LoginState) -> (String, LoginState) {
        let set = login_cookie::store(&self.config, &login).unwrap();
        (set.split(';').next().unwrap().to_string(), login)
    }

    /// The bare `{prefix}-login` cookie of releases before per-attempt cookies.
    fn legacy_login_cookie(&self, created_at: u64) -> (String, LoginState) {
        let login = LoginState::new("/return/here".into(), created_at).unwrap();
        let name = self.config.login_cookie_name();
        let sealed =
            seal(&self.config.cookie_keys, Purpose::Cookie, name.as_bytes(), &serde_json::to_vec(&login).unwrap())
                .unwrap();
        (format!("{name}={sealed}"), login)
    }

    fn callback(&self, cookie: &str, query: &str) -> HttpResponse {
        let request = http::Request::get(format!("https://app.example.com/auth/callback?{query}"))
            .header("cookie", cookie)
            .body(Vec::new())
            .unwrap();
        self.run(request, NOW)
    }
}

fn location(response: &HttpResponse) -> &str {
    response.headers()["location"].to_str().unwrap()
}

fn set_cookies(response: &HttpResponse) -> Vec<String> {
    response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn sets_session(response: &HttpResponse) -> bool {
    set_cookies(response).iter().any(|c| c.starts_with("__Host-bff-session") && !c.contains("Max-Age=0"))
}

#[test]
fn callback_success_redeems_code_with_verifier_and_sets_session() {
    let f = Fixture::new();
    let (cookie, login) = f.login_cookie(NOW - 30);
    f.token_response(&f.id_token("ES256", &login.nonce, |_| {}));
    let response =
        f.callback(&cookie, &format!("code=the-code&state={}&iss=https%3A%2F%2Fidp.example.com", login.state));
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/return/here");
    assert!(sets_session(&response));
    let own = login_cookie::name_for(&f.config, &login.state);
    assert!(set_cookies(&response).iter().any(|c| c.starts_with(&format!("{own}=;")) && c.contains("Max-Age=0")));
    let seen = f.http.seen.borrow();
    let (method, _, body) = seen.iter().find(|(_, p, _)| p == "/token").unwrap();
    assert_eq!(method, "POST");
    assert!(body.contains("grant_type=authorization_code"));
    assert!(body.contains("code=the-code"));
    assert!(body.contains(&format!("code_verifier={}", login.verifier)));
    assert!(body.contains("redirect_uri=https%3A%2F%2Fapp.example.com%2Fauth%2Fcallback"));
    assert!(!body.contains("client-secret-value"), "secret goes in the Basic header, not the body");
}

#[test]
fn id_token_defects_are_invalid_id_token_and_set_nothing() {
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, &str, Change)> = vec![
        ("wrong nonce", "ES256", Box::new(|c| c["nonce"] = json!("other"))),
        ("wrong iss", "ES256", Box::new(|c| c["iss"] = json!("https://evil.example"))),
        ("wrong aud", "RS256", Box::new(|c| c["aud"] = json!("someone-else"))),
        ("wrong azp", "RS256", Box::new(|c| c["azp"] = json!("someone-else"))),
        ("expired", "PS256", Box::new(|c| c["exp"] = json!(NOW - 3600))),
        (
            "no sub",
            "EdDSA",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
        (
            "no iat",
            "EdDSA",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
    ];
    for (name, alg, change) in cases {
        let f = Fixture::new();
        let (cookie, login) = f.login_cookie(NOW);
        f.token_response(&f.id_token(alg, &login.nonce, change));
        let response = f.callback(&cookie, &format!("code=c&state={}&iss=https://idp.example.com", login.state));
        assert_eq!(location(&response), "/?auth_error=invalid_id_token", "{name}");
        assert!(!sets_session(&response), "{name}");
    }
}

#[test]
fn forged_algorithms_are_refused() {
    let f = Fixture::new();
    let (cookie, login) = f.login_cookie(NOW);
    let claims =
        json!({"iss":"https://idp.example.com","aud":"spa","sub":"u","nonce":login.nonce,"iat":NOW,"exp":NOW+60});
    for header in [json!({"alg":"none"}), json!({"alg":"HS256","kid":"rsa1"})] {
        // HS256 keyed with the client secret: the classic confusion attack.
        let token = f.keys.sign_with_header(&header, &claims, b"client-secret-value");
        f.token_response(&token);
        let response = f.callback(&cookie, &format!("code=c&state={}&iss=https://idp.example.com", login.state));
        assert_eq!(location(&response), "/?auth_error=invalid_id_token", "{header}");
    }
}

#[test]
fn unknown_kid_refetches_jwks_once_and_accepts_rotated_key() {
    let f = Fixture::new();
    // Warm the cache with a JWKS that lacks the new key.
    f.http.route("/jwks", 200, json!({"keys": [f.keys.jwks()["keys"][1].clone()]}).to_string());
    let (cookie, login) = f.login_cookie(NOW);
    f.token_response(&f.id_token("RS256", &login.nonce, |_| {}));
    block_on(crate::oidc::provider::metadata(&f.shared.provider, &f.http, &f.config, NOW)).unwrap();
    let first = f.callback(&cookie, &format!("code=c&state={}&iss=https://idp.example.com", login.state));
    assert_eq!(location(&first), "/?auth_error=invalid_id_token", "unknown kid, re-fetch finds nothing new");
    assert_eq!(f.http.count("/jwks"), 2, "one normal fetch and one forced re-fetch");

    // The provider rotates; within 10 s no second forced re-fetch happens.
    f.http.route("/jwks", 200, f.keys.jwks().to_string());
    let (cookie, login) = f.login_cookie(NOW);
    f.token_response(&f.id_token("RS256", &login.nonce, |_| {}));
    let second = f.callback(&cookie, &format!("code=c&state={}&iss=https://idp.example.com", login.state));
    assert_eq!(location(&second), "/?auth_error=invalid_id_token");
    assert_eq!(f.http.count("/jwks"), 2, "rate-limited");

    // Ten seconds later the rotated key is fetched and accepted.
    let (cookie, login) = f.login_cookie(NOW + 10);
    f.token_response(&f.id_token("RS256", &login.nonce, |_| {}));
    let request = http::Request::get(format!(
        "https://app.example.com/auth/callback?code=c&state={}&iss=https://idp.example.com",
        login.state
    ))
    .header("cookie", cookie)
    .body(Vec::new())
    .unwrap();
    let third = f.run(request, NOW + 10);
    assert_eq!(location(&third), "/return/here");
    assert_eq!(f.http.count("/jwks"), 3);
}

#[test]
fn stale_login_cookie_is_login_expired() {
    let f = Fixture::new();
    let (cookie, login) = f.login_cookie(NOW - 601);
    let response = f.callback(&cookie, &format!("code=c&state={}&iss=https://idp.example.com", login.state));
    assert_eq!(location(&response), "/?auth_error=login_expired");
    assert_eq!(f.http.count("/token"), 0, "no code redeemed");
}

#[test]
fn repeated_parameters_are_refused() {
    let f = Fixture::new();
    let (cookie, login) = f.login_cookie(NOW);
    let response = f.callback(&cookie, &format!("code=c&state={0}&state={0}&iss=https://idp.example.com", login.state));
    assert_eq!(location(&response), "/?auth_error=login_failed");
}

#[test]
fn discovery_naming_another_issuer_is_a_sticky_configuration_error() {
    let f = Fixture::new();
    f.http.route(
        "/.well-known/openid-configuration",
        200,
        discovery_json().replace("\"https://idp.example.com\"", "\"https://other.example.com\""),
    );
    let login = || http::Request::get("https://app.example.com/auth/login").body(Vec::new()).unwrap();
    let response = f.run(login(), NOW);
    assert_eq!(response.status(), 500);
    assert!(String::from_utf8_lossy(response.body()).contains("configuration_error"));
    f.http.route("/.well-known/openid-configuration", 200, discovery_json());
    assert_eq!(f.run(login(), NOW + 7200).status(), 500, "stays refused for the isolate");
    assert_eq!(f.http.count("/.well-known/openid-configuration"), 1);
}

#[test]
fn provider_down_is_idp_unavailable() {
    let f = Fixture::new();
    f.http.routes.borrow_mut().clear();
    let response = f.run(http::Request::get("https://app.example.com/auth/login").body(Vec::new()).unwrap(), NOW);
    assert_eq!(response.status(), 502);
    assert!(String::from_utf8_lossy(response.body()).contains("idp_unavailable"));
    f.http.route("/.well-known/openid-configuration", 500, "oops");
    assert_eq!(
        f.run(http::Request::get("https://app.example.com/auth/login").body(Vec::new()).unwrap(), NOW).status(),
        502
    );
}

#[test]
fn two_logins_in_flight_both_complete_in_either_order() {
    for first_done in [0, 1] {
        let f = Fixture::new();
        let (a, login_a) = f.login_cookie(NOW - 20);
        let (b, login_b) = f.login_cookie(NOW - 10);
        let jar = format!("{a}; {b}");
        let logins = [&login_a, &login_b];
        for i in [first_done, 1 - first_done] {
            let login = logins[i];
            f.token_response(&f.id_token("ES256", &login.nonce, |_| {}));
            let response = f.callback(&jar, &format!("code=c{i}&state={}&iss=https://idp.example.com", login.state));
            assert_eq!(location(&response), "/return/here", "login {i} (first done: {first_done})");
            assert!(sets_session(&response));
            // Only its own login cookie is cleared.
            let cleared: Vec<String> = set_cookies(&response).into_iter().filter(|c| c.contains("-login.")).collect();
            assert_eq!(cleared.len(), 1, "{cleared:?}");
            assert!(cleared[0].starts_with(&login_cookie::name_for(&f.config, &login.state)));
        }
    }
}

#[test]
fn a_state_of_no_attempt_is_state_mismatch_and_no_cookie_is_login_expired() {
    let f = Fixture::new();
    let (cookie, _) = f.login_cookie(NOW);
    let response = f.callback(&cookie, "code=c&state=forged&iss=https://idp.example.com");
    assert_eq!(location(&response), "/?auth_error=state_mismatch");
    assert!(!set_cookies(&response).iter().any(|c| c.contains("-login")), "another tab's login is left alone");
    let response = f.callback("theme=dark", "code=c&state=forged&iss=https://idp.example.com");
    assert_eq!(location(&response), "/?auth_error=login_expired");
    assert_eq!(f.http.count("/token"), 0);
}

#[test]
fn a_duplicated_login_cookie_is_login_expired() {
    let f = Fixture::new();
    let (cookie, login) = f.login_cookie(NOW);
    f.token_response(&f.id_token("ES256", &login.nonce, |_| {}));
    let response = f
        .callback(&format!("{cookie}; {cookie}"), &format!("code=c&state={}&iss=https://idp.example.com", login.state));
    assert_eq!(location(&response), "/?auth_error=login_expired");
    assert_eq!(f.http.count("/token"), 0, "no code redeemed");
}

#[test]
fn a_legacy_login_cookie_completes_its_login() {
    let f = Fixture::new();
    let (cookie, login) = f.legacy_login_cookie(NOW);
    f.token_response(&f.id_token("ES256", &login.nonce, |_| {}));
    let response = f.callback(&cookie, &format!("code=c&state={}&iss=https://idp.example.com", login.state));
    assert_eq!(location(&response), "/return/here");
    assert!(set_cookies(&response).iter().any(|c| c.starts_with("__Host-bff-login=;")));
}

#[test]
fn step_up_requests_are_checked_at_the_callback() {
    use crate::oidc::id_token::Requested;
    let cases: [(Requested, serde_json::Value, &str); 4] = [
        (Requested { acr_values: Some("urn:mfa".into()), max_age: None }, json!({"acr": "urn:mfa"}), "/return/here"),
        (
            Requested { acr_values: Some("urn:mfa".into()), max_age: None },
            json!({"acr": "urn:pwd"}),
            "/?auth_error=invalid_id_token",
        ),
        (Requested { acr_values: None, max_age: Some(60) }, json!({"auth_time": NOW - 30}), "/return/here"),
        (Requested { acr_values: None, max_age: Some(60) }, json!({}), "/?auth_error=invalid_id_token"),
    ];
    for (requested, extra, expected) in cases {
        let f = Fixture::new();
        let login = LoginState { requested, ..LoginState::new("/return/here".into(), NOW).unwrap() };
        let (cookie, login) = f.login_cookie_for(login);
        f.token_response(&f.id_token("ES256", &login.nonce, |c| {
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
        }));
        let response = f.callback(&cookie, &format!("code=c&state={}&iss=https://idp.example.com", login.state));
        assert_eq!(location(&response), expected, "{extra}");
    }
}

#[test]
fn login_sends_step_up_parameters_and_remembers_them() {
    let f = Fixture::new();
    let request = http::Request::get(
        "https://app.example.com/auth/login?return_to=/a/..//evil.example&acr_values=urn:mfa&max_age=120",
    )
    .body(Vec::new())
    .unwrap();
    let response = f.run(request, NOW);
    assert_eq!(response.status(), 302);
    let url = location(&response);
    assert!(url.contains("acr_values=urn%3Amfa") && url.contains("max_age=120"), "{url}");
    let set = set_cookies(&response);
    let pair = set.iter().find(|c| c.contains("-login.")).unwrap().split(';').next().unwrap().to_string();
    let (name, value) = pair.split_once('=').unwrap();
    let state = url.split("state=").nth(1).unwrap().split('&').next().unwrap();
    match login_cookie::find(&f.config, &[(name, value)], state) {
        login_cookie::Found::Login(login, _) => {
            assert_eq!(login.requested.max_age, Some(120));
            assert_eq!(login.requested.acr_values.as_deref(), Some("urn:mfa"));
            assert_eq!(login.return_to, "/", "a return_to that normalises to //host lands on /");
        }
        other => panic!("{other:?}"),
    }
    let bad = http::Request::get("https://app.example.com/auth/login?max_age=soon").body(Vec::new()).unwrap();
    assert_eq!(f.run(bad, NOW).status(), 400);
}

#[test]
fn a_parameter_given_twice_reaches_the_provider_once_with_its_first_value() {
    let f = Fixture::new();
    let prompts = |url: &str| -> Vec<String> {
        let url = url::Url::parse(url).unwrap();
        url.query_pairs().filter(|(k, _)| k == "prompt").map(|(_, v)| v.into_owned()).collect()
    };
    let request =
        http::Request::get("https://app.example.com/auth/login?prompt=login&prompt=none").body(Vec::new()).unwrap();
    let response = f.run(request, NOW);
    assert_eq!(response.status(), 302);
    assert_eq!(prompts(location(&response)), ["login"]);
    // The JSON variant: an object with a name twice keeps the first (a map kept the last).
    let request = http::Request::post("https://app.example.com/auth/login/start")
        .header("x-csrf", "1")
        .header("content-type", "application/json")
        .body(br#"{"params":{"prompt":"login","max_age":"60","prompt":"none","max_age":"0"}}"#.to_vec())
        .unwrap();
    let response = f.run(request, NOW);
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let url = body["authorization_url"].as_str().unwrap();
    assert_eq!(prompts(url), ["login"]);
    assert!(url.contains("max_age=60") && !url.contains("max_age=0"), "{url}");
    // Values must still be strings, and every name allowed.
    for bad in [r#"{"params":{"prompt":1}}"#, r#"{"params":{"prompt":"login","evil":"x"}}"#, r#"{"params":[]}"#] {
        let request = http::Request::post("https://app.example.com/auth/login/start")
            .header("x-csrf", "1")
            .body(bad.as_bytes().to_vec())
            .unwrap();
        assert_eq!(f.run(request, NOW).status(), 400, "{bad}");
    }
}

/// `n` concurrent `GET /auth/health` at `now`: their statuses.
fn health_burst(f: &Fixture, n: usize, now: u64) -> Vec<u16> {
    let store = CookieStore { config: &f.config, deny_list: None, cache: None };
    let ctx = f.ctx(&store, now);
    let requests: Vec<HttpRequest> =
        (0..n).map(|_| http::Request::get("https://app.example.com/auth/health").body(Vec::new()).unwrap()).collect();
    let answers = block_on(futures_util::future::join_all(requests.iter().map(|r| handle(&ctx, r, "/health"))));
    answers.iter().map(|r| r.status().as_u16()).collect()
}

const DISCOVERY: &str = "/.well-known/openid-configuration";

#[test]
fn health_checks_make_one_discovery_fetch_per_interval_however_many_arrive() {
    use crate::oidc::provider::HEALTH_INTERVAL_MS;
    let f = Fixture::new();
    // Each answer takes a few polls: the checks of a burst are in flight together.
    f.http.send_polls.set(5);
    assert_eq!(health_burst(&f, 20, NOW), vec![200; 20]);
    assert_eq!(f.http.count(DISCOVERY), 1, "a burst shares one fetch");
    assert_eq!(health_burst(&f, 20, NOW), vec![200; 20]);
    assert_eq!(f.http.count(DISCOVERY), 1, "and its outcome answers for the interval");
    // The login uses the document the check brought.
    assert_eq!(
        f.run(http::Request::get("https://app.example.com/auth/login").body(Vec::new()).unwrap(), NOW).status(),
        302
    );
    assert_eq!(f.http.count(DISCOVERY), 1);

    // The provider goes down: seen at the first check after the interval, by one fetch.
    f.http.route(DISCOVERY, 500, "down");
    f.http.clock_ms.set(f.http.clock_ms.get() + HEALTH_INTERVAL_MS);
    assert_eq!(health_burst(&f, 20, NOW + 10), vec![503; 20]);
    assert_eq!(f.http.count(DISCOVERY), 2);
    // The isolate's cached document (kept for logins through an outage) never answers a
    // check; the failure is not fetched again within the interval either.
    f.http.route(DISCOVERY, 200, discovery_json());
    assert_eq!(health_burst(&f, 5, NOW + 10), vec![503; 5]);
    assert_eq!(f.http.count(DISCOVERY), 2);
    // Back: seen at the first check after the interval.
    f.http.clock_ms.set(f.http.clock_ms.get() + HEALTH_INTERVAL_MS);
    assert_eq!(health_burst(&f, 20, NOW + 20), vec![200; 20]);
    assert_eq!(f.http.count(DISCOVERY), 3);
}

#[test]
fn a_logins_discovery_fetch_answers_health_and_a_dropped_check_releases_the_others() {
    let f = Fixture::new();
    assert_eq!(
        f.run(http::Request::get("https://app.example.com/auth/login").body(Vec::new()).unwrap(), NOW).status(),
        302
    );
    assert_eq!(health_burst(&f, 3, NOW), vec![200; 3]);
    assert_eq!(f.http.count(DISCOVERY), 1, "the login's fetch is a check");

    // A check whose request goes away while it fetches: the next one fetches at once
    // rather than waiting out the interval.
    let f = Fixture::new();
    f.http.send_polls.set(1_000);
    let store = CookieStore { config: &f.config, deny_list: None, cache: None };
    let ctx = f.ctx(&store, NOW);
    let request = http::Request::get("https://app.example.com/auth/health").body(Vec::new()).unwrap();
    {
        use std::future::Future;
        let mut first = Box::pin(handle(&ctx, &request, "/health"));
        assert!(first.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())).is_pending());
    }
    f.http.send_polls.set(0);
    assert_eq!(health_burst(&f, 1, NOW), vec![200]);
    assert_eq!(f.http.count(DISCOVERY), 2);
    assert!(f.http.clock_ms.get() < 100, "no wait for the dropped check: {} ms", f.http.clock_ms.get());
}

/// The `Cookie` header carrying `session` sealed under `config`'s keys.
fn session_cookie_header(config: &crate::config::Config, session: &crate::session::Session) -> String {
    let set = crate::session::cookie_store::store(config, session, &[], NOW).unwrap();
    set.iter().map(|c| c.split(';').next().unwrap()).collect::<Vec<_>>().join("; ")
}

#[test]
fn session_is_answered_without_io_exactly_as_the_full_path_would() {
    let f = Fixture { config: crate::testutil::config_with(&[("SESSION_IDLE_TIMEOUT", "1800")]), ..Fixture::new() };
    let session = crate::session::Session { access_expires_at: NOW + 3600, ..crate::testutil::session_at(NOW) };
    let cookie = session_cookie_header(&f.config, &session);
    let request = |method: &str, extra: &[(&str, &str)]| {
        let mut b = http::Request::builder()
            .method(method)
            .uri("https://app.example.com/auth/session")
            .header("cookie", &cookie);
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(Vec::new()).unwrap()
    };
    let direct =
        super::session_info::direct(&f.config, &request("GET", &[]), false, None, NOW).expect("answered without I/O");
    let full = f.run(request("GET", &[]), NOW);
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.body(), full.body(), "the same JSON as the full path");
    assert!(String::from_utf8_lossy(direct.body()).contains("\"authenticated\":true"));
    assert!(direct.headers().get("set-cookie").is_none() && full.headers().get("set-cookie").is_none());
    assert!(f.http.seen.borrow().is_empty(), "no I/O either way");

    // Left to the full path: a KV binding (deny-list), activity to record, another method.
    assert!(super::session_info::direct(&f.config, &request("GET", &[]), true, None, NOW).is_none());
    let idle = f.config.session_idle_timeout;
    let later = (NOW..NOW + 3000).step_by(30).find(|t| session.activity_due(*t, idle)).expect("activity falls due");
    assert!(session.check_active(later, idle).is_ok() && !session.refresh_due(later));
    assert!(super::session_info::direct(&f.config, &request("GET", &[]), false, None, later).is_none());
    assert!(super::session_info::direct(&f.config, &request("GET", &[]), false, None, later - 30).is_some());
    assert!(super::session_info::direct(&f.config, &request("POST", &[]), false, None, NOW).is_none());
    // No session cookie at all (other cookies or none; KV bound or not): answered without
    // I/O, byte for byte and header for header as the full path answers it, nothing set.
    let visitor = |cookie: Option<&str>| {
        let b = http::Request::builder().uri("https://app.example.com/auth/session");
        let b = match cookie {
            Some(c) => b.header("cookie", c),
            None => b,
        };
        b.body(Vec::new()).unwrap()
    };
    for cookie in [None, Some("theme=dark; __Host-bff-login-abc=x")] {
        for kv_bound in [false, true] {
            let direct = super::session_info::direct(&f.config, &visitor(cookie), kv_bound, None, NOW)
                .expect("a first visit is answered without I/O");
            let full = f.run(visitor(cookie), NOW);
            assert_eq!((direct.status(), direct.body()), (full.status(), full.body()), "{cookie:?}");
            assert_eq!(direct.body(), br#"{"authenticated":false}"#);
            for (name, value) in full.headers() {
                assert_eq!(direct.headers().get(name), Some(value), "{name}");
            }
            assert!(direct.headers().get("set-cookie").is_none());
        }
    }
    // A session store in KV: left to the full path (which reports a missing binding).
    let kv = crate::testutil::config_with(&[("SESSION_STORE", "kv")]);
    assert!(super::session_info::direct(&kv, &visitor(None), false, None, NOW).is_none());
    assert!(f.http.seen.borrow().is_empty(), "no I/O either way");
}

#[test]
fn the_direct_session_answer_carries_the_cors_headers_of_a_trusted_origin() {
    let f = Fixture {
        config: crate::testutil::config_with(&[("TRUSTED_ORIGINS", "https://partner.example")]),
        ..Fixture::new()
    };
    let session = crate::session::Session { access_expires_at: NOW + 3600, ..crate::testutil::session_at(NOW) };
    let cookie = session_cookie_header(&f.config, &session);
    let request = http::Request::builder()
        .uri("https://app.example.com/auth/session")
        .header("cookie", &cookie)
        .header("origin", "https://partner.example")
        .body(Vec::new())
        .unwrap();
    let direct = super::session_info::direct(&f.config, &request, false, None, NOW).expect("answered without I/O");
    let full = f.run(request, NOW);
    for name in ["access-control-allow-origin", "access-control-allow-credentials", "vary"] {
        assert_eq!(direct.headers().get(name), full.headers().get(name), "{name}");
    }
    assert_eq!(direct.headers().get("access-control-allow-origin").unwrap(), "https://partner.example");
}

#[test]
fn the_direct_session_answer_is_remembered_per_cookie_and_stays_the_full_paths() {
    let f = Fixture::new();
    let cache = crate::session::opened_cache::OpenedCache::default();
    // A small session (one cookie) and one whose ID token makes the cookie come in chunks.
    let big_claims = crate::crypto::b64url(format!(r#"{{"sub":"u","name":"{}"}}"#, "N".repeat(3000)).as_bytes());
    let sessions = [
        crate::session::Session { access_expires_at: NOW + 3600, ..crate::testutil::session_at(NOW) },
        crate::session::Session {
            access_expires_at: NOW + 3600,
            id_token: format!("h.{big_claims}.s"),
            ..crate::testutil::session_at(NOW)
        },
    ];
    for session in &sessions {
        let cookie = session_cookie_header(&f.config, session);
        let request = || {
            http::Request::builder()
                .uri("https://app.example.com/auth/session")
                .header("cookie", &cookie)
                .body(Vec::new())
                .unwrap()
        };
        let full = f.run(request(), NOW);
        for _ in 0..2 {
            let direct =
                super::session_info::direct(&f.config, &request(), false, Some(&cache), NOW).expect("no I/O needed");
            assert_eq!(direct.body(), full.body());
            assert_eq!(direct.headers().get("content-type").unwrap(), "application/json");
        }
        let sealed = crate::session::cookie_store::sealed_text(&f.config, &crate::agent::request_cookies(&request()))
            .into_owned();
        let remembered = cache.get(&sealed).expect("remembered").session_answer(|_| b"not made again".to_vec());
        assert_eq!(&*remembered, full.body().as_slice());
    }
    assert!(session_cookie_header(&f.config, &sessions[1]).contains(".1="), "the second session is chunked");
}

#[test]
fn the_direct_session_answer_reads_only_its_direct_headers() {
    let f = Fixture {
        config: crate::testutil::config_with(&[("TRUSTED_ORIGINS", "https://partner.example")]),
        ..Fixture::new()
    };
    let session = crate::session::Session { access_expires_at: NOW + 3600, ..crate::testutil::session_at(NOW) };
    let cookie = session_cookie_header(&f.config, &session);
    let every = [
        ("cookie", cookie.as_str()),
        ("origin", "https://partner.example"),
        ("x-csrf", "1"),
        ("sec-fetch-site", "cross-site"),
        ("authorization", "Bearer x"),
        ("x-forwarded-for", "203.0.113.1"),
        ("referer", "https://partner.example/page"),
        ("accept", "application/json"),
    ];
    let build = |headers: &[(&str, &str)]| {
        let mut b = http::Request::builder().uri("https://app.example.com/auth/session");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Vec::new()).unwrap()
    };
    let only: Vec<_> = every.iter().copied().filter(|(n, _)| super::session_info::DIRECT_HEADERS.contains(n)).collect();
    let with_all = super::session_info::direct(&f.config, &build(&every), false, None, NOW).expect("answered");
    let with_direct = super::session_info::direct(&f.config, &build(&only), false, None, NOW).expect("answered");
    assert_eq!(with_all.body(), with_direct.body());
    assert_eq!(with_all.headers(), with_direct.headers());
    assert_eq!(with_direct.headers().get("access-control-allow-origin").unwrap(), "https://partner.example");
}
