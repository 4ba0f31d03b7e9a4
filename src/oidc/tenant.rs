//! Multi-tenant issuers (an edge-bff extension to docs/api.md's exact issuer rule, set by
//! `ALLOWED_TENANTS`). Microsoft Entra ID's multi-tenant endpoints (`/organizations`,
//! `/common`, `/consumers`) publish a discovery document whose `issuer` is a template,
//! `https://login.microsoftonline.com/{tenantid}/v2.0`; each ID token is issued by its
//! user's tenant, names it in `tid`, and carries that tenant's issuer in `iss`.
//! Microsoft's rule for such tokens is: `iss` must equal the template with `{tenantid}`
//! replaced by the token's own `tid`. edge-bff adds the operator's list of tenants it
//! accepts (or `*` for any).
//!
//! Without `ALLOWED_TENANTS` the issuer is compared exactly, as docs/api.md says.

use super::jws::Claims;
use crate::config::{is_tenant_id, Config, TenantRule};
use crate::crypto::jose::unverified_claims;
use serde_json::Value;
use std::borrow::Cow;

/// The placeholder of a multi-tenant issuer template.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Why a token's tenant is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// The token has no `tid`, or one that is not a tenant id.
    #[error("the token names no tenant (tid)")]
    NoTenant,
    /// The tenant is not in `ALLOWED_TENANTS`.
    #[error("tenant {0} is not in ALLOWED_TENANTS")]
    NotAllowed(String),
    /// A refreshed ID token names another tenant than the login's.
    #[error("the refreshed ID token names another tenant than the login's")]
    Changed,
}

/// Whether the discovery document's `discovered` issuer fits `configured`: equal, or, when
/// `multi_tenant`, a template holding [`TENANT_PLACEHOLDER`] once, which gives `configured`
/// when the placeholder is replaced by `configured`'s own path segment there
/// (`…/organizations/v2.0` for `…/{tenantid}/v2.0`).
pub fn discovery_issuer_fits(configured: &str, discovered: &str, multi_tenant: bool) -> bool {
    if !multi_tenant {
        return discovered == configured;
    }
    let Some((prefix, suffix)) = discovered.split_once(TENANT_PLACEHOLDER) else { return false };
    if suffix.contains(TENANT_PLACEHOLDER) || configured.len() < prefix.len() + suffix.len() {
        return false;
    }
    let Some(segment) = configured.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(suffix)) else {
        return false;
    };
    !segment.is_empty() && !segment.contains(['/', '?', '#'])
}

/// The issuer a token with `claims` must carry: `OIDC_ISSUER`, or with `ALLOWED_TENANTS`
/// the discovered template (`template`) with the token's own accepted `tid`.
pub fn expected_issuer<'a>(config: &'a Config, template: &str, claims: &Claims) -> Result<Cow<'a, str>, TenantError> {
    let Some(rule) = &config.allowed_tenants else { return Ok(Cow::Borrowed(config.issuer.as_str())) };
    let tenant = claims.get("tid").and_then(Value::as_str).filter(|t| is_tenant_id(t)).ok_or(TenantError::NoTenant)?;
    if !rule.allows(tenant) {
        return Err(TenantError::NotAllowed(tenant.to_string()));
    }
    Ok(Cow::Owned(template.replacen(TENANT_PLACEHOLDER, tenant, 1)))
}

/// With `ALLOWED_TENANTS`: whether a refreshed ID token's verified `claims` name the
/// tenant of the login's ID token `login_id_token` (read without a second check: edge-bff
/// verified it before storing it), so that its issuer, made from that tenant, is the
/// login's too. Without `ALLOWED_TENANTS` the issuer is fixed and this always holds.
pub fn same_tenant(config: &Config, login_id_token: Option<&str>, claims: &Claims) -> Result<(), TenantError> {
    if config.allowed_tenants.is_none() {
        return Ok(());
    }
    let login_tenant = login_id_token.and_then(stored_tenant);
    let tenant = claims.get("tid").and_then(Value::as_str);
    match (login_tenant, tenant) {
        (Some(login), Some(now)) if login == now => Ok(()),
        _ => Err(TenantError::Changed),
    }
}

/// The `tid` of a stored ID token's payload, if it names one.
fn stored_tenant(id_token: &str) -> Option<String> {
    unverified_claims(id_token)?.get("tid").and_then(Value::as_str).map(str::to_string)
}

/// Whether an authorization response's `iss` (RFC 9207) names the provider: equal to
/// `template` (the discovered issuer), or with `ALLOWED_TENANTS` the template with an
/// accepted tenant. The ID token's issuer must then be the same (checked by the caller).
pub fn response_issuer_fits(config: &Config, template: &str, iss: &str) -> bool {
    let Some(rule) = &config.allowed_tenants else { return iss == template };
    let Some((prefix, suffix)) = template.split_once(TENANT_PLACEHOLDER) else { return iss == template };
    iss.len() >= prefix.len() + suffix.len()
        && iss
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|tenant| is_tenant_id(tenant) && rule.allows(tenant))
}

impl TenantRule {
    /// Whether `tenant` is accepted.
    pub fn allows(&self, tenant: &str) -> bool {
        match self {
            TenantRule::Any => true,
            TenantRule::Only(list) => list.iter().any(|t| t == tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config_with;

    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
    const CONFIGURED: &str = "https://login.microsoftonline.com/organizations/v2.0";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn claims(tid: Option<&str>) -> Claims {
        let mut c = Claims::new();
        if let Some(t) = tid {
            c.insert("tid".into(), Value::String(t.into()));
        }
        c
    }

    #[test]
    fn tenant_ids_are_lowercase_guids() {
        assert!(is_tenant_id(TENANT));
        for bad in [
            "",
            "organizations",
            "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "72f988bf_86f1-41af-91ab-2d7cd011db47",
            "72f988bf-86f1-41af-91ab-2d7cd011db4g",
        ] {
            assert!(!is_tenant_id(bad), "{bad}");
        }
    }

    #[test]
    fn discovery_templates_fit_only_their_own_endpoint() {
        assert!(discovery_issuer_fits(CONFIGURED, CONFIGURED, false));
        assert!(!discovery_issuer_fits(CONFIGURED, TEMPLATE, false), "exact without ALLOWED_TENANTS");
        assert!(discovery_issuer_fits(CONFIGURED, TEMPLATE, true));
        assert!(discovery_issuer_fits("https://login.microsoftonline.com/common/v2.0", TEMPLATE, true));
        for configured in [
            "https://login.microsoftonline.com/v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://evil.example/organizations/v2.0",
            "https://login.microsoftonline.com/organizations/v2.1",
        ] {
            assert!(!discovery_issuer_fits(configured, TEMPLATE, true), "{configured}");
        }
        assert!(!discovery_issuer_fits(CONFIGURED, "https://login.microsoftonline.com/{tenantid}/{tenantid}", true));
        // A single-tenant document fits too when it is the configured issuer exactly.
        assert!(!discovery_issuer_fits(CONFIGURED, CONFIGURED, true), "ALLOWED_TENANTS needs a template");
    }

    #[test]
    fn tokens_carry_their_own_tenants_issuer() {
        let exact = config_with(&[]);
        assert_eq!(expected_issuer(&exact, "ignored", &claims(None)).unwrap(), exact.issuer);

        let any = config_with(&[("OIDC_ISSUER", CONFIGURED), ("ALLOWED_TENANTS", "*")]);
        assert_eq!(
            expected_issuer(&any, TEMPLATE, &claims(Some(TENANT))).unwrap(),
            format!("https://login.microsoftonline.com/{TENANT}/v2.0")
        );
        assert_eq!(expected_issuer(&any, TEMPLATE, &claims(None)).unwrap_err(), TenantError::NoTenant);
        assert_eq!(expected_issuer(&any, TEMPLATE, &claims(Some("organizations"))).unwrap_err(), TenantError::NoTenant);

        let other = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let only = config_with(&[("OIDC_ISSUER", CONFIGURED), ("ALLOWED_TENANTS", &format!("{TENANT}  {other}"))]);
        assert!(expected_issuer(&only, TEMPLATE, &claims(Some(other))).is_ok());
        let stranger = "00000000-0000-0000-0000-000000000001";
        assert_eq!(
            expected_issuer(&only, TEMPLATE, &claims(Some(stranger))).unwrap_err(),
            TenantError::NotAllowed(stranger.into())
        );

        assert!(response_issuer_fits(&only, TEMPLATE, &format!("https://login.microsoftonline.com/{TENANT}/v2.0")));
        assert!(!response_issuer_fits(&only, TEMPLATE, &format!("https://login.microsoftonline.com/{stranger}/v2.0")));
        assert!(!response_issuer_fits(&only, TEMPLATE, TEMPLATE));
        assert!(!response_issuer_fits(&only, TEMPLATE, &format!("https://evil.example/{TENANT}/v2.0")));
        assert!(response_issuer_fits(&exact, "https://idp.example.com", "https://idp.example.com"));
    }
}
