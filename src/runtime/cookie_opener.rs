//! The Rust side of opening unseen session cookies in the glue (src/runtime/cookie_opener.js,
//! docs/performance.md "Unseen cookies"): what the glue needs, handed over once per
//! instance, and the plaintext it opened, taken back into the isolate's memory.

use super::{isolate, ISOLATE};
use crate::config::SessionStoreKind;
use crate::crypto::Purpose;
use crate::session::cookie_store;
use crate::session::opened_cache::MAX_SEALED;
use wasm_bindgen::prelude::*;
use worker::{js_sys, Env};
use zeroize::Zeroize;

/// What the glue's opener needs, as `[name, maxSealed, kids, keys]`: the session cookie's
/// name (the associated data), the longest sealed text the isolate remembers, the ring's
/// kids and their derived cookie keys (32 bytes each, in kid order, zeroed here once
/// copied). `null` when the glue has nothing to open: an invalid configuration, or
/// sessions kept in KV (the cookie then holds no session).
#[wasm_bindgen]
pub fn cookie_opener(env: Env) -> JsValue {
    // The isolate may be set up here, before the first `fetch`: its start-up lines need
    // the logger.
    super::logger::init();
    let isolate = isolate(&env);
    let Ok(config) = isolate.config.as_ref() else { return JsValue::NULL };
    if config.session_store != SessionStoreKind::Cookie {
        return JsValue::NULL;
    }
    let kids = js_sys::Array::new();
    let mut keys = Vec::new();
    for key in config.cookie_keys.keys() {
        kids.push(&JsValue::from_str(key.kid()));
        keys.extend_from_slice(key.key(Purpose::Cookie));
    }
    let bytes = js_sys::Uint8Array::from(keys.as_slice());
    keys.zeroize();
    let handed = js_sys::Array::new();
    handed.push(&JsValue::from_str(&config.session_cookie_name()));
    handed.push(&JsValue::from_f64(MAX_SEALED as f64));
    handed.push(&kids);
    handed.push(&bytes);
    handed.into()
}

/// Take the session the glue opened from `sealed` into the isolate's memory of opened
/// cookies ([`cookie_store::remember_opened`]). Returns whether it was remembered.
#[wasm_bindgen]
pub fn remember_opened(sealed: &str, plaintext: &[u8]) -> bool {
    ISOLATE.with(|cell| {
        cell.borrow().as_ref().is_some_and(|isolate| {
            isolate.config.is_ok() && cookie_store::remember_opened(&isolate.shared.opened, sealed, plaintext)
        })
    })
}
