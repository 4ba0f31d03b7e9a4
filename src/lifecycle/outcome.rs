//! What a request came to, for the access log line and the metrics data point (docs/api.md
//! section 9): `refreshed`, `refresh_failed`, `session_expired`, `csrf_refused`, …
//!
//! The handlers note an outcome in the request's [`OutcomeCell`] where something worth
//! counting happens (a refresh, a login, an error answer); the Worker glue reads it once
//! the answer is ready. A failure noted first is kept: a refresh that fails and the
//! `session_expired` answer that follows it count as `refresh_failed`; a success is
//! replaced by anything noted later (a refresh followed by an API's refusal counts as
//! `token_rejected`).

use crate::error::BffError;
use std::cell::Cell;

/// A request's outcome, where one applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The tokens were refreshed (before or during the call, or by `POST /refresh`).
    Refreshed,
    /// A refresh was tried and failed (the provider refused it or could not be reached).
    RefreshFailed,
    /// The browser was sent to the provider to log in (`/login`, `/login/start`).
    LoginStarted,
    /// The callback created a session.
    LoggedIn,
    /// The callback refused the login (the redirect's `auth_error` says why).
    LoginFailed,
    /// `POST /logout` ended the session.
    LoggedOut,
    /// A back-channel logout token was accepted.
    BackchannelLogout,
    /// The answer was the error `code` (docs/api.md section 5), except that a CSRF refusal is
    /// `csrf_refused`.
    Error(&'static str),
}

impl Outcome {
    /// The outcome of answering with `e`.
    pub fn of_error(e: &BffError) -> Self {
        match e {
            BffError::CsrfCheckFailed(_) => Self::Error("csrf_refused"),
            other => Self::Error(other.code()),
        }
    }

    /// Its name in the access line and the metrics blob.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
            Self::RefreshFailed => "refresh_failed",
            Self::LoginStarted => "login_started",
            Self::LoggedIn => "logged_in",
            Self::LoginFailed => "login_failed",
            Self::LoggedOut => "logged_out",
            Self::BackchannelLogout => "backchannel_logout",
            Self::Error(code) => code,
        }
    }

    /// Whether this outcome is a failure (kept against later notes).
    fn is_failure(self) -> bool {
        matches!(self, Self::RefreshFailed | Self::LoginFailed | Self::Error(_))
    }
}

/// The outcome of one request so far (see the module documentation for the rule).
#[derive(Debug, Default)]
pub struct OutcomeCell(Cell<Option<Outcome>>);

impl OutcomeCell {
    /// Note `outcome`, unless a failure was noted before.
    pub fn note(&self, outcome: Outcome) {
        if !self.0.get().is_some_and(Outcome::is_failure) {
            self.0.set(Some(outcome));
        }
    }

    /// The outcome noted, if any.
    pub fn get(&self) -> Option<Outcome> {
        self.0.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_noted_first_is_kept_and_a_success_is_replaced() {
        let cell = OutcomeCell::default();
        assert_eq!(cell.get(), None);
        cell.note(Outcome::Refreshed);
        cell.note(Outcome::of_error(&BffError::TokenRejected));
        assert_eq!(cell.get().map(Outcome::as_str), Some("token_rejected"));

        let cell = OutcomeCell::default();
        cell.note(Outcome::RefreshFailed);
        cell.note(Outcome::of_error(&BffError::SessionExpired("refused".into())));
        assert_eq!(cell.get().map(Outcome::as_str), Some("refresh_failed"));
    }

    #[test]
    fn errors_are_named_by_their_code_and_csrf_as_refused() {
        assert_eq!(Outcome::of_error(&BffError::CsrfCheckFailed("origin")).as_str(), "csrf_refused");
        assert_eq!(Outcome::of_error(&BffError::IdpUnavailable("down".into())).as_str(), "idp_unavailable");
        assert_eq!(Outcome::of_error(&BffError::SessionExpired("x".into())).as_str(), "session_expired");
        assert_eq!(Outcome::of_error(&BffError::Unauthorized).as_str(), "unauthorized");
    }
}
