//! What can go wrong talking to Janus, each with enough context to act on. Nothing the server
//! wrote (bodies, error reasons) goes into a message: messages reach status, which every role
//! reads, and the room's panel.

use crate::https::HttpsError;

/// Why a request to Janus failed, or why its event stream stopped. Every `url` is redacted
/// (no credentials, query or fragment).
#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    /// The HTTPS request itself failed (connection, TLS, timeout, size).
    #[error(transparent)]
    Http(#[from] HttpsError),
    /// The server answered with an HTTP status other than 200 and no Janus error in the body.
    #[error("{url} answered HTTP {status} to a Janus request")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body is not JSON.
    #[error("the answer of {url} is not JSON ({reason})")]
    NotJson {
        /// The endpoint.
        url: String,
        /// The JSON parser's error.
        reason: String,
    },
    /// The JSON is not a Janus envelope: a field is missing or of the wrong type.
    #[error("the answer of {url} is not a Janus message: {problem}")]
    Malformed {
        /// The endpoint.
        url: String,
        /// Which field, and what is wrong with it.
        problem: String,
    },
    /// A VideoRoom answer lacks plugin data or a field the request needs.
    #[error("Janus' answer to {request:?} is not what the VideoRoom sends: {problem}")]
    BadAnswer {
        /// The VideoRoom request (`join`, `configure`, ...).
        request: String,
        /// Which field, and what is wrong with it.
        problem: String,
    },
    /// The answer's `janus` kind is not the one this request gets (e.g. not `ack`).
    #[error("{url} answered another kind of message where Janus answers {expected:?}")]
    Unexpected {
        /// The endpoint.
        url: String,
        /// The kind expected.
        expected: &'static str,
    },
    /// The answer carries another transaction id than the request.
    #[error("{url} answered with another transaction than ours")]
    TransactionMismatch {
        /// The endpoint.
        url: String,
    },
    /// VideoRoom error 426: the configured room does not exist.
    #[error("the Janus VideoRoom has no room {room} (Janus error 426)")]
    NoSuchRoom {
        /// The room asked for.
        room: u64,
    },
    /// VideoRoom error 433 (or 429 for a missing PIN): wrong or missing room PIN.
    #[error(
        "the Janus VideoRoom refused to let us into room {room}: wrong or missing PIN (Janus error 433)"
    )]
    Unauthorized {
        /// The room asked for.
        room: u64,
    },
    /// Janus error 458: the session no longer exists on the server.
    #[error("the Janus session is gone (Janus error 458); it timed out or the server restarted")]
    SessionNotFound,
    /// Any other Janus core error (0 when the error message carries no code).
    #[error("Janus error {code}")]
    Janus {
        /// Janus' error code.
        code: i64,
    },
    /// Any other VideoRoom error.
    #[error("the Janus VideoRoom refused {request:?}: error {code}")]
    VideoRoom {
        /// The VideoRoom request.
        request: String,
        /// The plugin's `error_code`.
        code: i64,
    },
    /// An acknowledged request got no answer on the event stream in time.
    #[error("Janus did not answer {request:?} within {seconds} s")]
    NoAnswer {
        /// The request.
        request: String,
        /// How long was waited.
        seconds: u64,
    },
    /// The session's long poll stopped; no further answers or events arrive.
    #[error("the Janus event stream of this session has ended: {reason}")]
    StreamEnded {
        /// Why it stopped.
        reason: String,
    },
    /// The server expired the session (no keep-alive in time).
    #[error("the Janus session timed out on the server")]
    SessionTimedOut,
}
