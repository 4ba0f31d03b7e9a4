//! edge-bff: a Backend-for-Frontend (OAuth token handler) for single-page apps, running
//! as a Cloudflare Worker on the app's own origin.
//!
//! The core (`config`, `crypto`, `oidc`, `session`, `lifecycle`, `web`, `agent`, `proxy`,
//! `router`) names no
//! Worker type and is tested natively; `runtime` is the thin glue to `worker`.
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
