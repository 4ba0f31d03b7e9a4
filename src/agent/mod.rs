//! The OAuth agent under `AUTH_PATH` (API.md section 3): login, callback, session and
//! logout. Handlers return `Result<HttpResponse, BffError>`; [`handle`] turns errors
//! into responses in one place and logs their detail.

mod callback;
mod login;
mod logout;
mod session_info;

use crate::config::Config;
use crate::error::BffError;
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::provider::{self, ProviderCache, ProviderError};
use crate::web::client::HttpClient;
use crate::web::cookies::parse_cookie_header;
use crate::web::csrf::{self, CsrfInputs};
use crate::web::response::{header_str, HttpRequest, HttpResponse};
use http::Method;
use std::cell::RefCell;
use std::rc::Rc;

/// Largest accepted agent request body (API.md section 3).
pub const MAX_BODY: usize = 16 * 1024;

/// Everything a handler needs: configuration, per-isolate caches, the outgoing HTTP
/// client and the current time.
pub struct AgentContext<'a> {
    /// Validated configuration.
    pub config: &'a Config,
    /// Provider metadata and keys, cached per isolate.
    pub provider: &'a RefCell<ProviderCache>,
    /// Outgoing HTTP (timeouts, no redirects).
    pub http: &'a dyn HttpClient,
    /// Current Unix time in seconds.
    pub now: u64,
}

impl AgentContext<'_> {
    /// The provider's metadata (cached).
    pub async fn metadata(&self) -> Result<Rc<ProviderMetadata>, BffError> {
        provider::metadata(self.provider, self.http, &self.config.issuer, self.now)
            .await
            .map_err(provider_error)
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
    parse_cookie_header(
        request
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
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
    let method = request.method();
    let result = if request.body().len() > MAX_BODY {
        Err(BffError::PayloadTooLarge)
    } else {
        match sub_path {
            "/login" if method == Method::GET => login::navigate(ctx, request).await,
            "/login/start" if method == Method::POST => login::start_json(ctx, request).await,
            "/callback" if method == Method::GET => Ok(callback::handle(ctx, request).await),
            "/session" if method == Method::GET => session_info::handle(ctx, request),
            "/logout" if method == Method::POST => logout::handle(ctx, request).await,
            "/login" | "/callback" | "/session" => Err(BffError::MethodNotAllowed { allow: "GET" }),
            "/login/start" | "/logout" => Err(BffError::MethodNotAllowed { allow: "POST" }),
            _ => Err(BffError::NotFound),
        }
    };
    result.unwrap_or_else(|e| {
        log_error(&e);
        e.to_response()
    })
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
