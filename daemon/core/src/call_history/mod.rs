//! The call history: one entry per meeting the room took part in, kept for
//! `meeting.history_retention_days` and then deleted (participant names are personal data):
//! by the room core's hourly timer, and whenever the history is written or listed.
//!
//! One JSON file in the state directory, rewritten atomically on every change: a crash leaves the
//! old or the new history, never a torn one. The room core is its only writer.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use roomd_base::fsutil::{AtomicWriteError, write_atomic};

const FILE_NAME: &str = "call-history.json";
/// Enough for years of meetings; the oldest entries go first beyond it.
const MAX_ENTRIES: usize = 10_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Why the call history could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum CallHistoryError {
    /// The file exists but could not be read.
    #[error("cannot read the call history {path}: {source}")]
    Read {
        /// The history file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not a JSON list of entries; roomd leaves it alone for a person to look at.
    #[error("the call history {path} is damaged ({source}); move it away to start a new one")]
    Damaged {
        /// The history file.
        path: PathBuf,
        /// Where and why parsing failed.
        source: serde_json::Error,
    },
    /// The atomic rewrite failed; the file holds the previous history.
    #[error("cannot save the call history: {0}")]
    Write(#[from] AtomicWriteError),
}

/// One meeting, as the history keeps it. Targets are stored without their secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// `call-` and 12 random base64url characters.
    pub id: String,
    /// `janus`, `whip`, `whep`, `direct` or `hosted`.
    pub kind: String,
    /// What was joined or hosted, without secrets (no PIN, token or URL query), as status
    /// shows it.
    pub target: serde_json::Value,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub ended_at: String,
    /// Whole seconds from start to end, measured on the monotonic clock.
    pub duration_seconds: u64,
    /// `ended` (left normally) or `failed`.
    pub outcome: String,
    /// Why the meeting failed; empty otherwise.
    pub error: String,
    /// Names of the other participants seen during the meeting.
    pub participants: Vec<String>,
}

/// The history file of one room.
#[derive(Debug, Clone)]
pub struct CallHistory {
    path: PathBuf,
}

impl CallHistory {
    /// The history file `call-history.json` in `state_dir`; nothing is read or created yet.
    pub fn in_state_dir(state_dir: &Path) -> CallHistory {
        CallHistory {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// Entries younger than `retention_days`, newest first. Older entries are deleted from
    /// the file as a side effect.
    pub fn list(&self, retention_days: u32) -> Result<Vec<CallRecord>, CallHistoryError> {
        let records = self.read()?;
        let kept = retained(records.clone(), retention_days, OffsetDateTime::now_utc());
        if kept.len() != records.len() {
            self.write(&kept)?;
        }
        Ok(kept.into_iter().rev().collect())
    }

    /// Deletes the entries older than `retention_days` from the file; returns how many. The
    /// room core runs this on a timer, so expired entries go even when nobody lists them.
    pub fn apply_retention(&self, retention_days: u32) -> Result<usize, CallHistoryError> {
        let records = self.read()?;
        let before = records.len();
        let kept = retained(records, retention_days, OffsetDateTime::now_utc());
        if kept.len() != before {
            self.write(&kept)?;
        }
        Ok(before - kept.len())
    }

    /// Adds `record` and deletes what has outlived `retention_days`.
    pub fn append(&self, record: CallRecord, retention_days: u32) -> Result<(), CallHistoryError> {
        let mut records = self.read()?;
        records.push(record);
        let kept = retained(records, retention_days, OffsetDateTime::now_utc());
        self.write(&kept)
    }

    fn read(&self) -> Result<Vec<CallRecord>, CallHistoryError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CallHistoryError::Damaged {
                    path: self.path.clone(),
                    source,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(CallHistoryError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn write(&self, records: &[CallRecord]) -> Result<(), CallHistoryError> {
        // Serialising plain strings and numbers cannot fail.
        let json = serde_json::to_vec_pretty(records).unwrap_or_default();
        write_atomic(&self.path, &json, 0o600)?;
        Ok(())
    }
}

/// Oldest first; drops entries that ended more than `retention_days` before `now` (entries
/// with an unreadable time are dropped too: they cannot be shown to be young enough).
fn retained(records: Vec<CallRecord>, retention_days: u32, now: OffsetDateTime) -> Vec<CallRecord> {
    let limit = now.unix_timestamp() - i64::from(retention_days) * SECONDS_PER_DAY;
    let mut kept: Vec<CallRecord> = records
        .into_iter()
        .filter(|r| {
            OffsetDateTime::parse(&r.ended_at, &Rfc3339)
                .is_ok_and(|ended| ended.unix_timestamp() >= limit)
        })
        .collect();
    if kept.len() > MAX_ENTRIES {
        kept.drain(..kept.len() - MAX_ENTRIES);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, ended_at: &str) -> CallRecord {
        CallRecord {
            id: id.into(),
            kind: "hosted".into(),
            target: serde_json::json!({"kind": "hosted"}),
            started_at: ended_at.into(),
            ended_at: ended_at.into(),
            duration_seconds: 0,
            outcome: "ended".into(),
            error: String::new(),
            participants: vec!["Alice".into()],
        }
    }

    fn days_ago(days: i64) -> String {
        (OffsetDateTime::now_utc() - time::Duration::days(days))
            .format(&Rfc3339)
            .unwrap()
    }

    #[test]
    fn entries_older_than_the_retention_are_deleted_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let history = CallHistory::in_state_dir(dir.path());
        history.append(record("old", &days_ago(31)), 365).unwrap();
        history
            .append(record("recent", &days_ago(29)), 365)
            .unwrap();
        history.append(record("today", &days_ago(0)), 365).unwrap();
        let ids = |list: Vec<CallRecord>| list.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(history.list(30).unwrap()), ["today", "recent"]);
        // The old entry is gone from the file, not only hidden.
        let on_disk = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(!on_disk.contains("\"old\""), "{on_disk}");
        assert_eq!(ids(history.list(365).unwrap()), ["today", "recent"]);
    }

    #[test]
    fn a_damaged_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let history = CallHistory::in_state_dir(dir.path());
        let err = history.append(record("x", &days_ago(0)), 30).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join(FILE_NAME)).unwrap(),
            b"{not json"
        );
    }
}
