//! The authorization request (RFC 6749 §4.1.1 with PKCE S256, RFC 7636, and OIDC
//! `nonce`), and the login state that must survive until the callback.

use super::discovery::ProviderMetadata;
use super::id_token::Requested;
use crate::config::{is_local_path, Config, ParMode};
use crate::crypto::{b64url, random_token};
use crate::error::BffError;
use crate::oidc::token::{authenticate, ClientCall};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest accepted `return_to`.
pub const MAX_RETURN_TO: usize = 512;
/// How long a login may take, in seconds (login cookie `Max-Age`).
pub const LOGIN_TTL: u64 = 600;

/// What the login cookie carries from `/login` to `/callback`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct LoginState {
    /// `state`, 256 random bits.
    pub state: String,
    /// `nonce`, 256 random bits.
    pub nonce: String,
    /// PKCE code verifier, 256 random bits.
    pub verifier: String,
    /// Where to send the browser after login.
    pub return_to: String,
    /// Unix time the login began.
    pub created_at: u64,
    /// `acr_values` and `max_age` sent with the request, checked against the ID token.
    #[serde(default)]
    pub requested: Requested,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl LoginState {
    /// A fresh login with new random state, nonce and verifier.
    pub fn new(return_to: String, now: u64) -> Result<Self, BffError> {
        Ok(Self {
            state: random_token()?,
            nonce: random_token()?,
            verifier: random_token()?,
            return_to,
            created_at: now,
            requested: Requested::default(),
        })
    }

    /// Whether the login is older than [`LOGIN_TTL`] (or from the future).
    pub fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.created_at) > LOGIN_TTL || self.created_at > now + 60
    }

    /// The PKCE S256 challenge of the verifier.
    pub fn code_challenge(&self) -> String {
        b64url(&Sha256::digest(self.verifier.as_bytes()))
    }
}

/// Where the browser goes after login: `raw` resolved against `PUBLIC_ORIGIN` and
/// normalised, when the result is a path of that origin; else `/` (docs/security.md groups 1
/// and 12). Refused: more than [`MAX_RETURN_TO`] characters, non-ASCII text, absolute
/// URLs, backslashes, control characters, encoded slashes, backslashes or control
/// bytes, and anything whose normalised path starts with `//` (`/.//evil.example`,
/// `/a/..//evil.example`), which a browser would read as another host.
pub fn sanitize_return_to(config: &Config, raw: Option<&str>) -> String {
    resolve_return_to(config, raw).unwrap_or_else(|| "/".to_string())
}

fn resolve_return_to(config: &Config, raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    if raw.len() > MAX_RETURN_TO || !raw.is_ascii() || !is_local_path(raw) || has_encoded_separator(raw) {
        return None;
    }
    let base = url::Url::parse(&config.public_origin).ok()?;
    let resolved = base.join(raw).ok()?;
    if resolved.origin() != base.origin() || resolved.path().starts_with("//") {
        return None;
    }
    let local = &resolved[url::Position::BeforePath..];
    (local.starts_with('/') && !local.starts_with("//") && local.is_ascii()).then(|| local.to_string())
}

/// The step-up and freshness requests among the extra parameters; an `max_age` that is
/// not a whole number of seconds is refused (the login would otherwise not be checked
/// for what the caller asked).
pub fn requested_of(extra: &[(String, String)]) -> Result<Requested, BffError> {
    let mut requested = Requested::default();
    for (name, value) in extra {
        match name.as_str() {
            "acr_values" => requested.acr_values = Some(value.clone()),
            "max_age" => {
                let seconds = value
                    .parse::<u64>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| BffError::InvalidRequest("max_age must be a whole number of seconds".into()))?;
                requested.max_age = Some(seconds);
            }
            _ => {}
        }
    }
    Ok(requested)
}

/// Whether `path` holds a percent-encoded `/`, `\\` or control byte.
fn has_encoded_separator(path: &str) -> bool {
    use crate::web::percent::{escaped_bytes, is_control};
    escaped_bytes(path.as_bytes()).any(|b| b == b'/' || b == b'\\' || is_control(b))
}

/// Longest value of a parameter a caller passes, in bytes.
pub const MAX_PARAM_VALUE: usize = 256;

/// Extra parameters a caller may pass, filtered by `ALLOWED_AUTH_PARAMS`, in order. A
/// name given several times counts once, with its first value: a provider may read either
/// of two (`prompt=login&prompt=none`), and the ID token is checked against the
/// `acr_values` and `max_age` kept here ([`requested_of`]), so only one is sent. A first
/// value longer than [`MAX_PARAM_VALUE`] drops the name (its repeats are not used either).
pub fn allowed_params<'a>(
    config: &Config,
    candidates: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut seen: Vec<&str> = Vec::new();
    let mut kept = Vec::new();
    for (name, value) in candidates {
        if !config.allowed_auth_params.iter().any(|a| a == name) || seen.contains(&name) {
            continue;
        }
        seen.push(name);
        if value.len() <= MAX_PARAM_VALUE {
            kept.push((name.to_string(), value.to_string()));
        }
    }
    kept
}

/// The authorization request's parameters for `login` (RFC 6749 §4.1.1, PKCE S256,
/// OIDC `nonce`), then the caller's allowed `extra` ones, then `AUTH_PARAMS`.
pub fn authorization_params(config: &Config, login: &LoginState, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code".to_string()),
        ("client_id", config.client_id.clone()),
        ("redirect_uri", config.redirect_uri()),
        ("scope", config.scopes.join(" ")),
        ("state", login.state.clone()),
        ("nonce", login.nonce.clone()),
        ("code_challenge", login.code_challenge()),
        ("code_challenge_method", "S256".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // RFC 9449 section 10: the code is bound to the DPoP key, so only its holder redeems it.
    if let Some(key) = &config.dpop_key {
        params.push(("dpop_jkt".to_string(), key.jkt().to_string()));
    }
    // RFC 8707 section 2.1: the grant covers every route's resource, so that each route
    // token can come from the login's refresh token.
    params.extend(config.login_resources.iter().map(|r| ("resource".to_string(), r.clone())));
    params.extend(extra.iter().chain(&config.auth_params).cloned());
    params
}

/// The authorization endpoint's URL with `params` in its query.
pub fn url_with(endpoint: &url::Url, params: &[(String, String)]) -> String {
    let mut url = endpoint.clone();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

/// The full authorization URL for `login`.
pub fn authorization_url(
    config: &Config,
    meta: &ProviderMetadata,
    login: &LoginState,
    extra: &[(String, String)],
) -> String {
    url_with(&meta.authorization_endpoint, &authorization_params(config, login, extra))
}

/// Whether logins push their request first (`PAR`): `on`, or `auto` when the provider
/// requires it. `PAR=on` with a provider that has no PAR endpoint is a configuration
/// error.
pub fn uses_par(config: &Config, meta: &ProviderMetadata) -> Result<bool, BffError> {
    match (config.par, &meta.par_endpoint) {
        (ParMode::Off, _) => Ok(false),
        (ParMode::On, None) => Err(BffError::Configuration(
            "PAR=on but the provider's discovery has no pushed_authorization_request_endpoint".into(),
        )),
        (ParMode::On, Some(_)) => Ok(true),
        (ParMode::Auto, endpoint) => Ok(meta.par_required && endpoint.is_some()),
    }
}

/// Why a pushed authorization request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pushed authorization request failed: {0}")]
pub struct ParError(pub String);

/// Push the authorization request (RFC 9126 section 2): `params` with the client's
/// authentication to the PAR endpoint; the URL to send the browser to is the
/// authorization endpoint with `client_id` and the `request_uri` the provider answered.
pub async fn push_authorization_request(
    call: &ClientCall<'_>,
    meta: &ProviderMetadata,
    params: &[(String, String)],
) -> Result<String, ParError> {
    let endpoint = meta.par_endpoint.as_ref().ok_or_else(|| ParError("no PAR endpoint".into()))?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    // Every parameter of the authorization request, `client_id` included (RFC 9126
    // section 2.1; the client's authentication does not add it twice).
    form.extend_pairs(params);
    let request = http::Request::post(endpoint.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    let request = authenticate(call, endpoint, request, &mut form, true).await.map_err(|e| ParError(e.to_string()))?;
    let request = request.body(form.finish().into_bytes()).map_err(|e| ParError(e.to_string()))?;
    let response = call.http.send(request).await.map_err(|e| ParError(e.to_string()))?;
    let status = response.status().as_u16();
    #[derive(serde::Deserialize)]
    struct Pushed {
        request_uri: String,
    }
    if !(200..300).contains(&status) {
        let code = crate::oidc::oauth_error::error_code(response.body()).unwrap_or_default();
        return Err(ParError(format!("status {status} {code}")));
    }
    let pushed: Pushed =
        serde_json::from_slice(response.body()).map_err(|_| ParError("answer has no request_uri".into()))?;
    if pushed.request_uri.is_empty() || pushed.request_uri.len() > 2048 {
        return Err(ParError("request_uri empty or too long".into()));
    }
    Ok(url_with(
        &meta.authorization_endpoint,
        &[("client_id".to_string(), call.config.client_id.clone()), ("request_uri".to_string(), pushed.request_uri)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config_with;

    #[test]
    fn return_to_stays_on_the_origin() {
        let c = config_with(&[]);
        for (raw, expected) in [
            ("/", "/"),
            ("/orders/42?tab=items#top", "/orders/42?tab=items#top"),
            ("/a/./b/../c", "/a/c"),
            ("/a%20b", "/a%20b"),
            ("/../../x", "/x"),
            // Normalises to a path starting with `//`: another host for a browser.
            ("/.//evil.example", "/"),
            ("/a/..//evil.example", "/"),
            ("/%2e//evil.example", "/"),
            ("/a/%2e%2e//evil.example/x", "/"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("https://app.example.com/x", "/"),
            ("javascript:alert(1)", "/"),
            ("/a%2f%2fevil.example", "/"),
            ("/a%5cb", "/"),
            ("/a%0d%0aSet-Cookie:x=1", "/"),
            ("/a\tb", "/"),
            ("/caf\u{e9}", "/"),
            ("/\u{ff0f}\u{ff0f}evil.example", "/"),
            ("", "/"),
        ] {
            assert_eq!(sanitize_return_to(&c, Some(raw)), expected, "{raw:?}");
        }
        assert_eq!(sanitize_return_to(&c, None), "/");
        assert_eq!(sanitize_return_to(&c, Some(&format!("/{}", "a".repeat(MAX_RETURN_TO)))), "/");
    }

    #[test]
    fn a_repeated_parameter_keeps_its_first_value() {
        let c = config_with(&[]);
        let query = crate::web::query::parse_query(Some(
            "prompt=login&max_age=300&prompt=none&evil=1&max_age=0&login_hint=a&prompt=consent",
        ));
        let kept = allowed_params(&c, query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let expected = [("prompt", "login"), ("max_age", "300"), ("login_hint", "a")];
        assert_eq!(kept, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(requested_of(&kept).unwrap().max_age, Some(300), "what is checked is what is sent");
        // A first value that is too long drops the name; a later one does not stand in.
        let long = "x".repeat(MAX_PARAM_VALUE + 1);
        let kept = allowed_params(&c, [("login_hint", long.as_str()), ("login_hint", "b")].into_iter());
        assert!(kept.is_empty(), "{kept:?}");
        let fits = "x".repeat(MAX_PARAM_VALUE);
        assert_eq!(allowed_params(&c, [("login_hint", fits.as_str())].into_iter()).len(), 1);
    }

    #[test]
    fn requested_step_up_and_freshness() {
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let r = requested_of(&pairs(&[("acr_values", "urn:mfa"), ("max_age", "300"), ("prompt", "login")])).unwrap();
        assert_eq!(r, Requested { acr_values: Some("urn:mfa".into()), max_age: Some(300) });
        assert_eq!(requested_of(&pairs(&[("prompt", "login")])).unwrap(), Requested::default());
        for bad in ["-1", "+5", "1.5", "", "abc", "99999999999999999999999"] {
            assert!(requested_of(&pairs(&[("max_age", bad)])).is_err(), "{bad:?}");
        }
    }
}
