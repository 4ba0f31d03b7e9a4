//! The one error type of the agent and the proxy, and its one mapping to a response.
//!
//! The `Display` text of a [`BffError`] is the operator's detail and goes to the log only;
//! the client sees [`BffError::code`] and the fixed [`BffError::public_description`]
//! (docs/api.md section 5). No variant carries a token, a key or a secret.

use crate::web::response::{json_response, HttpResponse};
use http::StatusCode;

/// Every way a request to edge-bff can fail.
#[derive(Debug, thiserror::Error)]
pub enum BffError {
    /// Malformed body, parameters or proxy path.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No session, or a session cookie that fails to open.
    #[error("no valid session")]
    Unauthorized,
    /// The cookie opens but its KV record is missing or unreadable (not yet replicated,
    /// deleted, KV failing): 401 `unauthorized` for this request, the cookie is kept so
    /// the session works again once the record is there (docs/api.md section 7, v2).
    #[error("session record unavailable: {0}")]
    SessionUnavailable(String),
    /// The refresh token was rejected; the session ends.
    #[error("session expired: {0}")]
    SessionExpired(String),
    /// An upstream API refused the access token after a refresh.
    #[error("upstream rejected the token")]
    TokenRejected,
    /// The session does not meet the route's `require`.
    #[error("the session does not meet the route's require")]
    Forbidden,
    /// The provider refused to issue a route's token (docs/api.md section 4, "Route
    /// tokens"); the session is kept. The detail names the route and the provider's code.
    #[error("token unavailable: {0}")]
    TokenUnavailable(String),
    /// Missing `X-CSRF`, bad `Origin`, or a cross-site request.
    #[error("CSRF check failed: {0}")]
    CsrfCheckFailed(&'static str),
    /// Unknown agent path.
    #[error("not found")]
    NotFound,
    /// Known path, wrong method; `allow` lists the accepted ones.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: String,
    },
    /// Agent request body over 16 KiB.
    #[error("request body too large")]
    PayloadTooLarge,
    /// A setting is missing or malformed (detail names the setting, never its value).
    #[error("configuration error: {0}")]
    Configuration(String),
    /// A failure of edge-bff itself.
    #[error("server error: {0}")]
    Server(String),
    /// Network failure, timeout or 5xx from the identity provider.
    #[error("identity provider unavailable: {0}")]
    IdpUnavailable(String),
    /// Network failure or timeout reaching an API upstream.
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
}

impl BffError {
    /// HTTP status of this error (docs/api.md section 5).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::SessionUnavailable(_) | Self::SessionExpired(_) | Self::TokenRejected => {
                StatusCode::UNAUTHORIZED
            }
            Self::CsrfCheckFailed(_) | Self::Forbidden | Self::TokenUnavailable(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Configuration(_) | Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::IdpUnavailable(_) | Self::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::Unauthorized | Self::SessionUnavailable(_) => "unauthorized",
            Self::SessionExpired(_) => "session_expired",
            Self::TokenRejected => "token_rejected",
            Self::CsrfCheckFailed(_) => "csrf_check_failed",
            Self::Forbidden => "forbidden",
            Self::TokenUnavailable(_) => "token_unavailable",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Configuration(_) => "configuration_error",
            Self::Server(_) => "server_error",
            Self::IdpUnavailable(_) => "idp_unavailable",
            Self::UpstreamUnavailable(_) => "upstream_unavailable",
        }
    }

    /// The fixed, generic `error_description` shown to the client.
    pub fn public_description(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "The request is malformed.",
            Self::Unauthorized | Self::SessionUnavailable(_) => "No valid session.",
            Self::SessionExpired(_) => "The session has expired; log in again.",
            Self::TokenRejected => "The API rejected the access token.",
            Self::CsrfCheckFailed(_) => "The request failed the CSRF check.",
            Self::Forbidden => "The session may not use this route.",
            Self::TokenUnavailable(_) => "The identity provider did not issue a token for this route.",
            Self::NotFound => "Not found.",
            Self::MethodNotAllowed { .. } => "Method not allowed.",
            Self::PayloadTooLarge => "The request body is too large.",
            Self::Configuration(_) => "The server is misconfigured.",
            Self::Server(_) => "Internal server error.",
            Self::IdpUnavailable(_) => "The identity provider is unavailable.",
            Self::UpstreamUnavailable(_) => "The API is unavailable.",
        }
    }

    /// Whether the operator needs to see this in the log at warning level or above.
    pub fn is_server_side(&self) -> bool {
        self.status().is_server_error()
    }

    /// The JSON error response; the detail is not in it.
    pub fn to_response(&self) -> HttpResponse {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.public_description(),
        });
        let mut response = json_response(self.status(), &body);
        if let Self::MethodNotAllowed { allow } = self {
            if let Ok(value) = http::HeaderValue::from_str(allow) {
                response.headers_mut().insert(http::header::ALLOW, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_has_code_and_generic_description_only() {
        let err = BffError::IdpUnavailable("token endpoint said secret-xyz".into());
        let response = err.to_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = String::from_utf8(response.body().clone()).unwrap();
        assert!(body.contains("\"idp_unavailable\""));
        assert!(!body.contains("secret-xyz"));
        assert_eq!(response.headers()["cache-control"], "no-store");
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let response = BffError::MethodNotAllowed { allow: "POST".into() }.to_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "POST");
    }
}
