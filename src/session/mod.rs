//! The session model and how it is carried in cookies or KV (docs/api.md section 7). It may
//! use `config`, `coalesce`, `crypto`, `error` and `web`. Inside it, `store` (the
//! interface) is used by `cookie_store` and `kv_store`, and `kv` (the KV trait) by
//! `deny_list`, `cookie_store` and `kv_store`; none of these uses a store above it.

pub mod cookie_store;
pub mod deny_list;
pub mod kv;
pub mod kv_store;
pub mod opened_cache;
pub mod store;

use crate::crypto::jose::{unverified_claims, Claims};
use serde::{Deserialize, Serialize};

/// Access token lifetime assumed when the provider gives neither `expires_in` nor a JWT `exp`.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: u64 = 300;

/// A logged-in user's tokens and times. Serialized compactly, then sealed.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Session {
    /// Access token.
    #[serde(rename = "at")]
    pub access_token: String,
    /// When the access token expires (Unix seconds).
    #[serde(rename = "ate")]
    pub access_expires_at: u64,
    /// Refresh token, if the provider issued one.
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The (verified) ID token: claims for `/session`, `id_token_hint` for logout.
    #[serde(rename = "it")]
    pub id_token: String,
    /// `sub` of the ID token.
    pub sub: String,
    /// `sid` of the ID token, for back-channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Login time.
    #[serde(rename = "ct")]
    pub created_at: u64,
    /// Absolute end: login + `SESSION_MAX_AGE`, never extended.
    #[serde(rename = "exp")]
    pub expires_at: u64,
    /// Last request that opened the session (idle timeout), recorded with a granularity
    /// of [`Session::activity_due`].
    #[serde(rename = "ls")]
    pub last_seen: u64,
    /// The login's id, fixed at login: names its coordinator object (docs/api.md section 8).
    /// Absent in sessions written before v2 (they refresh per isolate).
    #[serde(rename = "lid", default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// How many refreshes produced these tokens since login (0 at login). The coordinator
    /// compares it with its own to tell an earlier cookie of the login from a newer one.
    #[serde(rename = "g", default, skip_serializing_if = "is_zero")]
    pub generation: u64,
    /// The access token is DPoP-bound (`token_type` `DPoP`, RFC 9449): it goes upstream as
    /// `Authorization: DPoP` with a proof. Absent (false) for Bearer tokens.
    #[serde(rename = "dp", default, skip_serializing_if = "is_false")]
    pub dpop: bool,
    /// The routes' own tokens (docs/api.md section 4, "Route tokens"), one per distinct
    /// `token_request`. Absent in sessions written before v3.
    #[serde(rename = "rtk", default, skip_serializing_if = "Vec::is_empty")]
    pub route_tokens: Vec<RouteTokenEntry>,
}

/// One route token of a session: for the routes whose `token_request` has `key`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct RouteTokenEntry {
    /// [`crate::config::token_request::TokenRequest::key`] of the request it answers.
    #[serde(rename = "k")]
    pub key: String,
    /// The access token.
    #[serde(rename = "at")]
    pub access_token: String,
    /// When it expires (Unix seconds).
    #[serde(rename = "ate")]
    pub expires_at: u64,
    /// DPoP-bound (`token_type` `DPoP`).
    #[serde(rename = "dp", default, skip_serializing_if = "is_false")]
    pub dpop: bool,
}

impl std::fmt::Debug for RouteTokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTokenEntry")
            .field("key", &self.key)
            .field("expires_at", &self.expires_at)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Refresh the access token first when it expires within this many seconds (docs/api.md
/// section 4).
pub const REFRESH_MARGIN: u64 = 30;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sub", &self.sub)
            .field("sid", &self.sid)
            .field("access_expires_at", &self.access_expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .field("route_tokens", &self.route_tokens)
            .finish_non_exhaustive()
    }
}

/// Why a session that opened is no longer usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Past `SESSION_MAX_AGE`.
    MaxAge,
    /// Past `SESSION_IDLE_TIMEOUT`.
    Idle,
    /// No refresh token and the access token has expired.
    AccessExpiredNoRefresh,
}

impl Session {
    /// Whether the session may still be used at `now`.
    pub fn check_active(&self, now: u64, idle_timeout: u64) -> Result<(), Inactive> {
        if now >= self.expires_at {
            return Err(Inactive::MaxAge);
        }
        if idle_timeout > 0 && now.saturating_sub(self.last_seen) > idle_timeout {
            return Err(Inactive::Idle);
        }
        if self.refresh_token.is_none() && now >= self.access_expires_at {
            return Err(Inactive::AccessExpiredNoRefresh);
        }
        Ok(())
    }

    /// Whether the access token should be refreshed before it is used: it expires within
    /// [`REFRESH_MARGIN`] and there is a refresh token to do it with. Without one nothing
    /// can be refreshed, and the token is used until it expires (docs/api.md section 7).
    pub fn refresh_due(&self, now: u64) -> bool {
        self.refresh_token.is_some() && refresh_margin_reached(self.access_expires_at, now)
    }

    /// Whether this request's activity must be recorded (`last_seen` rewritten): the idle
    /// timeout is on and a quarter of it has passed since the last record (docs/api.md section
    /// 2). Any timeout from 60 s up is then honoured to within a quarter of itself, with at
    /// most one write per quarter per session.
    pub fn activity_due(&self, now: u64, idle_timeout: u64) -> bool {
        idle_timeout > 0 && now.saturating_sub(self.last_seen) >= activity_granularity(idle_timeout)
    }

    /// Whether the session's claims meet a route's `require` (none: always).
    pub fn meets(&self, require: Option<&crate::config::require::Requirements>) -> bool {
        require.is_none_or(|r| r.met_by(&self.user_claims()))
    }

    /// The route token for `key`, when the session holds one that is not due for a
    /// refresh at `now` (expires more than [`REFRESH_MARGIN`] later).
    pub fn route_token(&self, key: &str, now: u64) -> Option<&RouteTokenEntry> {
        self.route_tokens.iter().find(|t| t.key == key && !refresh_margin_reached(t.expires_at, now))
    }

    /// The `user` object of `/session`: the ID token's claims without `nonce`,
    /// `at_hash`, `c_hash`. The ID token was verified at login; here it is only decoded.
    pub fn user_claims(&self) -> Claims {
        let mut claims = unverified_claims(&self.id_token).unwrap_or_default();
        for private in ["nonce", "at_hash", "c_hash"] {
            claims.remove(private);
        }
        claims
    }
}

/// Whether an access token expiring at `access_expires_at` is within [`REFRESH_MARGIN`]
/// of its end at `now` (or past it).
pub fn refresh_margin_reached(access_expires_at: u64, now: u64) -> bool {
    now.saturating_add(REFRESH_MARGIN) >= access_expires_at
}

/// How often activity is recorded for an idle timeout: a quarter of it (at least 1 s).
pub fn activity_granularity(idle_timeout: u64) -> u64 {
    (idle_timeout / 4).max(1)
}

/// When an access token expires: `expires_in` if given, else the JWT's `exp`, else
/// [`DEFAULT_ACCESS_TOKEN_LIFETIME`] (docs/api.md section 7).
pub fn access_token_expiry(access_token: &str, expires_in: Option<u64>, now: u64) -> u64 {
    if let Some(seconds) = expires_in {
        return now.saturating_add(seconds);
    }
    let exp = unverified_claims(access_token).and_then(|c| c.get("exp").and_then(serde_json::Value::as_u64));
    exp.unwrap_or(now.saturating_add(DEFAULT_ACCESS_TOKEN_LIFETIME))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod store_suite;
