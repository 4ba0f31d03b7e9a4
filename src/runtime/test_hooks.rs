//! Test-only hooks (Cargo feature `test-hooks`, built into `build-test/` by
//! scripts/test.sh, never by scripts/build.sh): a clock offset for this isolate, so the
//! integration tests can cross idle timeouts and refresh margins without waiting, and a
//! delay for the coordinator objects of this isolate (a hanging coordinator).

use crate::web::response::{json_response, HttpResponse};
use std::cell::Cell;

thread_local! {
    static CLOCK_OFFSET_MS: Cell<u64> = const { Cell::new(0) };
    static COORDINATOR_DELAY_MS: Cell<u64> = const { Cell::new(0) };
}

/// How far this isolate's clock is moved forward.
pub fn clock_offset_ms() -> u64 {
    CLOCK_OFFSET_MS.with(Cell::get)
}

/// How long this isolate's coordinator objects wait before answering, if at all.
pub fn coordinator_delay_ms() -> Option<u64> {
    Some(COORDINATOR_DELAY_MS.with(Cell::get)).filter(|ms| *ms > 0)
}

/// The hooks' answers: `/__edge-bff-test/clock?offset=<seconds>` and
/// `/__edge-bff-test/coordinator-delay?ms=<ms>`.
pub fn answer(uri: &http::Uri) -> Option<HttpResponse> {
    let number = |name: &str| {
        uri.query()?.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok())
    };
    match uri.path() {
        "/__edge-bff-test/clock" => {
            let offset = number("offset")?;
            CLOCK_OFFSET_MS.with(|c| c.set(offset * 1000));
            Some(json_response(http::StatusCode::OK, &serde_json::json!({ "offset": offset })))
        }
        "/__edge-bff-test/coordinator-delay" => {
            let ms = number("ms")?;
            COORDINATOR_DELAY_MS.with(|c| c.set(ms));
            Some(json_response(http::StatusCode::OK, &serde_json::json!({ "ms": ms })))
        }
        _ => None,
    }
}
