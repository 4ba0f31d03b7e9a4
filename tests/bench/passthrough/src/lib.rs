//! The baseline of `scripts/bench.sh`: a Rust Worker built like edge-bff that forwards
//! every request to `UPSTREAM` + path and streams the answer back, nothing else.
use worker::{event, Context, Env, Fetch, Method, Request, RequestInit, Response, Result};

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> Result<Response> {
    let upstream = env.var("UPSTREAM")?.to_string();
    let url = request.url()?;
    let mut target = format!("{}{}", upstream.trim_end_matches('/'), url.path());
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut init = RequestInit::new();
    init.with_method(request.method()).with_headers(request.headers().clone());
    if !matches!(request.method(), Method::Get | Method::Head) {
        init.with_body(request.inner().body().map(Into::into));
    }
    Fetch::Request(Request::new_with_init(&target, &init)?).send().await
}
