//! Why a secret could not be stored or read.

use std::path::PathBuf;

use crate::tpm::TpmError;
use roomd_base::fsutil::AtomicWriteError;

/// Why the secret store could not be opened, or a secret not stored, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Creating the store's directory, or reading or removing a file in it, failed.
    #[error("cannot create or read {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Writing a secret or a new data-encryption key failed; the old file is unchanged.
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    /// The TPM does not unseal the data-encryption key: another TPM, a cleared TPM or a changed
    /// PCR 7. The secrets cannot be recovered.
    #[error(
        "the TPM does not open {path}: it was sealed by another TPM (a copied disk, or the TPM \
         was cleared), or this device booted differently (PCR 7, the Secure Boot state, changed); \
         the secrets in this directory cannot be recovered: remove the directory and set them \
         again ({source})"
    )]
    Unseal {
        /// The sealed key file (`dek.sealed`).
        path: PathBuf,
        /// The TPM's error.
        source: TpmError,
    },
    /// The TPM refused to seal a newly made data-encryption key.
    #[error("cannot seal the secrets key in the TPM: {0}")]
    Seal(TpmError),
    /// A secret file has an unknown format version or is too short, or the plain key file is not
    /// 32 bytes.
    #[error("{path} is damaged or was not written by roomd")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
    /// A secret file fails AES-256-GCM authentication: altered, renamed or from another device.
    #[error(
        "{path} does not decrypt with this device's secrets key: it was changed, swapped or \
         copied from another device"
    )]
    Undecryptable {
        /// The secret file.
        path: PathBuf,
    },
    /// A secret name is not 1 to 64 characters of `a-z`, `0-9` and `-`.
    #[error("secret name {name:?} must be 1 to 64 lowercase letters, digits and '-'")]
    BadName {
        /// The name as given.
        name: String,
    },
    /// The AES-256-GCM implementation failed (not expected in practice).
    #[error("the encryption library failed: {0}")]
    Crypto(&'static str),
}
