//! The daemon's recent log in memory, for `GET /api/v1/logs`: a `tracing` layer that keeps the
//! newest records in a ring buffer, so an admin can read what roomd said without a shell on the
//! device. The journal stays the complete record; this is a bounded window onto it.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use roomd_base::sync::lock;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Records kept: about a day of a quiet room at the default level, at most a few MB.
pub const RECENT_LOG_CAPACITY: usize = 2000;

/// Longest message kept, in bytes: with the capacity this bounds the buffer's memory, and one
/// runaway line (a peer's whole SDP in an error) cannot push every other record out of view.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Marks a message cut at [`MAX_MESSAGE_BYTES`].
const CUT_MARK: &str = " […]";

/// Records of this target go to the console and the journal only, never into this buffer:
/// the claim code, which anyone who can read the API's log could otherwise use.
pub const CONSOLE_ONLY_TARGET: &str = "roomd::console";

/// Fields whose values only an admin reads through the API: usernames, which in a failed login
/// are whatever someone typed (often a password typed into the wrong box), and personal data.
pub const PRIVATE_FIELDS: [&str; 1] = ["username"];

/// What replaces a private field's value for readers who may not see it.
const HIDDEN: &str = "(hidden)";

/// One log record as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// Counts up from 1 since the start of roomd; lets a reader tell records apart and see gaps.
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// Severity; serialised lowercase (`error` … `trace`, see [`level_str`]).
    #[serde(serialize_with = "level_name")]
    pub level: Level,
    /// Where the record comes from, e.g. `roomd::accounts::facade`.
    pub target: String,
    /// The message, then its other fields as `name=value`.
    pub message: String,
    /// The message with the values of [`PRIVATE_FIELDS`] hidden, when it has any.
    #[serde(skip)]
    redacted: Option<String>,
}

fn level_name<S: serde::Serializer>(level: &Level, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(level_str(*level))
}

/// The names the API accepts and returns, lowercase like `RUST_LOG`.
pub fn level_str(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// The level named `name` (`error`, `warn`, `info`, `debug`, `trace`), or `None`.
pub fn parse_level(name: &str) -> Option<Level> {
    [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ]
    .into_iter()
    .find(|level| level_str(*level) == name)
}

/// The shared ring buffer: the layer writes, the API reads. Cheap to clone.
#[derive(Clone)]
pub struct RecentLog {
    inner: Arc<Mutex<Ring>>,
}

struct Ring {
    records: VecDeque<LogRecord>,
    capacity: usize,
    next_seq: u64,
}

impl RecentLog {
    /// Keeps the newest `capacity` records (at least one).
    pub fn new(capacity: usize) -> RecentLog {
        let capacity = capacity.max(1);
        RecentLog {
            inner: Arc::new(Mutex::new(Ring {
                records: VecDeque::with_capacity(capacity),
                capacity,
                next_seq: 1,
            })),
        }
    }

    /// The layer that fills this buffer; add it to the subscriber.
    pub fn layer(&self) -> RecentLogLayer {
        RecentLogLayer { log: self.clone() }
    }

    /// Up to `limit` records at `min_level` or more severe, newest first. Without `private`,
    /// the values of [`PRIVATE_FIELDS`] are hidden.
    pub fn read(&self, min_level: Level, limit: usize, private: bool) -> Vec<LogRecord> {
        // tracing orders levels by verbosity: ERROR < WARN < … < TRACE.
        self.lock()
            .records
            .iter()
            .rev()
            .filter(|record| record.level <= min_level)
            .take(limit)
            .map(|record| {
                let mut shown = record.clone();
                if let Some(redacted) = shown.redacted.take()
                    && !private
                {
                    shown.message = redacted;
                }
                shown
            })
            .collect()
    }

    fn push(&self, time: String, level: Level, target: &str, message: (String, Option<String>)) {
        let mut ring = self.lock();
        if ring.records.len() == ring.capacity {
            ring.records.pop_front();
        }
        let seq = ring.next_seq;
        ring.next_seq += 1;
        ring.records.push_back(LogRecord {
            seq,
            time,
            level,
            target: target.to_owned(),
            message: message.0,
            redacted: message.1,
        });
    }

    // A panic while holding the lock leaves whole records behind: still fine to read and append.
    fn lock(&self) -> MutexGuard<'_, Ring> {
        lock(&self.inner)
    }
}

/// The `tracing` layer writing into a [`RecentLog`]. Sees what the subscriber's filter lets
/// through, the same records the journal gets.
pub struct RecentLogLayer {
    log: RecentLog,
}

impl<S: Subscriber> Layer<S> for RecentLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == CONSOLE_ONLY_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        // Formatted before taking the lock, so that writers only contend for the push.
        self.log.push(
            now_rfc3339(),
            *metadata.level(),
            metadata.target(),
            fields.into_message(),
        );
    }
}

/// Collects an event's `message` and its other fields, each bounded as it is written; the
/// other fields also without the values of private fields.
#[derive(Default)]
struct Fields {
    message: String,
    others: String,
    others_redacted: String,
    has_private: bool,
}

impl Fields {
    /// The message, and the message with private values hidden if it has any.
    fn into_message(self) -> (String, Option<String>) {
        let join = |others: &str| {
            let mut text = self.message.clone();
            if !others.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(others);
            }
            bounded(text)
        };
        let redacted = self.has_private.then(|| join(&self.others_redacted));
        (join(&self.others), redacted)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Stop collecting once the result is cut anyway: a huge field costs no more memory.
        if self.message.len() + self.others.len() > MAX_MESSAGE_BYTES {
            return;
        }
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.others.is_empty() {
                self.others.push(' ');
                self.others_redacted.push(' ');
            }
            let _ = write!(self.others, "{}={value:?}", field.name());
            if PRIVATE_FIELDS.contains(&field.name()) {
                self.has_private = true;
                let _ = write!(self.others_redacted, "{}={HIDDEN}", field.name());
            } else {
                let _ = write!(self.others_redacted, "{}={value:?}", field.name());
            }
        }
    }
}

/// `text` cut to [`MAX_MESSAGE_BYTES`] at a character boundary, marked when cut.
fn bounded(mut text: String) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut end = MAX_MESSAGE_BYTES - CUT_MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CUT_MARK);
    text
}

fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let millis = now.nanosecond() / 1_000_000 * 1_000_000;
    let now = now.replace_nanosecond(millis).unwrap_or(now);
    // A current UTC time always formats as RFC 3339.
    now.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Runs `emit` with a subscriber that has only `log`'s layer (no global state touched).
    fn capture(log: &RecentLog, emit: impl FnOnce()) {
        let subscriber = tracing_subscriber::registry().with(log.layer());
        tracing::subscriber::with_default(subscriber, emit);
    }

    #[test]
    fn keeps_only_the_newest_records_newest_first() {
        let log = RecentLog::new(3);
        capture(&log, || {
            for n in 1..=5 {
                tracing::info!("line {n}");
            }
        });
        let messages: Vec<String> = log
            .read(Level::TRACE, 100, true)
            .into_iter()
            .map(|r| r.message)
            .collect();
        assert_eq!(messages, ["line 5", "line 4", "line 3"]);
        let seqs: Vec<u64> = log
            .read(Level::TRACE, 100, true)
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, [5, 4, 3]);
    }

    #[test]
    fn limit_takes_the_newest() {
        let log = RecentLog::new(10);
        capture(&log, || {
            for n in 1..=5 {
                tracing::info!("line {n}");
            }
        });
        let messages: Vec<String> = log
            .read(Level::TRACE, 2, true)
            .into_iter()
            .map(|r| r.message)
            .collect();
        assert_eq!(messages, ["line 5", "line 4"]);
    }

    #[test]
    fn level_filter_keeps_that_level_and_more_severe() {
        let log = RecentLog::new(10);
        capture(&log, || {
            tracing::error!("e");
            tracing::warn!("w");
            tracing::info!("i");
            tracing::debug!("d");
        });
        let levels = |min| -> Vec<&str> {
            log.read(min, 100, true)
                .into_iter()
                .map(|r| level_str(r.level))
                .collect()
        };
        assert_eq!(levels(Level::WARN), ["warn", "error"]);
        assert_eq!(levels(Level::ERROR), ["error"]);
        assert_eq!(levels(Level::DEBUG), ["debug", "info", "warn", "error"]);
    }

    #[test]
    fn fields_follow_the_message_and_target_and_time_are_kept() {
        let log = RecentLog::new(10);
        capture(&log, || {
            tracing::warn!(target: "roomd::test", username = "ann", attempts = 3, "failed login");
        });
        let record = &log.read(Level::TRACE, 1, true)[0];
        assert_eq!(record.message, "failed login username=\"ann\" attempts=3");
        assert_eq!(record.target, "roomd::test");
        assert_eq!(record.level, Level::WARN);
        assert!(
            OffsetDateTime::parse(&record.time, &Rfc3339).is_ok(),
            "{}",
            record.time
        );
        let json = serde_json::to_value(record).expect("serialisable");
        assert_eq!(json["level"], "warn");
    }

    #[test]
    fn private_fields_are_hidden_unless_asked_for_and_console_records_are_not_kept() {
        let log = RecentLog::new(10);
        capture(&log, || {
            tracing::warn!(
                username = "hunter2-typed-here",
                source = "192.0.2.1",
                "failed login"
            );
            tracing::warn!(target: CONSOLE_ONLY_TARGET, "claim it with code ABCDEFGHJKMN");
        });
        let hidden = log.read(Level::TRACE, 10, false);
        assert_eq!(hidden.len(), 1, "{hidden:?}");
        assert_eq!(
            hidden[0].message,
            "failed login username=(hidden) source=\"192.0.2.1\""
        );
        let full = log.read(Level::TRACE, 10, true);
        assert!(full[0].message.contains("hunter2-typed-here"), "{full:?}");
        let json = serde_json::to_string(&hidden).expect("serialisable");
        assert!(!json.contains("hunter2"), "{json}");
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let log = RecentLog::new(10);
        let long = "ä".repeat(MAX_MESSAGE_BYTES);
        capture(&log, || {
            tracing::info!("{long}");
            tracing::info!(detail = %long, "short");
        });
        for record in log.read(Level::TRACE, 10, true) {
            assert!(
                record.message.len() <= MAX_MESSAGE_BYTES,
                "{}",
                record.message.len()
            );
            assert!(record.message.ends_with(CUT_MARK), "{}", record.message);
        }
    }

    #[test]
    fn level_names_round_trip_and_unknown_names_are_refused() {
        for name in ["error", "warn", "info", "debug", "trace"] {
            let level = parse_level(name).expect("known level");
            assert_eq!(level_str(level), name);
        }
        assert_eq!(parse_level("WARN"), None);
        assert_eq!(parse_level("warning"), None);
    }
}
