//! Errors of the device identity: keys, certificates and TLS settings.

use std::path::PathBuf;

use crate::fsutil::AtomicWriteError;
use crate::tpm::TpmError;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot create or read the TLS directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a usable private key ({reason}); move it away to let roomd create a new one"
    )]
    BadKey { path: PathBuf, reason: String },
    #[error("{path} must not be readable by others (mode {mode:o}); run: chmod 600 {path}")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{path} is not a usable certificate ({reason})")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("cannot use {path} as the client CA (api.client_ca): {reason}")]
    ClientCa { path: PathBuf, reason: String },
    #[error("cannot use {path} as the client CRL file (api.client_crl): {reason}")]
    ClientCrl { path: PathBuf, reason: String },
    #[error("certificate name {name:?} is neither a DNS name nor an IP address")]
    BadName { name: String },
    #[error("cannot create the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    #[error("invalid TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
    #[error(
        "no usable TPM at {tcti:?}: {source}. roomd keeps its device \
         key in the TPM and does not start without one. Check that the TPM is enabled and \
         identity.tcti names it; only on a machine without a TPM, set identity.backend = \
         \"software\" to use a key in a file, which anyone with the disk can copy"
    )]
    NoTpm { tcti: String, source: TpmError },
    #[error(transparent)]
    Tpm(#[from] TpmError),
    #[error("cannot start the TLS handshake threads: {0}")]
    HandshakeThreads(std::io::Error),
}
