//! The outgoing HTTP client as a trait, so the OIDC core runs natively in tests and on
//! `worker::Fetch` in the Worker. Implementations must not follow redirects and must
//! bound every call with a timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An outgoing request.
pub type OutgoingRequest = http::Request<Vec<u8>>;
/// A buffered response to an outgoing request.
pub type IncomingResponse = http::Response<Vec<u8>>;

/// Why an outgoing call produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No response within the call's time limit.
    #[error("timed out after {0} ms")]
    Timeout(u32),
    /// Connection failure or a malformed request (detail for the log).
    #[error("network error: {0}")]
    Network(String),
    /// The server answered with a 5xx status (for OAuth endpoints: "unavailable",
    /// whatever error the body names).
    #[error("server error status {0}")]
    ServerError(u16),
    /// The response body was larger than allowed.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

/// A boxed, non-`Send` future (Workers are single-threaded).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// The runtime's outgoing I/O: HTTP requests and timers.
pub trait HttpClient {
    /// Wait `ms` milliseconds. (In the Workers runtime a timer is I/O of the request
    /// that set it; see [`crate::coalesce`].)
    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()>;

    /// The current time in milliseconds (Unix epoch), for deadlines.
    fn now_ms(&self) -> u64;

    /// Send `request` and buffer the response; no redirects are followed.
    fn send(&self, request: OutgoingRequest) -> LocalFuture<'_, Result<IncomingResponse, TransportError>>;
}

/// Polls `work` and `timer` together: `Some(output)` if `work` finishes first, `None`
/// if `timer` does. Used by the runtime to bound every outgoing call.
pub async fn race_timeout<W, T>(work: W, timer: T) -> Option<W::Output>
where
    W: Future,
    T: Future<Output = ()>,
{
    let mut work = Box::pin(work);
    let mut timer = Box::pin(timer);
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::block_on;

    #[test]
    fn race_prefers_finished_work_and_honours_timer() {
        assert_eq!(block_on(race_timeout(async { 7 }, std::future::pending())), Some(7));
        assert_eq!(block_on(race_timeout(std::future::pending::<u8>(), async {})), None);
    }
}
