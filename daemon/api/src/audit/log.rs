//! The audit log files: JSON lines, mode 0600, opened with `O_APPEND`. Each record is one `write`
//! of a complete line, synced to disk before `append` returns. A line torn by a crash is skipped
//! by readers and terminated before the next record, never rewritten.
//!
//! The log is size-capped: when `audit.log` would grow past `max_file_bytes` it becomes
//! `audit.log.1` (the older ones move up to `.2` …), and the file beyond `max_files` is deleted.
//! Records older than the retention are deleted by [`AuditLog::enforce_retention`] (see
//! `retention.rs`).

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{AccessFlags, access};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chain::{ChainedLine, line_hash};
use super::error::AuditError;
use super::noise::NoiseCounter;
use super::record::{AuditRecord, NewAuditRecord};
use super::reverse_lines::ReverseLines;
use roomd_base::sync::lock;

/// The file name inside the state directory.
pub const AUDIT_FILE: &str = "audit.log";
/// Most records one [`AuditLog::read`] returns.
pub const MAX_READ_LIMIT: usize = 1000;
/// Below this much free space the log refuses to promise the next record (the largest record,
/// every field at its bound, is under 8 KiB).
pub const MIN_FREE_BYTES: u64 = 64 * 1024;

/// How large the log may grow and how long it keeps records (`logging.audit_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// `audit.log` is rotated before it would grow past this.
    pub max_file_bytes: u64,
    /// Rotated files kept (`audit.log.1` … `audit.log.<max_files>`).
    pub max_files: u32,
    /// Records older than this many days are deleted.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            max_file_bytes: 4 * 1024 * 1024,
            max_files: 8,
            retention_days: 365,
        }
    }
}

/// The open audit log of the state directory. Shareable behind an `Arc`; one lock serialises
/// appends, rotation and retention. Its methods do file I/O: call them on a blocking thread.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Serialises appends, rotation and retention so that sequence numbers and lines stay in
    /// order and no file is renamed under a writer.
    writer: Mutex<Writer>,
    /// Anonymous requests to routes that do not exist, counted rather than written one by one.
    noise: Mutex<NoiseCounter>,
}

#[derive(Debug)]
pub(super) struct Writer {
    pub(super) file: File,
    /// Bytes in `file` (it is only ever appended to while open).
    pub(super) len: u64,
    pub(super) next_seq: u64,
    /// The file does not end with a newline (torn line, failed write): start with one.
    pub(super) needs_newline: bool,
    pub(super) settings: AuditSettings,
    /// Hash of the last complete record line, for the next line's `prev` (see `chain.rs`).
    pub(super) last_hash: Option<String>,
}

impl AuditLog {
    /// Opens or creates the log and finds where the sequence numbers continue.
    pub fn open(path: &Path, settings: AuditSettings) -> Result<AuditLog, AuditError> {
        let (file, len) = open_for_append(path)?;
        let mode = file
            .metadata()
            .map_err(|source| open_error(path, source))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the audit log is readable by other users (mode {mode:o})");
        }

        let reader = File::open(path).map_err(|source| open_error(path, source))?;
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
        let log = AuditLog {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                file,
                len,
                next_seq: 1,
                needs_newline,
                settings,
                last_hash: None,
            }),
            noise: Mutex::new(NoiseCounter::default()),
        };
        // The newest record may be in a rotated file when the current one is new.
        let last = log.newest_line(settings.max_files)?;
        let mut writer = log.lock();
        writer.next_seq = last.as_ref().map_or(0, |(record, _)| record.seq) + 1;
        writer.last_hash = last.map(|(_, line)| line_hash(&line));
        drop(writer);
        Ok(log)
    }

    /// The current file (`<state>/audit.log`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies changed settings (the next append or retention run follows them).
    pub fn set_settings(&self, settings: AuditSettings) {
        self.lock().settings = settings;
    }

    /// The size and retention limits in force.
    pub fn settings(&self) -> AuditSettings {
        self.lock().settings
    }

    /// Writes `new` with the next sequence number and the current time; returns what was written.
    pub fn append(&self, new: NewAuditRecord) -> Result<AuditRecord, AuditError> {
        let mut writer = self.lock();
        let record = AuditRecord::new(writer.next_seq, now_rfc3339(), new);
        // A number is never reused, even if this write fails half-way.
        writer.next_seq += 1;

        let mut line = Vec::with_capacity(256);
        if writer.needs_newline {
            line.push(b'\n');
        }
        let start = line.len();
        let chained = ChainedLine {
            record: Cow::Borrowed(&record),
            prev: writer.last_hash.clone(),
        };
        serde_json::to_writer(&mut line, &chained)
            .map_err(|e| self.write_error(std::io::Error::other(e)))?;
        let hash = line_hash(&line[start..]);
        line.push(b'\n');

        if writer.len > 0 && writer.len + line.len() as u64 > writer.settings.max_file_bytes {
            self.rotate(&mut writer)?;
            // A fresh file needs no separating newline.
            if line.first() == Some(&b'\n') {
                line.remove(0);
            }
        }

        let written = writer
            .file
            .write_all(&line)
            .and_then(|()| writer.file.sync_data());
        match written {
            Ok(()) => {
                writer.len += line.len() as u64;
                writer.needs_newline = false;
                writer.last_hash = Some(hash);
                Ok(record)
            }
            Err(source) => {
                // Part of the line may be in the file; make sure the next record starts afresh.
                writer.needs_newline = true;
                writer.len = writer.file.metadata().map_or(writer.len, |m| m.len());
                Err(self.write_error(source))
            }
        }
    }

    /// Whether the next record can be written: the directory is writable (rotation creates a
    /// file there) and its file system has room. Called before a change is made, so that a
    /// change whose record could not be written is refused instead of made unrecorded.
    pub fn check_writable(&self) -> Result<(), AuditError> {
        let _writer = self.lock();
        let dir = self.dir();
        let unwritable = |reason: String| AuditError::Unwritable {
            path: self.path.clone(),
            reason,
        };
        access(dir, AccessFlags::W_OK)
            .map_err(|e| unwritable(format!("its directory is not writable ({e})")))?;
        let fs = statvfs(dir).map_err(|e| unwritable(format!("cannot check free space ({e})")))?;
        if fs.flags().contains(FsFlags::ST_RDONLY) {
            return Err(unwritable("its file system is read-only".into()));
        }
        // The counts are `c_ulong`: u64 here, u32 on 32-bit devices.
        #[allow(clippy::useless_conversion)]
        let free = u64::from(fs.blocks_available()).saturating_mul(u64::from(fs.fragment_size()));
        if free < MIN_FREE_BYTES {
            return Err(unwritable(format!(
                "its file system is full ({free} bytes free, {MIN_FREE_BYTES} needed)"
            )));
        }
        Ok(())
    }

    /// Up to `limit` (at most [`MAX_READ_LIMIT`]) records, newest first, from the current and
    /// the rotated files; with `before`, only records whose `seq` is smaller (to page
    /// backwards). Unreadable lines are skipped.
    pub fn read(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        let max_files = self.lock().settings.max_files;
        self.read_files(before, limit.min(MAX_READ_LIMIT), max_files)
    }

    /// Counts an anonymous request that only found a 404 or 405 (scanners, typos): such noise
    /// is written as one record per source and status per interval by [`Self::flush_noise`].
    pub fn count_noise(&self, record: NewAuditRecord) {
        lock(&self.noise).count(record);
    }

    /// Writes what [`Self::count_noise`] counted since the last flush; returns how many records.
    pub fn flush_noise(&self) -> Result<usize, AuditError> {
        let records = lock(&self.noise).drain();
        let count = records.len();
        for record in records {
            self.append(record)?;
        }
        Ok(count)
    }

    /// The newest readable record with its line as stored, from the current or a rotated file.
    fn newest_line(&self, max_files: u32) -> Result<Option<(AuditRecord, Vec<u8>)>, AuditError> {
        for index in 0..=max_files {
            let Some((path, file, len)) = self.open_file(index)? else {
                continue;
            };
            let mut lines = ReverseLines::new(file, len);
            while let Some(line) = lines
                .next_line()
                .map_err(|source| read_error(&path, source))?
            {
                if let Ok(record) = serde_json::from_slice::<AuditRecord>(&line) {
                    return Ok(Some((record, line)));
                }
            }
        }
        Ok(None)
    }

    fn read_files(
        &self,
        mut before: Option<u64>,
        limit: usize,
        max_files: u32,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        let mut records = Vec::new();
        for index in 0..=max_files {
            if records.len() >= limit {
                break;
            }
            let Some((path, file, len)) = self.open_file(index)? else {
                continue;
            };
            let found = newest_records(&path, file, len, before, limit - records.len())?;
            // A rotation between two files could show a record twice: sequence numbers only
            // go down from here.
            if let Some(last) = found.last() {
                before = Some(last.seq);
            }
            records.extend(found);
        }
        Ok(records)
    }

    /// `audit.log` for 0, `audit.log.<n>` for the n-th rotated file (1 is the newest).
    /// The file at `index` (0 current, then rotated) with its path and length; None when there
    /// is no such file.
    fn open_file(&self, index: u32) -> Result<Option<(PathBuf, File, u64)>, AuditError> {
        let path = self.file_path(index);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(read_error(&path, source)),
        };
        let len = file
            .metadata()
            .map_err(|source| read_error(&path, source))?
            .len();
        Ok(Some((path, file, len)))
    }

    pub(super) fn file_path(&self, index: u32) -> PathBuf {
        if index == 0 {
            return self.path.clone();
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{index}"));
        PathBuf::from(name)
    }

    pub(super) fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    /// Moves `audit.log` to `audit.log.1` (older files up by one, the oldest beyond `max_files`
    /// deleted) and continues in a new, empty `audit.log`. The new file is created first, so a
    /// directory that cannot take it leaves everything as it was.
    pub(super) fn rotate(&self, writer: &mut Writer) -> Result<(), AuditError> {
        let rotate_error = |source| AuditError::Rotate {
            path: self.path.clone(),
            source,
        };
        let next = self.file_path(0).with_extension("log.next");
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&next)
            .and_then(|file| file.set_len(0).map(|()| file))
            .map_err(rotate_error)?;
        let max_files = writer.settings.max_files.max(1);
        for index in (1..max_files).rev() {
            match std::fs::rename(self.file_path(index), self.file_path(index + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(rotate_error(source)),
            }
        }
        // Files beyond the cap are left over from a larger `max_files`.
        let mut index = max_files + 1;
        while std::fs::remove_file(self.file_path(index)).is_ok() {
            index += 1;
        }
        std::fs::rename(&self.path, self.file_path(1)).map_err(rotate_error)?;
        std::fs::rename(&next, &self.path).map_err(rotate_error)?;
        File::open(self.dir())
            .and_then(|dir| dir.sync_all())
            .map_err(rotate_error)?;
        writer.file = file;
        writer.len = 0;
        writer.needs_newline = false;
        tracing::info!(path = %self.path.display(), "audit log rotated");
        Ok(())
    }

    fn write_error(&self, source: std::io::Error) -> AuditError {
        AuditError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// Opens `path` for appending (created with mode 0600) and returns it with its length.
pub(super) fn open_for_append(path: &Path) -> Result<(File, u64), AuditError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| open_error(path, source))?;
    let len = file
        .metadata()
        .map_err(|source| open_error(path, source))?
        .len();
    Ok((file, len))
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

fn open_error(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Open {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn read_error(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Read {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn now_rfc3339() -> String {
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
        let log = AuditLog::open(&path, AuditSettings::default()).unwrap();
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
        let log = AuditLog::open(&path, AuditSettings::default()).unwrap();
        for _ in 0..3 {
            log.append(entry("/a")).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        drop(log);
        let log = AuditLog::open(&path, AuditSettings::default()).unwrap();
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
        let log = AuditLog::open(&path, AuditSettings::default()).unwrap();
        log.append(entry("/a")).unwrap();
        log.append(entry("/b")).unwrap();
        drop(log);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq":3,"time":"2026-01-01T00:00:00Z","act"#)
            .unwrap();
        drop(file);

        let log = AuditLog::open(&path, AuditSettings::default()).unwrap();
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
        let log = AuditLog::open(&dir.path().join(AUDIT_FILE), AuditSettings::default()).unwrap();
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
        let log = std::sync::Arc::new(
            AuditLog::open(&dir.path().join(AUDIT_FILE), AuditSettings::default()).unwrap(),
        );
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
        let err = AuditLog::open(
            Path::new("/nonexistent-roomd-dir/audit.log"),
            AuditSettings::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-roomd-dir/audit.log"),
            "{err}"
        );
    }

    fn small(max_files: u32) -> AuditSettings {
        AuditSettings {
            max_file_bytes: 1000,
            max_files,
            retention_days: 365,
        }
    }

    #[test]
    fn rotates_at_the_size_cap_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path, small(2)).unwrap();
        for i in 0..40 {
            log.append(entry(&format!("/p{i}"))).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["audit.log", "audit.log.1", "audit.log.2"]);
        for name in &names {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 1000, "{name} has {len} bytes");
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        // Reading pages across the files, newest first, without gaps or repeats.
        let records = log.read(None, 1000).unwrap();
        let newest = records[0].seq;
        assert_eq!(newest, 40);
        let expected: Vec<u64> = (newest + 1 - records.len() as u64..=newest).rev().collect();
        assert_eq!(seqs(&records), expected);
        assert!(records.len() < 40, "the oldest file was deleted");
        let page = log.read(Some(records[3].seq), 5).unwrap();
        assert_eq!(seqs(&page), seqs(&records[4..9]));
        // Sequence numbers continue after a restart that finds a freshly rotated file.
        drop(log);
        let log = AuditLog::open(&path, small(2)).unwrap();
        assert_eq!(log.append(entry("/again")).unwrap().seq, 41);
    }

    #[test]
    fn a_directory_that_cannot_take_the_new_file_fails_the_append_and_keeps_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path, small(2)).unwrap();
        log.append(entry("/a")).unwrap();
        // The rotation's new file cannot be created: its name is taken by a directory.
        std::fs::create_dir(dir.path().join("audit.log.next")).unwrap();
        let mut failed = None;
        for i in 0..20 {
            if let Err(e) = log.append(entry(&format!("/b{i}"))) {
                failed = Some(e);
                break;
            }
        }
        let err = failed.expect("an append that needs a rotation fails");
        assert!(err.to_string().contains("rotate"), "{err}");
        assert!(!dir.path().join("audit.log.1").exists());
        assert_eq!(
            log.read(None, 100).unwrap()[0].path.chars().next(),
            Some('/')
        );
    }
}
