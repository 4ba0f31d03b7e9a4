//! `GET {AUTH_PATH}/health` (API.md section 3, v2), for uptime monitors: 200
//! `{"status":"ok"}` when the configuration is valid and the provider's discovery document
//! can be had now; 503 `{"status":"unavailable","reason":…}` otherwise. The discovery
//! document is fetched on every call rather than read from the isolate's cache, so a
//! provider that went down shows at once and one that came back at the next check. The
//! answer names only the reason (`configuration` or `provider`), never the provider's
//! text; the detail goes to the log.

use super::RequestContext;
use crate::oidc::discovery::{discovery_url, ProviderMetadata};
use crate::oidc::provider::get_document;
use crate::web::response::{json_response, HttpResponse};
use http::StatusCode;

/// The health answer with the configuration invalid (the one path that answers a
/// configuration error as 503 rather than 500 `configuration_error`).
pub fn configuration_unavailable() -> HttpResponse {
    unavailable("configuration")
}

fn unavailable(reason: &str) -> HttpResponse {
    let mut response = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({
            "status": "unavailable", "reason": reason,
        }),
    );
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

/// Answer `/health`.
pub async fn handle(ctx: &RequestContext<'_>) -> HttpResponse {
    let config = ctx.config;
    let fetched = get_document(ctx.http, &discovery_url(&config.issuer)).await.and_then(|body| {
        ProviderMetadata::parse_for(&body, &config.issuer, config.allowed_tenants.is_some())
            .map_err(|e| crate::oidc::provider::ProviderError::Misconfigured(e.to_string()))
    });
    match fetched {
        Ok(_) => {
            let mut response = json_response(StatusCode::OK, &serde_json::json!({ "status": "ok" }));
            response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            log::warn!("health: provider discovery unavailable ({e})");
            unavailable("provider")
        }
    }
}

/// Whether `path` is the health endpoint when the configuration could not be read:
/// `AUTH_PATH` as set (when it looks like a path), else `/auth`, then `/health`.
pub fn is_health_path(auth_path_setting: Option<&str>, path: &str) -> bool {
    let auth_path = auth_path_setting
        .map(|p| p.trim().trim_end_matches('/'))
        .filter(|p| p.starts_with('/') && p.len() > 1)
        .unwrap_or("/auth");
    path.strip_prefix(auth_path) == Some("/health")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_path_without_a_configuration() {
        assert!(is_health_path(None, "/auth/health"));
        assert!(is_health_path(Some("/bff"), "/bff/health"));
        assert!(is_health_path(Some("/bff/"), "/bff/health"));
        assert!(!is_health_path(Some("/bff"), "/auth/health"));
        assert!(is_health_path(Some("not a path"), "/auth/health"), "an unusable AUTH_PATH: the default");
        assert!(!is_health_path(None, "/auth/health/x"));
        let r = configuration_unavailable();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body, serde_json::json!({"status": "unavailable", "reason": "configuration"}));
    }
}
