//! The single-page app from the `ASSETS` binding: security headers on every asset, and
//! the SPA fallback (an HTML navigation to an unknown path gets `index.html`).

use super::convert;
use crate::config::Config;
use crate::error::BffError;
use crate::web::security_headers;
use worker::{web_sys, Env, Headers, Method, Request, Result};

/// Serve `request` from `ASSETS`; 404 JSON when the Worker has no assets (route-only
/// deployments never send such requests here).
pub async fn serve(config: &Config, env: &Env, request: web_sys::Request) -> Result<web_sys::Response> {
    let Ok(assets) = env.assets("ASSETS") else {
        return convert::answer(config, BffError::NotFound.to_response());
    };
    let request = Request::from(request);
    let navigation = matches!(request.method(), Method::Get | Method::Head)
        && request.headers().get("accept").ok().flatten().is_some_and(|a| a.contains("text/html"));
    let root = {
        let mut url = request.url()?;
        url.set_path("/");
        url.set_query(None);
        url.to_string()
    };
    let mut response = assets.fetch_request(request).await?;
    if response.status_code() == 404 && navigation {
        response = assets.fetch(root, None).await?;
    }
    let content_type = response.headers().get("content-type").ok().flatten();
    let headers = Headers::new();
    for (name, value) in response.headers().entries() {
        headers.append(&name, &value)?;
    }
    for (name, value) in security_headers::for_asset(config, content_type.as_deref()) {
        if let Ok(v) = value.to_str() {
            headers.set(name.as_str(), v)?;
        }
    }
    Ok(response.with_headers(headers).into())
}
