//! `GET /session`: whether the browser is logged in, and as whom. Never 401.

use super::{request_cookies, RequestContext};
use crate::error::BffError;
use crate::lifecycle;
use crate::session::cookie_store;
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;
use serde_json::json;

/// Answer `/session`.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let call = match lifecycle::open(ctx, &cookies).await {
        Ok(call) => call,
        Err(e) => {
            let mut response = json_response(StatusCode::OK, &json!({ "authenticated": false }));
            match e {
                // No cookie at all, or a KV record not found (yet): the cookie is left alone.
                BffError::SessionUnavailable(why) => log::info!("session record unavailable: {why}"),
                BffError::Unauthorized if !present.iter().any(|n| cookie_store::is_session_cookie(ctx.config, n)) => {}
                other => {
                    log::info!("session not usable: {other}");
                    add_set_cookies(&mut response, &cookie_store::clear(ctx.config, &present));
                }
            }
            return Ok(response);
        }
    };
    let session = call.session();
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
    add_set_cookies(&mut response, &call.finish(ctx).await);
    Ok(response)
}
