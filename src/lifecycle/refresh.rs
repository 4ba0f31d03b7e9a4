//! Refreshing a session's tokens: through the login's coordinator when one is bound
//! (one token-endpoint call per login across every isolate), per isolate otherwise, and
//! in both cases coalesced within the isolate.

use super::protocol::{
    self, CoordinatorRequest, Need, RefreshAsk, RefreshError, RefreshResult, Refreshed, TokenSet,
    COORDINATOR_ACK_WAIT_MS, COORDINATOR_START_WINDOW_MS, COORDINATOR_WAIT_MS, MAX_GRANT_ROUNDS, REFRESH_DEADLINE_MS,
};
use super::token_call::{call_token_endpoint, Login, TokenCall};
use super::{short_id, RequestContext};
use crate::coalesce::{key_of, Timing, WAIT_TICK_MS};
use crate::config::token_request::TokenRequest;
use crate::error::BffError;
use crate::session::store::Handle;
use crate::session::Session;

/// A coalescing leader older than this is presumed gone (its request was cancelled) and
/// the next request of the session takes its place: longer than the longest live leader
/// (the coordinator's two waits, then a refresh of its own).
pub const LEADER_DEADLINE_MS: u64 =
    COORDINATOR_ACK_WAIT_MS as u64 + COORDINATOR_WAIT_MS as u64 + REFRESH_DEADLINE_MS as u64 + 1_000;

/// Refresh `session`'s tokens, or with `route` get that route's token (docs/api.md
/// section 4, "Route tokens"): a grant of the login's refresh token either way. Concurrent
/// grants of one refresh token in this isolate make one call (to the coordinator when
/// bound, else to the token endpoint); a grant finished in the last 30 s is reused; a
/// grant for another purpose that spent the refresh token first is built on. A refused
/// refresh in KV mode first re-reads the record: another isolate may have refreshed (and
/// rotated) it already. The absolute expiry never moves. Returns the new session and
/// whether this request produced it (it alone writes it to KV).
pub async fn refresh_session(
    ctx: &RequestContext<'_>,
    session: &Session,
    handle: &Handle,
    route: Option<&TokenRequest>,
) -> Result<(Session, bool), BffError> {
    let need = route.map_or(Need::Login, |r| Need::Route(&r.key));
    let asked = TokenSet::of(session);
    let met = |tokens: &TokenSet| tokens.meets(need, &asked);
    let mut current = session.clone();
    let mut produced = false;
    for _ in 0..MAX_GRANT_ROUNDS {
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(match route {
                Some(_) => BffError::TokenUnavailable("the session has no refresh token".into()),
                None => BffError::SessionExpired("no refresh token and the access token expired".into()),
            });
        };
        let timing = Timing {
            clock: || ctx.http.now_ms(),
            tick: || ctx.http.sleep(WAIT_TICK_MS),
            leader_deadline_ms: LEADER_DEADLINE_MS,
        };
        // Made first, run only by the leader (a future does nothing until polled).
        let work = obtain(ctx, &current, route);
        let key = key_of(&refresh_token);
        let (result, led) = ctx.shared.refreshes.run(key, ctx.now, move || work, timing).await;
        if !led {
            log::info!("grant for sub {} served by a concurrent or recent one", short_id(&session.sub));
        }
        match result {
            // A recent grant that left the refresh token as it was (the provider does not
            // rotate it) and does not meet the need: nothing was spent, so the next round
            // grants anew.
            Ok(r) if !led && r.tokens.refresh_token.as_ref() == Some(&refresh_token) && !met(&r.tokens) => {
                ctx.shared.refreshes.forget(&key);
            }
            Ok(refreshed) => {
                produced |= led && refreshed.fresh;
                let meets = met(&refreshed.tokens);
                current = apply(&current, &refreshed.tokens);
                if meets {
                    return Ok((current, produced));
                }
                // Another purpose's grant spent the refresh token: go on from its tokens.
            }
            Err(e) if e.ends_session() => {
                let elsewhere = ended(ctx, &current, handle, e).await?;
                // Refreshed by another isolate meanwhile: its tokens; a route token still
                // missing from them is asked for with its refresh token.
                let has_route = route.is_none_or(|r| elsewhere.route_token(&r.key, ctx.now).is_some());
                current = elsewhere;
                if has_route {
                    return Ok((current, false));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(BffError::IdpUnavailable("too many concurrent grants for one session".into()))
}

/// A grant refused so that the session ends. In KV mode the record is read again: one
/// refreshed elsewhere meanwhile (the refused refresh token was already spent there) is
/// returned to be used instead; one that still holds the refused refresh token is
/// deleted.
async fn ended(
    ctx: &RequestContext<'_>,
    session: &Session,
    handle: &Handle,
    e: RefreshError,
) -> Result<Session, BffError> {
    let stored = ctx.store.reload(handle, ctx.now).await;
    if let (RefreshError::Rejected(code), Some(current)) = (&e, &stored) {
        if current.refresh_token != session.refresh_token
            && current.check_active(ctx.now, ctx.config.session_idle_timeout).is_ok()
        {
            log::info!("refresh token refused ({code}) but the stored session was refreshed elsewhere");
            return Ok(current.clone());
        }
    }
    match &e {
        RefreshError::ClientRefused(code) => log::error!(
            "token endpoint refused the client ({code}): check CLIENT_ID and CLIENT_SECRET or CLIENT_PRIVATE_KEY; \
             the session of sub {} ends",
            short_id(&session.sub)
        ),
        RefreshError::InvalidIdToken(why) => log::error!(
            "refreshed ID token refused ({why}): none of the answer's tokens is used; the session of sub {} ends",
            short_id(&session.sub)
        ),
        _ => {}
    }
    // KV: a record that still holds the refused refresh token is deleted. One that holds
    // another (a newer refresh elsewhere) is left alone.
    if stored.is_some_and(|current| current.refresh_token == session.refresh_token) {
        ctx.store.delete(Some(handle), &[]).await;
    }
    Err(e.into())
}

/// Tokens newer than `session`'s that are already known, without a token call: a refresh
/// of its refresh token that this isolate finished moments ago, or (KV) a stored record
/// of a later generation. A best-effort write (activity, re-seal) takes them, so it never
/// puts older tokens over newer ones.
pub async fn newer_known(ctx: &RequestContext<'_>, session: &Session, handle: &Handle) -> Option<Session> {
    if let Some(rt) = session.refresh_token.as_deref() {
        if let Some(Ok(refreshed)) = ctx.shared.refreshes.recent(&key_of(rt), ctx.now) {
            if refreshed.tokens.generation > session.generation {
                return Some(apply(session, &refreshed.tokens));
            }
        }
    }
    ctx.store.reload(handle, ctx.now).await.filter(|stored| stored.generation > session.generation)
}

/// `session` with the tokens of a refresh.
fn apply(session: &Session, tokens: &TokenSet) -> Session {
    let mut next = session.clone();
    next.access_token = tokens.access_token.clone();
    next.access_expires_at = tokens.access_expires_at;
    if let Some(rt) = &tokens.refresh_token {
        next.refresh_token = Some(rt.clone());
    }
    if let Some(it) = &tokens.id_token {
        next.id_token = it.clone();
    }
    next.generation = tokens.generation;
    next.dpop = tokens.dpop;
    next.route_tokens = tokens.route_tokens.clone();
    next
}

/// New tokens for `session` (its login's, or with `route` that route's): from its login's
/// coordinator when one is bound and the session names its login; by calling the token
/// endpoint here otherwise, or when the coordinator cannot be had (logged as a warning).
async fn obtain(ctx: &RequestContext<'_>, session: &Session, route: Option<&TokenRequest>) -> RefreshResult {
    if let (Some(coordinator), Some(login)) = (ctx.coordinator, session.login.as_deref()) {
        let ask = CoordinatorRequest::Refresh(RefreshAsk {
            tokens: TokenSet::of(session),
            sub: session.sub.clone(),
            expires_at: session.expires_at,
            start_by_ms: Some(ctx.http.now_ms() + u64::from(COORDINATOR_START_WINDOW_MS)),
            route: route.map(|r| r.key.clone()),
        });
        let asked =
            protocol::ask_within(coordinator, ctx.http, login, &ask, COORDINATOR_ACK_WAIT_MS, COORDINATOR_WAIT_MS)
                .await;
        match asked.map(protocol::refresh_result) {
            Ok(Some(result)) => return result,
            Ok(None) => log::warn!("coordinator took the ask too late to start on it; refreshing in this isolate"),
            Err(e) => log::warn!("{e}; refreshing in this isolate"),
        }
    }
    let refresh_token = session.refresh_token.as_deref().unwrap_or_default();
    let response = call_token_endpoint(
        &TokenCall {
            config: ctx.config,
            provider: ctx.provider(),
            http: ctx.http,
            signer: ctx.signer,
            verifier: ctx.verifier,
            nonces: Some(&ctx.shared.dpop_nonces),
            now: ctx.now,
        },
        Login { sub: &session.sub, id_token: Some(&session.id_token) },
        refresh_token,
        route,
    )
    .await?;
    Ok(Refreshed { tokens: response.after(&TokenSet::of(session), route), fresh: true })
}
