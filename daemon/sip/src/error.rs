//! What can go wrong with the SIP account, in words an administrator can act on.

/// An error of the SIP account. Never carries the password.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// `[sip]` lacks something registration needs.
    #[error("{0}")]
    Setup(String),
    /// `sip.ca_file` cannot be read or holds no certificate.
    #[error("cannot use sip.ca_file {path}: {reason}")]
    CaFile {
        /// The configured path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached, or its TLS handshake failed (its certificate included).
    #[error("cannot reach {server}: {reason}")]
    Unreachable {
        /// `sips:host:port` of the server.
        server: String,
        /// The transport's or TLS library's reason.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("{server} did not answer within {seconds} s")]
    Timeout {
        /// `sips:host:port` of the server.
        server: String,
        /// How long the room waited.
        seconds: u64,
    },
    /// The registrar answered with a final failure.
    #[error("{server} refused the registration: {status}{hint}")]
    Refused {
        /// `sips:host:port` of the server.
        server: String,
        /// The SIP status line's code and phrase.
        status: String,
        /// What the status usually means for the account.
        hint: &'static str,
    },
    /// The room is not registered: it has no connection to call or answer over.
    #[error("the room is not registered with its SIP registrar (see status.sip)")]
    NotRegistered,
    /// `meeting.answer` came after the call stopped ringing.
    #[error("the call no longer rings (the caller hung up, or it was not answered in time)")]
    NotRinging,
    /// The far end's SDP is not acceptable.
    #[error(transparent)]
    Sdp(#[from] crate::sdp::SdpError),
    /// The call's media pipeline does not start.
    #[error("the call's media does not start: {0}")]
    Media(String),
    /// A SIP message could not be sent.
    #[error("cannot send the {what}: {reason}")]
    Signalling {
        /// Which message.
        what: &'static str,
        /// rsipstack's reason.
        reason: String,
    },
}

impl SipError {
    /// Whether another server may do better (failover): the server is down or unreachable,
    /// not the account refused.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SipError::Unreachable { .. } | SipError::Timeout { .. }
        )
    }
}
