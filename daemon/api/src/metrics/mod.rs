//! `GET /api/v1/metrics`: the room's figures for a monitoring system, in the Prometheus text
//! format (0.0.4) or OpenMetrics 1.0, whichever the scraper asks for. See `docs/metrics.md`.
//!
//! Everything but the API's own request counts is computed at scrape time from the core's typed
//! status snapshot, `/proc/self` and `/sys/class/thermal`: nothing runs between scrapes.

mod process;
mod requests;
mod room;

use std::path::Path;

use prometheus_client::encoding::{prometheus_text, text};
use time::OffsetDateTime;

pub(crate) use requests::{ApiMetrics, count_requests};

use roomd_core::RoomStatus;

/// The OpenMetrics content type, as Prometheus asks for it.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// OpenMetrics 1.0 (Prometheus asks for it first).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (`text/plain`): curl, promtool, older scrapers.
    Text,
}

impl Format {
    /// OpenMetrics when `Accept` names it, the text format otherwise.
    pub(crate) fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    /// The `Content-Type` of the answer.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Text => prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Every metric, encoded in `format`.
pub(crate) fn render(status: &RoomStatus, api: &ApiMetrics, format: Format) -> String {
    let mut scrape = room::Scrape::new();
    scrape.room(status, OffsetDateTime::now_utc());
    scrape.process(process::ProcessStats::read().as_ref());
    scrape.temperatures(&process::temperatures(Path::new("/sys/class/thermal")));
    api.register(&mut scrape.registry);
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail; the encoders only pass on the writer's errors.
    let _ = match format {
        Format::OpenMetrics => text::encode(&mut out, &scrape.registry),
        Format::Text => prometheus_text::encode(&mut out, &scrape.registry),
    };
    out
}
