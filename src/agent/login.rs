//! `GET /login` and `POST /login/start`: begin an authorization code + PKCE login.

use super::RequestContext;
use super::{login_cookie, request_cookies};
use crate::error::BffError;
use crate::oidc::authorize::{
    allowed_params, authorization_params, push_authorization_request, requested_of, sanitize_return_to, url_with,
    uses_par, LoginState, ParError,
};
use crate::web::csrf::require as require_csrf;
use crate::web::query::parse_query;
use crate::web::response::{add_set_cookies, json_response, redirect, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Why a login could not begin.
#[derive(Debug)]
enum BeginError {
    /// Discovery, configuration, randomness or bad parameters.
    Bff(BffError),
    /// The pushed authorization request failed (the provider's side).
    Par(ParError),
}

impl From<BffError> for BeginError {
    fn from(e: BffError) -> Self {
        Self::Bff(e)
    }
}

impl From<BeginError> for BffError {
    /// The JSON answer (`/login/start`): a failed push is `idp_unavailable`.
    fn from(e: BeginError) -> Self {
        match e {
            BeginError::Bff(e) => e,
            BeginError::Par(e) => BffError::IdpUnavailable(e.to_string()),
        }
    }
}

/// Create the login state, seal it into the attempt's own login cookie, and build the
/// URL. Returns the URL and the `Set-Cookie` values (the new cookie, and the clearing
/// of login cookies that no longer fit, see [`login_cookie::make_room`]).
async fn begin(
    ctx: &RequestContext<'_>,
    request: &HttpRequest,
    return_to: Option<&str>,
    params: &[(&str, &str)],
) -> Result<(String, Vec<String>), BeginError> {
    let extra = allowed_params(ctx.config, params.iter().copied());
    let requested = requested_of(&extra)?;
    let meta = ctx.metadata().await?;
    let login = LoginState { requested, ..LoginState::new(sanitize_return_to(ctx.config, return_to), ctx.now)? };
    let params = authorization_params(ctx.config, &login, &extra);
    let url = if uses_par(ctx.config, &meta)? {
        push_authorization_request(&ctx.client_call(), &meta, &params).await.map_err(BeginError::Par)?
    } else {
        url_with(&meta.authorization_endpoint, &params)
    };
    let mut cookies = login_cookie::make_room(ctx.config, &request_cookies(request), ctx.now);
    cookies.push(login_cookie::store(ctx.config, &login)?);
    Ok((url, cookies))
}

/// `GET /login?return_to=…&prompt=…`: 302 to the authorization endpoint.
pub async fn navigate(ctx: &RequestContext<'_>, request: &HttpRequest) -> Result<HttpResponse, BffError> {
    let query = parse_query(request.uri().query());
    let return_to = query.iter().find(|(k, _)| k == "return_to").map(|(_, v)| v.as_str());
    let params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (url, cookies) = match begin(ctx, request, return_to, &params).await {
        Ok(begun) => begun,
        // A top-level navigation: the browser is sent to the app's error page, as for a
        // callback that fails (docs/api.md section 3, PAR).
        Err(BeginError::Par(e)) => {
            log::warn!("login refused: idp_unavailable ({e})");
            ctx.outcome.note(crate::lifecycle::outcome::Outcome::Error("idp_unavailable"));
            return Ok(redirect(&format!("{}?auth_error=idp_unavailable", ctx.config.login_error_path)));
        }
        Err(BeginError::Bff(e)) => return Err(e),
    };
    ctx.outcome.note(crate::lifecycle::outcome::Outcome::LoginStarted);
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
    params: Option<StartParams>,
}

/// `params` of `/login/start`: a JSON object of strings, in order. A name given twice
/// keeps its first value, as a repeated query parameter of `GET /login` does
/// ([`allowed_params`]); a map would keep the last.
#[derive(Default)]
struct StartParams(Vec<(String, String)>);

impl<'de> Deserialize<'de> for StartParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StartParams;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StartParams, A::Error> {
                let mut seen = BTreeSet::new();
                let mut pairs = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    if seen.insert(name.clone()) {
                        pairs.push((name, value));
                    }
                }
                Ok(StartParams(pairs))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
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
    let params = body.params.unwrap_or_default().0;
    if let Some((bad, _)) = params.iter().find(|(k, _)| !ctx.config.allowed_auth_params.contains(k)) {
        return Err(BffError::InvalidRequest(format!("parameter {bad:.40} is not in ALLOWED_AUTH_PARAMS")));
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (url, cookies) = begin(ctx, request, body.return_to.as_deref(), &pairs).await.map_err(BffError::from)?;
    ctx.outcome.note(crate::lifecycle::outcome::Outcome::LoginStarted);
    let mut response = json_response(http::StatusCode::OK, &serde_json::json!({ "authorization_url": url }));
    add_set_cookies(&mut response, &cookies);
    Ok(response)
}
