//! The coordinator protocol (docs/api.md section 8): what an isolate and a login's object say
//! to each other ([`CoordinatorRequest`], [`Answer`], the [`TokenSet`] they pass), the
//! isolate's side as a trait ([`Coordinator`], asked in two steps by [`ask_within`]), what
//! a refresh comes to ([`RefreshResult`]), and the deadlines both sides keep. Both the
//! object ([`super::coordinator`]) and the isolate's refresh ([`super::refresh`]) build on
//! it; it imports neither.

use crate::error::BffError;
use crate::session::{refresh_margin_reached, RouteTokenEntry, Session};
use crate::web::client::{race_timeout, HttpClient, LocalFuture};
use serde::{Deserialize, Serialize};

/// Longest the coordinator object takes to answer an ask (its own token call, led by
/// this ask, ends first: it is bounded by [`REFRESH_DEADLINE_MS`] from a later start).
pub const OBJECT_ANSWER_DEADLINE_MS: u32 = REFRESH_DEADLINE_MS + 500;
/// Longest a whole refresh may take (discovery, token endpoint, JWKS; each call is also
/// bounded on its own): past it the refresh counts as "provider unavailable".
pub const REFRESH_DEADLINE_MS: u32 = 8_000;
/// How long after an isolate sends an ask the object may still start on it
/// (`start_by_ms`): an ask that reaches it later is answered [`Answer::Late`] with no
/// token call.
///
/// [`Answer::Late`]: super::coordinator::Answer::Late
pub const COORDINATOR_START_WINDOW_MS: u32 = 1_500;
/// Longest an isolate waits for the object to acknowledge an ask before it refreshes by
/// itself: the start window and one second for the acknowledgement to travel back (and
/// for clocks that differ). An object that is out of reach or hung costs a request this
/// much at most.
pub const COORDINATOR_ACK_WAIT_MS: u32 = COORDINATOR_START_WINDOW_MS + 1_000;
/// Longest an isolate waits for an acknowledged ask's answer. The object answers within
/// [`OBJECT_ANSWER_DEADLINE_MS`] of acknowledging (a refresh still running then is
/// answered "provider unavailable", which the isolate does not retry alone), so an isolate
/// that gives up here was not answered at all, and no call of the object's is left
/// running: the two never spend one refresh token.
pub const COORDINATOR_WAIT_MS: u32 = OBJECT_ANSWER_DEADLINE_MS + 1_500;
// An object out of reach or hung costs at most 3 s; an acknowledged ask is waited for past
// the object's own deadline (so the object and the isolate never spend one refresh token);
// the object refuses to start once the isolate may have stopped waiting for it.
const _: () = assert!(COORDINATOR_ACK_WAIT_MS <= 3_000);
const _: () = assert!(COORDINATOR_WAIT_MS > OBJECT_ANSWER_DEADLINE_MS);
const _: () = assert!(COORDINATOR_START_WINDOW_MS < COORDINATOR_ACK_WAIT_MS);

/// How many grants one need may wait through or make (an isolate's, an object's): grants
/// for other purposes (another route's token, the login's) may each spend the refresh
/// token first, and the need is then met from their tokens.
pub const MAX_GRANT_ROUNDS: usize = 4;

/// The tokens a successful refresh produced (shared between coalesced requests).
#[derive(Clone)]
pub struct Refreshed {
    pub(crate) tokens: TokenSet,
    /// This request's refresh made the token call (or, through the coordinator, the
    /// coordinator made it for this request): it alone writes the KV record.
    pub(crate) fresh: bool,
}

/// Why a refresh failed (shared between coalesced requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "failure", content = "detail", rename_all = "snake_case")]
pub enum RefreshError {
    /// The provider refused the refresh token: `invalid_grant`, another OAuth error, or
    /// any 4xx without a readable error body (docs/api.md section 5, "Refresh answers").
    Rejected(String),
    /// The provider refused the client itself (`invalid_client` and the like): the
    /// refresh token is refused all the same, and the deployment's credentials are
    /// suspect (logged as an error).
    ClientRefused(String),
    /// Network failure, timeout, 5xx.
    Unavailable(String),
    /// The refreshed ID token is invalid or names another issuer or subject.
    InvalidIdToken(String),
    /// The login was logged out (coordinator): no cookie of it may refresh again.
    Ended,
    /// The provider refused a route's token request (docs/api.md section 4, "Route
    /// tokens"): the session is kept. The provider's error code.
    TokenUnavailable(String),
}

/// The result shared through the per-isolate coalescer.
pub type RefreshResult = Result<Refreshed, RefreshError>;

impl RefreshError {
    /// Whether the failure ends the session (401 `session_expired`, cookies cleared, KV
    /// record deleted): everything but an unreachable provider.
    pub fn ends_session(&self) -> bool {
        !matches!(self, Self::Unavailable(_) | Self::TokenUnavailable(_))
    }
}

impl From<RefreshError> for BffError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Rejected(code) => BffError::SessionExpired(format!("refresh token refused: {code}")),
            RefreshError::ClientRefused(code) => {
                BffError::SessionExpired(format!("token endpoint refused the client: {code}"))
            }
            RefreshError::Unavailable(d) => BffError::IdpUnavailable(d),
            RefreshError::InvalidIdToken(d) => BffError::SessionExpired(format!("refreshed ID token refused: {d}")),
            RefreshError::Ended => BffError::SessionExpired("the login was logged out".into()),
            RefreshError::TokenUnavailable(code) => {
                BffError::TokenUnavailable(format!("the provider refused the route's token request: {code}"))
            }
        }
    }
}

/// A login's token set as the coordinator keeps and hands it out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// Access token.
    #[serde(rename = "at")]
    pub access_token: String,
    /// When it expires (Unix seconds).
    #[serde(rename = "ate")]
    pub access_expires_at: u64,
    /// Refresh token.
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The newest ID token, if a refresh brought one.
    #[serde(rename = "it", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Refreshes since login.
    #[serde(rename = "g")]
    pub generation: u64,
    /// The access token is DPoP-bound.
    #[serde(rename = "dp", default)]
    pub dpop: bool,
    /// The routes' own tokens.
    #[serde(rename = "rtk", default, skip_serializing_if = "Vec::is_empty")]
    pub route_tokens: Vec<RouteTokenEntry>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_expires_at", &self.access_expires_at)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// The token set of a session.
    pub fn of(session: &Session) -> Self {
        Self {
            access_token: session.access_token.clone(),
            access_expires_at: session.access_expires_at,
            refresh_token: session.refresh_token.clone(),
            id_token: Some(session.id_token.clone()),
            generation: session.generation,
            dpop: session.dpop,
            route_tokens: session.route_tokens.clone(),
        }
    }

    /// Whether its access token is within the refresh margin at `now`.
    pub fn due(&self, now: u64) -> bool {
        refresh_margin_reached(self.access_expires_at, now)
    }

    /// Whether it answers `need` for an asker that holds `asked`: a newer set (a refresh
    /// of the login since), or one holding a token for the route that is not the asker's
    /// own (which it asks to replace). Whether that token is due is [`TokenSet::due_for`].
    pub fn meets(&self, need: Need<'_>, asked: &TokenSet) -> bool {
        match need {
            Need::Login => self.generation > asked.generation,
            Need::Route(key) => {
                let own = asked.route_token(key).map(|t| t.access_token.as_str());
                self.route_token(key).is_some_and(|t| Some(t.access_token.as_str()) != own)
            }
        }
    }

    /// Whether the token `need` names is within the refresh margin at `now` (or missing).
    pub fn due_for(&self, need: Need<'_>, now: u64) -> bool {
        match need {
            Need::Login => self.due(now),
            Need::Route(key) => self.route_token(key).is_none_or(|t| refresh_margin_reached(t.expires_at, now)),
        }
    }

    /// Its token for the routes whose `token_request` has `key`.
    pub fn route_token(&self, key: &str) -> Option<&RouteTokenEntry> {
        self.route_tokens.iter().find(|t| t.key == key)
    }
}

/// What a grant of the login's refresh token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// The login's own access token (a refresh).
    Login,
    /// The token of the routes whose `token_request` has this key.
    Route(&'a str),
}

/// A refresh asked of a login's coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshAsk {
    /// The asking session's tokens (its generation says how new its cookie is; whatever
    /// made the session ask, the answer depends on that alone).
    pub tokens: TokenSet,
    /// The login's `sub` (a refreshed ID token must keep it).
    pub sub: String,
    /// The session's absolute end: the object keeps its state until then.
    pub expires_at: u64,
    /// The latest time (Unix milliseconds) at which the object may still start on this
    /// ask: past it the asker has stopped waiting for the acknowledgement and refreshes
    /// alone, so the object answers [`Answer::Late`] without a token call. `None`: no
    /// limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_by_ms: Option<u64>,
    /// For a route token: the key of the route's `token_request` (the object finds the
    /// request in its own configuration). `None`: a refresh of the login's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

impl RefreshAsk {
    /// What this ask is for.
    pub fn need(&self) -> Need<'_> {
        self.route.as_deref().map_or(Need::Login, Need::Route)
    }
}

/// What an isolate sends to a login's object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CoordinatorRequest {
    /// New tokens for a session of the login.
    Refresh(RefreshAsk),
    /// Logout or back-channel logout: no cookie of the login refreshes again.
    End {
        /// Until when to remember it (the session's end, or now + `SESSION_MAX_AGE`).
        until: u64,
    },
}

/// The object's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Answer {
    /// The newest tokens; `fresh` when this request's refresh made the token call.
    Tokens {
        /// The token set.
        tokens: TokenSet,
        /// This ask caused the token call.
        fresh: bool,
    },
    /// The refresh failed (the provider's answer, shared with coalesced asks).
    Failed {
        /// Why.
        error: RefreshError,
    },
    /// The login has ended (or `End` was recorded).
    Ended,
    /// The ask arrived after its `start_by_ms`: nothing was done, and the asker refreshes
    /// alone.
    Late,
}

/// The isolate's answer from an [`Answer`]; `None` for [`Answer::Late`], which is no
/// refresh result (the isolate refreshes alone).
pub fn refresh_result(answer: Answer) -> Option<RefreshResult> {
    match answer {
        Answer::Tokens { tokens, fresh } => Some(Ok(Refreshed { tokens, fresh })),
        Answer::Failed { error } => Some(Err(error)),
        Answer::Ended => Some(Err(RefreshError::Ended)),
        Answer::Late => None,
    }
}

/// Why the coordinator could not be asked (the isolate then acts alone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorError {
    /// The binding, the stub or the request failed, or the object answered an error.
    #[error("coordinator unreachable: {0}")]
    Unreachable(String),
    /// The object's answer is not one of [`Answer`].
    #[error("coordinator answer malformed")]
    Malformed,
    /// The object did not acknowledge the ask in time (out of reach, or stuck before it
    /// could start on it).
    #[error("coordinator did not acknowledge within {0} ms")]
    Unacknowledged(u32),
    /// The object acknowledged the ask but did not answer in time.
    #[error("coordinator acknowledged but gave no answer within {0} ms")]
    Unanswered(u32),
}

/// An acknowledged ask: the object's answer, still to come.
pub type PendingAnswer<'a> = LocalFuture<'a, Result<Answer, CoordinatorError>>;

/// The isolate's side: one request to the object named `login`, in two steps. The object
/// acknowledges an ask at once (the head of its response, sent before any token call),
/// and answers it when done (the body). Callers bound both waits ([`ask_within`]).
pub trait Coordinator {
    /// Send `request` to the object of `login`; resolves on its acknowledgement, with the
    /// answer still to come.
    fn ask<'a>(
        &'a self,
        login: &'a str,
        request: &'a CoordinatorRequest,
    ) -> LocalFuture<'a, Result<PendingAnswer<'a>, CoordinatorError>>;
}

/// Ask the object of `login`, waiting at most `ack_ms` for its acknowledgement and then at
/// most `answer_ms` for its answer.
pub async fn ask_within(
    coordinator: &dyn Coordinator,
    http: &dyn HttpClient,
    login: &str,
    request: &CoordinatorRequest,
    ack_ms: u32,
    answer_ms: u32,
) -> Result<Answer, CoordinatorError> {
    let pending = race_timeout(coordinator.ask(login, request), http.sleep(ack_ms))
        .await
        .ok_or(CoordinatorError::Unacknowledged(ack_ms))??;
    race_timeout(pending, http.sleep(answer_ms)).await.ok_or(CoordinatorError::Unanswered(answer_ms))?
}
