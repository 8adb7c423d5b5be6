//! Crash-safe replacement of a file.
//!
//! A reader (or the next boot after a power cut) sees either the complete old file or the
//! complete new one, never a mix: the new contents go to a temporary file in the same directory,
//! are flushed to disk, renamed over the target (atomic on POSIX), and the directory entry itself
//! is flushed so the rename survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why [`write_atomic`] failed; the target is then unchanged.
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    /// The target names no file in a directory (e.g. `/` or a path ending in `..`).
    #[error("{path} has no parent directory to write into")]
    NoParent {
        /// The target as given.
        path: PathBuf,
    },
    /// Creating, writing, flushing or renaming a file, or flushing the directory, failed.
    #[error("could not write {path}: {source}")]
    Io {
        /// The file or directory the failed operation was on: the temporary, the target or
        /// its directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `path` with `contents`, creating it with permission `mode` (e.g. `0o600`).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), AtomicWriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        Some(_) => Path::new("."),
        None => {
            return Err(AtomicWriteError::NoParent {
                path: path.to_owned(),
            });
        }
    };
    let file_name = path.file_name().ok_or_else(|| AtomicWriteError::NoParent {
        path: path.to_owned(),
    })?;
    let tmp_prefix = format!(".{}.tmp-", file_name.to_string_lossy());
    remove_stale_temporaries(dir, &tmp_prefix);
    let tmp = dir.join(format!("{tmp_prefix}{}", crate::random::token_hex(6)));
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| AtomicWriteError::Io { path: p, source }
    };

    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(contents).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io(path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    })();
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless but untidy.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A writer killed between creating its temporary file and renaming it leaves the temporary
/// behind. Writers of one file are serialised inside roomd, so any temporary of this file that
/// exists now is such a leftover.
fn remove_stale_temporaries(dir: &Path, tmp_prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(tmp_prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_contents_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old", 0o600).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files remain");
    }

    #[test]
    fn leftovers_of_a_killed_writer_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(dir.path().join(".users.json.tmp-0123456789ab"), b"half").unwrap();
        fs::write(dir.path().join(".other.json.tmp-0123456789ab"), b"keep").unwrap();
        write_atomic(&path, b"whole", 0o600).unwrap();
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![".other.json.tmp-0123456789ab", "users.json"]);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let err = write_atomic(Path::new("/nonexistent-roomd-dir/x"), b"x", 0o600).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-roomd-dir"), "{err}");
    }
}
