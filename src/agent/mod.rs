//! The OAuth agent under `AUTH_PATH` (API.md section 3): login, callback, session and
//! logout. Handlers return `Result<HttpResponse, BffError>`; [`handle`] turns errors
//! into responses in one place and logs their detail.

mod backchannel;
mod callback;
mod login;
mod logout;
pub mod refresh;
mod session_info;
mod userinfo;

use crate::config::Config;
use crate::error::BffError;
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::provider::{self, ProviderCache, ProviderError};
use crate::session::coalesce::Coalescer;
use crate::session::cookie_store;
use crate::session::kv_store::KvBackend;
use crate::session::store::{Handle, Loaded, SessionStore};
use crate::session::{Inactive, Session};
use crate::web::client::HttpClient;
use crate::web::csrf::{self, CsrfInputs};
use crate::web::response::{header_str, HttpRequest, HttpResponse};
use http::Method;
use std::cell::RefCell;
use std::rc::Rc;

/// Largest accepted agent request body (API.md section 3).
pub const MAX_BODY: usize = 16 * 1024;

/// State that lives as long as the isolate: provider caches and refresh coalescing.
#[derive(Default)]
pub struct SharedState {
    /// Provider metadata and keys.
    pub provider: RefCell<ProviderCache>,
    /// Refreshes in flight and recently finished, by refresh-token hash.
    pub refreshes: Coalescer<refresh::RefreshResult>,
    /// Recently opened session cookies.
    pub opened: crate::session::opened_cache::OpenedCache,
}

/// Everything a handler needs: configuration, per-isolate state, the outgoing HTTP
/// client and the current time.
pub struct AgentContext<'a> {
    /// Validated configuration.
    pub config: &'a Config,
    /// Per-isolate caches.
    pub shared: &'a SharedState,
    /// Outgoing HTTP (timeouts, no redirects).
    pub http: &'a dyn HttpClient,
    /// Where sessions live (cookies or KV).
    pub store: &'a dyn SessionStore,
    /// The `SESSIONS` KV namespace, when bound (back-channel logout).
    pub kv: Option<&'a dyn KvBackend>,
    /// Current Unix time in seconds.
    pub now: u64,
}

impl AgentContext<'_> {
    /// The provider cache.
    pub fn provider(&self) -> &RefCell<ProviderCache> {
        &self.shared.provider
    }

    /// The provider's metadata (cached).
    pub async fn metadata(&self) -> Result<Rc<ProviderMetadata>, BffError> {
        provider::metadata(self.provider(), self.http, &self.config.issuer, self.now).await.map_err(provider_error)
    }
}

/// The request's session, which must exist and be active, with its store handle.
/// Errors: no, unreadable or missing session → `unauthorized`; an expired access token
/// without refresh token → `session_expired`.
pub async fn load_required(ctx: &AgentContext<'_>, cookies: &[(&str, &str)]) -> Result<(Session, Handle), BffError> {
    match ctx.store.load(cookies, ctx.now).await {
        Loaded::Absent | Loaded::Invalid | Loaded::Missing => Err(BffError::Unauthorized),
        Loaded::Valid { session, handle } => match session.check_active(ctx.now, ctx.config.session_idle_timeout) {
            Ok(()) => Ok((*session, handle)),
            Err(Inactive::AccessExpiredNoRefresh) => {
                Err(BffError::SessionExpired("access token expired and no refresh token".into()))
            }
            Err(why) => {
                log::info!("session ended: {why:?}");
                Err(BffError::Unauthorized)
            }
        },
    }
}

/// Map a provider failure to the client-facing error.
pub fn provider_error(e: ProviderError) -> BffError {
    match e {
        ProviderError::Unavailable(d) => BffError::IdpUnavailable(d),
        ProviderError::Misconfigured(d) => BffError::Configuration(format!("OIDC_ISSUER: {d}")),
    }
}

/// Cookies of a request as `(name, value)` pairs.
pub fn request_cookies(request: &HttpRequest) -> Vec<(&str, &str)> {
    crate::web::cookies::cookies_of(request.headers())
}

/// Apply the CSRF guard of API.md section 3.
pub fn require_csrf(config: &Config, request: &HttpRequest) -> Result<(), BffError> {
    csrf::check(
        CsrfInputs {
            x_csrf: header_str(request, "x-csrf"),
            origin: header_str(request, "origin"),
            sec_fetch_site: header_str(request, "sec-fetch-site"),
        },
        &config.public_origin,
        &config.trusted_origins,
    )
}

/// Handle a request whose path is `AUTH_PATH` + `sub_path`.
pub async fn handle(ctx: &AgentContext<'_>, request: &HttpRequest, sub_path: &str) -> HttpResponse {
    if crate::web::cors::is_preflight(request.method(), request.headers()) {
        return crate::web::cors::preflight(ctx.config, request.headers(), "GET, POST");
    }
    let mut response = dispatch(ctx, request, sub_path).await;
    for (name, value) in crate::web::cors::response_headers(ctx.config, request.headers()) {
        response.headers_mut().append(name, value);
    }
    response
}

async fn dispatch(ctx: &AgentContext<'_>, request: &HttpRequest, sub_path: &str) -> HttpResponse {
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
            "/refresh" if method == Method::POST => refresh::handle(ctx, request).await,
            "/logout" if method == Method::POST => logout::handle(ctx, request).await,
            "/login" | "/callback" | "/session" | "/userinfo" | "/client.js" => {
                Err(BffError::MethodNotAllowed { allow: "GET".into() })
            }
            "/login/start" | "/logout" | "/refresh" | "/backchannel-logout" => {
                Err(BffError::MethodNotAllowed { allow: "POST".into() })
            }
            _ => Err(BffError::NotFound),
        }
    };
    result.unwrap_or_else(|e| error_response(ctx.config, request, &e))
}

/// The browser helper source, with `AUTH_PATH` filled in.
const CLIENT_JS: &str = include_str!("client.js");

/// `GET /client.js`: the browser helper (API.md section 6).
fn client_js(config: &Config) -> HttpResponse {
    let body = CLIENT_JS.replace("__AUTH_PATH__", &config.auth_path);
    let mut response = http::Response::new(body.into_bytes());
    let h = response.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
    h.insert("x-content-type-options", http::HeaderValue::from_static("nosniff"));
    response
}

/// The response for `e`: logged, and for `unauthorized`/`session_expired` every session
/// cookie the request carried is cleared in the same response.
pub fn error_response(config: &Config, request: &HttpRequest, e: &BffError) -> HttpResponse {
    log_error(e);
    let mut response = e.to_response();
    if matches!(e, BffError::SessionExpired(_) | BffError::Unauthorized) {
        let cookies = request_cookies(request);
        let present: Vec<&str> = cookies.iter().map(|(n, _)| *n).collect();
        if matches!(e, BffError::SessionExpired(_))
            || present.iter().any(|n| cookie_store::is_session_cookie(config, n))
        {
            crate::web::response::add_set_cookies(&mut response, &cookie_store::clear(config, &present));
        }
    }
    response
}

/// The first characters of an identifier (`sub`), enough to correlate log lines
/// without logging the whole identifier.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// Log an error's detail at a level that fits it.
pub fn log_error(e: &BffError) {
    if e.is_server_side() {
        log::error!("{e}");
    } else {
        log::info!("{e}");
    }
}

#[cfg(test)]
mod tests;
