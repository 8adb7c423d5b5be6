//! Errors of the device identity: keys, certificates and TLS settings.

use std::path::PathBuf;

use crate::tpm::TpmError;
use roomd_base::fsutil::AtomicWriteError;

/// Why the device identity or the API's TLS configuration could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The TLS directory (`<state_dir>/tls`) cannot be created.
    #[error("cannot create or read the TLS directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The software key file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The software key file is not a P-256 private key in PEM; roomd does not replace it.
    #[error(
        "{path} is not a usable private key ({reason}); move it away to let roomd create a new one"
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The software key file is readable by group or others.
    #[error("{path} must not be readable by others (mode {mode:o}); run: chmod 600 {path}")]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`& 0o777`).
        mode: u32,
    },
    /// A certificate file is not usable PEM/X.509.
    #[error("{path} is not a usable certificate ({reason})")]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `api.client_ca` cannot be read, holds no usable CA certificate, or no client verifier can
    /// be built from it.
    #[error("cannot use {path} as the client CA (api.client_ca): {reason}")]
    ClientCa {
        /// The configured file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `api.client_crl` cannot be read, is not PEM, or holds no CRL.
    #[error("cannot use {path} as the client CRL file (api.client_crl): {reason}")]
    ClientCrl {
        /// The configured file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A name for the certificate's subjectAltName is neither a valid DNS name nor an IP
    /// address.
    #[error("certificate name {name:?} is neither a DNS name nor an IP address")]
    BadName {
        /// The name as given.
        name: String,
    },
    /// rcgen cannot make the self-signed certificate or a CSR.
    #[error("cannot create the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a key, certificate or chain file failed; the old file is unchanged.
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    /// rustls refuses the TLS server settings (certificates, key, client verifier).
    #[error("invalid TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
    /// `identity.backend` is `tpm` but the TPM cannot be opened or its device key not made.
    #[error(
        "no usable TPM at {tcti:?}: {source}. roomd keeps its device \
         key in the TPM and does not start without one. Check that the TPM is enabled and \
         identity.tcti names it; only on a machine without a TPM, set identity.backend = \
         \"software\" to use a key in a file, which anyone with the disk can copy"
    )]
    NoTpm {
        /// `identity.tcti`.
        tcti: String,
        /// The TPM's error.
        source: TpmError,
    },
    /// A TPM operation failed after the TPM was opened (signing, attestation).
    #[error(transparent)]
    Tpm(#[from] TpmError),
    /// The operating system refused to start the handshake runtime's threads.
    #[error("cannot start the TLS handshake threads: {0}")]
    HandshakeThreads(std::io::Error),
}
