//! What the room remembers of provisioning, in `<state_dir>/provisioning/`: the applied
//! bundle's serial and source (`applied.json`), and the CA certificates it brought (`ca.pem`).
//! Both are written atomically, so a crash leaves the old or the new file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Directory inside the state directory.
pub const DIR: &str = "provisioning";
/// The applied bundle's record.
pub const APPLIED_FILE: &str = "applied.json";
/// The CA certificates of the applied bundle (PEM), e.g. for `fleet.ca_file`.
pub const CA_FILE: &str = "ca.pem";
/// Largest record read back (it is a few hundred bytes).
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// `applied.json`: which bundle the room runs with, and where its enrolment stands. Mode 0600:
/// a pending enrolment holds the bundle's EAB MAC key until the CA has issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppliedState {
    /// The bundle's serial; later bundles must be higher.
    pub serial: u64,
    /// The URL it came from.
    pub source: String,
    /// When it was applied (RFC 3339).
    pub applied_at: String,
    /// The bundle's enrolment while it has not succeeded (carried over a restart).
    #[serde(default)]
    pub enrolment_pending: Option<crate::bundle::AcmeEnrolment>,
    /// The certificate the enrolment installed: issuer and expiry, for the status.
    #[serde(default)]
    pub enrolled: Option<EnrolledRecord>,
}

/// What the enrolment installed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolledRecord {
    /// The leaf's issuer.
    pub issuer: String,
    /// The leaf's expiry (RFC 3339).
    pub not_after: String,
}

pub(crate) fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join(DIR)
}

/// The record, or `None` when no bundle was applied yet. A record that cannot be read is
/// treated as none, with a warning: the signature and serial checks still hold for what
/// comes next, and a room that cannot provision itself is worse than one that asks again.
pub(crate) fn load(state_dir: &Path) -> Option<AppliedState> {
    let path = dir(state_dir).join(APPLIED_FILE);
    let read = || -> Result<AppliedState, String> {
        let len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        if len > MAX_RECORD_BYTES {
            return Err(format!("larger than {MAX_RECORD_BYTES} bytes"));
        }
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    match read() {
        Ok(state) => Some(state),
        Err(_) if !path.exists() => None,
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", path.display());
            None
        }
    }
}

pub(crate) fn save(state_dir: &Path, state: &AppliedState) -> Result<(), String> {
    let dir = dir(state_dir);
    create_dir(&dir)?;
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    roomd_base::fsutil::write_atomic(&dir.join(APPLIED_FILE), &bytes, 0o600)
        .map_err(|e| e.to_string())
}

/// Writes the CA certificates; returns what the file held before (to put back if the rest of
/// the bundle cannot be applied).
pub(crate) fn write_ca(state_dir: &Path, pem: &str) -> Result<Option<Vec<u8>>, String> {
    let dir = dir(state_dir);
    create_dir(&dir)?;
    let path = dir.join(CA_FILE);
    let before = std::fs::read(&path).ok();
    // Readable by the group, as the configuration file is: CA certificates are public.
    roomd_base::fsutil::write_atomic(&path, pem.as_bytes(), 0o644).map_err(|e| e.to_string())?;
    Ok(before)
}

pub(crate) fn restore_ca(state_dir: &Path, before: Option<Vec<u8>>) {
    let path = dir(state_dir).join(CA_FILE);
    let result = match before {
        Some(bytes) => {
            roomd_base::fsutil::write_atomic(&path, &bytes, 0o644).map_err(|e| e.to_string())
        }
        None => std::fs::remove_file(&path).map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        tracing::warn!("cannot restore {}: {e}", path.display());
    }
}

fn create_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}
