//! Which part of edge-bff answers a path: the agent, the proxy, or the static assets.

use crate::config::Config;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// The agent; the path below `AUTH_PATH` (e.g. `/login`, or `` for `AUTH_PATH` itself).
    Agent(&'a str),
    /// The API proxy: index into `Config::api_routes` and the rest of the path.
    Proxy(usize, &'a str),
    /// Everything else: the `ASSETS` binding.
    Asset,
}

impl Route<'_> {
    /// The request kind of the access line and the metrics (docs/api.md section 9).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Agent(_) => "agent",
            Self::Proxy(..) => "proxy",
            Self::Asset => "assets",
        }
    }
}

/// Decide the route of `path` (the URL path, still percent-encoded).
pub fn route<'a>(config: &Config, path: &'a str) -> Route<'a> {
    if let Some(rest) = path.strip_prefix(config.auth_path.as_str()) {
        if rest.is_empty() || rest.starts_with('/') {
            return Route::Agent(rest);
        }
    }
    for (index, api) in config.api_routes.iter().enumerate() {
        if let Some(rest) = path.strip_prefix(api.prefix.as_str()) {
            return Route::Proxy(index, rest);
        }
    }
    Route::Asset
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::config_with;

    #[test]
    fn routes_agent_proxy_and_assets() {
        let c = config_with(&[("API_ROUTES", r#"[{"prefix":"/api/","upstream":"https://a.example/"}]"#)]);
        assert_eq!(route(&c, "/auth/login"), Route::Agent("/login"));
        assert_eq!(route(&c, "/auth"), Route::Agent(""));
        assert_eq!(route(&c, "/authx"), Route::Asset);
        assert_eq!(route(&c, "/api/v1/x"), Route::Proxy(0, "v1/x"));
        assert_eq!(route(&c, "/api"), Route::Asset);
        assert_eq!(route(&c, "/"), Route::Asset);
        assert_eq!(route(&c, "/index.html"), Route::Asset);
        assert_eq!(
            [route(&c, "/auth/login").kind(), route(&c, "/api/v1/x").kind(), route(&c, "/").kind()],
            ["agent", "proxy", "assets"]
        );
    }
}
