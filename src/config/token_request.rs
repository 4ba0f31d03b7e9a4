//! A route's `token_request` (docs/api.md section 4, "Route tokens"): the parameters of
//! the grant that gets the route its own token: RFC 8707 `resource`s, a `scope`, and
//! provider parameters such as Auth0's `audience`. Parsed and checked once, with the
//! configuration; the key it carries names the token wherever it is kept.

/// Parameters edge-bff sets itself on a token request: a route's `params` may not name them.
pub const RESERVED_PARAMS: &[&str] =
    &["grant_type", "refresh_token", "client_id", "client_secret", "resource", "scope"];

/// What a route's token is requested with. Routes with equal requests share their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// RFC 8707 resource indicators (absolute URIs without a fragment), in order.
    pub resources: Vec<String>,
    /// The requested scope, its tokens separated by single spaces.
    pub scope: Option<String>,
    /// Further form parameters, in order (`audience`, …).
    pub params: Vec<(String, String)>,
    /// A short stable name of this request (the same text for equal requests): the key of
    /// its token in a session and in the per-isolate caches.
    pub key: String,
}

impl TokenRequest {
    /// Parse and check a route's `token_request` value. The error says what is wrong, for
    /// a `configuration_error` that names the route.
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        const SHAPE: &str =
            "token_request must be an object with resource (a URI or a list of URIs), scope and params (strings)";
        let object = value.as_object().ok_or(SHAPE)?;
        if object.keys().any(|k| !matches!(k.as_str(), "resource" | "scope" | "params")) {
            return Err(SHAPE.into());
        }
        let text = |name: &str| match object.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(SHAPE.to_string()),
        };
        let (scope, params) = (text("scope")?, text("params")?);
        let resources: Vec<String> = match object.get("resource") {
            None => Vec::new(),
            Some(serde_json::Value::String(r)) => vec![r.clone()],
            Some(serde_json::Value::Array(list)) if list.is_empty() => {
                return Err("token_request resource is an empty list".into());
            }
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .map(|r| r.as_str().map(str::to_string).ok_or(SHAPE.to_string()))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(SHAPE.into()),
        };
        if resources.is_empty() && scope.is_none() && params.is_none() {
            return Err("token_request needs at least one of resource, scope, params".into());
        }
        for resource in &resources {
            check_resource(resource)?;
        }
        if resources.iter().enumerate().any(|(i, r)| resources[..i].contains(r)) {
            return Err("token_request resource names one URI twice".into());
        }
        let scope = match scope {
            None => None,
            Some(scope) => Some(normalise_scope(scope)?),
        };
        let params = match params {
            None => Vec::new(),
            Some(text) => parse_params(text)?,
        };
        let key = key_of(&resources, scope.as_deref(), &params);
        Ok(TokenRequest { resources, scope, params, key })
    }

    /// The form parameters this request adds to a grant: each `resource`, the `scope`,
    /// then `params`.
    pub fn form(&self) -> Vec<(&str, &str)> {
        let mut form: Vec<(&str, &str)> = self.resources.iter().map(|r| ("resource", r.as_str())).collect();
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        form.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        form
    }
}

/// RFC 8707 section 2: an absolute URI without a fragment.
fn check_resource(resource: &str) -> Result<(), String> {
    let shown: String = resource.chars().take(60).collect();
    let url =
        url::Url::parse(resource).map_err(|_| format!("token_request resource {shown:?} is not an absolute URI"))?;
    if url.fragment().is_some() {
        return Err(format!("token_request resource {shown:?} has a fragment"));
    }
    if url.cannot_be_a_base() && !resource.contains(':') {
        return Err(format!("token_request resource {shown:?} is not an absolute URI"));
    }
    Ok(())
}

/// RFC 6749 section 3.3: scope tokens of `%x21 / %x23-5B / %x5D-7E`, separated by spaces.
/// Runs of white space become one space.
fn normalise_scope(scope: &str) -> Result<String, String> {
    let tokens: Vec<&str> = scope.split_whitespace().collect();
    if tokens.is_empty() {
        return Err("token_request scope is empty".into());
    }
    let valid = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
    if let Some(bad) = tokens.iter().find(|t| !t.bytes().all(valid)) {
        let shown: String = bad.chars().take(40).collect();
        return Err(format!("token_request scope has an invalid scope token {shown:?}"));
    }
    Ok(tokens.join(" "))
}

/// `params`: form-encoded (`a=1&b=2`), names not empty and not edge-bff's own, each once.
fn parse_params(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.trim().is_empty() {
        return Err("token_request params is empty".into());
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for piece in text.split('&') {
        if piece.is_empty() {
            continue;
        }
        let (name, value) = url::form_urlencoded::parse(piece.as_bytes())
            .next()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .unwrap_or_default();
        if name.is_empty() {
            return Err("token_request params has a parameter without a name".into());
        }
        let shown: String = name.chars().take(40).collect();
        if RESERVED_PARAMS.contains(&name.as_str()) || name.starts_with("client_assertion") {
            return Err(format!("token_request params may not set {shown} (edge-bff sets it)"));
        }
        if params.iter().any(|(n, _)| *n == name) {
            return Err(format!("token_request params names {shown} twice"));
        }
        params.push((name, value));
    }
    if params.is_empty() {
        return Err("token_request params is empty".into());
    }
    Ok(params)
}

/// The key of a request: the SHA-256 of its canonical form (resources, scope and params,
/// each in order, separated so that no two requests share a text), first 12 bytes,
/// base64url: 16 characters.
fn key_of(resources: &[String], scope: Option<&str>, params: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for resource in resources {
        hash.update(b"r\0");
        hash.update(resource.as_bytes());
        hash.update(b"\0");
    }
    if let Some(scope) = scope {
        hash.update(b"s\0");
        hash.update(scope.as_bytes());
        hash.update(b"\0");
    }
    for (name, value) in params {
        hash.update(b"p\0");
        hash.update(name.as_bytes());
        hash.update(b"\0");
        hash.update(value.as_bytes());
        hash.update(b"\0");
    }
    crate::crypto::b64url(&hash.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<TokenRequest, String> {
        TokenRequest::parse(&value)
    }

    #[test]
    fn each_member_is_read_and_checked() {
        let r = parse(json!({"resource": "https://billing.example/", "scope": " read  write ", "params": "audience=https%3A%2F%2Fapi2&x=1"}))
            .unwrap();
        assert_eq!(r.resources, ["https://billing.example/"]);
        assert_eq!(r.scope.as_deref(), Some("read write"));
        assert_eq!(r.params, [("audience".to_string(), "https://api2".to_string()), ("x".into(), "1".into())]);
        assert_eq!(
            r.form(),
            [
                ("resource", "https://billing.example/"),
                ("scope", "read write"),
                ("audience", "https://api2"),
                ("x", "1")
            ]
        );
        let many = parse(json!({"resource": ["https://a.example/", "urn:example:b"]})).unwrap();
        assert_eq!(many.resources, ["https://a.example/", "urn:example:b"]);
        assert_eq!(parse(json!({"scope": "api://app/.default"})).unwrap().scope.as_deref(), Some("api://app/.default"));
    }

    #[test]
    fn equal_requests_share_a_key_and_others_do_not() {
        let a = parse(json!({"resource": "https://a.example/", "scope": "read"})).unwrap();
        let same = parse(json!({"scope": "read ", "resource": ["https://a.example/"]})).unwrap();
        assert_eq!(a.key, same.key);
        assert_eq!(a.key.len(), 16);
        let others = [
            json!({"resource": "https://a.example/"}),
            json!({"resource": "https://a.example/", "scope": "write"}),
            json!({"resource": "https://b.example/", "scope": "read"}),
            json!({"resource": "https://a.example/", "scope": "read", "params": "x=1"}),
            json!({"params": "scope=read"}),
        ];
        for other in others {
            // `scope` in params is refused: no key to compare.
            if let Ok(o) = parse(other.clone()) {
                assert_ne!(o.key, a.key, "{other}");
            }
        }
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let cases = [
            (json!({}), "at least one"),
            (json!("https://a.example/"), "must be an object"),
            (json!({"resource": 3}), "must be an object"),
            (json!({"audience": "x"}), "must be an object"),
            (json!({"resource": []}), "empty list"),
            (json!({"resource": "/relative"}), "not an absolute URI"),
            (json!({"resource": "https://a.example/#f"}), "fragment"),
            (json!({"resource": ["https://a.example/", "https://a.example/"]}), "twice"),
            (json!({"scope": "  "}), "scope is empty"),
            (json!({"scope": "a\"b"}), "invalid scope token"),
            (json!({"params": ""}), "params is empty"),
            (json!({"params": "=1"}), "without a name"),
            (json!({"params": "a=1&a=2"}), "twice"),
        ];
        for (value, expected) in cases {
            let e = parse(value.clone()).unwrap_err();
            assert!(e.contains(expected), "{value}: {e}");
        }
        for reserved in [
            "grant_type",
            "refresh_token",
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
            "resource",
            "scope",
        ] {
            let e = parse(json!({"params": format!("audience=x&{reserved}=1")})).unwrap_err();
            assert!(e.contains("may not set"), "{reserved}: {e}");
        }
    }
}
