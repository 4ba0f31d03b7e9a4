//! `Cookie` parsing and `Set-Cookie` serialising (RFC 6265), with edge-bff's fixed
//! attributes: `Secure; HttpOnly; Path=/`, never `Domain` (docs/api.md section 7).

/// Most cookies read from one `Cookie` header; the rest are ignored.
const MAX_COOKIES: usize = 200;

/// Parse one or more `Cookie` header values into `(name, value)` pairs, in order.
/// Total: malformed pieces are skipped.
pub fn parse_cookie_header<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    for header in headers {
        for piece in header.split(';') {
            if out.len() >= MAX_COOKIES {
                return out;
            }
            let piece = piece.trim();
            if let Some((name, value)) = piece.split_once('=') {
                let name = name.trim();
                let value = value.trim().trim_matches('"');
                if !name.is_empty() {
                    out.push((name, value));
                }
            }
        }
    }
    out
}

/// Every cookie of the `Cookie` headers in `headers`, as `(name, value)` pairs.
pub fn cookies_of(headers: &http::HeaderMap) -> Vec<(&str, &str)> {
    parse_cookie_header(headers.get_all(http::header::COOKIE).iter().filter_map(super::header_text))
}

/// The value of the first cookie called `name` (for cookies that are not edge-bff's;
/// edge-bff's own are read with [`lookup`]).
pub fn find<'a>(cookies: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    cookies.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// What a request holds under one cookie name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// No cookie of that name.
    Absent,
    /// Exactly one, with this value.
    One(&'a str),
    /// Two or more: a browser sends several cookies of one name when they differ in
    /// `Domain` or `Path`, which is how a sibling subdomain tosses its own cookie in
    /// beside edge-bff's. Which one is edge-bff's cannot be told, so neither is used.
    Duplicated,
}

/// The cookie called `name`, refusing duplicates (docs/security.md group 12).
pub fn lookup<'a>(cookies: &[(&'a str, &'a str)], name: &str) -> Lookup<'a> {
    let mut found = Lookup::Absent;
    for (n, v) in cookies {
        if *n == name {
            if found != Lookup::Absent {
                return Lookup::Duplicated;
            }
            found = Lookup::One(v);
        }
    }
    found
}

/// `SameSite` attribute values used by edge-bff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Session cookies: never sent on cross-site requests.
    Strict,
    /// The login cookie: must survive the provider's top-level redirect back.
    Lax,
}

/// A `Set-Cookie` header value that sets `name` to `value` for `max_age` seconds.
pub fn set_cookie(name: &str, value: &str, max_age: u64, same_site: SameSite) -> String {
    let same_site = match same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
    };
    format!("{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite={same_site}")
}

/// A `Set-Cookie` header value that deletes `name`.
pub fn clear_cookie(name: &str, same_site: SameSite) -> String {
    set_cookie(name, "", 0, same_site)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_headers_and_skips_garbage() {
        let cookies = parse_cookie_header(["a=1; b = 2 ;junk; =x", "c=\"3\"; a=4"].into_iter());
        assert_eq!(cookies, vec![("a", "1"), ("b", "2"), ("c", "3"), ("a", "4")]);
        assert_eq!(find(&cookies, "a"), Some("1"));
        assert_eq!(find(&cookies, "zz"), None);
    }

    #[test]
    fn lookup_refuses_duplicates() {
        let cookies = parse_cookie_header(["a=1; b=2; a=3; c=", "d=4"].into_iter());
        assert_eq!(lookup(&cookies, "a"), Lookup::Duplicated);
        assert_eq!(lookup(&cookies, "b"), Lookup::One("2"));
        assert_eq!(lookup(&cookies, "c"), Lookup::One(""));
        assert_eq!(lookup(&cookies, "d"), Lookup::One("4"));
        assert_eq!(lookup(&cookies, "e"), Lookup::Absent);
    }

    #[test]
    fn set_cookie_has_every_attribute() {
        let c = set_cookie("__Host-bff-session", "v", 60, SameSite::Strict);
        assert_eq!(c, "__Host-bff-session=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Strict");
        assert!(!c.contains("Domain"));
        assert!(clear_cookie("x", SameSite::Lax).contains("Max-Age=0"));
    }

    #[test]
    fn bounded_cookie_count() {
        let many = "a=1;".repeat(1000);
        assert_eq!(parse_cookie_header([many.as_str()].into_iter()).len(), MAX_COOKIES);
    }
}
