//! `GET /userinfo`: the provider's UserInfo response for the session's access token,
//! refreshing first when the access token has expired, and once more when the provider
//! refuses it. Refreshed tokens are kept whatever the UserInfo call answers.

use super::{request_cookies, RequestContext};
use crate::error::BffError;
use crate::lifecycle;
use crate::oidc::dpop;
use crate::session::Session;
use crate::web::csrf;
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;

enum Answer {
    Claims(serde_json::Map<String, serde_json::Value>),
    Unauthorized,
}

async fn call(ctx: &RequestContext<'_>, endpoint: &url::Url, session: &Session) -> Result<Answer, BffError> {
    let mut response = send(ctx, endpoint, session).await?;
    // A DPoP nonce challenge (RFC 9449 section 9) is answered once; the nonce is kept.
    if response.status() == StatusCode::UNAUTHORIZED && session.dpop {
        if let Some(nonce) = dpop::nonce_challenge(&response) {
            ctx.shared.dpop_nonces.remember(dpop::origin_of(endpoint), nonce);
            response = send(ctx, endpoint, session).await?;
        }
    }
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

/// One UserInfo request with the session's access token: `Bearer`, or `DPoP` with a
/// proof (and the provider's last nonce) for a DPoP-bound token.
async fn send(
    ctx: &RequestContext<'_>,
    endpoint: &url::Url,
    session: &Session,
) -> Result<http::Response<Vec<u8>>, BffError> {
    let mut request = http::Request::get(endpoint.as_str()).header("accept", "application/json");
    match (&ctx.config.dpop_key, session.dpop) {
        (Some(key), true) => {
            let nonce = ctx.shared.dpop_nonces.get(dpop::origin_of(endpoint));
            let proof = dpop::proof(
                ctx.signer,
                key,
                "GET",
                endpoint.as_str(),
                nonce.as_deref(),
                Some(&session.access_token),
                ctx.now,
            )
            .await
            .map_err(|e| BffError::Server(format!("DPoP proof: {e}")))?;
            request = request.header("authorization", format!("DPoP {}", session.access_token)).header("dpop", proof);
        }
        (None, true) => request = request.header("authorization", format!("DPoP {}", session.access_token)),
        (_, false) => request = request.header("authorization", format!("Bearer {}", session.access_token)),
    }
    let request = request.body(Vec::new()).map_err(|e| BffError::Server(format!("userinfo request: {e}")))?;
    ctx.http.send(request).await.map_err(|e| BffError::IdpUnavailable(format!("userinfo: {e}")))
}

/// Answer `/userinfo`.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    csrf::require(ctx.config, request)?;
    let cookies = request_cookies(request);
    let mut session = lifecycle::open(ctx, &cookies).await?;
    let claims = async {
        let meta = ctx.metadata().await?;
        let endpoint = meta.userinfo_endpoint.clone().ok_or(BffError::NotFound)?;
        if ctx.now >= session.session().access_expires_at {
            session.refresh(ctx).await?;
        }
        let mut answer = call(ctx, &endpoint, session.session()).await?;
        if matches!(answer, Answer::Unauthorized) && !session.refreshed() && session.session().refresh_token.is_some() {
            session.refresh(ctx).await?;
            answer = call(ctx, &endpoint, session.session()).await?;
        }
        match answer {
            Answer::Claims(claims) => Ok(claims),
            Answer::Unauthorized => Err(BffError::TokenRejected),
        }
    }
    .await;
    match claims {
        Ok(claims) => {
            let mut response = json_response(StatusCode::OK, &serde_json::Value::Object(claims));
            add_set_cookies(&mut response, &session.finish(ctx).await);
            Ok(response)
        }
        // Whatever failed after a refresh, the refreshed tokens go out with the error.
        Err(e) => Ok(session.fail(ctx, &cookies, &e).await),
    }
}
