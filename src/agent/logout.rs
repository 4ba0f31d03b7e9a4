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
            match (&ctx.config.end_session_url, &meta.end_session_endpoint) {
                (Some(template), _) => end_session_url(
                    template,
                    &ctx.config.client_id,
                    &ctx.config.post_logout_redirect_uri,
                    session.as_ref().map(|s| s.id_token.as_str()),
                ),
                (None, Some(endpoint)) => {
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
                (None, None) => ctx.config.post_logout_redirect_uri.clone(),
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
    ctx.outcome.note(crate::lifecycle::outcome::Outcome::LoggedOut);
    let mut response = json_response(StatusCode::OK, &serde_json::json!({ "logout_url": logout_url }));
    add_set_cookies(&mut response, &ctx.store.delete(handle.as_ref(), &present).await);
    Ok(response)
}

/// `END_SESSION_URL` with its placeholders filled in: each query value that is a
/// placeholder gets its value; `{id_token_hint}` without a session drops its parameter.
pub fn end_session_url(template: &url::Url, client_id: &str, post_logout: &str, id_token: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = template.query_pairs().into_owned().collect();
    let mut url = template.clone();
    url.set_query(None);
    if !pairs.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in &pairs {
            let filled = match value.as_str() {
                "{client_id}" => Some(client_id),
                "{post_logout_redirect_uri}" => Some(post_logout),
                "{id_token_hint}" => id_token,
                other => Some(other),
            };
            if let Some(filled) = filled {
                query.append_pair(name, filled);
            }
        }
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::end_session_url;

    #[test]
    fn placeholders_are_filled_and_encoded() {
        let template = url::Url::parse(
            "https://auth.example.com/logout?client_id={client_id}&logout_uri={post_logout_redirect_uri}&hint={id_token_hint}&x=1",
        )
        .unwrap();
        let url = end_session_url(&template, "spa", "https://app.example.com/?a=b&c", Some("h.t.s"));
        assert_eq!(
            url,
            "https://auth.example.com/logout?client_id=spa&logout_uri=https%3A%2F%2Fapp.example.com%2F%3Fa%3Db%26c&hint=h.t.s&x=1"
        );
        let without = end_session_url(&template, "spa", "https://app.example.com/", None);
        assert!(!without.contains("hint="), "{without}");
    }
}
