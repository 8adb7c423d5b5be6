//! What can go wrong with the audit log; every message names the file.

use std::path::PathBuf;

/// Why the audit log could not be opened, read, written, rotated or trimmed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log file could not be opened or created.
    #[error("could not open the audit log {}: {source}", path.display())]
    Open {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Reading records back (for the API, at startup or for a check) failed.
    #[error("could not read the audit log {}: {source}", path.display())]
    Read {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be written or synced; its sequence number is not reused.
    #[error("could not append to the audit log {}: {source}", path.display())]
    Write {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The log could not be moved aside to start a new file; nothing was renamed.
    #[error("could not rotate the audit log {}: {source}", path.display())]
    Rotate {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The next record could not be written (read-only or full file system, directory not
    /// writable), so the change that needs it is refused.
    #[error("the audit log {} cannot take another record: {reason}", path.display())]
    Unwritable {
        /// The log file.
        path: PathBuf,
        /// What stands in the way.
        reason: String,
    },
    /// Records past the retention could not be deleted.
    #[error("could not apply the retention to the audit log {}: {source}", path.display())]
    Retention {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
