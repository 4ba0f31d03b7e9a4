//! A proxied call on the full path (docs/api.md section 4), decided here from start to
//! answer: CORS, the target, the session and its `require`, a refresh when due, the
//! upstream headers (with a DPoP proof), one refresh and resend on a 401, a DPoP nonce
//! challenge, and the headers the answer carries. The runtime only sends: the
//! [`Upstream`] it hands in makes each upstream call (bodies stream through it untouched),
//! and it turns the [`ProxyAnswer`] into its response once.

use super::headers::{dropped_response_headers, upstream_headers, Forwarding};
use super::{is_safe, target_and_kind, CallKind, UPSTREAM_TIMEOUT_MS};
use crate::config::{ApiRoute, RouteToken};
use crate::error::BffError;
use crate::lifecycle::client_token::client_token;
use crate::lifecycle::{self, error_response, RequestContext, SessionCall};
use crate::oidc::dpop;
use crate::web::client::LocalFuture;
use crate::web::cors;
use crate::web::response::{HttpRequest, HttpResponse};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The runtime's side of a proxied call: one upstream call per [`Upstream::send`] (the
/// browser's body, if any, goes with the first), and what the core reads of an answer.
pub trait Upstream {
    /// An upstream's answer, whose body streams back untouched.
    type Response;
    /// Send `method` `target` with `headers`: the answer once its head is in (bounded
    /// by [`UPSTREAM_TIMEOUT_MS`]), no redirect followed.
    fn send<'a>(
        &'a self,
        target: &'a str,
        method: &'a str,
        headers: &'a HeaderMap,
    ) -> LocalFuture<'a, Result<Self::Response, UpstreamFailure>>;
    /// The answer's status.
    fn status(&self, response: &Self::Response) -> u16;
    /// The answer's header `name`, if it has one.
    fn header(&self, response: &Self::Response, name: &str) -> Option<String>;
}

/// Why an upstream call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No response head within [`UPSTREAM_TIMEOUT_MS`] (the call was aborted).
    Timeout,
    /// The runtime's fetch failed (its message, for the log).
    Network(String),
}

/// How a direct call ended when it came back to the full path: it stands for the first
/// upstream call (and took the browser's body with it).
pub enum Resumed<R> {
    /// The upstream answered 401 to a call that carried a token.
    Rejected(R),
    /// The call failed or timed out.
    Failed(UpstreamFailure),
}

/// The answer of a proxied call.
pub enum ProxyAnswer<R> {
    /// The upstream's answer: its headers named in `dropped` (one per line) removed and
    /// `append` added (CORS, HSTS, the session's cookies).
    Upstream {
        /// The upstream's answer.
        response: R,
        /// Header names to remove, one per line.
        dropped: String,
        /// Headers to add.
        append: Vec<(HeaderName, HeaderValue)>,
    },
    /// An answer made here (a preflight, an error), its CORS headers included.
    Made(HttpResponse),
}

/// Forward a request for API route `index` with `rest` after its prefix; `head` is its
/// method, URI and headers. `resumed` is the outcome of its direct call, if it had one.
pub async fn forward<U: Upstream>(
    ctx: &RequestContext<'_>,
    index: usize,
    rest: &str,
    head: &HttpRequest,
    upstream: &U,
    resumed: Option<Resumed<U::Response>>,
) -> ProxyAnswer<U::Response> {
    let config = ctx.config;
    let route = &config.api_routes[index];
    // What the answer needs of the configuration, decided first. The target (CSRF, then
    // method, then path) too: a preflight, answered next, does not look at it.
    let dropped = dropped_response_headers(config);
    let checked = target_and_kind(config, route, rest, head);
    let cors_headers = cors::response_headers(config, head.headers());
    if cors::is_preflight(head.method(), head.headers()) {
        let methods =
            route.methods.as_ref().map_or_else(|| "GET, HEAD, POST, PUT, PATCH, DELETE".to_string(), |m| m.join(", "));
        return ProxyAnswer::Made(cors::preflight(config, head.headers(), &methods));
    }
    let hsts = crate::web::security_headers::hsts(config);
    let cookies = crate::web::cookies::cookies_of(head.headers());
    // The call with its session. Every error goes through `fail`, which carries the
    // cookies of a refresh: refreshed tokens are never dropped.
    let mut call: Option<SessionCall> = None;
    let sent = match checked {
        Ok((target, kind)) => send(ctx, route, &target, kind, head, &cookies, upstream, resumed, &mut call).await,
        Err(e) => Err(e),
    };
    match sent {
        // The upstream's answer, with CORS, HSTS and the session's cookies.
        Ok(response) => {
            let mut append: Vec<(HeaderName, HeaderValue)> = cors_headers;
            append.extend(hsts);
            if let Some(c) = call {
                for cookie in c.finish(ctx).await {
                    if let Ok(value) = HeaderValue::from_str(&cookie) {
                        append.push((http::header::SET_COOKIE, value));
                    }
                }
            }
            ProxyAnswer::Upstream { response, dropped, append }
        }
        Err(e) => {
            let mut response = fail(ctx, call.as_mut(), &cookies, &e).await;
            for (name, value) in cors_headers {
                response.headers_mut().append(name, value);
            }
            ProxyAnswer::Made(response)
        }
    }
}

/// What to do with an upstream answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterUpstream {
    /// Stream it back.
    Return,
    /// Refresh the token and send the request once more (safe methods, first 401).
    RefreshAndRetry,
    /// Answer 401 `token_rejected`.
    Reject,
}

/// The rule for upstream 401s: one refresh and one retry for safe methods that carried a
/// token, when the session has a refresh token; `token_rejected` otherwise (the session
/// is kept: the provider did not refuse it, an API refused one call).
pub fn after_upstream(
    status: u16,
    method: &http::Method,
    sent_token: bool,
    retried: bool,
    can_refresh: bool,
) -> AfterUpstream {
    if status != 401 || !sent_token {
        return AfterUpstream::Return;
    }
    if is_safe(method) && !retried && can_refresh {
        AfterUpstream::RefreshAndRetry
    } else {
        AfterUpstream::Reject
    }
}

/// The token a call carries, and where it came from (for its renewal after a 401).
struct Credential {
    token: String,
    dpop: bool,
    source: Source,
}

/// Where a call's token comes from.
#[derive(Clone, Copy)]
enum Source {
    /// The login's own access token.
    Login,
    /// The session's token for the route's `token_request`.
    Route,
    /// An app-only token (with the route's `token_request`, if any).
    Client,
}

/// An app-only token for `route`; `stale` is the one an upstream just refused.
async fn client_credential(
    ctx: &RequestContext<'_>,
    route: &ApiRoute,
    stale: Option<&str>,
) -> Result<Credential, BffError> {
    let request = route.token_request.as_ref();
    let token = client_token(ctx, &route.prefix, request, stale).await?;
    Ok(Credential { token: token.access_token, dpop: token.dpop, source: Source::Client })
}

/// Take the token the route names (docs/api.md section 4, "Route tokens"): for a session's
/// token open the session, meet `require` and refresh when due; then send the call: once
/// more after a renewed token on a 401 (safe methods), or with a DPoP nonce the upstream
/// asked for. `call` holds the session for the caller's answer.
#[allow(clippy::too_many_arguments)]
async fn send<U: Upstream>(
    ctx: &RequestContext<'_>,
    route: &ApiRoute,
    target: &str,
    kind: CallKind,
    head: &HttpRequest,
    cookies: &[(&str, &str)],
    upstream: &U,
    resumed: Option<Resumed<U::Response>>,
    call: &mut Option<SessionCall>,
) -> Result<U::Response, BffError> {
    let session_wanted = matches!(route.token, RouteToken::Access | RouteToken::AccessOrClient);
    let opened = match session_wanted {
        false => None,
        true => match lifecycle::open(ctx, cookies).await {
            Ok(opened) => Some(opened),
            // `access_or_client` without a valid session: the app's token.
            Err(BffError::Unauthorized | BffError::SessionUnavailable(_))
                if route.token == RouteToken::AccessOrClient =>
            {
                None
            }
            Err(e) => return Err(e),
        },
    };
    // The route's `require`, checked on the session's claims before anything else, and
    // once more after a refresh, which may have brought an ID token with other claims (a
    // group removed since login): the call is not forwarded with them.
    let require_met = |call: &SessionCall, when: &str| match call.session().meets(route.require.as_ref()) {
        true => Ok(()),
        false => {
            log::info!("route {} refused: {when} the session does not meet its require", route.prefix);
            Err(BffError::Forbidden)
        }
    };
    let no_token = |e: &BffError| {
        if let BffError::TokenUnavailable(detail) = e {
            log::warn!("route {}: no token for it ({detail})", route.prefix);
        }
    };
    let user_source = if route.token_request.is_some() { Source::Route } else { Source::Login };
    let mut fresh = false;
    let mut credential = match opened {
        Some(opened) => {
            let current = call.insert(opened);
            require_met(current, "")?;
            current.refresh_if_due(ctx).await?;
            if current.refreshed() {
                require_met(current, "after a refresh")?;
            }
            let user = current.token_for(ctx, route.token_request.as_ref(), false).await.inspect_err(no_token)?;
            fresh = current.refreshed() || user.granted;
            Some(Credential { token: user.token, dpop: user.dpop, source: user_source })
        }
        None if route.token == RouteToken::None => None,
        None => Some(client_credential(ctx, route, None).await?),
    };
    let mut resumed = resumed;
    let mut retried = false;
    let mut nonce_retried = false;
    let dpop_origin = dpop::origin_of(&route.upstream);
    // The direct call's 401 answered the cookie's token. If that token was replaced just
    // now (it became due in between), the 401 says nothing about the new one: a safe
    // method is sent again with it instead of renewing it a second time.
    if fresh && matches!(resumed, Some(Resumed::Rejected(_))) && is_safe(head.method()) {
        // That resend is the one retry: a second 401 is `token_rejected`.
        resumed = None;
        retried = true;
    }
    loop {
        let response = match resumed.take() {
            Some(Resumed::Rejected(response)) => response,
            Some(Resumed::Failed(failure)) => return Err(unavailable(failure, target)),
            None => {
                let headers = outgoing_headers(ctx, route, kind, head, cookies, credential.as_ref(), target).await?;
                upstream.send(target, head.method().as_str(), &headers).await.map_err(|f| unavailable(f, target))?
            }
        };
        let status = upstream.status(&response);
        // A DPoP nonce challenge (RFC 9449 section 9): the nonce is remembered for the
        // next call to this upstream, and a safe method is sent once more with it. A
        // second challenge, or one to an unsafe method, is `token_rejected`: the token
        // is fine, so no refresh.
        if status == 401 && credential.as_ref().is_some_and(|c| c.dpop) {
            let www_authenticate = upstream.header(&response, "www-authenticate");
            let nonce = upstream.header(&response, "dpop-nonce");
            if let Some(nonce) = dpop::resource_challenge(www_authenticate.as_deref().into_iter(), nonce.as_deref()) {
                ctx.shared.dpop_nonces.remember(dpop_origin, nonce);
                if is_safe(head.method()) && !nonce_retried {
                    nonce_retried = true;
                    log::info!("{} asked for a DPoP nonce; sending the call again with it", host_of(target));
                    continue;
                }
                log::info!("{} asked for a DPoP nonce; the call is not sent again", host_of(target));
                return Err(BffError::TokenRejected);
            }
        }
        let source = credential.as_ref().map(|c| c.source);
        let can_renew = match source {
            None => false,
            Some(Source::Client) => true,
            Some(Source::Login | Source::Route) => call.as_ref().is_some_and(|c| c.session().refresh_token.is_some()),
        };
        match after_upstream(status, head.method(), credential.is_some(), retried, can_renew) {
            AfterUpstream::Return => return Ok(response),
            AfterUpstream::RefreshAndRetry => {
                let stale = credential.take().map(|c| c.token);
                credential = Some(match (source, call.as_mut()) {
                    (Some(Source::Client), _) => client_credential(ctx, route, stale.as_deref()).await?,
                    (Some(Source::Route), Some(current)) => {
                        let user =
                            current.token_for(ctx, route.token_request.as_ref(), true).await.inspect_err(no_token)?;
                        Credential { token: user.token, dpop: user.dpop, source: Source::Route }
                    }
                    (_, Some(current)) => {
                        current.refresh(ctx).await?;
                        require_met(current, "after a refresh")?;
                        let user = current.token_for(ctx, None, false).await?;
                        Credential { token: user.token, dpop: user.dpop, source: Source::Login }
                    }
                    (_, None) => return Ok(response),
                });
                retried = true;
            }
            AfterUpstream::Reject => return Err(BffError::TokenRejected),
        }
    }
}

/// The upstream request's headers: the browser's, cleaned, with the call's token (and,
/// for a DPoP-bound token, a fresh proof).
async fn outgoing_headers(
    ctx: &RequestContext<'_>,
    route: &ApiRoute,
    kind: CallKind,
    head: &HttpRequest,
    cookies: &[(&str, &str)],
    credential: Option<&Credential>,
    target: &str,
) -> Result<HeaderMap, BffError> {
    let config = ctx.config;
    let access_token = credential.map(|c| c.token.as_str());
    let dpop = credential.is_some_and(|c| c.dpop);
    let forwarding = Forwarding::of(config, head, access_token, dpop, kind == CallKind::WebSocket);
    let mut headers = upstream_headers(config, head.headers(), cookies, forwarding);
    if let (Some(key), Some(token), true) = (&config.dpop_key, access_token, dpop) {
        let nonce = ctx.shared.dpop_nonces.get(dpop::origin_of(&route.upstream));
        let method = head.method().as_str();
        let proof = dpop::proof(ctx.signer, key, method, target, nonce.as_deref(), Some(token), ctx.now)
            .await
            .map_err(|e| BffError::Server(format!("DPoP proof: {e}")))?;
        if let Ok(value) = HeaderValue::from_str(&proof) {
            headers.insert("dpop", value);
        }
    }
    Ok(headers)
}

/// The error answer of a proxied call: with the session's cookies (a refresh's, activity)
/// when there is a session and the error does not end it.
async fn fail(
    ctx: &RequestContext<'_>,
    call: Option<&mut SessionCall>,
    cookies: &[(&str, &str)],
    e: &BffError,
) -> HttpResponse {
    match call {
        Some(call) => call.fail(ctx, cookies, e).await,
        None => error_response(ctx, cookies, e),
    }
}

/// `upstream_unavailable` for a failed call to `target`, naming its origin (never its path
/// or query) in the log.
fn unavailable(failure: UpstreamFailure, target: &str) -> BffError {
    BffError::UpstreamUnavailable(match failure {
        UpstreamFailure::Timeout => format!("no response within {UPSTREAM_TIMEOUT_MS} ms from {}", host_of(target)),
        UpstreamFailure::Network(message) => format!("{}: {message}", host_of(target)),
    })
}

/// Scheme, host and port of a URL, for logs (never the path or query).
fn host_of(target: &str) -> String {
    url::Url::parse(target).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::SharedState;
    use crate::session::cookie_store::{self, CookieStore};
    use crate::session::Session;
    use crate::testutil::{block_on, config_with, discovery_json, FakeHttp};
    use std::cell::RefCell;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn upstream_401_rules() {
        assert_eq!(after_upstream(200, &http::Method::GET, true, false, true), AfterUpstream::Return);
        assert_eq!(after_upstream(401, &http::Method::GET, true, false, true), AfterUpstream::RefreshAndRetry);
        assert_eq!(after_upstream(401, &http::Method::GET, true, true, true), AfterUpstream::Reject);
        assert_eq!(after_upstream(401, &http::Method::POST, true, false, true), AfterUpstream::Reject);
        assert_eq!(after_upstream(401, &http::Method::GET, false, false, true), AfterUpstream::Return);
        assert_eq!(after_upstream(500, &http::Method::POST, true, false, true), AfterUpstream::Return);
        // No refresh token: nothing to refresh, the 401 is the API's answer to this call.
        assert_eq!(after_upstream(401, &http::Method::GET, true, false, false), AfterUpstream::Reject);
    }

    /// An upstream that answers each call with the next status of its script and records
    /// the `Authorization` it was sent.
    struct ScriptedUpstream {
        statuses: RefCell<Vec<u16>>,
        sent: RefCell<Vec<String>>,
    }

    impl Upstream for ScriptedUpstream {
        type Response = u16;
        fn send<'a>(
            &'a self,
            _target: &'a str,
            _method: &'a str,
            headers: &'a HeaderMap,
        ) -> LocalFuture<'a, Result<u16, UpstreamFailure>> {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
            self.sent.borrow_mut().push(authorization.to_string());
            let next = self.statuses.borrow_mut().remove(0);
            Box::pin(std::future::ready(if next == 0 { Err(UpstreamFailure::Timeout) } else { Ok(next) }))
        }
        fn status(&self, response: &u16) -> u16 {
            *response
        }
        fn header(&self, _response: &u16, _name: &str) -> Option<String> {
            None
        }
    }

    fn session() -> Session {
        Session {
            access_token: "at-0".into(),
            access_expires_at: NOW + 600,
            refresh_token: Some("rt-0".into()),
            id_token: "h.eyJzdWIiOiJ1c2VyLTEifQ.s".into(),
            sub: "user-1".into(),
            sid: None,
            created_at: NOW - 100,
            expires_at: NOW + 3600,
            last_seen: NOW - 100,
            login: None,
            generation: 0,
            dpop: false,
            route_tokens: Vec::new(),
        }
    }

    /// Forward `GET /api/echo` with a session, against an upstream answering `statuses`.
    fn forward_with(statuses: &[u16]) -> (ProxyAnswer<u16>, Vec<String>) {
        let config = config_with(&[("API_ROUTES", r#"[{"prefix":"/api/","upstream":"https://api.internal/v1/"}]"#)]);
        let http = FakeHttp::default();
        http.route("/.well-known/openid-configuration", 200, discovery_json());
        http.route(
            "/token",
            200,
            serde_json::json!({ "access_token": "at-1", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-1" })
                .to_string(),
        );
        let shared = SharedState::default();
        let store = CookieStore { config: &config, deny_list: None, cache: None };
        let ctx = RequestContext {
            config: &config,
            shared: &shared,
            signer: &crate::crypto::signing::NativeSigner,
            verifier: &crate::crypto::verifying::RustCryptoVerifier,
            http: &http,
            store: &store,
            kv: None,
            coordinator: None,
            now: NOW,
            outcome: Default::default(),
        };
        let set = cookie_store::store(&config, &session(), &[], NOW).unwrap();
        let cookie: Vec<String> = set.iter().map(|c| c.split(';').next().unwrap().to_string()).collect();
        let head = http::Request::get("https://app.example.com/api/echo")
            .header("x-csrf", "1")
            .header("cookie", cookie.join("; "))
            .body(Vec::new())
            .unwrap();
        let upstream = ScriptedUpstream { statuses: RefCell::new(statuses.to_vec()), sent: RefCell::default() };
        let answer = block_on(forward(&ctx, 0, "echo", &head, &upstream, None));
        (answer, upstream.sent.take())
    }

    #[test]
    fn a_401_is_refreshed_and_sent_once_more_with_the_new_token_and_its_cookie() {
        let (answer, sent) = forward_with(&[401, 200]);
        assert_eq!(sent, ["Bearer at-0", "Bearer at-1"]);
        let ProxyAnswer::Upstream { response, append, dropped } = answer else { panic!("not the upstream's answer") };
        assert_eq!(response, 200);
        assert!(dropped.lines().any(|n| n.eq_ignore_ascii_case("set-cookie")), "{dropped}");
        assert!(
            append
                .iter()
                .any(|(n, v)| n == http::header::SET_COOKIE && v.to_str().unwrap().starts_with("__Host-bff-session=")),
            "the refreshed session goes out with the answer"
        );
    }

    #[test]
    fn a_second_401_is_token_rejected_and_a_failed_send_upstream_unavailable() {
        let (answer, sent) = forward_with(&[401, 401]);
        assert_eq!(sent.len(), 2);
        let ProxyAnswer::Made(response) = answer else { panic!("an answer made by edge-bff") };
        assert_eq!(response.status(), 401);
        assert!(String::from_utf8_lossy(response.body()).contains("token_rejected"));
        let (answer, _) = forward_with(&[0]);
        let ProxyAnswer::Made(response) = answer else { panic!("an answer made by edge-bff") };
        assert_eq!(response.status(), 502);
        assert!(String::from_utf8_lossy(response.body()).contains("upstream_unavailable"));
    }
}
