//! Header hygiene of proxied requests and responses (docs/api.md section 4, docs/security.md
//! group 7): edge-bff's cookies, the browser's `Authorization` and hop-by-hop headers
//! never reach the upstream; the upstream never sets cookies on the app's origin.
//! The client's own forwarding headers never reach it either (docs/security.md group 12):
//! `X-Forwarded-For` is the runtime's client address alone.

use crate::config::Config;
use crate::session::cookie_store::is_session_cookie;
use crate::web::cookies::cookies_of;
use crate::web::response::HttpRequest;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the contract's list).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is one of edge-bff's own cookies.
pub fn is_bff_cookie(config: &Config, name: &str) -> bool {
    is_session_cookie(config, name) || config.is_login_cookie_name(name)
}

/// Forwarding headers a client may send to claim another identity (address, scheme,
/// host): never passed on; edge-bff sets its own `X-Forwarded-*` values.
const CLIENT_FORWARDING: &[&str] =
    &["forwarded", "x-real-ip", "true-client-ip", "client-ip", "x-client-ip", "x-cluster-client-ip"];

/// What the proxy adds to the upstream request. `Debug` shows whether there is an access
/// token, never the token.
#[derive(Clone, Copy)]
pub struct Forwarding<'a> {
    /// The access token, for routes with `token: access`.
    pub access_token: Option<&'a str>,
    /// The access token is DPoP-bound: `Authorization: DPoP` rather than `Bearer` (the
    /// proof is added by the caller, who signs it).
    pub dpop: bool,
    /// A WebSocket handshake: see [`for_websocket`].
    pub websocket: bool,
    /// The client's address (`CF-Connecting-IP`), for `X-Forwarded-For`.
    pub client_ip: Option<&'a str>,
    /// `https` or `http`, for `X-Forwarded-Proto`.
    pub proto: &'a str,
    /// The public host, for `X-Forwarded-Host`.
    pub host: &'a str,
}

impl std::fmt::Debug for Forwarding<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding")
            .field("access_token", &self.access_token.map(|_| "[redacted]"))
            .field("dpop", &self.dpop)
            .field("websocket", &self.websocket)
            .field("client_ip", &self.client_ip)
            .field("proto", &self.proto)
            .field("host", &self.host)
            .finish()
    }
}

impl<'a> Forwarding<'a> {
    /// The forwarding inputs for a proxied call of `head`: the client's address from its
    /// `CF-Connecting-IP`, scheme and host from `PUBLIC_ORIGIN`, and `access_token`
    /// (DPoP-bound when `dpop`); `websocket` for a WebSocket handshake.
    pub fn of(
        config: &'a Config,
        head: &'a HttpRequest,
        access_token: Option<&'a str>,
        dpop: bool,
        websocket: bool,
    ) -> Self {
        let (proto, host) = config.public_scheme_and_host();
        let client_ip = head.headers().get("cf-connecting-ip").and_then(|v| v.to_str().ok());
        Forwarding { access_token, dpop, websocket, client_ip, proto, host }
    }
}

/// The headers to send upstream, built from the browser's; `cookies` are the browser's
/// cookies as parsed from `incoming` (`cookies_of`), read once per request.
pub fn upstream_headers(
    config: &Config,
    incoming: &HeaderMap,
    cookies: &[(&str, &str)],
    forwarding: Forwarding<'_>,
) -> HeaderMap {
    let mut named_in_connection: Vec<String> = Vec::new();
    for value in incoming.get_all(header::CONNECTION) {
        if let Ok(v) = value.to_str() {
            named_in_connection.extend(v.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()));
        }
    }
    let mut out = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || named_in_connection.iter().any(|c| c == n)
            || n == "authorization"
            || n == "dpop"
            || n == "cookie"
            || n == "host"
            || n == "content-length"
            || n.starts_with("x-forwarded-")
            || CLIENT_FORWARDING.contains(&n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if forwarding.websocket {
        for_websocket(&mut out);
    }
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    // The browser's other cookies pass; edge-bff's do not. A `Cookie` named in
    // `Connection` is hop-by-hop: removed, and not rebuilt from its parsed cookies.
    if !named_in_connection.iter().any(|c| c == "cookie") {
        let kept: Vec<String> = cookies
            .iter()
            .filter(|(name, _)| !is_bff_cookie(config, name))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if !kept.is_empty() {
            set(header::COOKIE, &kept.join("; "));
        }
    }
    if let Some(token) = forwarding.access_token {
        let scheme = if forwarding.dpop { "DPoP" } else { "Bearer" };
        set(header::AUTHORIZATION, &format!("{scheme} {token}"));
    }
    // The runtime's address of the client alone: a client's own `X-Forwarded-For` would
    // let it name any address to an upstream that trusts the header.
    if let Some(ip) = forwarding.client_ip {
        set(HeaderName::from_static("x-forwarded-for"), ip);
    }
    set(HeaderName::from_static("x-forwarded-proto"), forwarding.proto);
    set(HeaderName::from_static("x-forwarded-host"), forwarding.host);
    out
}

/// The upstream headers of a WebSocket handshake: `Upgrade: websocket` asks the runtime's
/// fetch for a WebSocket; the browser's handshake headers (`Sec-WebSocket-Key`,
/// `-Version`, `-Extensions`) are the browser's connection's, and the runtime makes its
/// own for the upstream one. `Sec-WebSocket-Protocol` (the subprotocols) passes.
pub fn for_websocket(headers: &mut HeaderMap) {
    for name in ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"] {
        headers.remove(name);
    }
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

/// [`upstream_headers`], parsing the cookies from `incoming`.
pub fn upstream_request_headers(config: &Config, incoming: &HeaderMap, forwarding: Forwarding<'_>) -> HeaderMap {
    upstream_headers(config, incoming, &cookies_of(incoming), forwarding)
}

/// Upstream response headers edge-bff always removes (docs/api.md section 4): an upstream
/// never sets cookies on the app's origin, nor wipes them (`Clear-Site-Data: "cookies"`
/// would clear edge-bff's session). Connection-level headers
/// ([`RUNTIME_MANAGED_RESPONSE_HEADERS`]) never pass the runtime's HTTP layer anyway.
pub const ALWAYS_DROPPED_RESPONSE_HEADERS: &[&str] = &["set-cookie", "clear-site-data"];

/// The CORS response headers: with `TRUSTED_ORIGINS` set, edge-bff answers CORS itself
/// (`web::cors`), and an upstream's would stand beside its own (two
/// `Access-Control-Allow-Origin` values fail every credentialed call).
pub const CORS_RESPONSE_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
];

/// The upstream response headers removed under `config`, one name per line (as
/// `glue.js`'s `responseFrom` takes them): [`ALWAYS_DROPPED_RESPONSE_HEADERS`]; the
/// CORS headers when `TRUSTED_ORIGINS` is set; `Strict-Transport-Security` when edge-bff
/// sends its own (`HSTS`).
pub fn dropped_response_headers(config: &Config) -> String {
    let mut names: Vec<&str> = ALWAYS_DROPPED_RESPONSE_HEADERS.to_vec();
    if !config.trusted_origins.is_empty() {
        names.extend_from_slice(CORS_RESPONSE_HEADERS);
    }
    if config.hsts.is_some() {
        names.push("strict-transport-security");
    }
    names.join("\n")
}

/// Hop-by-hop headers that the Workers runtime never passes from a Worker's response to
/// the client: its HTTP layer writes its own connection headers and framing (checked
/// over the wire by `tests/integration/proxy.test.mjs` against workerd).
pub const RUNTIME_MANAGED_RESPONSE_HEADERS: &[&str] =
    &["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config_with;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn debug_never_shows_the_access_token() {
        let token = "at-secret-token-value";
        for dpop in [false, true] {
            let forwarding = Forwarding {
                access_token: Some(token),
                dpop,
                websocket: false,
                client_ip: None,
                proto: "https",
                host: "app.example.com",
            };
            let text = format!("{forwarding:?} {forwarding:#?}");
            assert!(!text.contains(token), "{text}");
            assert!(text.contains("[redacted]") && text.contains("app.example.com"), "{text}");
        }
    }

    #[test]
    fn cleans_and_adds() {
        let config = config_with(&[]);
        let incoming = headers(&[
            ("cookie", "__Host-bff-session=sealed; theme=dark; __Host-bff-session.2=x; __Host-bff-login=y"),
            ("cookie", "lang=en"),
            ("authorization", "Bearer from-the-browser"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-host", "evil.example"),
            ("x-real-ip", "10.0.0.2"),
            ("true-client-ip", "10.0.0.3"),
            ("forwarded", "for=10.0.0.4;proto=http"),
            ("proxy-connection", "keep-alive"),
            ("accept", "application/json"),
            ("x-csrf", "1"),
        ]);
        let out = upstream_request_headers(
            &config,
            &incoming,
            Forwarding {
                access_token: Some("at-123"),
                dpop: false,
                websocket: false,
                client_ip: Some("203.0.113.9"),
                proto: "https",
                host: "app.example.com",
            },
        );
        assert_eq!(out["authorization"], "Bearer at-123");
        assert_eq!(out["cookie"], "theme=dark; lang=en");
        for gone in [
            "connection",
            "x-secret-hop",
            "keep-alive",
            "te",
            "upgrade",
            "proxy-authorization",
            "proxy-connection",
            "x-real-ip",
            "true-client-ip",
            "forwarded",
        ] {
            assert!(out.get(gone).is_none(), "{gone}");
        }
        assert_eq!(out["x-forwarded-for"], "203.0.113.9");
        assert_eq!(out.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "app.example.com");
        assert_eq!(out["accept"], "application/json");
        assert_eq!(out.get_all("authorization").iter().count(), 1);
    }

    #[test]
    fn only_bff_cookies_means_no_cookie_header_and_no_token_for_token_none() {
        let config = config_with(&[]);
        let incoming = headers(&[("cookie", "__Host-bff-session=sealed"), ("authorization", "Basic abc")]);
        let out = upstream_request_headers(
            &config,
            &incoming,
            Forwarding {
                access_token: None,
                dpop: false,
                websocket: false,
                client_ip: None,
                proto: "https",
                host: "app.example.com",
            },
        );
        assert!(out.get("cookie").is_none());
        assert!(out.get("authorization").is_none());
        assert!(out.get("x-forwarded-for").is_none());
    }

    #[test]
    fn a_header_named_in_connection_is_not_rebuilt() {
        let config = config_with(&[]);
        let incoming = headers(&[
            ("cookie", "theme=dark; __Host-bff-session=sealed"),
            ("connection", "close, Cookie, x-forwarded-for"),
            ("x-forwarded-for", "10.9.9.9"),
        ]);
        let forwarding = Forwarding {
            access_token: Some("at"),
            dpop: false,
            websocket: false,
            client_ip: Some("203.0.113.9"),
            proto: "https",
            host: "app.example.com",
        };
        let out = upstream_request_headers(&config, &incoming, forwarding);
        assert!(out.get("cookie").is_none(), "Connection: cookie must not resurrect a Cookie header");
        assert!(out.get("connection").is_none());
        // edge-bff's own headers are its hop's, not the browser's: they are still set.
        assert_eq!(out["authorization"], "Bearer at");
        assert_eq!(out["x-forwarded-for"], "203.0.113.9");
    }

    #[test]
    fn runtime_managed_response_headers_are_hop_by_hop() {
        for name in RUNTIME_MANAGED_RESPONSE_HEADERS {
            assert!(HOP_BY_HOP.contains(name), "{name}");
        }
    }

    #[test]
    fn dropped_response_headers_follow_the_configuration() {
        let local = config_with(&[("PUBLIC_ORIGIN", "http://localhost:8787")]);
        assert_eq!(dropped_response_headers(&local), "set-cookie\nclear-site-data");
        let https = config_with(&[]);
        assert_eq!(dropped_response_headers(&https), "set-cookie\nclear-site-data\nstrict-transport-security");
        let cors = config_with(&[("TRUSTED_ORIGINS", "https://partner.example"), ("HSTS", "off")]);
        let names = dropped_response_headers(&cors);
        assert!(names.lines().any(|n| n == "access-control-allow-origin"), "{names}");
        assert!(!names.contains("strict-transport-security"));
    }
}
