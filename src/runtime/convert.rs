//! Conversions between `worker` requests/responses and the core's `http` types.

use crate::error::BffError;
use crate::web::response::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use worker::{Headers, Request, Response, Result};

/// Read a Worker request into an `http::Request`, refusing bodies over `max_body` bytes
/// (counted while streaming, so a missing `Content-Length` cannot get around it).
pub async fn read_request(
    mut request: Request,
    url: &url::Url,
    max_body: usize,
) -> std::result::Result<HttpRequest, BffError> {
    let declared = request.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(BffError::PayloadTooLarge);
    }
    let mut head = head_of(&request, url).map_err(|e| BffError::InvalidRequest(e.to_string()))?;
    let mut body = Vec::new();
    if !matches!(request.method(), worker::Method::Get | worker::Method::Head) {
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

/// Turn a core response into a Worker response.
pub fn to_worker(response: HttpResponse) -> Result<Response> {
    let (parts, body) = response.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    Ok(Response::from_bytes(body)?.with_status(parts.status.as_u16()).with_headers(headers))
}

/// The method, URL (already parsed by the caller) and headers of a Worker request, with
/// an empty body (the proxy streams the body separately).
pub fn head_of(request: &Request, url: &url::Url) -> Result<HttpRequest> {
    let mut builder = http::Request::builder().method(request.method().to_string().as_str()).uri(url.as_str());
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    builder.body(Vec::new()).map_err(|e| worker::Error::RustError(format!("request head: {e}")))
}
