//! What can go wrong with the TPM, said so that the person reading the log can act on it.

#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("{tcti:?} is not a TCTI roomd understands ({source}); use e.g. device:/dev/tpmrm0")]
    BadTcti {
        tcti: String,
        source: tss_esapi::Error,
    },
    #[error("cannot open TCTI {tcti:?} (identity.tcti): {source}")]
    Open {
        tcti: String,
        source: tss_esapi::Error,
    },
    #[error("the TPM refused to {action}: {source}")]
    Command {
        action: &'static str,
        source: tss_esapi::Error,
    },
    #[error(
        "persistent handle {handle:#010x} holds a key that is not a P-256 signing key ({found}); \
         roomd will not overwrite it: evict it (tpm2_evictcontrol -c {handle:#010x}) if it is \
         not needed"
    )]
    ForeignKey { handle: u32, found: String },
    #[error("the TPM returned {what} in an unexpected form")]
    Unexpected { what: &'static str },
    #[error("attestation is unavailable on this TPM (see the log from roomd's start)")]
    NoAttestation,
    #[error(
        "the TPM is busy: {waiting} TLS handshake signatures are already waiting, so this \
         handshake is refused (many new connections at once; returning clients resume without \
         a signature)"
    )]
    Busy { waiting: usize },
    #[error("the TPM thread has stopped; roomd must be restarted")]
    ThreadGone,
    #[error("cannot start the TPM thread: {0}")]
    Spawn(std::io::Error),
}
