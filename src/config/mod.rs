//! Configuration (docs/api.md section 2): read once per isolate from the Worker's variables
//! and secrets, validated completely, never half-applied. Errors name the setting and
//! the rule it breaks, never the value (it may be a secret). It may use `crypto`, `error`
//! and the HTTP building blocks of `web` only: the rules of other layers that a setting
//! needs (a route's `require`, tenant-id syntax, the default CSP) live here.

pub mod require;
pub mod token_request;

use crate::crypto::KeyRing;
use std::fmt;

/// Where settings come from: the Worker's `env` in production, a map in tests.
/// Values arrive as text; non-text TOML values (numbers, booleans, arrays) are given
/// as their JSON text by the runtime glue.
pub trait VarSource {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

impl VarSource for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A configuration problem: which setting, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    /// The variable's name, e.g. `COOKIE_KEYS`.
    pub setting: &'static str,
    /// What is wrong (never the value itself).
    pub reason: String,
}

fn err(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting, reason: reason.into() }
}

/// How the client authenticates at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret (default).
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
    /// Public client: `client_id` in the body, no secret.
    None,
    /// A client assertion signed with `CLIENT_PRIVATE_KEY` (RFC 7523).
    PrivateKeyJwt,
}

/// `LOG_LEVEL` (docs/api.md section 9): the least severe level written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings (the default).
    Warn,
    /// Also what edge-bff did: configuration loaded, refreshes, refusals.
    Info,
    /// Everything.
    Debug,
}

impl LogLevel {
    /// The `log` crate's filter for this level.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

/// Which tenants a multi-tenant issuer may log users in from (`ALLOWED_TENANTS`,
/// [`crate::oidc::tenant`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRule {
    /// `*`: any tenant.
    Any,
    /// These tenant ids.
    Only(Vec<String>),
}

/// Whether logins push their authorization request first (`PAR`, RFC 9126).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParMode {
    /// When discovery says `require_pushed_authorization_requests: true` (default).
    Auto,
    /// Always (a provider without a PAR endpoint is a configuration error).
    On,
    /// Never.
    Off,
}

/// The `aud` of client assertions (`CLIENT_ASSERTION_AUDIENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAudience {
    /// The issuer identifier (default; what RFC 7523 and FAPI 2.0 recommend).
    Issuer,
    /// The URL of the endpoint being called (some providers require it).
    Endpoint,
}

/// Where sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStoreKind {
    /// Everything sealed in cookies (default).
    Cookie,
    /// Opaque id in a cookie, tokens in Workers KV (`SESSIONS` binding).
    Kv,
}

/// Which token a proxied route adds (docs/api.md section 4, "Route tokens").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteToken {
    /// Session required; the user's token added: the login's, or the route's own when the
    /// route has a `token_request`.
    Access,
    /// No session needed; nothing added.
    None,
    /// An app-only token from the `client_credentials` grant; no session read.
    Client,
    /// As [`RouteToken::Access`] with a valid session, else as [`RouteToken::Client`].
    AccessOrClient,
}

/// One entry of `API_ROUTES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    /// Path prefix on the public origin, e.g. `/api/`.
    pub prefix: String,
    /// Upstream base URL the rest of the path is appended to.
    pub upstream: url::Url,
    /// Allowed methods (upper case); `None` allows all.
    pub methods: Option<Vec<String>>,
    /// Token handling.
    pub token: RouteToken,
    /// `token_request`: the parameters of the grant that gets this route its own token.
    pub token_request: Option<token_request::TokenRequest>,
    /// `require`: ID-token claims the session must have (docs/api.md section 4).
    pub require: Option<crate::config::require::Requirements>,
    /// `websocket`: `GET` requests with `Upgrade: websocket` are proxied as WebSockets.
    pub websocket: bool,
    /// `event_stream`: same-origin `EventSource` requests need no `X-CSRF`.
    pub event_stream: bool,
}

/// The client secret: no `Debug` text, no `Display`.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// The secret's text, for the token request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// The shortest `SESSION_IDLE_TIMEOUT` other than 0 (off).
pub const MIN_IDLE_TIMEOUT: u64 = 60;

/// The validated configuration (docs/api.md section 2).
#[derive(Debug)]
pub struct Config {
    /// `OIDC_ISSUER`, exactly as configured (compared exactly with the provider's).
    pub issuer: String,
    /// `CLIENT_ID`.
    pub client_id: String,
    /// `CLIENT_SECRET` (absent only with `CLIENT_AUTH=none`).
    pub client_secret: Option<ClientSecret>,
    /// `CLIENT_AUTH`.
    pub client_auth: ClientAuth,
    /// `CLIENT_PRIVATE_KEY`: the first signs client assertions; all are published at
    /// `{AUTH_PATH}/jwks`. Empty when not set.
    pub client_private_keys: Vec<crate::crypto::signing::PrivateKey>,
    /// `LOG_LEVEL`.
    pub log_level: LogLevel,
    /// `ALLOWED_TENANTS`: a multi-tenant issuer and the tenants it accepts; `None`: the
    /// issuer is compared exactly.
    pub allowed_tenants: Option<TenantRule>,
    /// `DPOP_KEY`: the key DPoP proofs are signed with (RFC 9449); `None`: no DPoP.
    pub dpop_key: Option<crate::crypto::dpop_key::DpopKey>,
    /// `CLIENT_ASSERTION_AUDIENCE`.
    pub client_assertion_audience: AssertionAudience,
    /// `PAR`.
    pub par: ParMode,
    /// `PUBLIC_ORIGIN` without a trailing slash.
    pub public_origin: String,
    /// `AUTH_PATH`, starting with `/`, no trailing slash.
    pub auth_path: String,
    /// `SCOPES`, `openid` first, no duplicates.
    pub scopes: Vec<String>,
    /// `API_ROUTES`.
    pub api_routes: Vec<ApiRoute>,
    /// The `resource` parameters of the authorization request (RFC 8707 section 2.1):
    /// every distinct `resource` of the user-token routes (`access`, `access_or_client`),
    /// in route order, so that the login's grant covers them.
    pub login_resources: Vec<String>,
    /// `SESSION_STORE`.
    pub session_store: SessionStoreKind,
    /// `COOKIE_KEYS`.
    pub cookie_keys: KeyRing,
    /// `COOKIE_PREFIX`.
    pub cookie_prefix: String,
    /// `SESSION_MAX_AGE` in seconds.
    pub session_max_age: u64,
    /// `SESSION_IDLE_TIMEOUT` in seconds, 0 = off.
    pub session_idle_timeout: u64,
    /// `TRUSTED_ORIGINS`.
    pub trusted_origins: Vec<String>,
    /// `POST_LOGOUT_REDIRECT_URI`.
    pub post_logout_redirect_uri: String,
    /// `END_SESSION_URL`: the provider's logout URL when discovery has no
    /// `end_session_endpoint` (or a different one is needed), with placeholders.
    pub end_session_url: Option<url::Url>,
    /// `ALLOWED_AUTH_PARAMS`.
    pub allowed_auth_params: Vec<String>,
    /// `AUTH_PARAMS`: fixed extra authorization-request parameters, in order.
    pub auth_params: Vec<(String, String)>,
    /// `LOGIN_ERROR_PATH`.
    pub login_error_path: String,
    /// `CONTENT_SECURITY_POLICY` for HTML assets; `None` when set to `off`.
    pub content_security_policy: Option<String>,
    /// `HSTS`: the `Strict-Transport-Security` value of every response; `None` when set
    /// to `off` or when `PUBLIC_ORIGIN` is not https.
    pub hsts: Option<String>,
}

/// Default `SCOPES`.
pub const DEFAULT_SCOPES: &str = "openid profile email";
/// Default `ALLOWED_AUTH_PARAMS`.
pub const DEFAULT_AUTH_PARAMS: &str = "prompt login_hint ui_locales acr_values max_age";
/// Default `HSTS` (two years).
pub const DEFAULT_HSTS: &str = "max-age=63072000";
/// Default `SESSION_MAX_AGE` (8 h).
pub const DEFAULT_SESSION_MAX_AGE: u64 = 28_800;

/// Parameters edge-bff itself sets on the authorization request (or, `client_secret`,
/// on the pushed one); never caller-supplied. Every `client_assertion*` name too, see
/// [`is_reserved_auth_param`].
const RESERVED_AUTH_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
    "request_uri",
    "dpop_jkt",
    "client_secret",
];

/// Whether `name` may be neither fixed (`AUTH_PARAMS`) nor passed by a caller
/// (`ALLOWED_AUTH_PARAMS`): a parameter edge-bff sets itself, or client authentication
/// (`client_secret`, `client_assertion`, `client_assertion_type` and any other
/// `client_assertion*`), which a pushed authorization request carries beside the
/// authorization parameters and which must come from `CLIENT_AUTH` alone.
fn is_reserved_auth_param(name: &str) -> bool {
    RESERVED_AUTH_PARAMS.contains(&name) || name.starts_with("client_assertion")
}

/// Longest `AUTH_PARAMS` value (the whole setting), in bytes.
const MAX_AUTH_PARAMS: usize = 2048;

/// The session cookie's name is `COOKIE_PREFIX` + this.
const SESSION_COOKIE_SUFFIX: &str = "-session";
/// The login cookie's name is `COOKIE_PREFIX` + this.
const LOGIN_COOKIE_SUFFIX: &str = "-login";

impl Config {
    /// The redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}{}/callback", self.public_origin, self.auth_path)
    }

    /// The `token_request` whose key is `key`, if a route has it.
    pub fn token_request(&self, key: &str) -> Option<&token_request::TokenRequest> {
        self.api_routes.iter().filter_map(|r| r.token_request.as_ref()).find(|t| t.key == key)
    }

    /// Name of the session cookie (chunks append `.1`, `.2`, …).
    pub fn session_cookie_name(&self) -> String {
        format!("{}{SESSION_COOKIE_SUFFIX}", self.cookie_prefix)
    }

    /// What follows the session cookie's name at the start of `name` (`""` for that
    /// cookie itself, `".2"` for a chunk), or `None`: the hot-path test, without building
    /// the name.
    pub fn after_session_cookie_name<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.cookie_prefix.as_str())?.strip_prefix(SESSION_COOKIE_SUFFIX)
    }

    /// Base name of the login cookies: each login attempt's cookie is this name, a `.`
    /// and a tag of its `state` (`agent::login_cookie`); the bare name is the one
    /// cookie of releases before login attempts had their own.
    pub fn login_cookie_name(&self) -> String {
        format!("{}{LOGIN_COOKIE_SUFFIX}", self.cookie_prefix)
    }

    /// Whether `name` is a login cookie's name: the base name, or the base name, `.` and
    /// 1 to 43 characters of base64url (without building it).
    pub fn is_login_cookie_name(&self, name: &str) -> bool {
        match name.strip_prefix(self.cookie_prefix.as_str()).and_then(|rest| rest.strip_prefix(LOGIN_COOKIE_SUFFIX)) {
            Some("") => true,
            Some(rest) => rest.strip_prefix('.').is_some_and(|tag| {
                (1..=43).contains(&tag.len())
                    && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }),
            None => false,
        }
    }

    /// The scheme and the `host[:port]` of `PUBLIC_ORIGIN` (`X-Forwarded-Proto` and
    /// `X-Forwarded-Host` of proxied calls), without parsing it again per request.
    pub fn public_scheme_and_host(&self) -> (&str, &str) {
        // `public_origin` is a serialised origin, `scheme://host[:port]` (see `parse_origin`).
        self.public_origin.split_once("://").unwrap_or(("https", ""))
    }

    /// Whether `origin` may call with credentials (own origin or trusted).
    pub fn is_allowed_origin(&self, origin: &str) -> bool {
        origin == self.public_origin || self.trusted_origins.iter().any(|o| o == origin)
    }

    /// Whether every configured private key (`CLIENT_PRIVATE_KEY`, `DPOP_KEY`) is one key
    /// pair: what its private members sign, its public members verify. The configuration's
    /// last check, run once per isolate before a key is used, because the signature is the
    /// platform's (WebCrypto in the Worker) and asynchronous; [`Config::from_vars`] has
    /// already checked each key's shape.
    pub async fn check_key_pairs(
        &self,
        signer: &dyn crate::crypto::signing::Signer,
        verifier: &dyn crate::crypto::verifying::Verifier,
    ) -> Result<(), ConfigError> {
        use crate::crypto::signing::check_pairs;
        check_pairs(&self.client_private_keys, signer, verifier)
            .await
            .map_err(|e| err("CLIENT_PRIVATE_KEY", e.to_string()))?;
        if let Some(dpop) = &self.dpop_key {
            check_pairs(std::slice::from_ref(dpop.key()), signer, verifier)
                .await
                .map_err(|e| err("DPOP_KEY", e.to_string()))?;
        }
        Ok(())
    }

    /// Whether there are private keys for [`Config::check_key_pairs`] to check.
    pub fn has_private_keys(&self) -> bool {
        !self.client_private_keys.is_empty() || self.dpop_key.is_some()
    }

    /// Settings that are valid but weaker than they should be, for a `warn` line each at
    /// start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.public_origin.starts_with("https://") && !self.cookie_prefix.starts_with("__Host-") {
            out.push(
                "COOKIE_PREFIX does not start with __Host-: a sibling subdomain can set cookies of the same name \
                 (edge-bff then treats the session as absent)"
                    .to_string(),
            );
        }
        out
    }

    /// Read and validate every setting.
    pub fn from_vars(vars: &dyn VarSource) -> Result<Self, ConfigError> {
        let get = |name: &'static str| vars.var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or_else(|| err(name, "is required"));

        let issuer = required("OIDC_ISSUER")?;
        check_endpoint_url(&issuer).map_err(|r| err("OIDC_ISSUER", r))?;

        let client_id = required("CLIENT_ID")?;
        let client_auth = match get("CLIENT_AUTH").as_deref() {
            None | Some("client_secret_basic") => ClientAuth::SecretBasic,
            Some("client_secret_post") => ClientAuth::SecretPost,
            Some("none") => ClientAuth::None,
            Some("private_key_jwt") => ClientAuth::PrivateKeyJwt,
            Some(_) => {
                return Err(err(
                    "CLIENT_AUTH",
                    "must be client_secret_basic, client_secret_post, private_key_jwt or none",
                ))
            }
        };
        use crate::crypto::signing::{parse_private_keys, SigningAlg};
        let client_private_keys = match vars.var("CLIENT_PRIVATE_KEY").filter(|k| !k.trim().is_empty()) {
            Some(text) => {
                parse_private_keys(&text, &[SigningAlg::Rs256, SigningAlg::Ps256, SigningAlg::Es256, SigningAlg::EdDsa])
                    .map_err(|e| err("CLIENT_PRIVATE_KEY", e.to_string()))?
            }
            None if client_auth == ClientAuth::PrivateKeyJwt => {
                return Err(err("CLIENT_PRIVATE_KEY", "is required with CLIENT_AUTH=private_key_jwt"))
            }
            None => Vec::new(),
        };
        let client_assertion_audience = match get("CLIENT_ASSERTION_AUDIENCE").as_deref() {
            None | Some("issuer") => AssertionAudience::Issuer,
            Some("endpoint") => AssertionAudience::Endpoint,
            Some(_) => return Err(err("CLIENT_ASSERTION_AUDIENCE", "must be issuer or endpoint")),
        };
        let log_level = match get("LOG_LEVEL").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("warn") => LogLevel::Warn,
            Some("error") => LogLevel::Error,
            Some("info") => LogLevel::Info,
            Some("debug") => LogLevel::Debug,
            Some(_) => return Err(err("LOG_LEVEL", "must be error, warn, info or debug")),
        };
        let allowed_tenants = match get("ALLOWED_TENANTS").as_deref().map(str::trim) {
            None | Some("") => None,
            Some("*") => Some(TenantRule::Any),
            Some(list) => {
                let tenants: Vec<String> = list.split_whitespace().map(str::to_string).collect();
                if tenants.len() > 1000 || !tenants.iter().all(|t| is_tenant_id(t)) {
                    return Err(err(
                        "ALLOWED_TENANTS",
                        "must be * or up to 1000 space-separated tenant ids (lowercase GUIDs)",
                    ));
                }
                Some(TenantRule::Only(tenants))
            }
        };
        let dpop_key = match vars.var("DPOP_KEY").filter(|k| !k.trim().is_empty()) {
            Some(text) => {
                let mut keys = parse_private_keys(&text, &[SigningAlg::Es256, SigningAlg::EdDsa])
                    .map_err(|e| err("DPOP_KEY", e.to_string()))?;
                if keys.len() != 1 {
                    return Err(err("DPOP_KEY", "must be one private JWK, not a set"));
                }
                Some(crate::crypto::dpop_key::DpopKey::new(keys.remove(0)))
            }
            None => None,
        };
        let par = match get("PAR").as_deref() {
            None | Some("auto") => ParMode::Auto,
            Some("on") => ParMode::On,
            Some("off") => ParMode::Off,
            Some(_) => return Err(err("PAR", "must be auto, on or off")),
        };
        let client_secret = match client_auth {
            ClientAuth::None | ClientAuth::PrivateKeyJwt => None,
            _ => Some(ClientSecret(vars.var("CLIENT_SECRET").filter(|s| !s.is_empty()).ok_or_else(|| {
                err("CLIENT_SECRET", "is required with CLIENT_AUTH=client_secret_basic or client_secret_post")
            })?)),
        };

        let public_origin = required("PUBLIC_ORIGIN")?;
        let public_origin = parse_origin(&public_origin).map_err(|r| err("PUBLIC_ORIGIN", r))?;

        let auth_path = get("AUTH_PATH").unwrap_or_else(|| "/auth".into());
        let auth_path = auth_path.trim_end_matches('/').to_string();
        if !auth_path.starts_with('/') || auth_path.len() < 2 || !is_plain_path(&auth_path) {
            return Err(err("AUTH_PATH", "must be a path like /auth (letters, digits, - _ . /)"));
        }

        let mut scopes: Vec<String> = vec!["openid".into()];
        for scope in list(get("SCOPES").as_deref().unwrap_or(DEFAULT_SCOPES)).map_err(|r| err("SCOPES", r))? {
            if !scope.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
                return Err(err("SCOPES", "a scope has characters not allowed by RFC 6749"));
            }
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }

        let session_store = match get("SESSION_STORE").as_deref() {
            None | Some("cookie") => SessionStoreKind::Cookie,
            Some("kv") => SessionStoreKind::Kv,
            Some(_) => return Err(err("SESSION_STORE", "must be cookie or kv")),
        };

        let cookie_keys = KeyRing::parse(&vars.var("COOKIE_KEYS").unwrap_or_default())
            .map_err(|e| err("COOKIE_KEYS", e.to_string()))?;

        let cookie_prefix = get("COOKIE_PREFIX").unwrap_or_else(|| "__Host-bff".into());
        if cookie_prefix.len() > 64
            || !cookie_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(err("COOKIE_PREFIX", "must be 1-64 characters of A-Z a-z 0-9 _ -"));
        }

        let session_max_age =
            seconds(get("SESSION_MAX_AGE"), DEFAULT_SESSION_MAX_AGE).map_err(|r| err("SESSION_MAX_AGE", r))?;
        if session_max_age < 60 {
            return Err(err("SESSION_MAX_AGE", "must be at least 60 seconds"));
        }
        let session_idle_timeout =
            seconds(get("SESSION_IDLE_TIMEOUT"), 0).map_err(|r| err("SESSION_IDLE_TIMEOUT", r))?;
        if session_idle_timeout != 0 && session_idle_timeout < MIN_IDLE_TIMEOUT {
            // Activity is recorded every quarter of the timeout (docs/api.md section 2): below a
            // minute that would be a write every few seconds per session.
            return Err(err("SESSION_IDLE_TIMEOUT", "must be 0 (off) or at least 60 seconds"));
        }

        let mut trusted_origins = Vec::new();
        for origin in list(get("TRUSTED_ORIGINS").as_deref().unwrap_or("")).map_err(|r| err("TRUSTED_ORIGINS", r))? {
            trusted_origins.push(parse_origin(&origin).map_err(|r| err("TRUSTED_ORIGINS", r))?);
        }

        let post_logout_redirect_uri = match get("POST_LOGOUT_REDIRECT_URI") {
            Some(uri) => {
                check_endpoint_url(&uri).map_err(|r| err("POST_LOGOUT_REDIRECT_URI", r))?;
                uri
            }
            None => format!("{public_origin}/"),
        };

        let end_session_url = match get("END_SESSION_URL") {
            None => None,
            Some(text) => Some(parse_end_session_url(&text).map_err(|r| err("END_SESSION_URL", r))?),
        };

        let allowed_auth_params = list(get("ALLOWED_AUTH_PARAMS").as_deref().unwrap_or(DEFAULT_AUTH_PARAMS))
            .map_err(|r| err("ALLOWED_AUTH_PARAMS", r))?;
        if let Some(p) = allowed_auth_params.iter().find(|p| is_reserved_auth_param(p)) {
            return Err(err("ALLOWED_AUTH_PARAMS", format!("{p} is set by edge-bff and cannot be allowed")));
        }

        let auth_params = parse_auth_params(get("AUTH_PARAMS").as_deref().unwrap_or(""), &allowed_auth_params)
            .map_err(|r| err("AUTH_PARAMS", r))?;

        let login_error_path = get("LOGIN_ERROR_PATH").unwrap_or_else(|| "/".into());
        if !is_local_path(&login_error_path) || login_error_path.contains('?') || login_error_path.contains('#') {
            return Err(err("LOGIN_ERROR_PATH", "must be a same-origin path starting with / (no query)"));
        }

        let content_security_policy = match get("CONTENT_SECURITY_POLICY") {
            None => Some(DEFAULT_CSP.to_string()),
            Some(v) if v == "off" => None,
            Some(v) if v.bytes().all(|b| (0x20..0x7f).contains(&b)) => Some(v),
            Some(_) => return Err(err("CONTENT_SECURITY_POLICY", "must be printable ASCII on one line, or off")),
        };

        let hsts = match get("HSTS") {
            Some(v) if v == "off" => None,
            value => {
                let value = value.unwrap_or_else(|| DEFAULT_HSTS.to_string());
                check_hsts(&value).map_err(|r| err("HSTS", r))?;
                public_origin.starts_with("https://").then_some(value)
            }
        };

        let api_routes = parse_api_routes(get("API_ROUTES").as_deref().unwrap_or("[]"), &auth_path)?;
        let login_resources = login_resources(&api_routes);

        Ok(Self {
            issuer,
            client_id,
            client_secret,
            client_auth,
            client_private_keys,
            log_level,
            allowed_tenants,
            dpop_key,
            client_assertion_audience,
            par,
            public_origin,
            auth_path,
            scopes,
            api_routes,
            login_resources,
            session_store,
            cookie_keys,
            cookie_prefix,
            session_max_age,
            session_idle_timeout,
            trusted_origins,
            post_logout_redirect_uri,
            end_session_url,
            allowed_auth_params,
            auth_params,
            login_error_path,
            content_security_policy,
            hsts,
        })
    }
}

/// The placeholders `END_SESSION_URL` may use as whole query values.
pub const END_SESSION_PLACEHOLDERS: &[&str] = &["{client_id}", "{post_logout_redirect_uri}", "{id_token_hint}"];

/// `END_SESSION_URL`: an https URL (http on localhost) whose query values may be
/// placeholders; any other `{…}` is refused (a typo would reach the provider).
fn parse_end_session_url(text: &str) -> Result<url::Url, String> {
    let url = check_endpoint_url(text)?;
    for (_, value) in url.query_pairs() {
        if (value.contains('{') || value.contains('}')) && !END_SESSION_PLACEHOLDERS.contains(&value.as_ref()) {
            return Err("a query value holds an unknown placeholder (known: {client_id}, {post_logout_redirect_uri}, {id_token_hint})".into());
        }
    }
    Ok(url)
}

/// `AUTH_PARAMS`: `application/x-www-form-urlencoded` pairs, each name once, none that
/// edge-bff sets itself or that callers may pass (`ALLOWED_AUTH_PARAMS`: the caller's
/// value and the fixed one would compete).
fn parse_auth_params(text: &str, allowed: &[String]) -> Result<Vec<(String, String)>, String> {
    if text.len() > MAX_AUTH_PARAMS {
        return Err(format!("is longer than {MAX_AUTH_PARAMS} bytes"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be form-encoded (name=value&name=value, no spaces or non-ASCII text)".into());
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            return Err("a parameter name is empty or not letters, digits, _ - .".into());
        }
        if is_reserved_auth_param(&name) {
            return Err(format!("{name} is set by edge-bff itself"));
        }
        if allowed.iter().any(|a| *a == name) {
            return Err(format!("{name} is also in ALLOWED_AUTH_PARAMS"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("{name} is given twice"));
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

/// An HSTS value (RFC 6797 section 6.1): `max-age=<seconds>` once, optionally
/// `includeSubDomains` and `preload`, separated by `;`.
fn check_hsts(value: &str) -> Result<(), String> {
    let mut max_age = false;
    for directive in value.split(';').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        match lower.split_once('=') {
            Some(("max-age", n))
                if !max_age && !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                max_age = true;
            }
            None if lower == "includesubdomains" || lower == "preload" => {}
            _ => return Err("must be max-age=<seconds> with optional includeSubDomains and preload, or off".into()),
        }
    }
    if max_age {
        Ok(())
    } else {
        Err("must contain max-age=<seconds>, or be off".into())
    }
}

/// A space-separated list, or a JSON array of strings (a TOML array in `[vars]`).
fn list(text: &str) -> Result<Vec<String>, String> {
    let text = text.trim();
    if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text).map_err(|_| "is not a list of strings".to_string())
    } else {
        Ok(text.split_whitespace().map(str::to_string).collect())
    }
}

fn seconds(value: Option<String>, default: u64) -> Result<u64, String> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= 31_536_000 => Ok(n),
            _ => Err("must be a whole number of seconds up to one year".into()),
        },
    }
}

/// `https://`, or `http://` only for `localhost` and `127.0.0.1` (docs/api.md section 2). Host
/// names must be ASCII: an internationalised domain is written in its punycode form
/// (`xn--…`); the build carries no Unicode IDNA tables (docs/performance.md, size).
pub fn check_endpoint_url(text: &str) -> Result<url::Url, String> {
    // Non-ASCII text would reach the IDNA mapping, which this build does not carry (and
    // whose stand-in asserts on some inputs in debug builds; found by src/fuzz.rs).
    if !text.is_ascii() {
        return Err("must be ASCII: write a host name in punycode (xn--…) and percent-encode the path".into());
    }
    // A percent-encoded host is decoded by the parser and can reach the same mapping
    // (`https://A%C3%A9`, found by src/fuzz.rs); no real host needs one.
    if authority_of(text).contains('%') {
        return Err(
            "has a percent-encoded host name: write the host plainly (punycode, xn--…, for an international one)"
                .into(),
        );
    }
    let url = url::Url::parse(text).map_err(|e| match e {
        url::ParseError::IdnaError => "has a non-ASCII host name: write it in punycode (xn--…)".to_string(),
        _ => "is not an absolute URL".to_string(),
    })?;
    let local = matches!(url.host_str(), Some("localhost") | Some("127.0.0.1"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err("must use https:// (http:// only for localhost and 127.0.0.1)".into()),
    }
    if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must have a host and no credentials or fragment".into());
    }
    Ok(url)
}

/// The authority of URL text as the parser will read it, generously: after the scheme's
/// `:` and any slashes or backslashes (and the tabs and newlines the parser drops), up to
/// the next `/`, `\`, `?` or `#`. Only used to refuse what the parser must not see.
fn authority_of(text: &str) -> &str {
    let after_scheme = text.split_once(':').map_or(text, |(_, rest)| rest);
    let rest = after_scheme.trim_start_matches(['/', '\\', '\t', '\n', '\r']);
    rest.split(['/', '\\', '?', '#']).next().unwrap_or(rest)
}

/// An origin (`scheme://host[:port]`), normalised without a trailing slash.
fn parse_origin(text: &str) -> Result<String, String> {
    let url = check_endpoint_url(text)?;
    if url.path() != "/" || url.query().is_some() {
        return Err("must be an origin (scheme://host[:port]) with no path".into());
    }
    Ok(url.origin().ascii_serialization())
}

fn is_plain_path(path: &str) -> bool {
    path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && !path.contains("//")
        && !path.contains("/.")
}

/// A same-origin absolute path: starts with one `/`, no backslash, no control characters.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c == ' ')
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    upstream: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_request: Option<serde_json::Value>,
    #[serde(default)]
    require: Option<serde_json::Value>,
    #[serde(default)]
    websocket: bool,
    #[serde(default)]
    event_stream: bool,
}

fn parse_api_routes(text: &str, auth_path: &str) -> Result<Vec<ApiRoute>, ConfigError> {
    const S: &str = "API_ROUTES";
    let raw: Vec<RawRoute> = serde_json::from_str(text)
        .map_err(|e| err(S, format!("is not a JSON array of routes ({})", e.classify_name())))?;
    let mut routes: Vec<ApiRoute> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let n = i + 1;
        if !r.prefix.starts_with('/') || !r.prefix.ends_with('/') || !is_plain_path(&r.prefix) {
            return Err(err(S, format!("route {n}: prefix must start and end with / (e.g. /api/)")));
        }
        let auth_prefix = format!("{auth_path}/");
        if r.prefix.starts_with(&auth_prefix) || auth_prefix.starts_with(&r.prefix) {
            return Err(err(S, format!("route {n}: prefix overlaps AUTH_PATH")));
        }
        if let Some(other) =
            routes.iter().position(|o| o.prefix.starts_with(&r.prefix) || r.prefix.starts_with(&o.prefix))
        {
            return Err(err(S, format!("route {n}: prefix overlaps route {}", other + 1)));
        }
        let mut upstream = check_endpoint_url(&r.upstream).map_err(|e| err(S, format!("route {n}: upstream {e}")))?;
        if upstream.query().is_some() {
            return Err(err(S, format!("route {n}: upstream must not have a query")));
        }
        if !upstream.path().ends_with('/') {
            let path = format!("{}/", upstream.path());
            upstream.set_path(&path);
        }
        let methods = match r.methods {
            None => None,
            Some(m) if m.is_empty() => return Err(err(S, format!("route {n}: methods is empty"))),
            Some(m) => {
                let m: Vec<String> = m.iter().map(|x| x.to_ascii_uppercase()).collect();
                if m.iter().any(|x| x.is_empty() || !x.bytes().all(|b| b.is_ascii_alphabetic())) {
                    return Err(err(S, format!("route {n}: methods must be HTTP method names")));
                }
                Some(m)
            }
        };
        let token = match r.token.as_deref() {
            None | Some("access") => RouteToken::Access,
            Some("none") => RouteToken::None,
            Some("client") => RouteToken::Client,
            Some("access_or_client") => RouteToken::AccessOrClient,
            Some(_) => {
                return Err(err(S, format!("route {n}: token must be access, none, client or access_or_client")))
            }
        };
        let token_request = match &r.token_request {
            None => None,
            Some(_) if token == RouteToken::None => {
                return Err(err(S, format!("route {n}: token_request needs a token (token: none adds none)")));
            }
            Some(value) => {
                Some(token_request::TokenRequest::parse(value).map_err(|e| err(S, format!("route {n}: {e}")))?)
            }
        };
        let require = match &r.require {
            None => None,
            Some(value) => Some(
                crate::config::require::Requirements::parse(value).map_err(|e| err(S, format!("route {n}: {e}")))?,
            ),
        };
        if require.is_some() && token != RouteToken::Access {
            return Err(err(S, format!("route {n}: require needs a session (token: access)")));
        }
        if r.websocket && methods.as_ref().is_some_and(|m| !m.iter().any(|x| x == "GET")) {
            return Err(err(S, format!("route {n}: websocket needs GET among its methods")));
        }
        routes.push(ApiRoute {
            prefix: r.prefix,
            upstream,
            methods,
            token,
            token_request,
            require,
            websocket: r.websocket,
            event_stream: r.event_stream,
        });
    }
    check_require_overlaps(&routes)?;
    Ok(routes)
}

/// See [`Config::login_resources`].
fn login_resources(routes: &[ApiRoute]) -> Vec<String> {
    let mut resources: Vec<String> = Vec::new();
    let user_routes = routes.iter().filter(|r| matches!(r.token, RouteToken::Access | RouteToken::AccessOrClient));
    for request in user_routes.filter_map(|r| r.token_request.as_ref()) {
        for resource in &request.resources {
            if !resources.contains(resource) {
                resources.push(resource.clone());
            }
        }
    }
    resources
}

/// Refuses two routes to one upstream origin where one's upstream path lies within the
/// other's (on a segment boundary: both end in `/`; compared as [`comparable_path`]) and
/// either has `require`: the outer
/// route reaches the inner one's API under its own rules (`/api/` → `https://x/` reaches
/// `https://x/admin/…` as `/api/admin/…`, past `/admin/`'s `require`), and the inner
/// route reaches part of the outer one's API past the outer's `require`.
fn check_require_overlaps(routes: &[ApiRoute]) -> Result<(), ConfigError> {
    for (i, a) in routes.iter().enumerate() {
        for (j, b) in routes.iter().enumerate().skip(i + 1) {
            if a.require.is_none() && b.require.is_none() {
                continue;
            }
            if a.upstream.origin() != b.upstream.origin() {
                continue;
            }
            let (pa, pb) = (comparable_path(&a.upstream), comparable_path(&b.upstream));
            let (outer, inner) = if pb.starts_with(&pa) {
                (a, b)
            } else if pa.starts_with(&pb) {
                (b, a)
            } else {
                continue;
            };
            return Err(err(
                "API_ROUTES",
                format!(
                    "routes {} and {} overlap upstream: the upstream of {} lies within the upstream of {} and one of \
                     them has require, so a call through one prefix would skip the other's require (give them \
                     separate upstream paths)",
                    i + 1,
                    j + 1,
                    inner.prefix,
                    outer.prefix
                ),
            ));
        }
    }
    Ok(())
}

/// An upstream's path as an upstream might read it, for [`check_require_overlaps`]:
/// percent-decoded and in lower case (many servers match paths without regard to case), so
/// `/Admin/` and `/%61dmin/` count as `/admin/`. It ends in `/` (see `parse_api_routes`).
fn comparable_path(upstream: &url::Url) -> Vec<u8> {
    let path = upstream.path();
    let mut bytes = crate::web::percent::decode(path).unwrap_or_else(|| path.as_bytes().to_vec());
    bytes.make_ascii_lowercase();
    bytes
}

/// Short name of a serde_json error category, so the log never echoes the input.
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong fields or types",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// The default `CONTENT_SECURITY_POLICY` of HTML assets: same-origin everything, no inline
/// script, no plugins, no framing.
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Whether `tenant` is written as a tenant id: a GUID, lowercase
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
pub fn is_tenant_id(tenant: &str) -> bool {
    let b = tenant.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

#[cfg(test)]
mod tests;
