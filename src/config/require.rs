//! A route's `require` (docs/api.md section 4, v2): ID-token claim requirements, all of which
//! must hold before a call is forwarded. A string, number or boolean value matches a
//! claim equal to it, or an array claim containing it; an array value matches when any
//! of its members does. Claims are the session's (what `/session` shows as `user`).

use crate::crypto::jose::Claims;
use serde_json::{Number, Value};

/// Most claims one route may require, and most accepted values per claim: a
/// configuration is read on every isolate start, and a check runs on every call.
const MAX_CLAIMS: usize = 32;
const MAX_VALUES: usize = 256;

/// One accepted value of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A string.
    Text(String),
    /// A number (compared by value: `1` and `1.0` are equal).
    Number(Number),
    /// A boolean.
    Bool(bool),
}

impl Accepted {
    fn of(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::Text(s.clone())),
            Value::Number(n) => Some(Self::Number(n.clone())),
            Value::Bool(b) => Some(Self::Bool(*b)),
            _ => None,
        }
    }

    /// Whether the claim's scalar `value` is this one.
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Self::Text(a), Value::String(b)) => a == b,
            (Self::Bool(a), Value::Bool(b)) => a == b,
            (Self::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y),
            },
            _ => false,
        }
    }

    /// Whether `claim` is this value, or an array containing it.
    fn matches(&self, claim: &Value) -> bool {
        match claim {
            Value::Array(members) => members.iter().any(|m| self.equals(m)),
            scalar => self.equals(scalar),
        }
    }
}

/// A route's requirements: for each claim, the values it may have (any of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements(Vec<(String, Vec<Accepted>)>);

impl Requirements {
    /// Read a route's `require` member; the error says what is wrong (never the values).
    pub fn parse(value: &Value) -> Result<Self, &'static str> {
        let Value::Object(map) = value else { return Err("require must be an object") };
        if map.is_empty() {
            return Err("require is empty");
        }
        if map.len() > MAX_CLAIMS {
            return Err("require names too many claims (at most 32)");
        }
        let mut out = Vec::with_capacity(map.len());
        for (claim, wanted) in map {
            if claim.is_empty() {
                return Err("require has an empty claim name");
            }
            let values = match wanted {
                Value::Array(list) if list.is_empty() => return Err("require has an empty list"),
                Value::Array(list) if list.len() > MAX_VALUES => return Err("require has a list over 256 values"),
                Value::Array(list) => list.iter().map(Accepted::of).collect::<Option<Vec<_>>>(),
                scalar => Accepted::of(scalar).map(|a| vec![a]),
            }
            .ok_or("require values must be strings, numbers, booleans or lists of them")?;
            out.push((claim.clone(), values));
        }
        Ok(Self(out))
    }

    /// Whether `claims` meet every requirement.
    pub fn met_by(&self, claims: &Claims) -> bool {
        self.0
            .iter()
            .all(|(name, accepted)| claims.get(name).is_some_and(|claim| accepted.iter().any(|a| a.matches(claim))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    fn req(v: Value) -> Requirements {
        Requirements::parse(&v).unwrap()
    }

    #[test]
    fn equality_membership_and_any_of() {
        let user = claims(json!({
            "sub": "u1", "groups": ["staff", "admin"], "tier": 3, "verified": true, "ratio": 1.0, "org": "acme",
        }));
        assert!(req(json!({"org": "acme"})).met_by(&user));
        assert!(req(json!({"groups": "admin"})).met_by(&user), "array claim containing the value");
        assert!(req(json!({"groups": ["owner", "admin"]})).met_by(&user), "any of the listed values");
        assert!(req(json!({"tier": 3, "verified": true})).met_by(&user));
        assert!(req(json!({"tier": 3.0})).met_by(&user), "numbers compare by value");
        assert!(req(json!({"ratio": 1})).met_by(&user));
        assert!(req(json!({"org": "acme", "groups": "staff"})).met_by(&user), "all must hold");

        assert!(!req(json!({"org": "other"})).met_by(&user));
        assert!(!req(json!({"groups": "owner"})).met_by(&user));
        assert!(!req(json!({"missing": "x"})).met_by(&user), "an absent claim never matches");
        assert!(!req(json!({"tier": "3"})).met_by(&user), "no type coercion");
        assert!(!req(json!({"verified": "true"})).met_by(&user));
        assert!(!req(json!({"org": "acme", "groups": "owner"})).met_by(&user), "one unmet is enough");
        let nested = claims(json!({"address": {"country": "CH"}, "roles": [["admin"]]}));
        assert!(!req(json!({"address": "CH"})).met_by(&nested), "objects never match");
        assert!(!req(json!({"roles": "admin"})).met_by(&nested), "only one level of arrays");
    }

    #[test]
    fn malformed_requirements_are_configuration_errors() {
        for bad in [
            json!({}),
            json!([]),
            json!("admin"),
            json!({"groups": []}),
            json!({"groups": null}),
            json!({"groups": {"a": 1}}),
            json!({"groups": ["a", ["b"]]}),
            json!({"": "x"}),
            json!({"groups": vec!["x"; 257]}),
        ] {
            assert!(Requirements::parse(&bad).is_err(), "{bad}");
        }
        let many: serde_json::Map<String, Value> = (0..33).map(|i| (format!("c{i}"), json!("x"))).collect();
        assert!(Requirements::parse(&Value::Object(many)).is_err());
    }
}
