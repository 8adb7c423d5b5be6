//! What can go wrong talking to Janus, each with enough context to act on. Nothing the server
//! wrote (bodies, error reasons) goes into a message: messages reach status, which every role
//! reads, and the room's panel.

use crate::meeting::https::HttpsError;

#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    #[error(transparent)]
    Http(#[from] HttpsError),
    #[error("{url} answered HTTP {status} to a Janus request")]
    Status { url: String, status: u16 },
    #[error("the answer of {url} is not JSON ({reason})")]
    NotJson { url: String, reason: String },
    #[error("the answer of {url} is not a Janus message: {problem}")]
    Malformed { url: String, problem: String },
    #[error("Janus' answer to {request:?} is not what the VideoRoom sends: {problem}")]
    BadAnswer { request: String, problem: String },
    #[error("{url} answered another kind of message where Janus answers {expected:?}")]
    Unexpected { url: String, expected: &'static str },
    #[error("{url} answered with another transaction than ours")]
    TransactionMismatch { url: String },
    #[error("the Janus VideoRoom has no room {room} (Janus error 426)")]
    NoSuchRoom { room: u64 },
    #[error(
        "the Janus VideoRoom refused to let us into room {room}: wrong or missing PIN (Janus error 433)"
    )]
    Unauthorized { room: u64 },
    #[error("the Janus session is gone (Janus error 458); it timed out or the server restarted")]
    SessionNotFound,
    #[error("Janus error {code}")]
    Janus { code: i64 },
    #[error("the Janus VideoRoom refused {request:?}: error {code}")]
    VideoRoom { request: String, code: i64 },
    #[error("Janus did not answer {request:?} within {seconds} s")]
    NoAnswer { request: String, seconds: u64 },
    #[error("the Janus event stream of this session has ended: {reason}")]
    StreamEnded { reason: String },
    #[error("the Janus session timed out on the server")]
    SessionTimedOut,
}
