//! The path after a proxy prefix: normalised, and confined to the upstream's base path
//! (docs/api.md section 4, docs/security.md group 12). A path is judged as every server behind the
//! proxy might read it, not only as a URL parser does: servlet containers drop `;` path
//! parameters before resolving dot segments, some frameworks percent-decode twice, old
//! decoders accept overlong UTF-8. The rule, segment by segment (`/`-separated, raw):
//!
//! 1. a backslash or a control character in the raw text, or a `%` not followed by two
//!    hex digits: refused;
//! 2. decoded once, the segment may hold no `/`, `\` or control byte (`00`–`1F`, `7F`);
//! 3. decoded once, it may hold no `%XX` that would decode to `.`, `/`, `\` or a control
//!    byte (`%252e`, `%252F`, `%255c`, `%2500`: double encoding);
//! 4. decoded once, it may hold no overlong UTF-8 sequence (lead byte `C0`/`C1`, `E0`
//!    followed by `80`–`9F`, `F0` followed by `80`–`8F`);
//! 5. a segment that is `.` or `..` only once its `;` parameters are dropped (`..;`,
//!    `.;x`, `%2e%2e;jsessionid=1`, `..%3b`) is refused;
//! 6. plain `.` and `..` segments (literal or `%2e`) are resolved; one that climbs above
//!    the base path is refused.
//!
//! Everything else passes as it was written: `;` in ordinary segments (`a;v=1`), `%25`
//! that encodes anything but the characters above (`100%25`, `%2541`), UTF-8 and other
//! bytes (`caf%C3%A9`, `%E9`).

use crate::error::BffError;
use crate::web::percent::{decode, escaped_bytes, is_control};

/// Normalise `rest` (the raw, percent-encoded path after the prefix).
/// Returns the relative path to append to the upstream base (no leading `/`).
pub fn confine(rest: &str) -> Result<String, BffError> {
    let bad = |why: &str| BffError::InvalidRequest(format!("proxy path refused: {why}"));
    if rest.contains('\\') {
        return Err(bad("backslash"));
    }
    if rest.chars().any(|c| c.is_control()) {
        return Err(bad("control character"));
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = rest.split('/').collect();
    let trailing_slash = rest.ends_with('/') && !rest.is_empty();
    for segment in &segments {
        let decoded = decode(segment).ok_or_else(|| bad("invalid percent-encoding"))?;
        if decoded.iter().any(|&b| b == b'/' || b == b'\\' || is_control(b)) {
            return Err(bad("encoded slash, backslash or control byte"));
        }
        if has_encoded_special(&decoded) {
            return Err(bad("double-encoded dot, slash, backslash or control byte"));
        }
        if has_overlong_utf8(&decoded) {
            return Err(bad("overlong UTF-8 encoding"));
        }
        let before_params = decoded.split(|&b| b == b';').next().unwrap_or_default();
        if decoded.contains(&b';') && matches!(before_params, b"." | b"..") {
            return Err(bad("dot segment with ; parameters"));
        }
        match decoded.as_slice() {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(bad("escapes the upstream base path"));
                }
            }
            _ => out.push(segment),
        }
    }
    let mut path = out.join("/");
    if trailing_slash && !path.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// Whether once-decoded `bytes` still hold a `%XX` naming `.`, `/`, `\\` or a control
/// byte: a second decoding (by the upstream) would produce it.
fn has_encoded_special(bytes: &[u8]) -> bool {
    escaped_bytes(bytes).any(|b| matches!(b, b'.' | b'/' | b'\\') || is_control(b))
}

/// Whether `bytes` hold an overlong UTF-8 sequence (a character encoded in more bytes
/// than it needs, e.g. `C0 AE` for `.`), which lenient decoders read as the character.
fn has_overlong_utf8(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        let next = bytes.get(i + 1).copied().unwrap_or(0);
        matches!(b, 0xC0 | 0xC1)
            || (b == 0xE0 && (0x80..=0x9F).contains(&next))
            || (b == 0xF0 && (0x80..=0x8F).contains(&next))
    })
}

#[cfg(test)]
pub(crate) fn assert_confined(input: &str, out: &str) {
    assert!(!out.starts_with('/'), "{input:?} -> {out:?}");
    for segment in out.split('/') {
        let once = decode(segment).expect("accepted segments decode");
        let twice = decode(&String::from_utf8_lossy(&once)).unwrap_or_else(|| once.clone());
        for reading in [&once, &twice] {
            let bare = reading.split(|&b| b == b';').next().unwrap_or_default();
            assert!(!matches!(bare, b"." | b".."), "{input:?} -> {out:?}");
            assert!(!reading.iter().any(|&b| b == b'/' || b == b'\\' || b < 0x20 || b == 0x7f), "{input:?} -> {out:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::confine;

    #[test]
    fn normal_paths_pass() {
        assert_eq!(confine("").unwrap(), "");
        assert_eq!(confine("users/42").unwrap(), "users/42");
        assert_eq!(confine("users/42/").unwrap(), "users/42/");
        assert_eq!(confine("a//b/./c").unwrap(), "a/b/c");
        assert_eq!(confine("a/b/../c").unwrap(), "a/c");
        assert_eq!(confine("a/%2e%2e/c").unwrap(), "c");
        assert_eq!(confine("name%20with%20space").unwrap(), "name%20with%20space");
        assert_eq!(confine("caf%C3%A9").unwrap(), "caf%C3%A9");
        // Ordinary `;` parameters and `%25` pass as written.
        assert_eq!(confine("items;v=2/x").unwrap(), "items;v=2/x");
        assert_eq!(confine("a;jsessionid=1").unwrap(), "a;jsessionid=1");
        assert_eq!(confine("100%25").unwrap(), "100%25");
        assert_eq!(confine("%2541/b").unwrap(), "%2541/b");
        assert_eq!(confine("latin%E9").unwrap(), "latin%E9");
        assert_eq!(confine("...").unwrap(), "...");
        assert_eq!(confine("..a;b").unwrap(), "..a;b");
    }

    #[test]
    fn what_other_servers_would_read_as_an_escape_is_refused() {
        for bad in [
            // `;` path parameters on dot segments (Tomcat, Jetty: `/..;/` is `/../`).
            "..;/admin",
            "a/..;/..;/admin",
            ".;/x",
            "..;jsessionid=1/x",
            "%2e%2e;/x",
            "..%3b/x",
            "..%3B/x",
            // Double encoding, any case.
            "%252e%252e/admin",
            "%252E%252E/admin",
            "a%252fb",
            "a%252Fb",
            "a%255cb",
            "a%255Cb",
            "%25%32%65%25%32%65/x",
            "a%2500",
            "a%250a",
            // Overlong UTF-8 for `.` and `/`.
            "%C0%AE%C0%AE/x",
            "%c0%af",
            "%C1%9C",
            "%E0%80%AE",
            "%F0%80%80%AE",
            // Decoded control bytes.
            "a%01b",
            "a%1Fb",
            "a%7Fb",
            // Not hex.
            "%+1",
            "%-1",
        ] {
            assert!(confine(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn escapes_and_encoded_separators_are_refused() {
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "%2e%2e/x",
            "%2E%2E/secret",
            ".%2e/x",
            "a/%2e%2e/%2e%2e/x",
            "a%2fb",
            "..%2fx",
            "a%2F..%2F..%2Fx",
            "a%5cb",
            "a\\b",
            "a%00b",
            "%zz",
            "a%2",
            "a\nb",
        ] {
            assert!(confine(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn fuzz_confine_never_escapes() {
        let mut rng = crate::testutil::Rng::new(99);
        for _ in 0..5000 {
            let input: String = (0..rng.below(30))
                .map(|_| {
                    ["a", "/", ".", "..", "%2e", "%2f", "%", "2", "e", "%5c", "b", ";", "%25", "%c0"][rng.below(14)]
                })
                .collect();
            if let Ok(out) = confine(&input) {
                super::assert_confined(&input, &out);
            }
        }
    }
}
