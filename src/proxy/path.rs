//! The path after a proxy prefix: normalised, and confined to the upstream's base path
//! (API.md section 4). Encoded separators and NUL are refused outright; `.` and `..`
//! segments, literal or percent-encoded, are resolved and may not climb above the base.

use crate::error::BffError;

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
        let decoded = decode_segment(segment).ok_or_else(|| bad("invalid percent-encoding"))?;
        if decoded.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
            return Err(bad("encoded slash, backslash or NUL"));
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

/// Percent-decode one segment; `None` for a `%` not followed by two hex digits.
fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{confine, decode_segment};

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
                .map(|_| ["a", "/", ".", "..", "%2e", "%2f", "%", "2", "e", "%5c", "b"][rng.below(11)])
                .collect();
            if let Ok(out) = confine(&input) {
                assert!(!out.starts_with('/'), "{input:?} -> {out:?}");
                let dots = |s: &str| matches!(decode_segment(s).as_deref(), Some(b".") | Some(b".."));
                assert!(!out.split('/').any(dots), "{input:?} -> {out:?}");
                let lower = out.to_ascii_lowercase();
                assert!(!lower.contains("%2f") && !lower.contains("%5c"), "{input:?} -> {out:?}");
            }
        }
    }
}
