//! The lifecycle natively: both stores (KV in memory), the in-memory provider, and a
//! coordinator that fails or answers.

use super::coordinator::{Answer, CoordinatorError, CoordinatorRequest, TokenSet};
use super::*;
use crate::session::cookie_store::CookieStore;
use crate::session::kv::MemoryKv;
use crate::session::kv_store::KvStore;
use crate::testutil::{block_on, config_with, discovery_json, FakeHttp};
use crate::web::cookies::parse_cookie_header;
use serde_json::json;
use std::cell::Cell;

const NOW: u64 = 1_800_000_000;

fn session(access_expires_at: u64, refresh_token: Option<&str>) -> Session {
    Session {
        access_token: "at-0".into(),
        access_expires_at,
        refresh_token: refresh_token.map(str::to_string),
        id_token: "h.eyJzdWIiOiJ1c2VyLTEifQ.s".into(),
        sub: "user-1".into(),
        sid: Some("sid-1".into()),
        created_at: NOW - 100,
        expires_at: NOW + 3600,
        last_seen: NOW - 100,
        login: Some("login-1".into()),
        generation: 0,
        dpop: false,
        route_tokens: Vec::new(),
    }
}

fn provider() -> FakeHttp {
    let http = FakeHttp::default();
    http.route("/.well-known/openid-configuration", 200, discovery_json());
    http.route(
        "/token",
        200,
        json!({ "access_token": "at-1", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-1" })
            .to_string(),
    );
    http
}

/// The browser's cookie header after `set_cookies`.
fn header_of(set_cookies: &[String]) -> String {
    set_cookies.iter().map(|c| c.split(';').next().unwrap().to_string()).collect::<Vec<_>>().join("; ")
}

struct Kv {
    config: Config,
    kv: MemoryKv,
    http: FakeHttp,
    shared: SharedState,
}

impl Kv {
    fn new(extra: &[(&str, &str)]) -> Self {
        let mut vars = vec![("SESSION_STORE", "kv")];
        vars.extend_from_slice(extra);
        let kv = MemoryKv::default();
        kv.now.set(NOW);
        Self { config: config_with(&vars), kv, http: provider(), shared: SharedState::default() }
    }

    fn store(&self) -> KvStore<'_> {
        KvStore { config: &self.config, kv: &self.kv }
    }

    fn ctx<'a>(&'a self, store: &'a KvStore<'a>, now: u64) -> RequestContext<'a> {
        RequestContext {
            config: &self.config,
            shared: &self.shared,
            signer: &crate::crypto::signing::NativeSigner,
            verifier: &crate::crypto::verifying::RustCryptoVerifier,
            http: &self.http,
            store,
            kv: Some(&self.kv),
            coordinator: None,
            now,
            outcome: Default::default(),
        }
    }

    /// A stored session; its cookie header.
    fn login(&self, s: &Session) -> String {
        header_of(&block_on(self.store().create(s, &[], NOW)).unwrap())
    }

    fn stored(&self, cookie: &str) -> Session {
        let cookies = parse_cookie_header([cookie].into_iter());
        match block_on(self.store().load(&cookies, NOW)) {
            Loaded::Valid { session, .. } => *session,
            other => panic!("no stored session: {other:?}"),
        }
    }
}

/// Cookie mode: configuration, the in-memory provider, per-isolate state.
struct Cookies {
    config: Config,
    http: FakeHttp,
    shared: SharedState,
}

impl Cookies {
    fn new(vars: &[(&str, &str)]) -> Self {
        Self { config: config_with(vars), http: provider(), shared: SharedState::default() }
    }

    fn store(&self) -> CookieStore<'_> {
        CookieStore { config: &self.config, deny_list: None, cache: None }
    }

    fn ctx<'a>(&'a self, store: &'a CookieStore<'a>, now: u64) -> RequestContext<'a> {
        RequestContext {
            config: &self.config,
            shared: &self.shared,
            signer: &crate::crypto::signing::NativeSigner,
            verifier: &crate::crypto::verifying::RustCryptoVerifier,
            http: &self.http,
            store,
            kv: None,
            coordinator: None,
            now,
            outcome: Default::default(),
        }
    }

    /// The browser's cookie header holding `s`.
    fn login(&self, s: &Session) -> String {
        header_of(&cookie_store::store(&self.config, s, &[], NOW).unwrap())
    }

    /// The session the browser holds after `set_cookies`.
    fn held(&self, set_cookies: &[String]) -> Session {
        let header = header_of(set_cookies);
        let cookies = parse_cookie_header([header.as_str()].into_iter());
        match cookie_store::load(&self.config, &cookies) {
            Loaded::Valid { session, .. } => *session,
            other => panic!("no session in the cookies: {other:?}"),
        }
    }
}

#[test]
fn a_missing_kv_record_is_unauthorized_and_keeps_the_cookie() {
    let f = Kv::new(&[]);
    let cookie = f.login(&session(NOW + 600, Some("rt-0")));
    f.kv.entries.borrow_mut().retain(|k, _| !k.starts_with("session:"));
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let e = block_on(open(&f.ctx(&store, NOW), &cookies)).err().expect("no session");
    assert!(matches!(e, BffError::SessionUnavailable(_)), "{e:?}");
    let response = error_response(&f.ctx(&store, NOW), &cookies, &e);
    assert_eq!(response.status(), 401);
    assert!(String::from_utf8_lossy(response.body()).contains("\"unauthorized\""));
    assert!(response.headers().get("set-cookie").is_none(), "the cookie is kept: the record may still arrive");
    // A cookie that does not open is cleared, as before.
    let bad = parse_cookie_header(["__Host-bff-session=k1.AAAA"].into_iter());
    let e = block_on(open(&f.ctx(&store, NOW), &bad)).err().unwrap();
    assert!(error_response(&f.ctx(&store, NOW), &bad, &e).headers().get("set-cookie").is_some());
}

#[test]
fn a_refresh_is_stored_in_kv_before_anything_else_happens() {
    let f = Kv::new(&[]);
    let cookie = f.login(&session(NOW + 10, Some("rt-0")));
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let mut call = block_on(open(&ctx, &cookies)).unwrap();
    block_on(call.refresh_if_due(&ctx)).unwrap();
    // The record already holds the new tokens, though the request has not finished (the
    // upstream call may fail next).
    let stored = f.stored(&cookie);
    assert_eq!(stored.access_token, "at-1");
    assert_eq!(stored.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(stored.generation, 1);
    let failed = block_on(call.fail(&ctx, &cookies, &BffError::UpstreamUnavailable("down".into())));
    assert_eq!(failed.status(), 502);
}

#[test]
fn a_refresh_in_cookie_mode_goes_out_with_an_error_response() {
    let f = Cookies::new(&[]);
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let cookie = f.login(&session(NOW + 10, Some("rt-0")));
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let mut call = block_on(open(&ctx, &cookies)).unwrap();
    block_on(call.refresh_if_due(&ctx)).unwrap();
    for e in
        [BffError::UpstreamUnavailable("down".into()), BffError::TokenRejected, BffError::IdpUnavailable("x".into())]
    {
        let response = block_on(call.fail(&ctx, &cookies, &e));
        let set: Vec<String> =
            response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        assert_eq!(f.held(&set).refresh_token.as_deref(), Some("rt-1"), "{} carries the refreshed session", e.code());
    }
    // An error that ends the session clears instead.
    let ended = block_on(call.fail(&ctx, &cookies, &BffError::SessionExpired("x".into())));
    assert!(ended.headers().get_all("set-cookie").iter().all(|v| v.to_str().unwrap().contains("Max-Age=0")));
}

/// docs/api.md section 5, "Refresh answers": every refusal ends the session and deletes the
/// KV record that still holds the refused refresh token; a DPoP nonce asked twice and a
/// 5xx do not.
#[test]
fn a_refused_refresh_ends_the_session_and_deletes_its_record() {
    // A KV session whose token is due, refreshed against a token endpoint answering
    // `status` with `body`: the error, its response, and whether the record is still there.
    let refresh_answered = |status: u16, body: &str| {
        let f = Kv::new(&[]);
        f.http.route("/token", status, body.to_string());
        let cookie = f.login(&session(NOW + 10, Some("rt-0")));
        let cookies = parse_cookie_header([cookie.as_str()].into_iter());
        let store = f.store();
        let ctx = f.ctx(&store, NOW);
        let mut call = block_on(open(&ctx, &cookies)).unwrap();
        let e = block_on(call.refresh_if_due(&ctx)).unwrap_err();
        let response = error_response(&ctx, &cookies, &e);
        let kept = f.kv.entries.borrow().keys().any(|k| k.starts_with("session:"));
        (e, response, kept)
    };
    let refusals: [(u16, &str, &str); 5] = [
        (400, r#"{"error":"invalid_grant"}"#, "invalid_grant"),
        (400, "", "status 400"),
        (401, "", "status 401"),
        (403, "<html>forbidden</html>", "status 403"),
        (401, r#"{"error":"invalid_client"}"#, "invalid_client"),
    ];
    for (status, body, why) in refusals {
        let (e, response, kept) = refresh_answered(status, body);
        assert_eq!(e.code(), "session_expired", "{status} {body:?}");
        assert!(e.to_string().contains(why), "{e} names {why}");
        assert!(!kept, "{status} {body:?}: record deleted");
        assert_eq!(response.status(), 401);
        assert!(response.headers().get_all("set-cookie").iter().all(|v| v.to_str().unwrap().contains("Max-Age=0")));
    }
    for (status, body) in [(503, r#"{"error":"temporarily_unavailable"}"#), (500, ""), (302, "")] {
        let (e, _, kept) = refresh_answered(status, body);
        assert_eq!(e.code(), "idp_unavailable", "{status} {body:?}");
        assert!(kept, "{status}: record kept");
    }
}

#[test]
fn a_refused_refresh_uses_a_record_refreshed_elsewhere() {
    let f = Kv::new(&[]);
    f.http.route("/token", 400, json!({ "error": "invalid_grant" }).to_string());
    let cookie = f.login(&session(NOW + 10, Some("rt-0")));
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let mut call = block_on(open(&ctx, &cookies)).unwrap();
    // Another isolate refreshes and writes the record in between.
    let Loaded::Valid { session: mut elsewhere, handle } = block_on(store.load(&cookies, NOW)) else { panic!() };
    elsewhere.refresh_token = Some("rt-9".into());
    elsewhere.access_expires_at = NOW + 600;
    block_on(store.update(&elsewhere, &handle, &[], NOW, true)).unwrap();
    block_on(call.refresh_if_due(&ctx)).unwrap();
    assert_eq!(call.session().refresh_token.as_deref(), Some("rt-9"));
}

#[test]
fn activity_is_recorded_every_quarter_of_the_idle_timeout() {
    let f = Kv::new(&[("SESSION_IDLE_TIMEOUT", "60")]);
    let mut s = session(NOW + 3000, Some("rt-0"));
    s.last_seen = NOW;
    let cookie = f.login(&s);
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let writes = || f.kv.writes.borrow().iter().filter(|k| k.starts_with("session:")).count();
    let before = writes();
    block_on(block_on(open(&f.ctx(&store, NOW + 14), &cookies)).unwrap().finish(&f.ctx(&store, NOW + 14)));
    assert_eq!(writes(), before, "within a quarter: nothing written");
    block_on(block_on(open(&f.ctx(&store, NOW + 15), &cookies)).unwrap().finish(&f.ctx(&store, NOW + 15)));
    assert_eq!(writes(), before + 1, "a quarter later: activity recorded");
    assert_eq!(f.stored(&cookie).last_seen, NOW + 15);
    // Active every 15 s, the session outlives several timeouts.
    for step in 2..=8 {
        let now = NOW + 15 * step;
        block_on(block_on(open(&f.ctx(&store, now), &cookies)).unwrap().finish(&f.ctx(&store, now)));
    }
    assert!(block_on(open(&f.ctx(&store, NOW + 120 + 59), &cookies)).is_ok());
    assert!(block_on(open(&f.ctx(&store, NOW + 120 + 61), &cookies)).is_err(), "idle past the timeout");
}

#[test]
fn a_failed_best_effort_write_does_not_fail_the_request() {
    let f = Kv::new(&[("SESSION_IDLE_TIMEOUT", "60")]);
    let mut s = session(NOW + 3000, Some("rt-0"));
    s.last_seen = NOW - 20;
    let cookie = f.login(&s);
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let call = block_on(open(&ctx, &cookies)).unwrap();
    f.kv.failing_writes.set(u32::MAX);
    assert!(block_on(call.finish(&ctx)).is_empty(), "no cookie change, no error");
}

#[test]
fn a_refresh_write_that_fails_once_is_retried() {
    let f = Kv::new(&[]);
    let cookie = f.login(&session(NOW + 10, Some("rt-0")));
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let mut call = block_on(open(&ctx, &cookies)).unwrap();
    // The first write after the token call fails (one write per second per key), the retry works.
    f.kv.failing_writes.set(1);
    block_on(call.refresh_if_due(&ctx)).unwrap();
    assert_eq!(f.stored(&cookie).refresh_token.as_deref(), Some("rt-1"), "stored by the retry");
}

#[test]
fn without_a_refresh_token_nothing_is_refreshed_until_the_token_expires() {
    let s = session(NOW + 10, None);
    assert!(!s.refresh_due(NOW), "inside the margin but nothing to refresh with");
    assert!(session(NOW + 10, Some("rt")).refresh_due(NOW));
    let f = Cookies::new(&[]);
    let store = f.store();
    let cookie = f.login(&s);
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let mut call = block_on(open(&f.ctx(&store, NOW), &cookies)).unwrap();
    block_on(call.refresh_if_due(&f.ctx(&store, NOW))).unwrap();
    assert_eq!(call.session().access_token, "at-0");
    assert_eq!(f.http.count("/token"), 0);
    let e = block_on(open(&f.ctx(&store, NOW + 10), &cookies)).err().unwrap();
    assert_eq!(e.code(), "session_expired");
}

/// A coordinator that answers with fixed tokens, or fails.
struct TestCoordinator {
    fail: bool,
    asks: Cell<usize>,
}

impl coordinator::Coordinator for TestCoordinator {
    fn ask<'a>(
        &'a self,
        _login: &'a str,
        request: &'a CoordinatorRequest,
    ) -> crate::web::client::LocalFuture<'a, Result<coordinator::PendingAnswer<'a>, CoordinatorError>> {
        self.asks.set(self.asks.get() + 1);
        let answer = match (self.fail, request) {
            (true, _) => Err(CoordinatorError::Unreachable("test".into())),
            (false, CoordinatorRequest::Refresh(ask)) => Ok(Answer::Tokens {
                tokens: TokenSet {
                    access_token: "at-from-coordinator".into(),
                    access_expires_at: NOW + 900,
                    refresh_token: Some("rt-from-coordinator".into()),
                    id_token: None,
                    generation: ask.tokens.generation + 5,
                    dpop: false,
                    route_tokens: Vec::new(),
                },
                fresh: false,
            }),
            (false, CoordinatorRequest::End { .. }) => Ok(Answer::Ended),
        };
        let acknowledged: Result<coordinator::PendingAnswer<'a>, CoordinatorError> =
            answer.map(|a| Box::pin(std::future::ready(Ok(a))) as coordinator::PendingAnswer<'a>);
        Box::pin(std::future::ready(acknowledged))
    }
}

#[test]
fn refreshes_go_through_the_coordinator_and_fall_back_when_it_fails() {
    for fail in [false, true] {
        let f = Cookies::new(&[]);
        let store = f.store();
        let cookie = f.login(&session(NOW + 10, Some("rt-0")));
        let cookies = parse_cookie_header([cookie.as_str()].into_iter());
        let coordinator = TestCoordinator { fail, asks: Cell::new(0) };
        let ctx = RequestContext { coordinator: Some(&coordinator), ..f.ctx(&store, NOW) };
        let mut call = block_on(open(&ctx, &cookies)).unwrap();
        block_on(call.refresh_if_due(&ctx)).unwrap();
        assert_eq!(coordinator.asks.get(), 1);
        if fail {
            assert_eq!(f.http.count("/token"), 1, "refreshed in the isolate");
            assert_eq!(call.session().access_token, "at-1");
            assert_eq!(call.session().generation, 1);
        } else {
            assert_eq!(f.http.count("/token"), 0, "the coordinator refreshed");
            assert_eq!(call.session().access_token, "at-from-coordinator");
            assert_eq!(call.session().generation, 5);
        }
    }
}

#[test]
fn an_activity_record_never_puts_older_tokens_back() {
    // KV: request B opens the session (activity due), request A refreshes and stores a
    // newer generation, then B finishes: the record keeps A's tokens.
    let f = Kv::new(&[("SESSION_IDLE_TIMEOUT", "60")]);
    let mut s = session(NOW + 10, Some("rt-0"));
    s.last_seen = NOW - 30;
    let cookie = f.login(&s);
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let b = block_on(open(&ctx, &cookies)).unwrap();
    let other = SharedState::default();
    let ctx_a = RequestContext { shared: &other, ..f.ctx(&store, NOW) };
    let mut a = block_on(open(&ctx_a, &cookies)).unwrap();
    block_on(a.refresh_if_due(&ctx_a)).unwrap();
    assert_eq!(f.stored(&cookie).generation, 1);
    block_on(b.finish(&ctx));
    let stored = f.stored(&cookie);
    assert_eq!((stored.generation, stored.refresh_token.as_deref()), (1, Some("rt-1")), "A's tokens kept");
    assert_eq!(stored.last_seen, NOW, "B's activity recorded");

    // Cookies, one isolate: B's cookie carries the tokens A's refresh produced.
    let f = Cookies::new(&[("SESSION_IDLE_TIMEOUT", "60")]);
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let cookie = f.login(&s);
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let b = block_on(open(&ctx, &cookies)).unwrap();
    let mut a = block_on(open(&ctx, &cookies)).unwrap();
    block_on(a.refresh_if_due(&ctx)).unwrap();
    let written = f.held(&block_on(b.finish(&ctx)));
    assert_eq!((written.generation, written.refresh_token.as_deref()), (1, Some("rt-1")));
}

#[test]
fn a_failed_request_still_records_activity() {
    let f = Kv::new(&[("SESSION_IDLE_TIMEOUT", "60")]);
    let mut s = session(NOW + 3000, Some("rt-0"));
    s.last_seen = NOW - 30;
    let cookie = f.login(&s);
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let store = f.store();
    let ctx = f.ctx(&store, NOW);
    let mut call = block_on(open(&ctx, &cookies)).unwrap();
    let response = block_on(call.fail(&ctx, &cookies, &BffError::UpstreamUnavailable("down".into())));
    assert_eq!(response.status(), 502);
    assert_eq!(f.stored(&cookie).last_seen, NOW);
}

/// A coordinator that never answers: it does not even acknowledge an ask (out of reach or
/// hung), or acknowledges and then never answers.
struct SilentCoordinator {
    acknowledges: bool,
}

impl coordinator::Coordinator for SilentCoordinator {
    fn ask<'a>(
        &'a self,
        _login: &'a str,
        _request: &'a CoordinatorRequest,
    ) -> crate::web::client::LocalFuture<'a, Result<coordinator::PendingAnswer<'a>, CoordinatorError>> {
        if self.acknowledges {
            let never: coordinator::PendingAnswer<'a> = Box::pin(std::future::pending());
            Box::pin(std::future::ready(Ok(never)))
        } else {
            Box::pin(std::future::pending())
        }
    }
}

#[test]
fn waits_on_a_silent_coordinator_are_bounded() {
    // Ending a login gives up after END_WAIT_MS in all (the logout goes on).
    for acknowledges in [false, true] {
        let http = provider();
        block_on(coordinator::end_login(&SilentCoordinator { acknowledges }, &http, "login-1", NOW + 60));
        assert_eq!(http.now_ms(), u64::from(coordinator::END_WAIT_MS));
    }
    // A refresh: an object that does not acknowledge costs COORDINATOR_ACK_WAIT_MS; one
    // that acknowledged is waited for COORDINATOR_WAIT_MS (the bounds are checked at
    // compile time in `refresh`).
    for (acknowledges, waited) in [(false, protocol::COORDINATOR_ACK_WAIT_MS), (true, protocol::COORDINATOR_WAIT_MS)] {
        let f = Cookies::new(&[]);
        let store = f.store();
        let cookie = f.login(&session(NOW + 10, Some("rt-0")));
        let cookies = parse_cookie_header([cookie.as_str()].into_iter());
        let silent = SilentCoordinator { acknowledges };
        let ctx = RequestContext { coordinator: Some(&silent), ..f.ctx(&store, NOW) };
        let mut call = block_on(open(&ctx, &cookies)).unwrap();
        block_on(call.refresh_if_due(&ctx)).unwrap();
        assert_eq!(f.http.count("/token"), 1, "refreshed in the isolate");
        assert_eq!(f.http.now_ms(), u64::from(waited), "acknowledges: {acknowledges}");
    }
}

/// A coordinator whose object answers late asks with `Late`: the isolate refreshes alone.
struct LateCoordinator;

impl coordinator::Coordinator for LateCoordinator {
    fn ask<'a>(
        &'a self,
        _login: &'a str,
        _request: &'a CoordinatorRequest,
    ) -> crate::web::client::LocalFuture<'a, Result<coordinator::PendingAnswer<'a>, CoordinatorError>> {
        let late: coordinator::PendingAnswer<'a> = Box::pin(std::future::ready(Ok(Answer::Late)));
        Box::pin(std::future::ready(Ok(late)))
    }
}

#[test]
fn a_late_answer_makes_the_isolate_refresh_alone() {
    let f = Cookies::new(&[]);
    let store = f.store();
    let cookie = f.login(&session(NOW + 10, Some("rt-0")));
    let cookies = parse_cookie_header([cookie.as_str()].into_iter());
    let ctx = RequestContext { coordinator: Some(&LateCoordinator), ..f.ctx(&store, NOW) };
    let mut call = block_on(open(&ctx, &cookies)).unwrap();
    block_on(call.refresh_if_due(&ctx)).unwrap();
    assert_eq!(f.http.count("/token"), 1);
    assert_eq!(call.session().refresh_token.as_deref(), Some("rt-1"));
}
