//! The coordinator's Worker glue (docs/api.md section 8): the Durable Object class
//! `EdgeBffCoordinator` around the core's [`Object`], and the isolates' client of the
//! `COORDINATOR` namespace. No decisions here: `lifecycle::coordinator` makes them.

use super::fetch_client::WorkerFetch;
use super::js;
use super::{isolate, now, IDP_TIMEOUT_MS};
use crate::lifecycle::coordinator::{
    Coordinator, CoordinatorError, CoordinatorRequest, Object, ObjectEnv, ObjectStorage, PendingAnswer,
};
use crate::lifecycle::token_call::TokenCall;
use crate::web::client::LocalFuture;
use std::rc::Rc;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::{durable_object, js_sys, web_sys, DurableObject, Env, Request, Response, State};

/// The storage key of a login's sealed state.
const STATE_KEY: &str = "state";

/// One login's coordinator (a SQLite-backed Durable Object, named by the login's id).
#[durable_object(alarm)]
pub struct EdgeBffCoordinator {
    /// The object's storage (`state.storage`, called through `glue.js`).
    storage: JsValue,
    env: Env,
    object: Rc<Object>,
}

impl DurableObject for EdgeBffCoordinator {
    fn new(state: State, env: Env) -> Self {
        let state: JsValue = state._inner().into();
        let storage = js_sys::Reflect::get(&state, &JsValue::from_str("storage")).unwrap_or(JsValue::NULL);
        Self { storage, env, object: Rc::default() }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        super::logger::init();
        let isolate = isolate(&self.env);
        if isolate.checked_config().await.is_err() {
            return Response::error("configuration error", 500);
        }
        let login = req.path().rsplit('/').next().unwrap_or_default().to_string();
        let request: CoordinatorRequest = match serde_json::from_str(&req.text().await?) {
            Ok(r) if !login.is_empty() => r,
            _ => return Response::error("bad request", 400),
        };
        log::info!(
            "coordinator request: {}",
            if matches!(request, CoordinatorRequest::End { .. }) { "end" } else { "refresh" }
        );
        #[cfg(feature = "test-hooks")]
        if let Some(ms) = super::test_hooks::coordinator_delay_ms() {
            worker::Delay::from(std::time::Duration::from_millis(ms)).await;
        }
        // The response's head goes out now: it is the acknowledgement the asking isolate
        // waits for briefly. The answer follows as the body, once the object has made it
        // (a failure before any token call ends the body with an error, and the isolate
        // then acts alone). The work starts at once, whether or not the body is read.
        let object = Rc::clone(&self.object);
        let storage = DoStorage(self.storage.clone());
        let answer = async move {
            let Ok(config) = isolate.checked_config().await else {
                return Err(JsValue::from_str("configuration error"));
            };
            let http = WorkerFetch { timeout_ms: IDP_TIMEOUT_MS };
            let calls = TokenCall {
                config,
                provider: &isolate.shared.provider,
                nonces: Some(&isolate.shared.dpop_nonces),
                http: &http,
                signer: &super::signer::WebCryptoSigner,
                verifier: &super::signer::WebCryptoVerifier,
                now: now(),
            };
            let env = ObjectEnv { calls, storage: &storage };
            let answered = object.answer(&env, &login, request).await.map_err(|e| log::error!("{e}"));
            match answered.ok().and_then(|answer| serde_json::to_vec(&answer).ok()) {
                Some(bytes) => Ok(JsValue::from(js_sys::Uint8Array::from(bytes.as_slice()))),
                None => Err(JsValue::from_str("coordinator failed")),
            }
        };
        Ok(Response::from(super::js::acknowledged_response(&future_to_promise(answer))))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        // The session's end: nothing of the login is kept.
        self.object.forget();
        JsFuture::from(js::storage_clear(&self.storage))
            .await
            .map_err(|e| worker::Error::RustError(js::error_text(&e)))?;
        Response::ok("")
    }
}

/// The object's storage: one sealed value and an alarm at the session's end.
struct DoStorage(JsValue);

impl ObjectStorage for DoStorage {
    fn get(&self) -> LocalFuture<'_, Result<Option<String>, String>> {
        Box::pin(async move {
            let value = JsFuture::from(js::storage_get(&self.0, STATE_KEY)).await.map_err(|e| js::error_text(&e))?;
            Ok(value.as_string())
        })
    }

    fn put(&self, value: String, until: u64) -> LocalFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let alarm_at_ms = until as f64 * 1000.0;
            JsFuture::from(js::storage_put(&self.0, STATE_KEY, &value, alarm_at_ms))
                .await
                .map_err(|e| js::error_text(&e))?;
            Ok(())
        })
    }
}

/// The isolates' side: one request per ask to the object named by the login (the wait is
/// bounded by the core's callers).
pub struct WorkerCoordinator(pub JsValue);

impl Coordinator for WorkerCoordinator {
    fn ask<'a>(
        &'a self,
        login: &'a str,
        request: &'a CoordinatorRequest,
    ) -> LocalFuture<'a, Result<PendingAnswer<'a>, CoordinatorError>> {
        Box::pin(async move {
            let unreachable = |e: JsValue| CoordinatorError::Unreachable(js::error_text(&e));
            let body = serde_json::to_string(request).map_err(|_| CoordinatorError::Malformed)?;
            // Resolves with the response's head: the object's acknowledgement.
            let response: web_sys::Response =
                JsFuture::from(js::ask_object(&self.0, login, &body)).await.map_err(unreachable)?.unchecked_into();
            let status = response.status();
            if status != 200 {
                return Err(CoordinatorError::Unreachable(format!("status {status}")));
            }
            let answer: PendingAnswer<'a> = Box::pin(async move {
                let text = JsFuture::from(response.text().map_err(unreachable)?).await.map_err(unreachable)?;
                let text = text.as_string().ok_or(CoordinatorError::Malformed)?;
                serde_json::from_str(&text).map_err(|_| CoordinatorError::Malformed)
            });
            Ok(answer)
        })
    }
}
