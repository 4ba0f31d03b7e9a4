//! `POST /logout`: end the session everywhere edge-bff can (KV record, the login's
//! coordinator object, the refresh token at the provider), clear every session cookie and
//! answer the provider's end-session URL.

use super::{request_cookies, RequestContext};
use crate::error::BffError;
use crate::lifecycle::{coordinator, short_id};
use crate::session::store::Loaded;
use crate::web::csrf;
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;

/// Answer `/logout`.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    csrf::require(ctx.config, request)?;
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    // A cookie that opens names its session even when the KV record could not be read:
    // the record is deleted and the login ended all the same.
    let (session, handle) = match ctx.store.load(&cookies, ctx.now).await {
        Loaded::Valid { session, handle } => (Some(session), Some(handle)),
        Loaded::Missing { handle, why } => {
            log::info!("logout of a session whose record is missing ({why:?}): deleting it anyway");
            (None, Some(handle))
        }
        Loaded::Absent | Loaded::Invalid => (None, None),
    };
    if let Some(coordinator) = ctx.coordinator {
        let login = session
            .as_ref()
            .and_then(|s| s.login.clone())
            .or_else(|| handle.as_ref().and_then(crate::session::kv_store::login_of_handle));
        if let Some(login) = login {
            let until = session.as_ref().map_or(ctx.now + ctx.config.session_max_age, |s| s.expires_at);
            coordinator::end_login(coordinator, ctx.http, &login, until).await;
        }
    }
    let logout_url = match ctx.metadata().await {
        Ok(meta) => {
            if let (Some(endpoint), Some(rt)) =
                (&meta.revocation_endpoint, session.as_ref().and_then(|s| s.refresh_token.as_deref()))
            {
                // RFC 7009. A failure is logged; the logout goes on.
                match crate::oidc::token::revoke_refresh_token(&ctx.client_call(), endpoint, rt).await {
                    Ok(()) => log::info!("refresh token revoked"),
                    Err(e) => log::warn!("refresh token revocation failed: {e}"),
                }
            }
            let id_token = session.as_ref().map(|s| s.id_token.as_str());
            crate::oidc::logout::logout_url(ctx.config, meta.end_session_endpoint.as_ref(), id_token)
        }
        Err(e) => {
            // The local logout still happens; the browser just goes home.
            log::warn!("logout without provider metadata: {e}");
            ctx.config.post_logout_redirect_uri.clone()
        }
    };
    if let Some(s) = &session {
        log::info!("logout for sub {}", short_id(&s.sub));
    }
    ctx.outcome.note(crate::lifecycle::outcome::Outcome::LoggedOut);
    let mut response = json_response(StatusCode::OK, &serde_json::json!({ "logout_url": logout_url }));
    add_set_cookies(&mut response, &ctx.store.delete(handle.as_ref(), &present).await);
    Ok(response)
}
