//! `GET /session`: whether the browser is logged in, and as whom. Never 401.

use super::{request_cookies, AgentContext};
use crate::error::BffError;
use crate::session::cookie_store;
use crate::session::store::Loaded;
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;
use serde_json::json;

/// Least time between two idle-timeout touches of a cookie session, in seconds.
pub const TOUCH_INTERVAL: u64 = 60;

/// Answer `/session`.
pub async fn handle(ctx: &AgentContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let not_logged_in = |clear: bool| {
        let mut response = json_response(StatusCode::OK, &json!({ "authenticated": false }));
        if clear {
            add_set_cookies(&mut response, &cookie_store::clear(ctx.config, &present));
        }
        response
    };
    let (mut session, handle) = match ctx.store.load(&cookies, ctx.now).await {
        // A KV record not found (yet): not logged in, but the cookie is left alone.
        Loaded::Absent | Loaded::Missing => return Ok(not_logged_in(false)),
        Loaded::Invalid => {
            log::info!("session cookie present but does not open");
            return Ok(not_logged_in(true));
        }
        Loaded::Valid { session, handle } => (session, handle),
    };
    if let Err(why) = session.check_active(ctx.now, ctx.config.session_idle_timeout) {
        log::info!("session inactive: {why:?}");
        return Ok(not_logged_in(true));
    }
    let expires_at = match session.refresh_token {
        Some(_) => session.expires_at,
        None => session.expires_at.min(session.access_expires_at),
    };
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "authenticated": true,
            "user": session.user_claims(),
            "expires_at": expires_at,
            "access_token_expires_at": session.access_expires_at,
        }),
    );
    let touch = ctx.config.session_idle_timeout > 0 && ctx.now.saturating_sub(session.last_seen) >= TOUCH_INTERVAL;
    if handle.needs_reseal() || touch {
        session.last_seen = ctx.now;
        add_set_cookies(&mut response, &ctx.store.update(&session, &handle, &present, ctx.now, true).await?);
    }
    Ok(response)
}
