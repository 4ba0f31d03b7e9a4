//! The OAuth agent under `AUTH_PATH` (docs/api.md section 3): login, callback, session and
//! logout. Handlers return `Result<HttpResponse, BffError>`; [`handle`] turns errors
//! into responses in one place and logs their detail. It may use every core layer below
//! it (`proxy`, `lifecycle`, `oidc`, `session`, …), never `runtime`.

pub(crate) mod backchannel;
mod callback;
pub mod health;
mod login;
pub mod login_cookie;
mod logout;
mod refresh;
pub mod session_info;
mod userinfo;

use crate::config::Config;
use crate::error::BffError;
use crate::lifecycle::{error_response, RequestContext};
use crate::web::response::{HttpRequest, HttpResponse};
use http::Method;

/// Largest accepted agent request body (docs/api.md section 3).
pub const MAX_BODY: usize = 16 * 1024;

/// Cookies of a request as `(name, value)` pairs.
pub fn request_cookies(request: &HttpRequest) -> Vec<(&str, &str)> {
    crate::web::cookies::cookies_of(request.headers())
}

/// Handle a request whose path is `AUTH_PATH` + `sub_path`.
pub async fn handle(ctx: &RequestContext<'_>, request: &HttpRequest, sub_path: &str) -> HttpResponse {
    let mut response = match crate::web::cors::is_preflight(request.method(), request.headers()) {
        false => dispatch(ctx, request, sub_path).await,
        true => return crate::web::cors::preflight(ctx.config, request.headers(), "GET, POST"),
    };
    for (name, value) in crate::web::cors::response_headers(ctx.config, request.headers()) {
        response.headers_mut().append(name, value);
    }
    response
}

async fn dispatch(ctx: &RequestContext<'_>, request: &HttpRequest, sub_path: &str) -> HttpResponse {
    let method = request.method();
    let result = if request.body().len() > MAX_BODY {
        Err(BffError::PayloadTooLarge)
    } else {
        match sub_path {
            "/login" if method == Method::GET => login::navigate(ctx, request).await,
            "/login/start" if method == Method::POST => login::start_json(ctx, request).await,
            "/callback" if method == Method::GET => Ok(callback::handle(ctx, request).await),
            "/session" if method == Method::GET => session_info::handle(ctx, request).await,
            "/backchannel-logout" if method == Method::POST => backchannel::handle(ctx, request).await,
            "/userinfo" if method == Method::GET => userinfo::handle(ctx, request).await,
            "/client.js" if method == Method::GET => Ok(client_js(ctx.config)),
            "/jwks" if method == Method::GET => jwks(ctx.config),
            "/health" if method == Method::GET => Ok(health::handle(ctx).await),
            "/refresh" if method == Method::POST => refresh::handle(ctx, request).await,
            "/logout" if method == Method::POST => logout::handle(ctx, request).await,
            "/login" | "/callback" | "/session" | "/userinfo" | "/client.js" | "/jwks" | "/health" => {
                Err(BffError::MethodNotAllowed { allow: "GET".into() })
            }
            "/login/start" | "/logout" | "/refresh" | "/backchannel-logout" => {
                Err(BffError::MethodNotAllowed { allow: "POST".into() })
            }
            _ => Err(BffError::NotFound),
        }
    };
    result.unwrap_or_else(|e| error_response(ctx, &request_cookies(request), &e))
}

/// `GET /jwks`: the public keys of `CLIENT_PRIVATE_KEY` (docs/api.md section 3), for the
/// provider's `jwks_uri`: the signing key first, then the others (rotation). 404
/// `not_found` without `CLIENT_PRIVATE_KEY`.
fn jwks(config: &Config) -> Result<HttpResponse, BffError> {
    if config.client_private_keys.is_empty() {
        return Err(BffError::NotFound);
    }
    let keys: Vec<&serde_json::Value> = config.client_private_keys.iter().map(|k| k.public_jwk()).collect();
    Ok(crate::web::response::json_response(http::StatusCode::OK, &serde_json::json!({ "keys": keys })))
}

/// The browser helper source, with `AUTH_PATH` filled in.
const CLIENT_JS: &str = include_str!("client.js");

/// `GET /client.js`: the browser helper (docs/api.md section 6).
fn client_js(config: &Config) -> HttpResponse {
    let body = CLIENT_JS.replace("__AUTH_PATH__", &config.auth_path);
    let mut response = http::Response::new(body.into_bytes());
    let h = response.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
    h.insert("x-content-type-options", http::HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests;
