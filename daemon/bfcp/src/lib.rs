//! BFCP, the Binary Floor Control Protocol (RFC 8855), for sharing content in SIP calls the
//! way room systems do: the content is a second video stream, and whoever sends it holds the
//! floor of that stream (RFC 8856 ties the floor to the stream in SDP with `a=floorid` and
//! `a=label`).
//!
//! This is the codec: [`Message`] (common header of Ver 1 and Ver 2 with the R bit, every
//! primitive of RFC 8855) and [`Attribute`] (every attribute of RFC 8855, grouped ones with
//! their inner attributes; unknown ones kept with their M bit), encoded with padding and
//! decoded within bounds ([`MAX_MESSAGE_LEN`], [`MAX_ATTRIBUTES`], [`MAX_NESTING`]). The
//! decoder never panics; everything it refuses is a [`DecodeError`] that says what and where.
//! [`message_length`] cuts messages from a stream. Fragmented messages (F bit) are refused
//! ([`DecodeError::Fragmented`]).

mod attribute;
mod error;
mod message;

pub use attribute::{Attribute, ErrorCode, RequestStatus};
pub use error::{DecodeError, EncodeError};
pub use message::{
    HEADER_LEN, Header, MAX_ATTRIBUTES, MAX_MESSAGE_LEN, MAX_NESTING, Message, Primitive, Version,
    message_length,
};
