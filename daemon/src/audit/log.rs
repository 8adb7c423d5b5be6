//! The append-only audit log file: JSON lines, mode 0600, opened with `O_APPEND`. Each record is
//! one `write` of a complete line, synced to disk before `append` returns. A line torn by a crash
//! is skipped by readers and terminated before the next record, never rewritten.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::AuditError;
use super::record::{AuditRecord, NewAuditRecord};
use super::reverse_lines::ReverseLines;

/// The file name inside the state directory.
pub const AUDIT_FILE: &str = "audit.log";
/// Most records one [`AuditLog::read`] returns.
pub const MAX_READ_LIMIT: usize = 1000;

#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Serialises appends so that sequence numbers and lines stay in order.
    writer: Mutex<Writer>,
}

#[derive(Debug)]
struct Writer {
    file: File,
    next_seq: u64,
    /// The file does not end with a newline (torn line, failed write): start with one.
    needs_newline: bool,
}

impl AuditLog {
    /// Opens or creates the log and finds where the sequence numbers continue.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let open_error = |source| AuditError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(open_error)?;
        let metadata = file.metadata().map_err(open_error)?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the audit log is readable by other users (mode {mode:o})");
        }
        let len = metadata.len();

        let reader = File::open(path).map_err(open_error)?;
        let mut last_byte = [0u8; 1];
        let needs_newline = len > 0 && {
            reader
                .read_exact_at(&mut last_byte, len - 1)
                .map_err(|source| read_error(path, source))?;
            last_byte[0] != b'\n'
        };
        if needs_newline {
            tracing::warn!(path = %path.display(), "the last line of the audit log is incomplete (interrupted write); it is skipped");
        }
        let last_seq = newest_records(path, reader, len, None, 1)?
            .first()
            .map_or(0, |record| record.seq);

        Ok(AuditLog {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                file,
                next_seq: last_seq + 1,
                needs_newline,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `new` with the next sequence number and the current time; returns what was written.
    pub fn append(&self, new: NewAuditRecord) -> Result<AuditRecord, AuditError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let record = AuditRecord::new(writer.next_seq, now_rfc3339(), new);
        // A number is never reused, even if this write fails half-way.
        writer.next_seq += 1;

        let mut line = Vec::with_capacity(256);
        if writer.needs_newline {
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, &record)
            .map_err(|e| self.write_error(std::io::Error::other(e)))?;
        line.push(b'\n');

        let written = writer
            .file
            .write_all(&line)
            .and_then(|()| writer.file.sync_data());
        match written {
            Ok(()) => {
                writer.needs_newline = false;
                Ok(record)
            }
            Err(source) => {
                // Part of the line may be in the file; make sure the next record starts afresh.
                writer.needs_newline = true;
                Err(self.write_error(source))
            }
        }
    }

    /// Up to `limit` (at most [`MAX_READ_LIMIT`]) records, newest first; with `before`, only
    /// records whose `seq` is smaller (to page backwards). Unreadable lines are skipped.
    pub fn read(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        let file = File::open(&self.path).map_err(|source| read_error(&self.path, source))?;
        let len = file
            .metadata()
            .map_err(|source| read_error(&self.path, source))?
            .len();
        newest_records(&self.path, file, len, before, limit.min(MAX_READ_LIMIT))
    }

    fn write_error(&self, source: std::io::Error) -> AuditError {
        AuditError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

fn newest_records(
    path: &Path,
    file: File,
    len: u64,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<AuditRecord>, AuditError> {
    let mut lines = ReverseLines::new(file, len);
    let mut records = Vec::new();
    while records.len() < limit {
        let Some(line) = lines
            .next_line()
            .map_err(|source| read_error(path, source))?
        else {
            break;
        };
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(&line) {
            Ok(record) if before.is_none_or(|before| record.seq < before) => records.push(record),
            Ok(_) => {}
            Err(_) => {
                tracing::debug!(path = %path.display(), "skipping an unreadable audit log line")
            }
        }
    }
    Ok(records)
}

fn read_error(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Read {
        path: path.to_owned(),
        source,
    }
}

fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    // A current UTC time always formats as RFC 3339.
    now.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Role;
    use std::net::{IpAddr, Ipv4Addr};

    fn entry(path: &str) -> NewAuditRecord {
        NewAuditRecord {
            actor: "alice".into(),
            role: Some(Role::Admin),
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            method: "POST".into(),
            path: path.into(),
            status: 201,
            detail: Some("create user bob".into()),
        }
    }

    fn seqs(records: &[AuditRecord]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn appends_json_lines_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path).unwrap();
        let written = log.append(entry("/api/v1/users")).unwrap();
        assert_eq!(written.seq, 1);
        assert!(
            OffsetDateTime::parse(&written.time, &Rfc3339).is_ok(),
            "{}",
            written.time
        );
        assert!(written.time.ends_with('Z'));

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.ends_with('\n'));
        let parsed: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(parsed["actor"], "alice");
        assert_eq!(parsed["role"], "admin");
        assert_eq!(parsed["source"], "192.0.2.1");
        assert_eq!(parsed["status"], 201);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn seq_continues_after_reopen_and_old_lines_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path).unwrap();
        for _ in 0..3 {
            log.append(entry("/a")).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append(entry("/b")).unwrap().seq, 4);
        let after = std::fs::read(&path).unwrap();
        assert!(
            after.starts_with(&before),
            "earlier lines are never rewritten"
        );
        assert_eq!(seqs(&log.read(None, 10).unwrap()), [4, 3, 2, 1]);
    }

    #[test]
    fn torn_last_line_is_skipped_and_terminated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path).unwrap();
        log.append(entry("/a")).unwrap();
        log.append(entry("/b")).unwrap();
        drop(log);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq":3,"time":"2026-01-01T00:00:00Z","act"#)
            .unwrap();
        drop(file);

        let log = AuditLog::open(&path).unwrap();
        assert_eq!(seqs(&log.read(None, 10).unwrap()), [2, 1]);
        assert_eq!(log.append(entry("/c")).unwrap().seq, 3);
        assert_eq!(log.append(entry("/d")).unwrap().seq, 4);
        let records = log.read(None, 10).unwrap();
        assert_eq!(seqs(&records), [4, 3, 2, 1]);
        assert_eq!(records[1].path, "/c");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"act\n"),
            "torn fragment kept as its own line"
        );
    }

    #[test]
    fn read_pages_newest_first_with_limit_and_before() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join(AUDIT_FILE)).unwrap();
        assert!(log.read(None, 10).unwrap().is_empty());
        for i in 0..25 {
            log.append(entry(&format!("/p{i}"))).unwrap();
        }
        assert_eq!(seqs(&log.read(None, 3).unwrap()), [25, 24, 23]);
        assert_eq!(seqs(&log.read(Some(23), 3).unwrap()), [22, 21, 20]);
        assert_eq!(seqs(&log.read(Some(3), 10).unwrap()), [2, 1]);
        assert!(log.read(Some(1), 10).unwrap().is_empty());
        assert!(log.read(None, 0).unwrap().is_empty());
        assert_eq!(log.read(None, usize::MAX).unwrap().len(), 25);
        assert_eq!(log.read(None, 1).unwrap()[0].path, "/p24");
    }

    #[test]
    fn concurrent_appends_get_distinct_ordered_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(AuditLog::open(&dir.path().join(AUDIT_FILE)).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        log.append(entry("/x")).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let expected: Vec<u64> = (1..=40).rev().collect();
        assert_eq!(seqs(&log.read(None, 100).unwrap()), expected);
    }

    #[test]
    fn open_error_names_the_file() {
        let err = AuditLog::open(Path::new("/nonexistent-roomd-dir/audit.log")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-roomd-dir/audit.log"),
            "{err}"
        );
    }
}
