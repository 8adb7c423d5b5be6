//! Why a secret could not be stored or read.

use std::path::PathBuf;

use crate::fsutil::AtomicWriteError;
use crate::tpm::TpmError;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot create or read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    #[error(
        "the TPM does not open {path}: it was sealed by another TPM (a copied disk, or the TPM \
         was cleared), or this device booted differently (PCR 7, the Secure Boot state, changed); \
         the secrets in this directory cannot be recovered: remove the directory and set them \
         again ({source})"
    )]
    Unseal { path: PathBuf, source: TpmError },
    #[error("cannot seal the secrets key in the TPM: {0}")]
    Seal(TpmError),
    #[error("{path} is damaged or was not written by roomd")]
    Damaged { path: PathBuf },
    #[error(
        "{path} does not decrypt with this device's secrets key: it was changed, swapped or \
         copied from another device"
    )]
    Undecryptable { path: PathBuf },
    #[error("secret name {name:?} must be 1 to 64 lowercase letters, digits and '-'")]
    BadName { name: String },
    #[error("the encryption library failed: {0}")]
    Crypto(&'static str),
}
