//! Settings from the Worker's `env`: text vars and secrets as they are, TOML numbers,
//! booleans and arrays from `[vars]` as their JSON text.

use crate::config::VarSource;
use worker::Env;

/// The Worker's environment as a [`VarSource`].
pub struct EnvVars<'a>(pub &'a Env);

impl VarSource for EnvVars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if let Ok(text) = self.0.var(name) {
            return Some(text.to_string());
        }
        match self.0.object_var::<serde_json::Value>(name).ok()? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }
}
