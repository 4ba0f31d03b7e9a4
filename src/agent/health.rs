//! `GET {AUTH_PATH}/health` (docs/api.md section 3, v2), for uptime monitors: 200
//! `{"status":"ok"}` when the configuration is valid and the provider's discovery document
//! can be had; 503 `{"status":"unavailable","reason":…}` otherwise. The answer comes from
//! the isolate's provider cache ([`discovery_health`]): the outcome of a discovery fetch
//! at most 10 s old, never a stale document kept through an outage, so a provider that
//! went down shows within 10 s and one that came back likewise, while a burst of checks
//! (each answer is `no-store`) costs the provider one fetch per isolate. The answer names
//! only the reason (`configuration` or `provider`), never the provider's text; the detail
//! goes to the log.

use super::RequestContext;
use crate::oidc::provider::discovery_health;
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
    match discovery_health(ctx.provider(), ctx.http, ctx.config, ctx.now).await {
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
