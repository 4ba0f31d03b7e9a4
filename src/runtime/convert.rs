//! Conversions between the runtime's requests/responses and the core's `http` types.

use super::js;
use crate::error::BffError;
use crate::web::response::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use worker::web_sys;
use worker::Result;

/// Read a Worker request into an `http::Request`, refusing bodies over `max_body` bytes
/// (counted while streaming, so a missing `Content-Length` cannot get around it).
pub async fn read_request(
    request: web_sys::Request,
    uri: &http::Uri,
    max_body: usize,
) -> std::result::Result<HttpRequest, BffError> {
    let mut head = head_of(&request, uri).map_err(|e| BffError::InvalidRequest(e.to_string()))?;
    let declared = head.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(BffError::PayloadTooLarge);
    }
    let mut body = Vec::new();
    if !matches!(head.method(), &http::Method::GET | &http::Method::HEAD) && request.body().is_some() {
        let mut request = worker::Request::from(request);
        if let Ok(mut stream) = request.stream() {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| BffError::InvalidRequest(format!("reading body: {e}")))?;
                if body.len() + chunk.len() > max_body {
                    return Err(BffError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
    *head.body_mut() = body;
    Ok(head)
}

/// Turn a core response into a runtime response, with the headers every response
/// carries under `config` (`Strict-Transport-Security`).
pub fn answer(config: &crate::config::Config, mut response: HttpResponse) -> Result<web_sys::Response> {
    crate::web::security_headers::add_to(config, &mut response);
    to_web(response)
}

/// Turn a core response into a runtime response as it is (configuration errors: the
/// configuration that would add headers is invalid).
pub fn to_web(response: HttpResponse) -> Result<web_sys::Response> {
    let (parts, body) = response.into_parts();
    let block = js::header_lines(parts.headers.iter().map(|(n, v)| (n.as_str(), v)));
    js::new_response(parts.status.as_u16(), &block, &body).map_err(worker::Error::from)
}

/// The method, URI (already parsed by the caller) and headers of a runtime request, with
/// an empty body (the proxy streams the body separately). The headers cross from the
/// runtime in one call.
pub fn head_of(request: &web_sys::Request, uri: &http::Uri) -> Result<HttpRequest> {
    let bytes = js::header_block(&request.headers());
    let block = std::str::from_utf8(&bytes).map_err(|_| invalid_head("header text"))?;
    let headers = js::header_map(block).map_err(invalid_head)?;
    assemble_head(request, uri, headers)
}

/// [`head_of`] with only the headers named in `names` (lower case), each read with one
/// runtime call: cheaper than reading every header when the core needs a few.
pub fn head_with(request: &web_sys::Request, uri: &http::Uri, names: &[&str]) -> Result<HttpRequest> {
    let runtime_headers = request.headers();
    let mut headers = http::HeaderMap::with_capacity(names.len());
    for name in names {
        if let Some(value) = runtime_headers.get(name).map_err(|_| invalid_head("header"))? {
            let value = http::HeaderValue::from_str(&value).map_err(|_| invalid_head("header value"))?;
            let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid_head("header name"))?;
            headers.insert(name, value);
        }
    }
    assemble_head(request, uri, headers)
}

/// The core's request head: `request`'s method, `uri` and `headers`, an empty body.
fn assemble_head(request: &web_sys::Request, uri: &http::Uri, headers: http::HeaderMap) -> Result<HttpRequest> {
    let method = http::Method::from_bytes(request.method().as_bytes()).map_err(|_| invalid_head("method"))?;
    let mut head = http::Request::new(Vec::new());
    *head.method_mut() = method;
    *head.uri_mut() = uri.clone();
    *head.headers_mut() = headers;
    Ok(head)
}

/// The glue error for a request head that cannot be read (`what` was invalid).
fn invalid_head(what: &str) -> worker::Error {
    worker::Error::RustError(format!("request head: invalid {what}"))
}
