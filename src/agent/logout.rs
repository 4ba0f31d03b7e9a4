//! `POST /logout`: clear every session cookie and answer the provider's end-session URL.

use super::{request_cookies, require_csrf, short_id, AgentContext};
use crate::error::BffError;
use crate::session::store::Loaded;
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;

/// Answer `/logout`.
pub async fn handle(ctx: &AgentContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    require_csrf(ctx.config, request)?;
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let (session, handle) = match ctx.store.load(&cookies, ctx.now).await {
        Loaded::Valid { session, handle } => (Some(session), Some(handle)),
        Loaded::Absent | Loaded::Invalid | Loaded::Missing => (None, None),
    };
    let logout_url = match ctx.metadata().await {
        Ok(meta) => {
            if let (Some(endpoint), Some(rt)) =
                (&meta.revocation_endpoint, session.as_ref().and_then(|s| s.refresh_token.as_deref()))
            {
                // RFC 7009. A failure is logged; the logout goes on.
                match crate::oidc::token::revoke_refresh_token(ctx.http, ctx.config, endpoint, rt).await {
                    Ok(()) => log::info!("refresh token revoked"),
                    Err(e) => log::warn!("refresh token revocation failed: {e}"),
                }
            }
            match &meta.end_session_endpoint {
                Some(endpoint) => {
                    let mut url = endpoint.clone();
                    {
                        let mut q = url.query_pairs_mut();
                        if let Some(s) = &session {
                            q.append_pair("id_token_hint", &s.id_token);
                        }
                        q.append_pair("client_id", &ctx.config.client_id);
                        q.append_pair("post_logout_redirect_uri", &ctx.config.post_logout_redirect_uri);
                    }
                    url.to_string()
                }
                None => ctx.config.post_logout_redirect_uri.clone(),
            }
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
    let mut response = json_response(StatusCode::OK, &serde_json::json!({ "logout_url": logout_url }));
    add_set_cookies(&mut response, &ctx.store.delete(handle.as_ref(), &present).await);
    Ok(response)
}
