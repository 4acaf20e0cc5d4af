//! A test clock: wall time plus an adjustable offset.

use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Mutex;
use std::time::Duration;

/// Wall-clock time shifted by an offset that tests can advance.
#[derive(Debug, Default)]
pub(super) struct Clock {
    offset: Mutex<Duration>,
}

impl Clock {
    /// The current emulated time.
    pub(super) fn now(&self) -> DateTime<Utc> {
        let off = self.offset.lock().map(|g| *g).unwrap_or_default();
        let now = Utc::now();
        chrono::Duration::from_std(off)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now)
    }

    /// Moves the clock forward.
    pub(super) fn advance(&self, by: Duration) {
        if let Ok(mut g) = self.offset.lock() {
            *g += by;
        }
    }
}

/// Formats a time as RFC 3339 with nanoseconds.
pub(super) fn fmt_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}
