//! What can go wrong with the audit log; every message names the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("could not open the audit log {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read the audit log {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not append to the audit log {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not rotate the audit log {}: {source}", path.display())]
    Rotate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit log {} cannot take another record: {reason}", path.display())]
    Unwritable { path: PathBuf, reason: String },
    #[error("could not apply the retention to the audit log {}: {source}", path.display())]
    Retention {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
