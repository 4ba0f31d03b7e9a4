//! `GET /session`: whether the browser is logged in, and as whom. Never 401.

use super::{request_cookies, RequestContext};
use crate::config::{Config, SessionStoreKind};
use crate::error::BffError;
use crate::lifecycle;
use crate::proxy::direct::session_without_io;
use crate::session::cookie_store;
use crate::session::opened_cache::OpenedCache;
use crate::session::Session;
use crate::web::response::{add_set_cookies, json_response, json_text_response, HttpRequest, HttpResponse};
use http::StatusCode;
use serde_json::json;

/// Answer `/session`.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let call = match lifecycle::open(ctx, &cookies).await {
        Ok(call) => call,
        Err(e) => {
            let mut response = json_text_response(StatusCode::OK, NOT_LOGGED_IN.to_vec());
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
    let mut response = logged_in(call.session());
    add_set_cookies(&mut response, &call.finish(ctx).await);
    Ok(response)
}

/// The answer for a session that is logged in.
fn logged_in(session: &Session) -> HttpResponse {
    json_response(StatusCode::OK, &logged_in_body(session))
}

/// The JSON of [`logged_in`]'s answer: it depends on the session alone.
fn logged_in_body(session: &Session) -> serde_json::Value {
    let expires_at = match session.refresh_token {
        Some(_) => session.expires_at,
        None => session.expires_at.min(session.access_expires_at),
    };
    json!({
        "authenticated": true,
        "user": session.user_claims(),
        "expires_at": expires_at,
        "access_token_expires_at": session.access_expires_at,
    })
}

/// The answer's body when there is no session: `{"authenticated":false}`.
const NOT_LOGGED_IN: &[u8] = br#"{"authenticated":false}"#;

/// The only request headers [`direct`] reads: the Worker glue hands it a request with
/// these alone (reading one header is cheaper than reading them all).
pub const DIRECT_HEADERS: [&str; 2] = ["cookie", "origin"];

/// `GET /session` answered without I/O, or `None` when the request needs [`handle`]: the
/// session must open as [`session_without_io`] says (then [`handle`] would neither read
/// nor write anything either), and the CORS headers are added as [`super::handle`] does.
/// The Worker glue answers it without entering async Rust, as the proxy's direct path.
/// With `opened`, the body is made once per remembered cookie (one lookup finds the
/// session and its answer). Reads only the request headers of [`DIRECT_HEADERS`].
pub fn direct(
    config: &Config,
    request: &HttpRequest,
    kv_bound: bool,
    opened: Option<&OpenedCache>,
    now: u64,
) -> Option<HttpResponse> {
    if request.method() != http::Method::GET {
        return None;
    }
    let cookies = request_cookies(request);
    let body =
        if !cookie_store::has_session_cookie(config, &cookies) && config.session_store == SessionStoreKind::Cookie {
            // No session cookie at all (a first visit): [`handle`] would read nothing and set
            // nothing either, deny list or not. Answered here, a fresh isolate's first request
            // does not compile the full path.
            NOT_LOGGED_IN.to_vec()
        } else {
            let opened = session_without_io(config, &cookies, kv_bound, opened, now)?;
            opened.session_answer(|session| logged_in_body(session).to_string().into_bytes()).to_vec()
        };
    let mut response = json_text_response(StatusCode::OK, body);
    for (name, value) in crate::web::cors::response_headers(config, request.headers()) {
        response.headers_mut().append(name, value);
    }
    Some(response)
}
