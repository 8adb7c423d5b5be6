//! Retention: records older than `logging.audit_retention_days` are deleted (they name people
//! and their addresses). The current file is rotated once its oldest record is too old; rotated
//! files are then deleted when all their records are, or rewritten without the old records.
//! Run by the housekeeping timer, so a record is gone within an hour of expiring.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::AuditError;
use super::log::{AuditLog, read_error};
use super::record::AuditRecord;
use roomd_base::fsutil::write_atomic;

const SECONDS_PER_DAY: i64 = 86_400;

impl AuditLog {
    /// Deletes every record written before `now` minus the retention; returns how many.
    pub fn enforce_retention(&self, now: OffsetDateTime) -> Result<u64, AuditError> {
        let mut writer = self.lock();
        let settings = writer.settings;
        let limit = now.unix_timestamp() - i64::from(settings.retention_days) * SECONDS_PER_DAY;
        let too_old = |record: &AuditRecord| {
            OffsetDateTime::parse(&record.time, &Rfc3339)
                .map_or(true, |time| time.unix_timestamp() < limit)
        };

        let current = self.file_path(0);
        if writer.len > 0 && first_record(&current)?.is_some_and(|r| too_old(&r)) {
            self.rotate(&mut writer)?;
        }

        let mut deleted = 0;
        let mut index = 1;
        loop {
            let path = self.file_path(index);
            let text = match std::fs::read(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if index >= settings.max_files {
                        break;
                    }
                    index += 1;
                    continue;
                }
                Err(source) => return Err(read_error(&path, source)),
            };
            let mut kept = Vec::with_capacity(text.len());
            let mut old = 0;
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice::<AuditRecord>(line) {
                    Ok(record) if !too_old(&record) => {
                        kept.extend_from_slice(line);
                        kept.push(b'\n');
                    }
                    Ok(_) => old += 1,
                    // Torn fragments go when their file is rewritten anyway.
                    Err(_) => {}
                }
            }
            let retention_error = |source| AuditError::Retention {
                path: path.clone(),
                source,
            };
            if kept.is_empty() {
                std::fs::remove_file(&path).map_err(retention_error)?;
            } else if old > 0 {
                write_atomic(&path, &kept, 0o600)
                    .map_err(|e| retention_error(std::io::Error::other(e)))?;
            }
            deleted += old;
            index += 1;
        }
        if deleted > 0 {
            tracing::info!(
                "audit log: deleted {deleted} records older than {} days",
                settings.retention_days
            );
        }
        Ok(deleted)
    }
}

/// The oldest readable record of the file at `path`, if any.
fn first_record(path: &Path) -> Result<Option<AuditRecord>, AuditError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(path, source)),
    };
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|source| read_error(path, source))?;
        if let Ok(record) = serde_json::from_slice(&line) {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::audit::log::{AUDIT_FILE, AuditSettings};
    use crate::audit::record::NewAuditRecord;

    fn line(seq: u64, days_ago: i64) -> String {
        let time = (OffsetDateTime::now_utc() - time::Duration::days(days_ago))
            .replace_nanosecond(0)
            .unwrap()
            .format(&Rfc3339)
            .unwrap();
        let record = AuditRecord::new(
            seq,
            time,
            NewAuditRecord {
                actor: "alice".into(),
                role: None,
                source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
                method: "PATCH".into(),
                path: format!("/api/v1/config#{seq}"),
                status: 200,
                detail: None,
            },
        );
        serde_json::to_string(&record).unwrap() + "\n"
    }

    fn seqs(log: &AuditLog) -> Vec<u64> {
        log.read(None, 100).unwrap().iter().map(|r| r.seq).collect()
    }

    fn settings() -> AuditSettings {
        AuditSettings {
            retention_days: 365,
            ..AuditSettings::default()
        }
    }

    #[test]
    fn old_files_are_deleted_and_partly_old_ones_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        std::fs::write(dir.path().join("audit.log.2"), line(1, 500) + &line(2, 400)).unwrap();
        std::fs::write(dir.path().join("audit.log.1"), line(3, 366) + &line(4, 364)).unwrap();
        std::fs::write(&path, line(5, 10)).unwrap();
        let log = AuditLog::open(&path, settings()).unwrap();
        assert_eq!(seqs(&log), [5, 4, 3, 2, 1]);

        assert_eq!(log.enforce_retention(OffsetDateTime::now_utc()).unwrap(), 3);
        assert!(!dir.path().join("audit.log.2").exists());
        let rewritten = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
        assert_eq!(rewritten, line(4, 364));
        let mode = std::fs::metadata(dir.path().join("audit.log.1"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line(5, 10));
        assert_eq!(seqs(&log), [5, 4]);
        // Nothing more to delete; numbering goes on.
        assert_eq!(log.enforce_retention(OffsetDateTime::now_utc()).unwrap(), 0);
        assert_eq!(
            log.append(NewAuditRecord {
                actor: "bob".into(),
                role: None,
                source: IpAddr::V4(Ipv4Addr::LOCALHOST),
                method: "POST".into(),
                path: "/x".into(),
                status: 201,
                detail: None,
            })
            .unwrap()
            .seq,
            6
        );
    }

    #[test]
    fn old_records_in_the_current_file_are_rotated_out_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        std::fs::write(&path, line(1, 400) + &line(2, 1)).unwrap();
        let log = AuditLog::open(&path, settings()).unwrap();
        assert_eq!(log.enforce_retention(OffsetDateTime::now_utc()).unwrap(), 1);
        assert_eq!(seqs(&log), [2]);
        let everything: String = ["audit.log", "audit.log.1"]
            .iter()
            .map(|name| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default())
            .collect();
        assert!(!everything.contains("#1\""), "{everything}");
    }
}
