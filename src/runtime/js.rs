//! The JavaScript helpers of `glue.js`: one call each where doing the same from Rust
//! would cross the JS/Wasm boundary once or more per header.

use wasm_bindgen::prelude::*;
use worker::{js_sys, web_sys};

#[wasm_bindgen(module = "/src/runtime/glue.js")]
extern "C" {
    /// Every header as `name:value` lines, UTF-8.
    #[wasm_bindgen(js_name = headerBlock)]
    pub fn header_block(headers: &web_sys::Headers) -> Vec<u8>;

    /// Send a request with the headers of `header_lines` and `body` (a stream, bytes or
    /// null; see `glue.js`); the promise resolves to a `Response` or rejects with an
    /// `Error` (`UpstreamTimeout` when the headers came too late). Use
    /// [`super::send::send_bounded`].
    #[wasm_bindgen(js_name = sendBounded)]
    pub fn send_bounded(
        url: &str,
        method: &str,
        header_lines: &str,
        body: &JsValue,
        timeout_ms: u32,
    ) -> js_sys::Promise;

    /// The body of `response`, at most `max_bytes` and within `timeout_ms`, read as it
    /// streams in (the read stops at the limit); the promise resolves to a `Uint8Array`
    /// or rejects with `BodyTooLarge`, `UpstreamTimeout` or the stream's error.
    #[wasm_bindgen(js_name = readBounded)]
    pub fn read_bounded(response: &web_sys::Response, max_bytes: u32, timeout_ms: u32) -> js_sys::Promise;

    /// A 200 JSON response returned at once, whose body is the bytes `answer` resolves to
    /// (the coordinator's acknowledgement, then its answer).
    #[wasm_bindgen(js_name = acknowledgedResponse)]
    pub fn acknowledged_response(answer: &js_sys::Promise) -> web_sys::Response;

    /// The upstream's response without the headers named in `dropped` (one name per
    /// line), with header lines appended.
    #[wasm_bindgen(js_name = responseFrom, catch)]
    pub fn response_from(
        upstream: &web_sys::Response,
        dropped: &str,
        append: &str,
    ) -> Result<web_sys::Response, JsValue>;

    /// Send a direct call (see `glue.js`): the upstream's answer with the headers named in
    /// `dropped` removed and the lines of `append` added, or, when the call ends otherwise (a 401
    /// while `carries_token`, a failure, a timeout), what the resume closure answers. A
    /// non-empty `dpop_proof_input` is signed with the private JWK `dpop_jwk` (`dpop_alg`)
    /// and sent as the `DPoP` header.
    #[wasm_bindgen(js_name = proxyDirect)]
    pub fn proxy_direct(
        request: &web_sys::Request,
        env: &worker::Env,
        url: &str,
        method: &str,
        header_lines: &str,
        timeout_ms: u32,
        dropped: &str,
        append: &str,
        carries_token: bool,
        dpop_proof_input: &str,
        dpop_jwk: &str,
        dpop_alg: &str,
    ) -> js_sys::Promise;

    /// Turn the access line on or off (once per Wasm instance).
    #[wasm_bindgen(js_name = setAccessLines)]
    pub fn set_access_lines(on: bool);

    /// Note a request's kind and outcome (`""` for none) for its access line and data
    /// point.
    #[wasm_bindgen(js_name = noteRequest)]
    pub fn note_request(request: &web_sys::Request, kind: &str, outcome: &str);

    /// `answer`, with the request's access line and metrics data point recorded when it
    /// settles (`direct`: sent as a direct call).
    pub fn observed(
        answer: &js_sys::Promise,
        request: &web_sys::Request,
        env: &worker::Env,
        direct: bool,
    ) -> js_sys::Promise;

    /// Register the function that continues a direct call in the full path (once per
    /// Wasm instance).
    #[wasm_bindgen(js_name = setResume)]
    pub fn set_resume(resume: &Closure<dyn Fn(web_sys::Request, JsValue, worker::Env) -> js_sys::Promise>);

    /// `answer`, or a 500 JSON `server_error` if the Wasm instance traps before it
    /// settles (a panic inside async Rust would otherwise leave it pending forever).
    #[wasm_bindgen(js_name = guarded)]
    pub fn guarded(answer: &js_sys::Promise) -> js_sys::Promise;

    /// The `Strict-Transport-Security` value of the answers `glue.js` makes itself (a
    /// trapped instance's 500); empty for none.
    #[wasm_bindgen(js_name = setHsts)]
    pub fn set_hsts(value: &str);

    /// The JWS signature of `data` with the private JWK `jwk` for `alg`, by WebCrypto;
    /// resolves to a `Uint8Array`.
    #[wasm_bindgen(js_name = signJws)]
    pub fn sign_jws(jwk: &str, alg: &str, data: &[u8]) -> js_sys::Promise;

    /// Whether `signature` is the JWS signature of `data` under the public JWK `jwk` for
    /// `alg`, by WebCrypto; resolves to `true`, `false`, or `null` when WebCrypto refuses
    /// the key (a point off its curve).
    #[wasm_bindgen(js_name = verifyJws)]
    pub fn verify_jws(jwk: &str, alg: &str, data: &[u8], signature: &[u8]) -> js_sys::Promise;

    /// `env[name]` when it is a KV namespace, else `null`.
    #[wasm_bindgen(js_name = kvBinding)]
    pub fn kv_binding(env: &worker::Env, name: &str) -> JsValue;

    /// `env[name]` when it is a Durable Object namespace, else `null`.
    #[wasm_bindgen(js_name = objectBinding)]
    pub fn object_binding(env: &worker::Env, name: &str) -> JsValue;

    /// KV `get` as bytes; resolves to a `Uint8Array` or `null` (`cache_ttl` 0: KV's default).
    #[wasm_bindgen(js_name = kvGet)]
    pub fn kv_get(ns: &JsValue, key: &str, cache_ttl: f64) -> js_sys::Promise;

    /// KV `put` of bytes with an expiration TTL in seconds.
    #[wasm_bindgen(js_name = kvPut)]
    pub fn kv_put(ns: &JsValue, key: &str, value: &[u8], ttl: f64) -> js_sys::Promise;

    /// KV `delete`.
    #[wasm_bindgen(js_name = kvDelete)]
    pub fn kv_delete(ns: &JsValue, key: &str) -> js_sys::Promise;

    /// KV `list` of up to 1000 key names under `prefix`; resolves to an array of strings.
    #[wasm_bindgen(js_name = kvList)]
    pub fn kv_list(ns: &JsValue, prefix: &str) -> js_sys::Promise;

    /// POST `body` to the coordinator object named `login`; resolves to its `Response`.
    #[wasm_bindgen(js_name = askObject)]
    pub fn ask_object(ns: &JsValue, login: &str, body: &str) -> js_sys::Promise;

    /// A Durable Object's stored text under `key`; resolves to a string or `null`.
    #[wasm_bindgen(js_name = storageGet)]
    pub fn storage_get(storage: &JsValue, key: &str) -> js_sys::Promise;

    /// Store text under `key` and set the object's alarm (milliseconds since the epoch).
    #[wasm_bindgen(js_name = storagePut)]
    pub fn storage_put(storage: &JsValue, key: &str, value: &str, alarm_at_ms: f64) -> js_sys::Promise;

    /// Delete everything a Durable Object stored.
    #[wasm_bindgen(js_name = storageClear)]
    pub fn storage_clear(storage: &JsValue) -> js_sys::Promise;

    /// A new response from status, header lines and body bytes.
    #[wasm_bindgen(js_name = newResponse, catch)]
    pub fn new_response(status: u16, block: &str, body: &[u8]) -> Result<web_sys::Response, JsValue>;
}

/// The message of a rejected promise's value (a JS `Error`'s `message`), for logs.
pub fn error_text(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "the runtime refused the call".into())
}

/// The headers of header lines (`name:value\n`, as `headerBlock` writes them); the error
/// names what was invalid.
pub fn header_map(block: &str) -> Result<http::HeaderMap, &'static str> {
    let mut headers = http::HeaderMap::with_capacity(16);
    for line in block.lines() {
        if let Some((name, value)) = line.split_once(':') {
            let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| "header name")?;
            let value = http::HeaderValue::from_str(value).map_err(|_| "header value")?;
            headers.append(name, value);
        }
    }
    Ok(headers)
}

/// Header lines (`name:value\n`) from pairs. A `HeaderValue` never holds CR or LF, so a
/// value cannot start another line; values that are not UTF-8 are skipped.
pub fn header_lines<'a>(headers: impl IntoIterator<Item = (&'a str, &'a http::HeaderValue)>) -> String {
    let mut block = String::new();
    for (name, value) in headers {
        if let Some(value) = crate::web::header_text(value) {
            block.push_str(name);
            block.push(':');
            block.push_str(value);
            block.push('\n');
        }
    }
    block
}
