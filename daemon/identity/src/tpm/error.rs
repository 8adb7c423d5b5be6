//! What can go wrong with the TPM, said so that the person reading the log can act on it.

/// Why a TPM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    /// `identity.tcti` cannot be parsed as a TCTI name and configuration.
    #[error("{tcti:?} is not a TCTI roomd understands ({source}); use e.g. device:/dev/tpmrm0")]
    BadTcti {
        /// The TCTI string as configured.
        tcti: String,
        /// The TSS's error.
        source: tss_esapi::Error,
    },
    /// The TCTI names no reachable TPM (no device, no simulator listening, no permission).
    #[error("cannot open TCTI {tcti:?} (identity.tcti): {source}")]
    Open {
        /// The TCTI string as configured.
        tcti: String,
        /// The TSS's error.
        source: tss_esapi::Error,
    },
    /// A TPM command failed.
    #[error("the TPM refused to {action}: {source}")]
    Command {
        /// What was asked, as a verb phrase for the message ("sign with the device key").
        action: &'static str,
        /// The TSS's error, with the TPM's response code.
        source: tss_esapi::Error,
    },
    /// A persistent handle roomd uses (device or attestation key) holds a key of another kind;
    /// it is left alone.
    #[error(
        "persistent handle {handle:#010x} holds a key that is not a P-256 signing key ({found}); \
         roomd will not overwrite it: evict it (tpm2_evictcontrol -c {handle:#010x}) if it is \
         not needed"
    )]
    ForeignKey {
        /// The persistent handle.
        handle: u32,
        /// How the key there differs from what roomd needs.
        found: String,
    },
    /// The TPM answered with a type or encoding roomd does not expect.
    #[error("the TPM returned {what} in an unexpected form")]
    Unexpected {
        /// What was returned ("a signature").
        what: &'static str,
    },
    /// No attestation key could be made when the TPM was opened, so no quote or credential
    /// activation is possible.
    #[error("attestation is unavailable on this TPM (see the log from roomd's start)")]
    NoAttestation,
    /// Too many handshake signatures are queued for the TPM thread; this one was refused.
    #[error(
        "the TPM is busy: {waiting} TLS handshake signatures are already waiting, so this \
         handshake is refused (many new connections at once; returning clients resume without \
         a signature)"
    )]
    Busy {
        /// Handshake signatures already waiting.
        waiting: usize,
    },
    /// The thread that owns the TPM context has exited; no TPM operation works until restart.
    #[error("the TPM thread has stopped; roomd must be restarted")]
    ThreadGone,
    /// The operating system refused to start the TPM thread.
    #[error("cannot start the TPM thread: {0}")]
    Spawn(std::io::Error),
}
