//! The direct path of a proxied call. Most API calls need nothing awaited before the
//! upstream call: the session is in the request's cookies, its access token is not due
//! for a refresh, and no KV read (session record or back-channel deny-list) is needed.
//! For those the whole decision is made here, synchronously, and the runtime sends the
//! call without entering async Rust (the future machinery and its trap guard cost about
//! as much CPU as the rest of the call; docs/performance.md). Everything else, and every
//! outcome that needs more than streaming the answer back (an upstream 401 to a call
//! with a token, a network failure, a timeout), goes through the full path,
//! [`super::forward::forward`], which makes the same decisions with I/O.

use super::headers::{upstream_headers, Forwarding};
use super::target_and_kind;
use crate::config::{Config, RouteToken, SessionStoreKind};
use crate::lifecycle::SharedState;
use crate::oidc::dpop::origin_of;
use crate::session::cookie_store::{self, Opened};
use crate::session::opened_cache::{OpenedCache, OpenedSession};
use crate::web::cookies::cookies_of;
use crate::web::cors;
use crate::web::response::HttpRequest;
use http::{HeaderMap, HeaderName, HeaderValue};

/// A proxied call decided without I/O, ready to send. `Debug` shows no token: the target
/// without its query, header names without values, and whether a proof is to be signed.
pub struct DirectCall {
    /// The upstream URL.
    pub target: String,
    /// The upstream's whole header list.
    pub headers: HeaderMap,
    /// Headers appended to the upstream's answer (CORS for trusted origins, HSTS).
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// The call carries the session's access token, so an upstream 401 must go to the
    /// full path (refresh and retry, `token_rejected`, or a DPoP nonce challenge).
    pub carries_token: bool,
    /// For a DPoP-bound token: the signing input of the call's proof, which the runtime
    /// signs with `DPOP_KEY` and sends as the `DPoP` header.
    pub dpop_proof_input: Option<String>,
}

impl std::fmt::Debug for DirectCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |headers: &mut dyn Iterator<Item = &HeaderName>| -> Vec<String> {
            headers.map(|n| n.as_str().to_string()).collect()
        };
        let target = match self.target.split_once('?') {
            Some((before, _)) => format!("{before}?[redacted]"),
            None => self.target.clone(),
        };
        f.debug_struct("DirectCall")
            .field("target", &target)
            .field("headers", &names(&mut self.headers.keys()))
            .field("response_headers", &names(&mut self.response_headers.iter().map(|(n, _)| n)))
            .field("carries_token", &self.carries_token)
            .field("dpop_proof", &self.dpop_proof_input.is_some())
            .finish()
    }
}

/// The direct call for a request to API route `index` with `rest` after its prefix, or
/// `None` when the full path must handle it: a preflight, any refusal (the full path
/// answers it), a session that needs I/O to read (`SESSION_STORE=kv`, or a bound KV
/// namespace's deny-list), no valid session, a token due for a refresh, activity to
/// record (idle timeout), or a cookie to re-seal. `kv_bound` says whether the `SESSIONS` binding exists.
pub fn direct_call(
    config: &Config,
    index: usize,
    rest: &str,
    head: &HttpRequest,
    kv_bound: bool,
    shared: Option<&SharedState>,
    now: u64,
) -> Option<DirectCall> {
    let opened = shared.map(|s| &s.opened);
    let route = config.api_routes.get(index)?;
    if cors::is_preflight(head.method(), head.headers()) {
        return None;
    }
    let (target, kind) = target_and_kind(config, route, rest, head).ok()?;
    let cookies = cookies_of(head.headers());
    let opened_session = match route.token {
        RouteToken::None => None,
        RouteToken::Access => Some(session_without_io(config, &cookies, kv_bound, opened, now)?),
        // App-only tokens come from the isolate's grants: the full path.
        RouteToken::Client | RouteToken::AccessOrClient => return None,
    };
    let session = opened_session.as_ref().map(|o| &*o.session);
    // An unmet `require` is the full path's answer (403), like every refusal.
    if let Some(session) = session {
        super::authorize(route, session).ok()?;
    }
    // The login's token, or the route's own while the session holds one that is not due
    // (a grant needs the full path).
    let token: Option<(&str, bool)> = match (session, &route.token_request) {
        (None, _) => None,
        (Some(s), None) => Some((s.access_token.as_str(), s.dpop)),
        (Some(s), Some(request)) => s.route_token(&request.key, now).map(|t| (t.access_token.as_str(), t.dpop)),
    };
    if session.is_some() && token.is_none() {
        return None;
    }
    let dpop = token.is_some_and(|(_, dpop)| dpop);
    let websocket = kind == super::CallKind::WebSocket;
    let forwarding = Forwarding::of(config, head, token.map(|(t, _)| t), dpop, websocket);
    let headers = upstream_headers(config, head.headers(), &cookies, forwarding);
    let dpop_proof_input = match (token, &config.dpop_key) {
        (Some((token, true)), Some(key)) => {
            let nonce = shared.and_then(|s| s.dpop_nonces.get(origin_of(&route.upstream)));
            let method = head.method().as_str();
            Some(key.proof_input(method, &target, nonce.as_deref(), Some(token), now).ok()?)
        }
        _ => None,
    };
    Some(DirectCall {
        target,
        headers,
        response_headers: {
            let mut appended = cors::response_headers(config, head.headers());
            appended.extend(crate::web::security_headers::hsts(config));
            appended
        },
        carries_token: session.is_some(),
        dpop_proof_input,
    })
}

/// The request's session when it can be used as it is, read without I/O: cookie sessions
/// without a `SESSIONS` binding, a cookie that opens (or the isolate remembers), active,
/// with nothing to write back (no activity record, re-seal or refresh due).
pub fn session_without_io(
    config: &Config,
    cookies: &[(&str, &str)],
    kv_bound: bool,
    opened: Option<&OpenedCache>,
    now: u64,
) -> Option<OpenedSession> {
    if config.session_store != SessionStoreKind::Cookie || kv_bound {
        return None;
    }
    match cookie_store::open_cached(config, cookies, opened) {
        Opened::Valid { opened, handle }
            if !handle.needs_reseal()
                && opened.session.check_active(now, config.session_idle_timeout).is_ok()
                && !opened.session.refresh_due(now)
                && !opened.session.activity_due(now, config.session_idle_timeout) =>
        {
            Some(opened)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::headers::upstream_request_headers;
    use crate::session::Session;
    use crate::testutil::{config_with, session_at, KEY};

    const NOW: u64 = 1_800_000_000;
    const ROUTES: &str = r#"[{"prefix":"/api/","upstream":"https://api.internal/v1/"},
        {"prefix":"/pub/","upstream":"https://api.internal/pub/","token":"none"}]"#;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut vars = vec![("API_ROUTES", ROUTES), ("TRUSTED_ORIGINS", "https://partner.example")];
        vars.extend_from_slice(extra);
        config_with(&vars)
    }

    fn session(access_expires_at: u64) -> Session {
        Session { access_expires_at, ..session_at(NOW) }
    }

    /// The `Cookie` header carrying `session` sealed under `sealing`'s keys, plus an app cookie.
    fn cookie_header(sealing: &Config, session: &Session) -> String {
        let set = cookie_store::store(sealing, session, &[], NOW).unwrap();
        let sealed: Vec<&str> = set.iter().map(|c| c.split(';').next().unwrap()).collect();
        format!("theme=dark; {}", sealed.join("; "))
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut b = http::Request::builder().method(method).uri(format!("https://app.example.com{path}"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Vec::new()).unwrap()
    }

    fn decide(c: &Config, head: &HttpRequest, kv_bound: bool) -> Option<DirectCall> {
        let path = head.uri().path().to_string();
        let crate::router::Route::Proxy(index, rest) = crate::router::route(c, &path) else {
            panic!("not a proxy path")
        };
        direct_call(c, index, rest, head, kv_bound, None, NOW)
    }

    #[test]
    fn a_valid_cookie_session_is_decided_without_io_like_the_full_path() {
        let c = config(&[]);
        let cookie = cookie_header(&c, &session(NOW + 300));
        let head = request(
            "GET",
            "/api/things/7?x=1",
            &[("cookie", &cookie), ("x-csrf", "1"), ("cf-connecting-ip", "203.0.113.5")],
        );
        let call = decide(&c, &head, false).expect("direct");
        assert_eq!(call.target, "https://api.internal/v1/things/7?x=1");
        assert!(call.carries_token);
        assert_eq!(call.headers["authorization"], "Bearer at-secret-value");
        assert_eq!(call.headers["cookie"], "theme=dark", "edge-bff's cookies never go upstream");
        assert_eq!(call.headers["x-forwarded-for"], "203.0.113.5");
        // The same header list the full path builds for the same request and token.
        let forwarding = Forwarding::of(&c, &head, Some("at-secret-value"), false, false);
        assert_eq!(call.headers, upstream_request_headers(&c, head.headers(), forwarding));
        assert!(call.response_headers.iter().all(|(n, _)| n != "access-control-allow-origin"));
    }

    #[test]
    fn a_held_route_token_is_sent_on_the_direct_path_and_only_to_its_route() {
        let routes = r#"[{"prefix":"/api/","upstream":"https://api.internal/v1/"},
            {"prefix":"/billing/","upstream":"https://billing.internal/","token_request":{"resource":"https://billing.example/"}},
            {"prefix":"/reports/","upstream":"https://reports.internal/","token_request":{"resource":"urn:example:reports"}},
            {"prefix":"/app/","upstream":"https://app.internal/","token":"client"}]"#;
        let c = config_with(&[("API_ROUTES", routes)]);
        let billing_key = c.api_routes[1].token_request.as_ref().unwrap().key.clone();
        let held = |expires_at| crate::session::RouteTokenEntry {
            key: billing_key.clone(),
            access_token: "billing-token".into(),
            expires_at,
            dpop: false,
        };
        let direct = |session: &Session, path: &str| {
            let cookie = cookie_header(&c, session);
            decide(&c, &request("GET", path, &[("cookie", &cookie), ("x-csrf", "1")]), false)
        };
        let with_token = Session { route_tokens: vec![held(NOW + 600)], ..session(NOW + 300) };
        let call = direct(&with_token, "/billing/invoices").expect("a held route token is sent directly");
        assert_eq!(call.headers["authorization"], "Bearer billing-token");
        assert!(call.carries_token);
        // The login's route keeps the login's token; another route's token is not sent to it.
        assert_eq!(direct(&with_token, "/api/x").expect("direct").headers["authorization"], "Bearer at-secret-value");
        assert!(direct(&with_token, "/reports/x").is_none(), "no token for this route yet: the full path grants one");
        // Due (within 30 s of its end): the full path grants it anew.
        let due = Session { route_tokens: vec![held(NOW + 20)], ..session(NOW + 300) };
        assert!(direct(&due, "/billing/invoices").is_none());
        // App-only tokens live in the isolate: the full path.
        assert!(direct(&with_token, "/app/x").is_none());
    }

    #[test]
    fn debug_shows_no_token_cookie_query_or_proof() {
        let jwk = crate::testutil::TestKeys::new().private_jwk("ES256", "dpop-k1").to_string();
        for (c, dpop) in [(config(&[]), false), (config(&[("DPOP_KEY", &jwk)]), true)] {
            let cookie = cookie_header(&c, &Session { dpop, ..session(NOW + 300) });
            let head = request("GET", "/api/things/7?code=query-secret", &[("cookie", &cookie), ("x-csrf", "1")]);
            let call = decide(&c, &head, false).expect("direct");
            assert!(call.headers["authorization"].to_str().unwrap().ends_with("at-secret-value"));
            let text = format!("{call:?} {call:#?}");
            for secret in ["at-secret-value", "theme=dark", "query-secret", &crate::oidc::dpop::ath("at-secret-value")]
            {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            if let Some(input) = &call.dpop_proof_input {
                assert!(!text.contains(input.split('.').nth(1).unwrap()), "{text}");
            }
            assert!(text.contains("https://api.internal/v1/things/7?[redacted]") && text.contains("authorization"));
            assert!(text.contains(&format!("dpop_proof: {dpop}")), "{text}");
        }
    }

    #[test]
    fn a_trusted_origin_gets_its_cors_headers_appended() {
        let c = config(&[]);
        let cookie = cookie_header(&c, &session(NOW + 300));
        let head =
            request("POST", "/api/x", &[("cookie", &cookie), ("x-csrf", "1"), ("origin", "https://partner.example")]);
        let call = decide(&c, &head, false).expect("direct");
        let allow = call.response_headers.iter().find(|(n, _)| n == "access-control-allow-origin").map(|(_, v)| v);
        assert_eq!(allow.map(|v| v.to_str().unwrap()), Some("https://partner.example"));
    }

    #[test]
    fn token_none_routes_need_no_session() {
        let c = config(&[]);
        let head = request("GET", "/pub/info", &[("x-csrf", "1"), ("cookie", "a=b")]);
        let call = decide(&c, &head, true).expect("direct even with KV bound: no session is read");
        assert!(!call.carries_token);
        assert!(call.headers.get("authorization").is_none());
        assert_eq!(call.headers["cookie"], "a=b");
    }

    #[test]
    fn everything_that_needs_io_or_an_answer_goes_to_the_full_path() {
        let c = config(&[]);
        let valid = cookie_header(&c, &session(NOW + 300));
        let with = |cookie: &str| request("GET", "/api/x", &[("cookie", cookie), ("x-csrf", "1")]);
        assert!(decide(&c, &with(&valid), false).is_some(), "the control case is direct");

        assert!(decide(&c, &with(&valid), true).is_none(), "KV bound: the deny-list needs a read");
        let kv_mode = config(&[("SESSION_STORE", "kv")]);
        assert!(decide(&kv_mode, &with(&valid), true).is_none(), "KV sessions need a read");
        // Just inside the refresh margin: the full path refreshes first.
        let due = cookie_header(&c, &session(NOW + crate::proxy::REFRESH_MARGIN));
        assert!(decide(&c, &with(&due), false).is_none(), "a token due for refresh");
        assert!(decide(&c, &with("theme=dark"), false).is_none(), "no session: the full path answers 401");
        assert!(decide(&c, &with("__Host-bff-session=k1.AAAA"), false).is_none(), "a cookie that does not open");
        let mut ended = session(NOW + 300);
        ended.expires_at = NOW;
        assert!(decide(&c, &with(&cookie_header(&c, &ended)), false).is_none(), "a session past its max age");
        // Sealed under a key that is now the older one: the full path re-seals it.
        let rotated = config(&[("COOKIE_KEYS", &format!("k2:{} k1:{KEY}", "A".repeat(43)))]);
        assert!(decide(&rotated, &with(&valid), false).is_none(), "a cookie to re-seal");

        let no_csrf = request("GET", "/api/x", &[("cookie", &valid)]);
        assert!(decide(&c, &no_csrf, false).is_none(), "a refusal is the full path's answer");
        let traversal = request("GET", "/api/%2e%2e/x", &[("cookie", &valid), ("x-csrf", "1")]);
        assert!(decide(&c, &traversal, false).is_none());
        let preflight = request(
            "OPTIONS",
            "/api/x",
            &[("origin", "https://partner.example"), ("access-control-request-method", "GET")],
        );
        assert!(decide(&c, &preflight, false).is_none());
    }

    #[test]
    fn a_dpop_bound_token_goes_as_dpop_with_a_proof_for_this_call() {
        use crate::crypto::signing::{sign_native, NativeSigner};
        let jwk = crate::testutil::TestKeys::new().private_jwk("ES256", "dpop-k1").to_string();
        let c = config(&[("DPOP_KEY", &jwk)]);
        let key = c.dpop_key.as_ref().unwrap();
        let bound = Session { dpop: true, ..session(NOW + 300) };
        let cookie = cookie_header(&c, &bound);
        let head = request("DELETE", "/api/things/7?x=1", &[("cookie", &cookie), ("x-csrf", "1"), ("dpop", "forged")]);
        let crate::router::Route::Proxy(index, rest) = crate::router::route(&c, "/api/things/7") else { panic!() };
        let shared = crate::lifecycle::SharedState::default();
        shared.dpop_nonces.remember("https://api.internal", "api-nonce-7".into());
        let call = direct_call(&c, index, rest, &head, false, Some(&shared), NOW).expect("direct");
        assert_eq!(call.headers["authorization"], "DPoP at-secret-value");
        assert!(call.headers.get("dpop").is_none(), "the browser's DPoP header never passes");
        let input = call.dpop_proof_input.expect("a proof to sign");
        let signature = sign_native(key.key(), input.as_bytes()).unwrap();
        let proof = format!("{input}.{}", crate::crypto::b64url(&signature));
        let header: serde_json::Value =
            serde_json::from_slice(&crate::crypto::b64url_decode(input.split('.').next().unwrap()).unwrap()).unwrap();
        let set =
            crate::oidc::jwk::JwkSet::parse(serde_json::json!({ "keys": [header["jwk"]] }).to_string().as_bytes())
                .unwrap();
        let claims = crate::oidc::jws::UntrustedJws::parse(&proof).unwrap().verify_in_rust(&set).unwrap();
        assert_eq!(claims["htm"], "DELETE");
        assert_eq!(claims["htu"], "https://api.internal/v1/things/7", "without the query");
        assert_eq!(claims["nonce"], "api-nonce-7", "the upstream's remembered nonce");
        assert_eq!(claims["ath"], crate::oidc::dpop::ath("at-secret-value"));
        assert_eq!(claims["iat"], NOW);
        // The same proof as the full path signs (both from `DpopKey::proof_input`).
        let full = crate::testutil::block_on(crate::oidc::dpop::proof(
            &NativeSigner,
            key,
            "DELETE",
            &call.target,
            Some("api-nonce-7"),
            Some("at-secret-value"),
            NOW,
        ))
        .unwrap();
        assert_eq!(full.split('.').next(), input.split('.').next());

        // A Bearer session under the same configuration: no proof.
        let bearer = cookie_header(&c, &session(NOW + 300));
        let head = request("GET", "/api/x", &[("cookie", &bearer), ("x-csrf", "1")]);
        let call = decide(&c, &head, false).expect("direct");
        assert_eq!(call.headers["authorization"], "Bearer at-secret-value");
        assert!(call.dpop_proof_input.is_none());
    }

    #[test]
    fn require_is_decided_on_the_direct_path_and_agrees_with_the_full_path() {
        let routes = r#"[{"prefix":"/admin/","upstream":"https://api.internal/admin/","require":{"groups":"admin"}}]"#;
        let c = config_with(&[("API_ROUTES", routes)]);
        let with_groups = |groups: serde_json::Value| {
            let payload = serde_json::json!({ "sub": "u1", "groups": groups });
            let id_token = format!("h.{}.s", crate::crypto::b64url(payload.to_string().as_bytes()));
            Session { id_token, ..session(NOW + 300) }
        };
        for (groups, allowed) in [
            (serde_json::json!(["staff", "admin"]), true),
            (serde_json::json!("admin"), true),
            (serde_json::json!(["staff"]), false),
            (serde_json::json!(null), false),
        ] {
            let session = with_groups(groups.clone());
            let head = request("GET", "/admin/x", &[("cookie", &cookie_header(&c, &session)), ("x-csrf", "1")]);
            assert_eq!(decide(&c, &head, false).is_some(), allowed, "direct path, groups {groups}");
            let full = crate::proxy::authorize(&c.api_routes[0], &session);
            assert_eq!(full.is_ok(), allowed, "full path, groups {groups}");
            if !allowed {
                assert_eq!(full.unwrap_err().code(), "forbidden");
            }
        }
    }
}
