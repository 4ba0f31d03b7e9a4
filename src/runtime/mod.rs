//! The Worker glue: the `fetch` export, per-isolate state, and conversions between the
//! runtime's types and the core's `http` types. No decisions are made here. The top
//! layer: it may use every other module, and none uses it.

mod assets;
mod convert;
mod coordinator;
mod env_vars;
mod fetch_client;
mod js;
mod kv;
mod logger;
mod proxy;
mod send;
mod signer;
#[cfg(feature = "test-hooks")]
mod test_hooks;

use crate::agent;
use crate::config::{Config, ConfigError, SessionStoreKind};
use crate::error::BffError;
use crate::lifecycle::{RequestContext, SharedState};
use crate::router::{self, Route};
use crate::session::cookie_store::CookieStore;
use crate::session::kv::KvBackend;
use crate::session::kv_store::KvStore;
use crate::session::store::SessionStore;
use crate::web::response::HttpRequest;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::{js_sys, web_sys, Env, Result};

/// Time limit of every call to the identity provider, in milliseconds.
pub const IDP_TIMEOUT_MS: u32 = 5_000;

/// State that lives as long as the isolate: configuration parsed once, provider caches.
struct Isolate {
    config: std::result::Result<Config, ConfigError>,
    /// The pairwise test of the configured private keys ([`Config::check_key_pairs`]):
    /// run by the first request through the full path, before any key is used.
    keys: RefCell<KeyCheck>,
    shared: SharedState,
    /// Whether the `SESSIONS` KV binding exists (looking up a missing binding per
    /// request costs an error value each time).
    has_kv: bool,
    /// Whether the `COORDINATOR` Durable Object binding exists.
    has_coordinator: bool,
    /// Whether requests are observed: an access line (`LOG_LEVEL` info or debug) or a
    /// metrics data point (a `METRICS` binding) per request.
    observing: bool,
}

/// Where the pairwise test of the configured private keys stands in this isolate.
#[derive(Clone)]
enum KeyCheck {
    /// Not run yet: requests take the full path, which runs it.
    Pending,
    /// Passed, or there are no private keys.
    Passed,
    /// Failed: the configuration is refused as if it had not parsed.
    Failed(ConfigError),
}

impl Isolate {
    /// Whether the configuration can be used without waiting: it parsed, and its private
    /// keys (if any) passed their pairwise test.
    fn ready(&self) -> bool {
        self.config.is_ok() && matches!(*self.keys.borrow(), KeyCheck::Passed)
    }

    /// The configuration, once it parsed and its private keys passed their pairwise test
    /// (WebCrypto signs a fixed input with each and verifies it with the public members;
    /// run here the first time, and again only if two requests raced to it).
    async fn checked_config(&self) -> std::result::Result<&Config, ConfigError> {
        let config = self.config.as_ref().map_err(Clone::clone)?;
        let state = self.keys.borrow().clone();
        match state {
            KeyCheck::Passed => Ok(config),
            KeyCheck::Failed(e) => Err(e),
            KeyCheck::Pending => {
                let result = config.check_key_pairs(&signer::WebCryptoSigner, &signer::WebCryptoVerifier).await;
                let mut keys = self.keys.borrow_mut();
                if matches!(*keys, KeyCheck::Pending) {
                    match &result {
                        Ok(()) => log::info!("configured private keys passed their pairwise test"),
                        Err(e) => log::error!("configuration error: {e}"),
                    }
                }
                *keys = match &result {
                    Ok(()) => KeyCheck::Passed,
                    Err(e) => KeyCheck::Failed(e.clone()),
                };
                result.map(|()| config)
            }
        }
    }
}

/// What the full path noted of a request, for its access line and data point.
#[derive(Default)]
struct Noted {
    /// `agent`, `proxy` or `assets`; `unknown` when the request could not be routed (an
    /// invalid configuration or URL).
    kind: std::cell::Cell<&'static str>,
    /// The outcome, if one applies.
    outcome: std::cell::Cell<Option<crate::lifecycle::outcome::Outcome>>,
}

thread_local! {
    static ISOLATE: RefCell<Option<Rc<Isolate>>> = const { RefCell::new(None) };
}

fn isolate(env: &Env) -> Rc<Isolate> {
    ISOLATE.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let config = Config::from_vars(&env_vars::EnvVars(env));
                match &config {
                    Ok(c) => {
                        log::set_max_level(c.log_level.filter());
                        log::info!("configuration loaded: issuer {}, {} API routes", c.issuer, c.api_routes.len());
                        for warning in c.warnings() {
                            log::warn!("configuration: {warning}");
                        }
                        js::set_hsts(c.hsts.as_deref().unwrap_or(""));
                    }
                    Err(e) => log::error!("configuration error: {e}"),
                }
                let has_kv = !js::kv_binding(env, "SESSIONS").is_null();
                let has_coordinator = !js::object_binding(env, "COORDINATOR").is_null();
                let access_lines = config.as_ref().is_ok_and(|c| c.log_level.filter() >= log::LevelFilter::Info);
                let has_metrics = js_sys::Reflect::get(env, &JsValue::from_str("METRICS"))
                    .is_ok_and(|binding| !binding.is_undefined());
                js::set_access_lines(access_lines);
                if has_metrics {
                    log::info!("METRICS bound: one data point per request");
                }
                if has_coordinator {
                    log::info!("COORDINATOR bound: refreshes go through each login's coordinator");
                }
                // The direct path's way back into Rust; it lives as long as the instance.
                let resume: Closure<dyn Fn(web_sys::Request, JsValue, Env) -> js_sys::Promise> = Closure::new(resume);
                js::set_resume(&resume);
                resume.forget();
                let observing = access_lines || has_metrics;
                let pending = config.as_ref().is_ok_and(Config::has_private_keys);
                let keys = RefCell::new(if pending { KeyCheck::Pending } else { KeyCheck::Passed });
                Rc::new(Isolate { config, keys, shared: SharedState::default(), has_kv, has_coordinator, observing })
            })
            .clone()
    })
}

/// Current Unix time in seconds.
fn now() -> u64 {
    now_ms() / 1000
}

/// Current Unix time in milliseconds (in test-hooks builds, moved by the test clock).
fn now_ms() -> u64 {
    let real = js_sys::Date::now() as u64;
    #[cfg(feature = "test-hooks")]
    let real = real.saturating_add(test_hooks::clock_offset_ms());
    real
}

/// The Worker's `fetch` handler (src/runtime/entry.mjs calls it with the request,
/// `env` and the execution context). It takes the runtime's request as it is: wrapping
/// it in `worker::Request` would read and parse the request's `cf` object, which
/// edge-bff never uses, on every request.
///
/// A proxied call that needs no I/O before the upstream call is sent at once and its
/// answer streamed back without entering async Rust ([`crate::proxy::direct`]);
/// everything else runs in [`handle`], guarded so that a panic inside it still answers.
#[wasm_bindgen]
pub fn fetch(request: web_sys::Request, env: Env, _ctx: worker::worker_sys::Context) -> js_sys::Promise {
    logger::init();
    let isolate = isolate(&env);
    if !isolate.observing {
        return match proxy::try_direct(&isolate, &request, &env) {
            proxy::Direct::Sent(answer) | proxy::Direct::Answered(answer) => answer,
            proxy::Direct::FullPath(head) => full_path(isolate, request, env, head, None),
        };
    }
    // A second handle on the same JS objects (not `Request.clone()`, which tees the body).
    let observed = Clone::clone(&request);
    let env_ref = env.clone();
    let (answer, direct) = match proxy::try_direct(&isolate, &request, &env) {
        proxy::Direct::Sent(answer) => (answer, true),
        proxy::Direct::Answered(answer) => {
            js::note_request(&observed, "agent", "");
            (answer, true)
        }
        proxy::Direct::FullPath(head) => (full_path(isolate, request, env, head, None), false),
    };
    js::observed(&answer, &observed, &env_ref, direct)
}

/// The same request again after its direct call ended in `outcome` (the upstream's
/// `Response` when it was a 401 to a call with a token, or the `Error` of a failed or
/// timed-out call): the full path takes over from that outcome (refresh and retry, or
/// the error answer). `glue.js` calls it through the closure registered per instance.
fn resume(request: web_sys::Request, outcome: JsValue, env: Env) -> js_sys::Promise {
    let isolate = isolate(&env);
    full_path(isolate, request, env, None, Some(proxy::Outcome::from_js(outcome)))
}

/// [`handle`] as a promise, guarded so that a panic inside it still answers. `head` is
/// the request's head when the direct path already read it.
fn full_path(
    isolate: Rc<Isolate>,
    request: web_sys::Request,
    env: Env,
    head: Option<HttpRequest>,
    resumed: Option<proxy::Outcome>,
) -> js_sys::Promise {
    js::guarded(&future_to_promise(async move {
        let noted = Noted::default();
        let observed = isolate.observing.then(|| Clone::clone(&request));
        let answer = handle(&isolate, request, &env, head, resumed, &noted).await;
        if let Some(request) = observed {
            // A glue failure is answered as `server_error` by `answer_of` below.
            let outcome = match &answer {
                Ok(_) => noted.outcome.get().map_or("", crate::lifecycle::outcome::Outcome::as_str),
                Err(_) => "server_error",
            };
            js::note_request(&request, noted.kind.get(), outcome);
        }
        answer_of(isolate.config.as_ref().ok(), answer)
    }))
}

/// The JS value of a handler's answer: its response, or a 500 JSON `server_error`.
fn answer_of(config: Option<&Config>, answer: Result<web_sys::Response>) -> std::result::Result<JsValue, JsValue> {
    match answer {
        Ok(response) => Ok(response.into()),
        Err(e) => {
            log::error!("request failed in the Worker glue: {e}");
            let response = BffError::Server("Worker glue".into()).to_response();
            match config {
                Some(config) => convert::answer(config, response),
                None => convert::to_web(response),
            }
            .map(JsValue::from)
            .map_err(JsValue::from)
        }
    }
}

/// Every request that does not take the direct path. `head` is the proxied request's
/// head when the direct path already read it; `resumed` is the outcome of an earlier
/// direct call of the same request (see [`resume`]).
async fn handle(
    isolate: &Isolate,
    request: web_sys::Request,
    env: &Env,
    head: Option<HttpRequest>,
    resumed: Option<proxy::Outcome>,
    noted: &Noted,
) -> Result<web_sys::Response> {
    use crate::lifecycle::outcome::Outcome;
    noted.kind.set("unknown");
    let config = match isolate.checked_config().await {
        Ok(config) => config,
        Err(e) => {
            let refused = BffError::Configuration(e.to_string());
            noted.outcome.set(Some(Outcome::of_error(&refused)));
            let path = request.url().parse::<http::Uri>().map(|u| u.path().to_string()).unwrap_or_default();
            let auth_path = env.var("AUTH_PATH").ok().map(|v| v.to_string());
            if agent::health::is_health_path(auth_path.as_deref(), &path) {
                noted.kind.set("agent");
                return convert::to_web(agent::health::configuration_unavailable());
            }
            log::error!("request refused, configuration error: {e}");
            return convert::to_web(refused.to_response());
        }
    };
    // The runtime hands over a WHATWG-serialised URL; `http::Uri` reads it without a
    // second normalisation.
    let Ok(uri) = request.url().parse::<http::Uri>() else {
        let refused = BffError::InvalidRequest("request URL".into());
        noted.outcome.set(Some(Outcome::of_error(&refused)));
        return convert::answer(config, refused.to_response());
    };
    #[cfg(feature = "test-hooks")]
    if uri.path() == "/__edge-bff-test/panic" {
        panic!("test hook: deliberate panic");
    }
    #[cfg(feature = "test-hooks")]
    if let Some(response) = test_hooks::answer(&uri) {
        return convert::answer(config, response);
    }
    #[cfg(feature = "test-hooks")]
    if uri.path() == "/__edge-bff-test/memory" {
        // For leak tests: the Wasm instance's linear memory in bytes (it never shrinks) and
        // the JS values Rust holds (a value never released keeps a request alive).
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
        let bytes = js_sys::ArrayBuffer::from(memory.buffer()).byte_length();
        let held = wasm_bindgen::externref_heap_live_count();
        let body = serde_json::json!({ "wasm_memory_bytes": bytes, "js_values_held": held });
        return convert::answer(config, crate::web::response::json_response(http::StatusCode::OK, &body));
    }
    let http = fetch_client::WorkerFetch { timeout_ms: IDP_TIMEOUT_MS };
    let kv = isolate.has_kv.then(|| kv::WorkerKv(js::kv_binding(env, "SESSIONS")));
    let kv_backend = kv.as_ref().map(|k| k as &dyn KvBackend);
    let cookie_store = CookieStore { config, deny_list: kv_backend, cache: Some(&isolate.shared.opened) };
    let kv_store = kv_backend.map(|kv| KvStore { config, kv });
    let store: &dyn SessionStore = match (config.session_store, &kv_store) {
        (SessionStoreKind::Kv, Some(kv_store)) => kv_store,
        (SessionStoreKind::Kv, None) => {
            log::error!("configuration error: SESSION_STORE=kv needs the SESSIONS KV binding");
            let route = router::route(config, uri.path());
            let refused = BffError::Configuration("SESSIONS binding missing".into());
            noted.kind.set(route.kind());
            noted.outcome.set(Some(Outcome::of_error(&refused)));
            if route == Route::Agent("/health") {
                return convert::answer(config, agent::health::configuration_unavailable());
            }
            return convert::answer(config, refused.to_response());
        }
        (SessionStoreKind::Cookie, _) => &cookie_store,
    };
    let coordinator =
        isolate.has_coordinator.then(|| coordinator::WorkerCoordinator(js::object_binding(env, "COORDINATOR")));
    let ctx = RequestContext {
        config,
        shared: &isolate.shared,
        http: &http,
        signer: &signer::WebCryptoSigner,
        verifier: &signer::WebCryptoVerifier,
        store,
        kv: kv_backend,
        coordinator: coordinator.as_ref().map(|c| c as &dyn crate::lifecycle::coordinator::Coordinator),
        now: now(),
        outcome: Default::default(),
    };
    let route = router::route(config, uri.path());
    noted.kind.set(route.kind());
    let answer = match route {
        Route::Agent(sub_path) => match convert::read_request(request, &uri, agent::MAX_BODY).await {
            Ok(core_request) => convert::answer(config, agent::handle(&ctx, &core_request, sub_path).await),
            Err(e) => convert::answer(config, crate::lifecycle::error_response(&ctx, &[], &e)),
        },
        Route::Proxy(index, rest) => {
            let head = match head {
                Some(head) => head,
                None => convert::head_of(&request, &uri)?,
            };
            proxy::forward(&ctx, index, rest, request, head, resumed).await
        }
        Route::Asset => assets::serve(config, env, request).await,
    };
    noted.outcome.set(ctx.outcome.get());
    answer
}
