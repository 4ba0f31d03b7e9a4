//! edge-bff: a Backend-for-Frontend (OAuth token handler) for single-page apps, running
//! as a Cloudflare Worker on the app's own origin.
//!
//! The core names no Worker type and is tested natively; `runtime` is the thin glue to
//! `worker`. The modules form layers, each using only itself and those below it (the
//! order is held and checked by `tests/layering.rs`; docs/design.md draws it), from the
//! top down:
//!
//! - `runtime`: the Worker glue (fetch export, isolate state, the coordinator object);
//! - `agent`: the OAuth agent's endpoints under `AUTH_PATH`;
//! - `proxy`: the API proxy's decisions;
//! - `lifecycle`: a request's session from opening to write-back, refresh, coordinator;
//! - `oidc`: the OpenID Connect relying-party rules;
//! - `session`: the session model and its two stores;
//! - `router`: which part answers a path;
//! - `web::{cors, csrf, security_headers}`: HTTP rules that read the settings;
//! - `config`: the settings, validated once;
//! - `coalesce`: per-isolate coalescing of concurrent work;
//! - `crypto`: keys, sealing, signing, the JOSE vocabulary;
//! - `error`: the one error enum;
//! - `web` (the rest): HTTP building blocks that know no settings.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod coalesce;
pub mod config;
pub mod crypto;
pub mod error;
pub mod lifecycle;
pub mod oidc;
pub mod proxy;
pub mod router;
pub mod session;
pub mod web;

mod runtime;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
pub(crate) mod testutil;
