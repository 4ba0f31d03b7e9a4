//! The coordinator object natively: in-memory storage, the in-memory provider, a gate
//! that holds token calls open so asks really overlap.

use super::*;
use crate::oidc::provider::ProviderCache;
use crate::testutil::{block_on, config_with, discovery_json, FakeHttp};
use crate::web::client::{IncomingResponse, OutgoingRequest, TransportError};
use serde_json::json;
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

const NOW: u64 = 1_800_000_000;
const LOGIN: &str = "login-1";

/// Storage in memory: the sealed value and its deletion time.
#[derive(Default)]
struct MemoryStorage {
    value: RefCell<Option<(String, u64)>>,
    fail: Cell<bool>,
}

impl ObjectStorage for MemoryStorage {
    fn get(&self) -> LocalFuture<'_, Result<Option<String>, String>> {
        let result = if self.fail.get() { Err("down".into()) } else { Ok(self.value.borrow().clone().map(|(v, _)| v)) };
        Box::pin(std::future::ready(result))
    }
    fn put(&self, value: String, until: u64) -> LocalFuture<'_, Result<(), String>> {
        let result = if self.fail.get() {
            Err("down".into())
        } else {
            *self.value.borrow_mut() = Some((value, until));
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }
}

/// The in-memory provider, with token calls held until `open` is set.
struct Gated {
    inner: FakeHttp,
    open: Cell<bool>,
}

impl HttpClient for Gated {
    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()> {
        self.inner.sleep(ms)
    }
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    fn send(&self, request: OutgoingRequest) -> LocalFuture<'_, Result<IncomingResponse, TransportError>> {
        let is_token = request.uri().path() == "/token";
        let answer = self.inner.send(request);
        Box::pin(async move {
            if is_token {
                std::future::poll_fn(|_| if self.open.get() { Poll::Ready(()) } else { Poll::Pending }).await;
            }
            answer.await
        })
    }
}

struct Fixture {
    config: crate::config::Config,
    provider: RefCell<ProviderCache>,
    http: Gated,
    storage: MemoryStorage,
}

impl Fixture {
    fn new() -> Self {
        let http = FakeHttp::default();
        http.route("/.well-known/openid-configuration", 200, discovery_json());
        http.route(
            "/token",
            200,
            json!({ "access_token": "at-new", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-new" })
                .to_string(),
        );
        Self {
            config: config_with(&[]),
            provider: RefCell::default(),
            http: Gated { inner: http, open: Cell::new(true) },
            storage: MemoryStorage::default(),
        }
    }

    fn env(&self, now: u64) -> ObjectEnv<'_> {
        ObjectEnv {
            calls: TokenCall {
                config: &self.config,
                provider: &self.provider,
                http: &self.http,
                signer: &crate::crypto::signing::NativeSigner,
                verifier: &crate::crypto::verifying::RustCryptoVerifier,
                nonces: None,
                now,
            },
            storage: &self.storage,
        }
    }

    fn token_calls(&self) -> usize {
        self.http.inner.count("/token")
    }
}

fn tokens(generation: u64, rt: &str, access_expires_at: u64) -> TokenSet {
    TokenSet {
        access_token: format!("at-{generation}"),
        access_expires_at,
        refresh_token: Some(rt.into()),
        id_token: Some("h.e30.s".into()),
        generation,
        dpop: false,
        route_tokens: Vec::new(),
    }
}

fn ask(tokens: TokenSet) -> CoordinatorRequest {
    CoordinatorRequest::Refresh(RefreshAsk {
        tokens,
        sub: "user-1".into(),
        expires_at: NOW + 3600,
        start_by_ms: None,
        route: None,
    })
}

fn answered_tokens(answer: Answer) -> (TokenSet, bool) {
    match answer {
        Answer::Tokens { tokens, fresh } => (tokens, fresh),
        other => panic!("expected tokens, got {other:?}"),
    }
}

#[test]
fn overlapping_asks_make_one_token_call_and_all_get_the_new_tokens() {
    let f = Fixture::new();
    f.http.open.set(false);
    let object = Object::default();
    let env = f.env(NOW);
    let mut cx = Context::from_waker(Waker::noop());
    let mut asks: Vec<_> =
        (0..4).map(|_| Box::pin(object.answer(&env, LOGIN, ask(tokens(0, "rt-0", NOW + 10))))).collect();
    for a in asks.iter_mut() {
        assert!(a.as_mut().poll(&mut cx).is_pending());
    }
    f.http.open.set(true);
    let mut fresh = 0;
    for a in asks.iter_mut() {
        let answer = loop {
            if let Poll::Ready(answer) = a.as_mut().poll(&mut cx) {
                break answer.unwrap();
            }
        };
        let (t, was_fresh) = answered_tokens(answer);
        assert_eq!(t.access_token, "at-new");
        assert_eq!(t.refresh_token.as_deref(), Some("rt-new"));
        assert_eq!(t.generation, 1);
        assert_eq!(t.id_token.as_deref(), Some("h.e30.s"), "the ID token is kept when none came back");
        fresh += usize::from(was_fresh);
    }
    assert_eq!(f.token_calls(), 1, "one token-endpoint call for the login");
    assert_eq!(fresh, 1, "exactly one ask made it");
}

#[test]
fn an_earlier_cookie_gets_the_newest_tokens_without_a_call() {
    let f = Fixture::new();
    let object = Object::default();
    let env = f.env(NOW);
    block_on(object.answer(&env, LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap();
    assert_eq!(f.token_calls(), 1);
    // Much later (past the per-key reuse window), a cookie of generation 0 again.
    let later = f.env(NOW + 120);
    let (t, fresh) = answered_tokens(block_on(object.answer(&later, LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap());
    assert_eq!((t.access_token.as_str(), t.generation, fresh), ("at-new", 1, false));
    assert_eq!(f.token_calls(), 1, "no call: the newest access token is not due");
    // Also after the object was evicted: the state comes back from storage.
    let revived = Object::default();
    let (t, _) = answered_tokens(block_on(revived.answer(&later, LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap());
    assert_eq!(t.access_token, "at-new");
    assert_eq!(f.token_calls(), 1);
    // When the newest is itself due, it is refreshed from the newest refresh token.
    let due = f.env(NOW + 600);
    let (t, _) = answered_tokens(block_on(revived.answer(&due, LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap());
    assert_eq!(t.generation, 2);
    assert_eq!(f.token_calls(), 2);
    let seen = f.http.inner.seen.borrow();
    assert!(seen.last().unwrap().2.contains("refresh_token=rt-new"), "refreshed from the newest refresh token");
}

#[test]
fn a_cookie_newer_than_the_object_refreshes_from_its_own_tokens() {
    // The object was unreachable once and an isolate refreshed alone (generation 1 → 2).
    let f = Fixture::new();
    let object = Object::default();
    block_on(object.answer(&f.env(NOW), LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap();
    let (t, _) =
        answered_tokens(block_on(object.answer(&f.env(NOW + 700), LOGIN, ask(tokens(3, "rt-3", NOW + 710)))).unwrap());
    assert_eq!(t.generation, 4);
    assert!(f.http.inner.seen.borrow().last().unwrap().2.contains("refresh_token=rt-3"));
}

#[test]
fn after_end_no_cookie_of_the_login_refreshes() {
    let f = Fixture::new();
    let object = Object::default();
    let env = f.env(NOW);
    assert!(matches!(
        block_on(object.answer(&env, LOGIN, CoordinatorRequest::End { until: NOW + 3600 })).unwrap(),
        Answer::Ended
    ));
    for generation in [0, 1, 5] {
        let answer = block_on(object.answer(&env, LOGIN, ask(tokens(generation, "rt-x", NOW + 10)))).unwrap();
        assert!(matches!(answer, Answer::Ended));
    }
    assert_eq!(f.token_calls(), 0);
    // Remembered in storage too, until the session's end.
    let revived = Object::default();
    assert!(matches!(block_on(revived.answer(&env, LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap(), Answer::Ended));
    assert_eq!(f.storage.value.borrow().as_ref().unwrap().1, NOW + 3600, "deleted at the session's end");
}

#[test]
fn what_the_object_stores_is_sealed_and_bound_to_its_login() {
    let f = Fixture::new();
    let object = Object::default();
    block_on(object.answer(&f.env(NOW), LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap();
    let (stored, until) = f.storage.value.borrow().clone().unwrap();
    assert_eq!(until, NOW + 3600);
    for secret in ["at-new", "rt-new", "rt-0"] {
        assert!(!stored.contains(secret), "no token in clear");
    }
    // Another login's name does not open it.
    let other = Object::default();
    let (t, _) = answered_tokens(
        block_on(other.answer(&f.env(NOW + 120), "login-2", ask(tokens(0, "rt-0", NOW + 10)))).unwrap(),
    );
    assert_eq!(t.generation, 1, "treated as empty: refreshed from the asker's own tokens");
}

#[test]
fn provider_failures_are_answered_and_storage_failures_are_errors() {
    let f = Fixture::new();
    f.http.inner.route("/token", 400, json!({ "error": "invalid_grant" }).to_string());
    let object = Object::default();
    let answer = block_on(object.answer(&f.env(NOW), LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).unwrap();
    assert!(matches!(answer, Answer::Failed { error: RefreshError::Rejected(ref c) } if c == "invalid_grant"));
    f.http.inner.route("/token", 503, "{}");
    let answer = block_on(object.answer(&f.env(NOW), LOGIN, ask(tokens(0, "rt-1", NOW + 10)))).unwrap();
    assert!(matches!(answer, Answer::Failed { error: RefreshError::Unavailable(_) }));
    // Storage that cannot be read: the isolate is told to act alone.
    let g = Fixture::new();
    g.storage.fail.set(true);
    let fresh = Object::default();
    assert!(block_on(fresh.answer(&g.env(NOW), LOGIN, ask(tokens(0, "rt-0", NOW + 10)))).is_err());
}

#[test]
fn a_refresh_in_flight_when_the_login_ends_is_not_handed_out() {
    let f = Fixture::new();
    f.http.open.set(false);
    let object = Object::default();
    let env = f.env(NOW);
    let mut cx = Context::from_waker(Waker::noop());
    let mut refresh = pin!(object.answer(&env, LOGIN, ask(tokens(0, "rt-0", NOW + 10))));
    assert!(refresh.as_mut().poll(&mut cx).is_pending());
    block_on(object.answer(&env, LOGIN, CoordinatorRequest::End { until: NOW + 3600 })).unwrap();
    f.http.open.set(true);
    let answer = loop {
        if let Poll::Ready(a) = refresh.as_mut().poll(&mut cx) {
            break a.unwrap();
        }
    };
    assert!(matches!(answer, Answer::Ended));
}

#[test]
fn protocol_round_trips_and_never_shows_tokens_in_debug() {
    let request = ask(tokens(2, "rt-secret", NOW));
    let text = serde_json::to_string(&request).unwrap();
    let back: CoordinatorRequest = serde_json::from_str(&text).unwrap();
    assert!(matches!(back, CoordinatorRequest::Refresh(RefreshAsk { tokens: TokenSet { generation: 2, .. }, .. })));
    let answer = Answer::Failed { error: RefreshError::Unavailable("x".into()) };
    let text = serde_json::to_string(&answer).unwrap();
    assert!(matches!(serde_json::from_str::<Answer>(&text).unwrap(), Answer::Failed { .. }));
    assert!(!format!("{:?}", tokens(1, "rt-secret", NOW)).contains("rt-secret"));
    assert!(!format!("{request:?}").contains("rt-secret"));
}

#[test]
fn an_ask_past_its_start_deadline_is_answered_late_without_a_token_call() {
    let f = Fixture::new();
    let object = Object::default();
    let env = f.env(NOW);
    let late_ask = |start_by_ms| {
        CoordinatorRequest::Refresh(RefreshAsk {
            tokens: tokens(0, "rt-0", NOW + 10),
            sub: "user-1".into(),
            expires_at: NOW + 3600,
            start_by_ms: Some(start_by_ms),
            route: None,
        })
    };
    f.http.inner.clock_ms.set(5_000);
    let answer = block_on(object.answer(&env, LOGIN, late_ask(4_999))).unwrap();
    assert!(matches!(answer, Answer::Late), "{answer:?}");
    assert_eq!(f.token_calls(), 0, "no token call for an ask the isolate gave up on");
    // Within its deadline the same ask is served.
    let answer = block_on(object.answer(&env, LOGIN, late_ask(5_000))).unwrap();
    assert_eq!(answered_tokens(answer).0.access_token, "at-new");
    assert_eq!(f.token_calls(), 1);
    // The answer crosses the wire and back.
    let text = serde_json::to_string(&Answer::Late).unwrap();
    assert!(matches!(serde_json::from_str::<Answer>(&text).unwrap(), Answer::Late));
}
