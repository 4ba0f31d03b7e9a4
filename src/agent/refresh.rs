//! `POST /refresh`: refresh the session's tokens now.

use super::{request_cookies, RequestContext};
use crate::error::BffError;
use crate::lifecycle;
use crate::web::csrf;
use crate::web::response::{add_set_cookies, json_response, HttpRequest, HttpResponse};
use http::StatusCode;

/// Answer `/refresh`: 200 `{"access_token_expires_at"}`.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    csrf::require(ctx.config, request)?;
    let cookies = request_cookies(request);
    let mut call = lifecycle::open(ctx, &cookies).await?;
    if call.session().refresh_token.is_none() {
        // Nothing to refresh with: the session lasts until its access token expires
        // (docs/api.md section 7); it is not ended for asking.
        log::info!("refresh asked for a session without a refresh token");
    } else if let Err(e) = call.refresh(ctx).await {
        return Ok(call.fail(ctx, &cookies, &e).await);
    }
    let mut response = json_response(
        StatusCode::OK,
        &serde_json::json!({ "access_token_expires_at": call.session().access_expires_at }),
    );
    add_set_cookies(&mut response, &call.finish(ctx).await);
    Ok(response)
}
