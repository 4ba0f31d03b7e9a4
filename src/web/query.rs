//! Query-string parsing (total: any input gives a map, never an error).

/// Decoded `key=value` pairs of a URI's query, in order. Repeated keys are kept.
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    match query {
        Some(q) => url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        None => Vec::new(),
    }
}

/// The value of `key` if it occurs exactly once; `Err(())` if it is repeated.
pub fn single<'a>(pairs: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, ()> {
    let mut found = None;
    for (k, v) in pairs {
        if k == key {
            if found.is_some() {
                return Err(());
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
        assert_eq!(single(&pairs, "a"), Err(()));
        assert_eq!(single(&pairs, "c"), Ok(Some("")));
        assert_eq!(single(&pairs, "z"), Ok(None));
    }
}
