//! Helpers shared by the native unit tests.

use crate::config::Config;
use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// A 32-byte test key, base64url.
pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// Run a future whose I/O is all in memory to completion.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("future did not complete: test I/O must be in memory");
}

/// A valid configuration with `overrides` applied (empty value = unset).
pub fn config_with(overrides: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = [
        ("OIDC_ISSUER", "https://idp.example.com"),
        ("CLIENT_ID", "spa"),
        ("CLIENT_SECRET", "client-secret-value"),
        ("PUBLIC_ORIGIN", "https://app.example.com"),
        ("COOKIE_KEYS", &format!("k1:{KEY}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        if v.is_empty() {
            vars.remove(*k);
        } else {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    Config::from_vars(&vars).expect("test configuration is valid")
}
