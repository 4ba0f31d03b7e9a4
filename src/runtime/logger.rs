//! `log` records to the Workers console (visible in `wrangler tail` and the dashboard).

use log::{Level, LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        match record.level() {
            Level::Error => worker::console_error!("edge-bff error: {}", record.args()),
            Level::Warn => worker::console_warn!("edge-bff warn: {}", record.args()),
            _ => worker::console_log!("edge-bff: {}", record.args()),
        }
    }

    fn flush(&self) {}
}

/// Install the logger (once per isolate; later calls do nothing).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}
