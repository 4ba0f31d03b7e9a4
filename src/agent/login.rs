//! `GET /login` and `POST /login/start`: begin an authorization code + PKCE login.

use super::RequestContext;
use super::{login_cookie, request_cookies};
use crate::error::BffError;
use crate::oidc::authorize::{allowed_params, authorization_url, requested_of, sanitize_return_to, LoginState};
use crate::web::csrf::require as require_csrf;
use crate::web::query::parse_query;
use crate::web::response::{add_set_cookies, json_response, redirect, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Create the login state, seal it into the attempt's own login cookie, and build the
/// URL. Returns the URL and the `Set-Cookie` values (the new cookie, and the clearing
/// of login cookies that no longer fit, see [`login_cookie::make_room`]).
async fn begin(
    ctx: &RequestContext<'_>,
    request: &HttpRequest,
    return_to: Option<&str>,
    params: &[(&str, &str)],
) -> Result<(String, Vec<String>), BffError> {
    let extra = allowed_params(ctx.config, params.iter().copied());
    let requested = requested_of(&extra)?;
    let meta = ctx.metadata().await?;
    let login = LoginState { requested, ..LoginState::new(sanitize_return_to(ctx.config, return_to), ctx.now)? };
    let url = authorization_url(ctx.config, &meta, &login, &extra);
    let mut cookies = login_cookie::make_room(ctx.config, &request_cookies(request), ctx.now);
    cookies.push(login_cookie::store(ctx.config, &login)?);
    Ok((url, cookies))
}

/// `GET /login?return_to=…&prompt=…`: 302 to the authorization endpoint.
pub async fn navigate(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    let query = parse_query(request.uri().query());
    let return_to = query.iter().find(|(k, _)| k == "return_to").map(|(_, v)| v.as_str());
    let params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (url, cookies) = begin(ctx, request, return_to, &params).await?;
    let mut response = redirect(&url);
    add_set_cookies(&mut response, &cookies);
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    return_to: Option<String>,
    #[serde(default)]
    params: Option<BTreeMap<String, String>>,
}

/// `POST /login/start` with `{"return_to"?, "params"?}`: 200 `{"authorization_url"}`.
pub async fn start_json(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    require_csrf(ctx.config, request)?;
    let body: StartBody = if request.body().iter().all(u8::is_ascii_whitespace) {
        StartBody { return_to: None, params: None }
    } else {
        serde_json::from_slice(request.body())
            .map_err(|_| BffError::InvalidRequest("login/start body is not {return_to?, params?}".into()))?
    };
    let params = body.params.unwrap_or_default();
    if let Some(bad) = params.keys().find(|k| !ctx.config.allowed_auth_params.contains(k)) {
        return Err(BffError::InvalidRequest(format!("parameter {bad:.40} is not in ALLOWED_AUTH_PARAMS")));
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (url, cookies) = begin(ctx, request, body.return_to.as_deref(), &pairs).await?;
    let mut response = json_response(http::StatusCode::OK, &serde_json::json!({ "authorization_url": url }));
    add_set_cookies(&mut response, &cookies);
    Ok(response)
}
