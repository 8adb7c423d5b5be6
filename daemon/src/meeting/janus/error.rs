//! What can go wrong talking to Janus, each with enough context to act on.

use crate::meeting::https::HttpsError;

#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    #[error(transparent)]
    Http(#[from] HttpsError),
    #[error("{url} answered HTTP {status} to a Janus request: {excerpt}")]
    Status {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("the answer of {url} is not JSON ({reason}): {excerpt}")]
    NotJson {
        url: String,
        reason: String,
        excerpt: String,
    },
    #[error("the answer of {url} is not a Janus message: {problem}")]
    Malformed { url: String, problem: String },
    #[error("Janus' answer to {request:?} is not what the VideoRoom sends: {problem}")]
    BadAnswer { request: String, problem: String },
    #[error("{url} answered {got:?} where Janus answers {expected:?}")]
    Unexpected {
        url: String,
        expected: &'static str,
        got: String,
    },
    #[error("{url} answered transaction {got:?} to our transaction {sent:?}")]
    TransactionMismatch {
        url: String,
        sent: String,
        got: String,
    },
    #[error("the Janus VideoRoom has no room {room} (Janus error 426)")]
    NoSuchRoom { room: u64 },
    #[error(
        "the Janus VideoRoom refused to let us into room {room}: wrong or missing PIN (Janus error 433)"
    )]
    Unauthorized { room: u64 },
    #[error(
        "the Janus session is gone (Janus error 458: {reason}); it timed out or the server restarted"
    )]
    SessionNotFound { reason: String },
    #[error("Janus error {code}: {reason}")]
    Janus { code: i64, reason: String },
    #[error("the Janus VideoRoom refused {request:?}: error {code}: {reason}")]
    VideoRoom {
        request: String,
        code: i64,
        reason: String,
    },
    #[error("Janus did not answer {request:?} within {seconds} s")]
    NoAnswer { request: String, seconds: u64 },
    #[error("the Janus event stream of this session has ended: {reason}")]
    StreamEnded { reason: String },
    #[error("the Janus session timed out on the server")]
    SessionTimedOut,
}
