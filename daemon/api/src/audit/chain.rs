//! A hash chain through the audit log's lines: each line carries `prev`, the SHA-256 of the line
//! written before it (as stored, without its newline). A line removed or changed in the middle
//! breaks the chain at the next line, which [`AuditLog::verify_chain`] reports. The oldest line
//! left (after rotation or retention deleted older ones) is the chain's anchor and cannot be
//! checked itself; `prev` stays in the file and is not part of the API's records.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::AuditError;
use super::log::{AuditLog, read_error};
use super::record::AuditRecord;

/// One line of the file: the record and the hash of the line before it.
#[derive(Serialize, Deserialize)]
pub(super) struct ChainedLine<'a> {
    #[serde(flatten)]
    pub record: std::borrow::Cow<'a, AuditRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// The hex SHA-256 of a line as stored (without its newline).
pub(super) fn line_hash(line: &[u8]) -> String {
    Sha256::digest(line)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What [`AuditLog::verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records checked, in all files.
    pub records: u64,
    /// Records whose `prev` does not match the line before them: a line is missing or was
    /// changed just before each.
    pub breaks: Vec<ChainBreak>,
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The file holding the record after the gap.
    pub file: PathBuf,
    /// The record after the gap.
    pub seq: u64,
}

impl AuditLog {
    /// Checks the chain through every file, oldest first. Lines that are not records (a line torn
    /// by a crash) are skipped; lines from before the chain existed (no `prev`) are not checked.
    pub fn verify_chain(&self) -> Result<ChainReport, AuditError> {
        let writer = self.lock();
        let max_files = writer.settings.max_files;
        let mut report = ChainReport {
            records: 0,
            breaks: Vec::new(),
        };
        let mut previous: Option<String> = None;
        let mut chained = false;
        for index in (0..=max_files).rev() {
            let path = self.file_path(index);
            let text = match std::fs::read(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(read_error(&path, source)),
            };
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let Ok(parsed) = serde_json::from_slice::<ChainedLine>(line) else {
                    continue;
                };
                report.records += 1;
                chained |= parsed.prev.is_some();
                if chained && previous.is_some() && parsed.prev != previous {
                    report.breaks.push(ChainBreak {
                        file: path.clone(),
                        seq: parsed.record.seq,
                    });
                }
                previous = Some(line_hash(line));
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use crate::audit::log::{AUDIT_FILE, AuditSettings};
    use crate::audit::record::NewAuditRecord;

    use super::*;

    fn entry(i: u32) -> NewAuditRecord {
        NewAuditRecord {
            actor: "alice".into(),
            role: None,
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            method: "PATCH".into(),
            path: format!("/api/v1/config?{i}"),
            status: 200,
            detail: None,
        }
    }

    fn remove_line(path: &std::path::Path, seq: u64) {
        let text = std::fs::read_to_string(path).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{{\"seq\":{seq},")))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(kept, text, "seq {seq} is in {}", path.display());
        std::fs::write(path, kept).unwrap();
    }

    #[test]
    fn an_intact_log_verifies_and_a_removed_line_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path, AuditSettings::default()).unwrap();
        for i in 0..10 {
            log.append(entry(i)).unwrap();
        }
        let report = log.verify_chain().unwrap();
        assert_eq!((report.records, report.breaks.len()), (10, 0), "{report:?}");
        // The API's records do not show the chain.
        let json = serde_json::to_value(&log.read(None, 1).unwrap()[0]).unwrap();
        assert!(json.get("prev").is_none(), "{json}");

        remove_line(&path, 5);
        let report = log.verify_chain().unwrap();
        assert_eq!(
            report.breaks,
            [ChainBreak {
                file: path.clone(),
                seq: 6
            }]
        );
        // The chain continues after a restart from the last line as it is now.
        drop(log);
        let log = AuditLog::open(&path, AuditSettings::default()).unwrap();
        log.append(entry(10)).unwrap();
        assert_eq!(log.verify_chain().unwrap().breaks.len(), 1);
    }

    #[test]
    fn the_chain_spans_rotated_files_and_survives_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let settings = AuditSettings {
            max_file_bytes: 1000,
            max_files: 3,
            retention_days: 1,
        };
        let log = AuditLog::open(&path, settings).unwrap();
        for i in 0..20 {
            log.append(entry(i)).unwrap();
        }
        assert!(dir.path().join("audit.log.2").exists());
        assert_eq!(log.verify_chain().unwrap().breaks, []);

        // Rotation dropped the oldest file; retention deletes the oldest lines of what is left.
        // The chain is checked from the oldest line left (a new anchor).
        let oldest_file = dir.path().join("audit.log.3");
        let oldest_seq = {
            let text = std::fs::read_to_string(&oldest_file).unwrap();
            let first: AuditRecord = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            first.seq
        };
        assert!(oldest_seq > 1, "rotation dropped the first records");
        remove_line(&oldest_file, oldest_seq);
        assert_eq!(log.verify_chain().unwrap().breaks, []);

        let oldest_in_1 = {
            let text = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
            let first: AuditRecord = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
            first.seq
        };
        remove_line(&dir.path().join("audit.log.1"), oldest_in_1);
        let breaks = log.verify_chain().unwrap().breaks;
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        assert_eq!(breaks[0].seq, oldest_in_1 + 1);
    }
}
