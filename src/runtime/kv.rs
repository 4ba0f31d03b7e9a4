//! [`KvBackend`] on the Workers KV binding `SESSIONS`, through `glue.js` (`kvGet`, `kvPut`,
//! `kvDelete`, `kvList`).

use super::js;
use crate::session::kv::{KvBackend, KvError};
use crate::web::client::LocalFuture;
use wasm_bindgen::JsValue;
use worker::js_sys;
use worker::wasm_bindgen_futures::JsFuture;

/// The `SESSIONS` namespace (the binding's JS object).
pub struct WorkerKv(pub JsValue);

/// The outcome of one KV call, its rejection as a [`KvError`].
async fn call(promise: js_sys::Promise) -> Result<JsValue, KvError> {
    JsFuture::from(promise).await.map_err(|e| KvError(js::error_text(&e)))
}

impl KvBackend for WorkerKv {
    fn get<'a>(&'a self, key: &'a str, cache_ttl: Option<u64>) -> LocalFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        Box::pin(async move {
            // KV's smallest cache TTL is 60 seconds.
            let ttl = cache_ttl.map_or(0.0, |ttl| ttl.max(60) as f64);
            let value = call(js::kv_get(&self.0, key, ttl)).await?;
            Ok((!value.is_null()).then(|| js_sys::Uint8Array::new(&value).to_vec()))
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: u64) -> LocalFuture<'a, Result<(), KvError>> {
        // KV's smallest expiration TTL is 60 seconds.
        Box::pin(async move { call(js::kv_put(&self.0, key, &value, ttl.max(60) as f64)).await.map(drop) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> LocalFuture<'a, Result<(), KvError>> {
        Box::pin(async move { call(js::kv_delete(&self.0, key)).await.map(drop) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> LocalFuture<'a, Result<Vec<String>, KvError>> {
        Box::pin(async move {
            let names = js_sys::Array::from(&call(js::kv_list(&self.0, prefix)).await?);
            Ok(names.iter().filter_map(|name| name.as_string()).collect())
        })
    }
}
