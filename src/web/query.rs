//! Query-string parsing (total: any input gives a map, never an error).

/// Decoded `key=value` pairs of a URI's query, in order. Repeated keys are kept.
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    match query {
        Some(q) => url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        None => Vec::new(),
    }
}

/// A query parameter that must occur at most once occurred several times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("query parameter repeated")]
pub struct Repeated;

/// The value of `key` if it occurs at most once; [`Repeated`] otherwise.
pub fn single<'a>(pairs: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, Repeated> {
    let mut found = None;
    for (k, v) in pairs {
        if k == key {
            if found.is_some() {
                return Err(Repeated);
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_detects_repeats() {
        let pairs = parse_query(Some("a=1&b=x%20y&a=2&c"));
        assert_eq!(single(&pairs, "b"), Ok(Some("x y")));
        assert_eq!(single(&pairs, "a"), Err(Repeated));
        assert_eq!(single(&pairs, "c"), Ok(Some("")));
        assert_eq!(single(&pairs, "z"), Ok(None));
    }
}
