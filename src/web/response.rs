//! Response helpers. The core speaks `http::Request<Vec<u8>>`/`http::Response<Vec<u8>>`;
//! the runtime glue converts to and from the Worker's types.

use http::{header, HeaderValue, StatusCode};

/// A request as the core sees it (agent endpoints: body already read and bounded).
pub type HttpRequest = http::Request<Vec<u8>>;
/// A response as the core builds it.
pub type HttpResponse = http::Response<Vec<u8>>;

/// A JSON response with `Cache-Control: no-store` (docs/api.md section 3) and
/// `X-Content-Type-Options: nosniff` (section 9).
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    json_text_response(status, body.to_string().into_bytes())
}

/// [`json_response`] with a body already written as JSON text.
pub fn json_text_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A 302 redirect to `location`, never cached.
///
/// `location` is built by edge-bff itself; a value that cannot be a header falls back to `/`.
pub fn redirect(location: &str) -> HttpResponse {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/")));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Append `Set-Cookie` headers to a response.
pub fn add_set_cookies(response: &mut HttpResponse, cookies: &[String]) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// The value of a request header as text, if present and valid ASCII.
pub fn header_str<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}
