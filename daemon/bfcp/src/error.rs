//! What can go wrong: reading a message off the wire ([`DecodeError`]), writing one
//! ([`EncodeError`]), and running a floor control session ([`SessionError`]). Each variant says
//! where and what, so that a log line is enough to see which side sent what.

use std::time::Duration;

use crate::attribute::{ErrorCode, attribute_name};
use crate::message::Primitive;

/// Why a sequence of octets is not a BFCP message this crate accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer octets than the common header.
    #[error("a message of {length} octets is shorter than the 12-octet common header")]
    TruncatedHeader {
        /// Octets received.
        length: usize,
    },
    /// More octets than the decoder takes (see [`crate::MAX_MESSAGE_LEN`]).
    #[error("a message of {length} octets is larger than the {max} octets accepted")]
    TooLarge {
        /// Octets the message has, or would have by its length field.
        length: usize,
        /// The bound.
        max: usize,
    },
    /// The Ver field is neither 1 (reliable transports) nor 2 (unreliable transports).
    #[error("protocol version {version} is not 1 or 2")]
    UnsupportedVersion {
        /// The Ver field.
        version: u8,
    },
    /// The F bit is set: a fragment of a larger message (RFC 8855 over UDP), which this crate
    /// does not reassemble.
    #[error("fragmented messages (F bit set) are not supported")]
    Fragmented,
    /// A primitive RFC 8855 does not define.
    #[error("unknown primitive {primitive}")]
    UnknownPrimitive {
        /// The Primitive field.
        primitive: u8,
    },
    /// The Payload Length field and the octets received disagree.
    #[error("the payload length field says {declared} octets but {actual} follow the header")]
    LengthMismatch {
        /// Octets after the header according to the length field.
        declared: usize,
        /// Octets after the header received.
        actual: usize,
    },
    /// Fewer than two octets left where an attribute header should be.
    #[error("truncated attribute header at offset {offset}: {available} octet(s) left")]
    TruncatedAttribute {
        /// Offset from the start of the message.
        offset: usize,
        /// Octets left in the enclosing message or grouped attribute.
        available: usize,
    },
    /// An attribute's Length field is not one its type allows.
    #[error(
        "attribute {} at offset {offset} has length {length}, {expected}",
        attribute_name(*kind)
    )]
    AttributeLength {
        /// The attribute type.
        kind: u8,
        /// Offset from the start of the message.
        offset: usize,
        /// Its Length field.
        length: u8,
        /// What the type allows, e.g. "expected 4".
        expected: &'static str,
    },
    /// An attribute's Length field runs past the message or the grouped attribute around it.
    #[error(
        "attribute {} at offset {offset} says {length} octets but only {available} remain",
        attribute_name(*kind)
    )]
    AttributeOverrun {
        /// The attribute type.
        kind: u8,
        /// Offset from the start of the message.
        offset: usize,
        /// Its Length field.
        length: u8,
        /// Octets left in the enclosing message or grouped attribute.
        available: usize,
    },
    /// A REQUEST-STATUS value RFC 8855 does not define.
    #[error("REQUEST-STATUS at offset {offset} has request status {value}, not 1 to 7")]
    UnknownRequestStatus {
        /// Offset of the attribute from the start of the message.
        offset: usize,
        /// The Request Status field.
        value: u8,
    },
    /// More attributes, nested ones included, than the decoder takes.
    #[error("more than {max} attributes in one message")]
    TooManyAttributes {
        /// The bound (see [`crate::MAX_ATTRIBUTES`]).
        max: usize,
    },
    /// Grouped attributes nested deeper than the decoder takes.
    #[error("attribute at offset {offset} is nested more than {max} levels deep")]
    NestingTooDeep {
        /// Offset of the too deep attribute.
        offset: usize,
        /// The bound (see [`crate::MAX_NESTING`]).
        max: usize,
    },
}

/// Why a typed message cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// An attribute would not fit its 8-bit Length field.
    #[error(
        "attribute {} would be {length} octets, more than the 255 its length field holds",
        attribute_name(*kind)
    )]
    AttributeTooLong {
        /// The attribute type.
        kind: u8,
        /// Its length without padding.
        length: usize,
    },
    /// A field value does not fit its bits.
    #[error("{what} {value} does not fit: at most {max}")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// The value given.
        value: u32,
        /// The largest value the field holds.
        max: u32,
    },
    /// An [`crate::Attribute::Unknown`] with the type of an attribute this crate knows: it would
    /// decode as that attribute, or not at all.
    #[error(
        "an unknown attribute cannot have type {kind} ({}): use the typed attribute",
        attribute_name(*kind)
    )]
    KnownKindAsUnknown {
        /// The attribute type.
        kind: u8,
    },
    /// The message would be larger than the decoder takes.
    #[error("the message would be {length} octets, more than the {max} accepted")]
    TooLarge {
        /// Octets it would have.
        length: usize,
        /// The bound (see [`crate::MAX_MESSAGE_LEN`]).
        max: usize,
    },
    /// More attributes than the decoder takes.
    #[error("more than {max} attributes in one message")]
    TooManyAttributes {
        /// The bound (see [`crate::MAX_ATTRIBUTES`]).
        max: usize,
    },
    /// Grouped attributes nested deeper than the decoder takes.
    #[error("grouped attributes nested more than {max} levels deep")]
    NestingTooDeep {
        /// The bound (see [`crate::MAX_NESTING`]).
        max: usize,
    },
}

/// Why a floor control session, or one of its operations, failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The socket or stream failed.
    #[error("BFCP transport: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The far end closed the stream (TCP or TLS).
    #[error("the far end closed the BFCP connection")]
    ConnectionClosed,
    /// A message on a stream could not be read: its framing cannot be trusted any longer.
    #[error("unreadable message on the BFCP stream: {0}")]
    Stream(#[source] DecodeError),
    /// No answer came in time.
    #[error("no answer to {primitive} after {transmissions} transmission(s) within {waited:?}")]
    Timeout {
        /// The request that went unanswered.
        primitive: Primitive,
        /// How often it was sent.
        transmissions: u32,
        /// How long the session waited in all.
        waited: Duration,
    },
    /// The far end answered with an Error message.
    #[error("the far end refused {primitive}: error {} ({}){}", code.0, code.name(),
        info.as_deref().map(|i| format!(": {i}")).unwrap_or_default())]
    Refused {
        /// The request it refused.
        primitive: Primitive,
        /// Its ERROR-CODE.
        code: ErrorCode,
        /// Its ERROR-INFO, if any.
        info: Option<String>,
    },
    /// The far end answered, but not with what RFC 8855 says it should.
    #[error("the far end answered {request} with {answer}, which says nothing about the floor")]
    UnexpectedAnswer {
        /// Our request.
        request: Primitive,
        /// Its answer.
        answer: Primitive,
    },
    /// Too many of our requests wait for answers at once.
    #[error("{max} BFCP requests already wait for answers")]
    Busy {
        /// The bound.
        max: usize,
    },
    /// One of our own messages could not be encoded (a bug: they are built by this crate).
    #[error("cannot encode our own message: {0}")]
    Encode(#[from] EncodeError),
    /// The session has ended (Goodbye, closed transport or [`crate::Participant::close`]); its
    /// events said why.
    #[error("the BFCP session has ended")]
    Ended,
}

impl SessionError {
    pub(crate) fn io(what: &'static str, source: std::io::Error) -> SessionError {
        SessionError::Io { what, source }
    }
}
