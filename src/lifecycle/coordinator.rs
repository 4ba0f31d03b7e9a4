//! The coordinator (docs/api.md section 8): one Durable Object per login, through which every
//! refresh of that login goes, so that any number of isolates and locations spend each
//! refresh token once.
//!
//! This module holds what is not Worker glue: the object's whole logic ([`Object`]) over a
//! storage trait ([`ObjectStorage`]), and the end of a login ([`end_login`]); the protocol
//! between an isolate and an object is [`super::protocol`] (re-exported here for the
//! glue), so both sides are tested natively. `runtime::coordinator` binds them to
//! the `COORDINATOR` namespace and to `EdgeBffCoordinator`'s storage.
//!
//! The object keeps the login's newest token set, sealed (key purpose
//! `edge-bff v1 coordinator`, the login's name as associated data), until the session's
//! absolute end. Generations order token sets: 0 at login, one more per refresh. A
//! request whose cookie is of an earlier generation gets the newest set (a new call only
//! when that set's access token is itself due); a request of the newest generation, or of
//! a newer one than the object knows (it refreshed alone while the object was
//! unreachable), refreshes from its own. Refreshes of one base are coalesced: at most
//! one token-endpoint call at a time.

pub use super::protocol::{
    ask_within, refresh_result, Answer, Coordinator, CoordinatorError, CoordinatorRequest, PendingAnswer, RefreshAsk,
    TokenSet,
};
use super::protocol::{
    RefreshError, RefreshResult, Refreshed, MAX_GRANT_ROUNDS, OBJECT_ANSWER_DEADLINE_MS, REFRESH_DEADLINE_MS,
};
use super::token_call::{call_token_endpoint, Login, TokenCall};
use crate::coalesce::{key_of, Coalescer, Timing, WAIT_TICK_MS};
use crate::crypto::{open, seal, Purpose};
use crate::web::client::{race_timeout, HttpClient, LocalFuture};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Longest a logout waits for the object to record the end of a login.
pub const END_WAIT_MS: u32 = 5_000;

/// End a login's object (logout, back-channel logout), waiting at most [`END_WAIT_MS`] in
/// all. A failure is logged as a warning: the logout itself goes on.
pub async fn end_login(coordinator: &dyn Coordinator, http: &dyn HttpClient, login: &str, until: u64) {
    let end = CoordinatorRequest::End { until };
    let answered = async { coordinator.ask(login, &end).await?.await };
    let outcome = match race_timeout(answered, http.sleep(END_WAIT_MS)).await {
        Some(outcome) => outcome,
        None => Err(CoordinatorError::Unreachable(format!("no answer within {END_WAIT_MS} ms"))),
    };
    match outcome {
        Ok(_) => log::info!("coordinator: login ended"),
        Err(e) => log::warn!("{e} (ending a login; its cookies are cleared, its refresh token revoked where possible)"),
    }
}

/// What the object stores, sealed, under one key.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    /// Logged out: no refresh any more.
    #[serde(default)]
    ended: bool,
    /// When the state is deleted (the session's absolute end).
    until: u64,
    /// The newest token set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<TokenSet>,
}

/// The object's storage: one sealed value, deleted at a given time.
pub trait ObjectStorage {
    /// The stored value, if any.
    fn get(&self) -> LocalFuture<'_, Result<Option<String>, String>>;
    /// Store `value` and arrange for everything to be deleted at `until` (Unix seconds).
    fn put(&self, value: String, until: u64) -> LocalFuture<'_, Result<(), String>>;
}

/// What the object works with: what a token-endpoint refresh needs (the settings and keys,
/// the provider cache of the object's isolate, outgoing HTTP and timers, the signer, the
/// isolate's DPoP nonces, the time) and its storage.
pub struct ObjectEnv<'a> {
    /// What its refreshes need.
    pub calls: TokenCall<'a>,
    /// The object's storage.
    pub storage: &'a dyn ObjectStorage,
}

/// Why the object could not answer (the isolate then acts alone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("coordinator storage: {0}")]
pub struct ObjectError(pub String);

/// One login's coordinator: memory in front of its storage, and its coalesced refreshes.
#[derive(Default)]
pub struct Object {
    cached: RefCell<Option<Stored>>,
    flights: Coalescer<RefreshResult>,
}

impl Object {
    /// Answer `request` for the login named `login`.
    pub async fn answer(
        &self,
        env: &ObjectEnv<'_>,
        login: &str,
        request: CoordinatorRequest,
    ) -> Result<Answer, ObjectError> {
        match request {
            CoordinatorRequest::End { until } => {
                let stored = Stored { ended: true, until, tokens: None };
                self.store(env, login, &stored).await?;
                Ok(Answer::Ended)
            }
            CoordinatorRequest::Refresh(ask) if ask.start_by_ms.is_some_and(|by| env.calls.http.now_ms() > by) => {
                // The asker no longer waits for this one: it refreshes alone.
                log::warn!("coordinator: an ask arrived after its start deadline; no refresh made for it");
                Ok(Answer::Late)
            }
            CoordinatorRequest::Refresh(ask) => {
                match race_timeout(self.refresh(env, login, ask), env.calls.http.sleep(OBJECT_ANSWER_DEADLINE_MS)).await
                {
                    Some(answer) => answer,
                    // Answered, so the isolate does not refresh the same token alone.
                    None => Ok(Answer::Failed {
                        error: RefreshError::Unavailable(format!(
                            "coordinator: no refresh result within {OBJECT_ANSWER_DEADLINE_MS} ms"
                        )),
                    }),
                }
            }
        }
    }

    async fn refresh(&self, env: &ObjectEnv<'_>, login: &str, ask: RefreshAsk) -> Result<Answer, ObjectError> {
        let route = match ask.route.as_deref() {
            None => None,
            Some(key) => match env.calls.config.token_request(key) {
                Some(request) => Some(request),
                None => {
                    let error = RefreshError::TokenUnavailable("no route has this token request".into());
                    return Ok(Answer::Failed { error });
                }
            },
        };
        let need = ask.need();
        let mut fresh = false;
        // Another ask's grant may spend the base's refresh token first (one grant at a
        // time per refresh token): its result is stored, and the next round starts from it.
        for _ in 0..MAX_GRANT_ROUNDS {
            let stored = self.load(env, login).await?;
            if stored.as_ref().is_some_and(|s| s.ended) {
                return Ok(Answer::Ended);
            }
            let newest = stored.and_then(|s| s.tokens).filter(|t| t.generation >= ask.tokens.generation);
            let base = match newest {
                // An earlier cookie of the login, or a route token granted meanwhile:
                // the newest tokens, no call.
                Some(newest) if newest.meets(need, &ask.tokens) && !newest.due_for(need, env.calls.now) => {
                    return Ok(Answer::Tokens { tokens: newest, fresh });
                }
                Some(newest) => newest,
                None => ask.tokens.clone(),
            };
            let Some(refresh_token) = base.refresh_token.clone() else {
                let error = match route {
                    Some(_) => RefreshError::TokenUnavailable("no refresh token".into()),
                    None => RefreshError::Rejected("no refresh token".into()),
                };
                return Ok(Answer::Failed { error });
            };
            let timing = Timing {
                clock: || env.calls.http.now_ms(),
                tick: || env.calls.http.sleep(WAIT_TICK_MS),
                leader_deadline_ms: u64::from(REFRESH_DEADLINE_MS) + 1_000,
            };
            let work = || async {
                let who = Login { sub: &ask.sub, id_token: base.id_token.as_deref() };
                let response = call_token_endpoint(&env.calls, who, &refresh_token, route).await?;
                let tokens = response.after(&base, route);
                if self.cached.borrow().as_ref().is_some_and(|s| s.ended) {
                    // Logged out while the call was in flight.
                    return Err(RefreshError::Ended);
                }
                let stored = Stored { ended: false, until: ask.expires_at, tokens: Some(tokens.clone()) };
                if let Err(e) = self.store(env, login, &stored).await {
                    // The tokens still go to the asker (they are the only valid ones now).
                    log::error!("{e} (newest tokens not stored)");
                }
                Ok(Refreshed { tokens, fresh: true })
            };
            let (result, led) = self.flights.run(key_of(&refresh_token), env.calls.now, work, timing).await;
            fresh |= led;
            match result {
                Ok(refreshed) if refreshed.tokens.meets(need, &ask.tokens) => {
                    return Ok(Answer::Tokens { tokens: refreshed.tokens, fresh });
                }
                // Another ask's grant (another route's token, or the login's): go on from it.
                Ok(_) => {}
                Err(RefreshError::Ended) => return Ok(Answer::Ended),
                Err(error) => return Ok(Answer::Failed { error }),
            }
        }
        let error = RefreshError::Unavailable("coordinator: too many concurrent grants for one login".into());
        Ok(Answer::Failed { error })
    }

    /// The stored state: memory first (one object is one instance), else storage.
    /// The stored state while it lasts: memory first (one object is one instance), else
    /// storage.
    async fn load(&self, env: &ObjectEnv<'_>, login: &str) -> Result<Option<Stored>, ObjectError> {
        let cached = self.cached.borrow().clone();
        let stored = match cached {
            Some(stored) => stored,
            None => {
                let Some(sealed) = env.storage.get().await.map_err(ObjectError)? else {
                    return Ok(None);
                };
                let opened =
                    open(&env.calls.config.cookie_keys, Purpose::Coordinator, &associated_data(login), &sealed)
                        .and_then(|plain| serde_json::from_slice::<Stored>(&plain).ok());
                let Some(stored) = opened else {
                    // Sealed under a key that was removed: treat as empty.
                    log::warn!("coordinator state does not open (removed cookie key?); starting afresh");
                    return Ok(None);
                };
                *self.cached.borrow_mut() = Some(stored.clone());
                stored
            }
        };
        Ok((stored.until > env.calls.now).then_some(stored))
    }

    async fn store(&self, env: &ObjectEnv<'_>, login: &str, stored: &Stored) -> Result<(), ObjectError> {
        *self.cached.borrow_mut() = Some(stored.clone());
        let json = serde_json::to_vec(stored).map_err(|e| ObjectError(e.to_string()))?;
        let sealed = seal(&env.calls.config.cookie_keys, Purpose::Coordinator, &associated_data(login), &json)
            .map_err(|e| ObjectError(e.to_string()))?;
        env.storage.put(sealed, stored.until).await.map_err(ObjectError)
    }

    /// The alarm at the session's end: forget everything.
    pub fn forget(&self) {
        *self.cached.borrow_mut() = None;
    }
}

fn associated_data(login: &str) -> Vec<u8> {
    format!("coordinator:{login}").into_bytes()
}

#[cfg(test)]
mod tests;
