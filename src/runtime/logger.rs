//! `log` records to the Workers console (visible in `wrangler tail` and the dashboard), one
//! JSON line each: `{"level":"warn","msg":"…"}` (docs/api.md section 9).

use log::{Level, LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug | Level::Trace => "debug",
        };
        let line = serde_json::json!({ "level": level, "msg": record.args().to_string() }).to_string();
        match record.level() {
            Level::Error => worker::console_error!("{line}"),
            Level::Warn => worker::console_warn!("{line}"),
            _ => worker::console_log!("{line}"),
        }
    }

    fn flush(&self) {}
}

/// Install the logger (once per isolate; later calls do nothing) at `warn`, the default
/// of `LOG_LEVEL`; the configuration, once read, sets its own level.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Warn);
    }
}
