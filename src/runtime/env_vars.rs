//! Settings from the Worker's `env`: text vars and secrets as they are; TOML numbers and
//! booleans from `[vars]` as their text; arrays and tables as JSON text.

use crate::config::VarSource;
use worker::wasm_bindgen::JsValue;
use worker::{js_sys, Env};

/// The Worker's environment as a [`VarSource`].
pub struct EnvVars<'a>(pub &'a Env);

impl VarSource for EnvVars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        let env: &JsValue = self.0.as_ref();
        let value = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
        if value.is_undefined() || value.is_null() {
            return None;
        }
        if let Some(text) = value.as_string() {
            return Some(text);
        }
        if let Some(number) = value.as_f64() {
            return Some(if number.fract() == 0.0 && number.abs() < 1e15 {
                format!("{}", number as i64)
            } else {
                number.to_string()
            });
        }
        if let Some(flag) = value.as_bool() {
            return Some(flag.to_string());
        }
        js_sys::JSON::stringify(&value).ok()?.as_string()
    }
}
