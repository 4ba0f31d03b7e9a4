//! `GET /userinfo`: the provider's UserInfo response for the session's access token,
//! refreshing first when the access token has expired.

use super::refresh::refresh_session;
use super::{load_required, request_cookies, require_csrf, AgentContext};
use crate::error::BffError;
use crate::session::Session;
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;

enum Answer {
    Claims(serde_json::Map<String, serde_json::Value>),
    Unauthorized,
}

async fn call(ctx: &AgentContext<'_>, endpoint: &url::Url, session: &Session) -> Result<Answer, BffError> {
    let request = http::Request::get(endpoint.as_str())
        .header("authorization", format!("Bearer {}", session.access_token))
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| BffError::Server(format!("userinfo request: {e}")))?;
    let response = ctx.http.send(request).await.map_err(|e| BffError::IdpUnavailable(format!("userinfo: {e}")))?;
    match response.status() {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED => return Ok(Answer::Unauthorized),
        s => return Err(BffError::IdpUnavailable(format!("userinfo: status {}", s.as_u16()))),
    }
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(response.body())
        .map_err(|_| BffError::IdpUnavailable("userinfo: response is not a JSON object".into()))?;
    // OIDC Core §5.3.2: the sub must be the ID token's, else the response is not for this user.
    if claims.get("sub").and_then(|s| s.as_str()) != Some(session.sub.as_str()) {
        return Err(BffError::IdpUnavailable("userinfo: sub differs from the session's".into()));
    }
    Ok(Answer::Claims(claims))
}

/// Answer `/userinfo`.
pub async fn handle(ctx: &AgentContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    require_csrf(ctx.config, request)?;
    let cookies = request_cookies(request);
    let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
    let (mut session, handle) = load_required(ctx, &cookies).await?;
    let mut rewrite = handle.needs_reseal();
    let mut leader = true;
    let meta = ctx.metadata().await?;
    let endpoint = meta.userinfo_endpoint.clone().ok_or(BffError::NotFound)?;
    let mut refreshed = false;
    if ctx.now >= session.access_expires_at {
        (session, leader) = refresh_session(ctx, &session, &handle).await?;
        refreshed = true;
        rewrite = true;
    }
    let mut answer = call(ctx, &endpoint, &session).await?;
    if matches!(answer, Answer::Unauthorized) && !refreshed && session.refresh_token.is_some() {
        (session, leader) = refresh_session(ctx, &session, &handle).await?;
        rewrite = true;
        answer = call(ctx, &endpoint, &session).await?;
    }
    let Answer::Claims(claims) = answer else {
        return Err(BffError::TokenRejected);
    };
    let mut response = json_response(StatusCode::OK, &serde_json::Value::Object(claims));
    if rewrite {
        add_set_cookies(&mut response, &ctx.store.update(&session, &handle, &present, ctx.now, leader).await?);
    }
    Ok(response)
}
