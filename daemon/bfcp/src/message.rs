//! BFCP messages (RFC 8855 §5.1 and §5.3): the 12-octet common header and a list of
//! attributes.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Ver |R|F| Res |  Primitive    |        Payload Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Conference ID                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Transaction ID        |            User ID            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The payload length counts 4-octet units after the header. Fragments (F bit, over UDP) are
//! refused with [`DecodeError::Fragmented`].

use std::fmt;

use crate::attribute::{
    Attribute, ErrorCode, LAST_KNOWN_KIND, RequestStatus, decode_attributes, encode_attributes,
};
use crate::error::{DecodeError, EncodeError};

/// Octets of the common header (without the fragment fields, which this crate refuses).
pub const HEADER_LEN: usize = 12;
/// The largest message the decoder takes, in octets. Floor control messages are a few dozen
/// octets; this bounds what one message from the far end may make us allocate.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// The most attributes, nested ones included, the decoder takes in one message.
pub const MAX_ATTRIBUTES: usize = 256;
/// The most levels of attributes the decoder takes: a top-level attribute is on level 1, one
/// inside a grouped attribute on level 2. RFC 8855's deepest is level 3 (REQUEST-STATUS in
/// FLOOR-REQUEST-STATUS in FLOOR-REQUEST-INFORMATION).
pub const MAX_NESTING: usize = 4;

/// The protocol version, which also says the kind of transport (RFC 8855 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// 1: over a reliable transport (TCP, TLS).
    V1 = 1,
    /// 2: over an unreliable transport (UDP, DTLS); messages carry the R and F bits.
    V2 = 2,
}

/// A BFCP primitive (RFC 8855 §5.1, the message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// 1: a participant asks for floors.
    FloorRequest = 1,
    /// 2: a participant gives back (or withdraws) a floor request.
    FloorRelease = 2,
    /// 3: a participant asks about a floor request.
    FloorRequestQuery = 3,
    /// 4: the server tells the status of a floor request.
    FloorRequestStatus = 4,
    /// 5: a participant asks about a user's floor requests.
    UserQuery = 5,
    /// 6: the server tells a user's floor requests.
    UserStatus = 6,
    /// 7: a participant asks to be told about floors.
    FloorQuery = 7,
    /// 8: the server tells the state of a floor.
    FloorStatus = 8,
    /// 9: a chair decides on a floor request.
    ChairAction = 9,
    /// 10: the server confirms a ChairAction.
    ChairActionAck = 10,
    /// 11: either side checks the other is there.
    Hello = 11,
    /// 12: the answer to Hello, with what the sender supports.
    HelloAck = 12,
    /// 13: a request could not be carried out.
    Error = 13,
    /// 14: acknowledges a FloorRequestStatus the server sent of its own (unreliable transports).
    FloorRequestStatusAck = 14,
    /// 15: acknowledges a FloorStatus the server sent of its own (unreliable transports).
    FloorStatusAck = 15,
    /// 16: the sender leaves the conference.
    Goodbye = 16,
    /// 17: the answer to Goodbye.
    GoodbyeAck = 17,
}

impl Primitive {
    /// Every primitive, in the order of their values.
    pub const ALL: [Primitive; 17] = [
        Primitive::FloorRequest,
        Primitive::FloorRelease,
        Primitive::FloorRequestQuery,
        Primitive::FloorRequestStatus,
        Primitive::UserQuery,
        Primitive::UserStatus,
        Primitive::FloorQuery,
        Primitive::FloorStatus,
        Primitive::ChairAction,
        Primitive::ChairActionAck,
        Primitive::Hello,
        Primitive::HelloAck,
        Primitive::Error,
        Primitive::FloorRequestStatusAck,
        Primitive::FloorStatusAck,
        Primitive::Goodbye,
        Primitive::GoodbyeAck,
    ];

    /// The primitive with this value, if RFC 8855 defines it.
    pub fn from_value(value: u8) -> Option<Primitive> {
        let index = usize::from(value).checked_sub(1)?;
        Primitive::ALL.get(index).copied()
    }

    /// Whether `answer` is what RFC 8855 sends back for a request of this primitive (an Error
    /// answers anything).
    pub fn is_answered_by(self, answer: Primitive) -> bool {
        use Primitive::*;
        answer == Error
            || matches!(
                (self, answer),
                (
                    FloorRequest | FloorRelease | FloorRequestQuery,
                    FloorRequestStatus
                ) | (UserQuery, UserStatus)
                    | (FloorQuery, FloorStatus)
                    | (ChairAction, ChairActionAck)
                    | (Hello, HelloAck)
                    | (FloorRequestStatus, FloorRequestStatusAck)
                    | (FloorStatus, FloorStatusAck)
                    | (Goodbye, GoodbyeAck)
            )
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The common header, without the payload length (which encoding computes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Ver.
    pub version: Version,
    /// R: set in an answer (a response or an acknowledgement) over an unreliable transport.
    pub responder: bool,
    /// The message type.
    pub primitive: Primitive,
    /// The conference (`a=confid` in SDP).
    pub conference_id: u32,
    /// Pairs a request with its answer. 0 only for what the server sends of its own over a
    /// reliable transport.
    pub transaction_id: u16,
    /// The participant (`a=userid` in SDP).
    pub user_id: u16,
}

/// One BFCP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its common header.
    pub header: Header,
    /// Its attributes, in order.
    pub attributes: Vec<Attribute>,
}

impl Message {
    /// The octets on the wire: header, attributes, padding.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&[0; HEADER_LEN]);
        encode_attributes(&self.attributes, &mut out, 0, &mut 0)?;
        if out.len() > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLarge {
                length: out.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let units = (out.len() - HEADER_LEN) / 4;
        let units = u16::try_from(units).map_err(|_| EncodeError::TooLarge {
            length: out.len(),
            max: MAX_MESSAGE_LEN,
        })?;
        let header = &self.header;
        out[0] = ((header.version as u8) << 5) | (u8::from(header.responder) << 4);
        out[1] = header.primitive as u8;
        out[2..4].copy_from_slice(&units.to_be_bytes());
        out[4..8].copy_from_slice(&header.conference_id.to_be_bytes());
        out[8..10].copy_from_slice(&header.transaction_id.to_be_bytes());
        out[10..12].copy_from_slice(&header.user_id.to_be_bytes());
        Ok(out)
    }

    /// Reads exactly one message from `bytes` (a UDP datagram, or one frame cut from a stream
    /// by [`message_length`]). Never panics; every problem is a [`DecodeError`].
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge {
                length: bytes.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let Some(fixed) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::TruncatedHeader {
                length: bytes.len(),
            });
        };
        let version = match fixed[0] >> 5 {
            1 => Version::V1,
            2 => Version::V2,
            version => return Err(DecodeError::UnsupportedVersion { version }),
        };
        if fixed[0] & 0x08 != 0 {
            return Err(DecodeError::Fragmented);
        }
        let primitive = Primitive::from_value(fixed[1]).ok_or(DecodeError::UnknownPrimitive {
            primitive: fixed[1],
        })?;
        let declared = usize::from(u16::from_be_bytes([fixed[2], fixed[3]])) * 4;
        let actual = bytes.len() - HEADER_LEN;
        if declared != actual {
            return Err(DecodeError::LengthMismatch { declared, actual });
        }
        let header = Header {
            version,
            responder: fixed[0] & 0x10 != 0,
            primitive,
            conference_id: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            transaction_id: u16::from_be_bytes([fixed[8], fixed[9]]),
            user_id: u16::from_be_bytes([fixed[10], fixed[11]]),
        };
        let attributes = decode_attributes(bytes, HEADER_LEN, bytes.len(), 0, &mut 0)?;
        Ok(Message { header, attributes })
    }

    /// The first top-level attribute `pick` accepts.
    pub fn find<T>(&self, pick: impl Fn(&Attribute) -> Option<T>) -> Option<T> {
        self.attributes.iter().find_map(pick)
    }

    /// Every top-level FLOOR-ID.
    pub fn floor_ids(&self) -> Vec<u16> {
        self.attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::FloorId(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// The top-level FLOOR-REQUEST-ID, if any.
    pub fn floor_request_id(&self) -> Option<u16> {
        self.find(|a| match a {
            Attribute::FloorRequestId(id) => Some(*id),
            _ => None,
        })
    }

    /// The ERROR-CODE and ERROR-INFO of an Error message.
    pub fn error(&self) -> Option<(ErrorCode, Option<String>)> {
        let code = self.find(|a| match a {
            Attribute::ErrorCode { code, .. } => Some(*code),
            _ => None,
        })?;
        let info = self.find(|a| match a {
            Attribute::ErrorInfo(text) => Some(text.clone()),
            _ => None,
        });
        Some((code, info))
    }

    /// The types of unknown attributes whose M bit is set, anywhere in the message: RFC 8855
    /// has the receiver refuse such a message (error 4) naming them.
    pub fn unknown_mandatory(&self) -> Vec<u8> {
        fn walk(attributes: &[Attribute], found: &mut Vec<u8>) {
            for attribute in attributes {
                match attribute {
                    Attribute::Unknown {
                        kind,
                        mandatory: true,
                        ..
                    } if *kind > LAST_KNOWN_KIND || *kind == 0 => found.push(*kind),
                    _ => walk(attribute.inner(), found),
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.attributes, &mut found);
        found
    }

    /// The status of a request as REQUEST-STATUS inside `attributes` says, with its queue
    /// position.
    pub(crate) fn request_status_in(attributes: &[Attribute]) -> Option<(RequestStatus, u8)> {
        attributes.iter().find_map(|a| match a {
            Attribute::RequestStatus {
                status,
                queue_position,
            } => Some((*status, *queue_position)),
            _ => None,
        })
    }
}

/// For a stream transport: how many octets the message starting at `prefix[0]` has, once the
/// first four octets are there (`Ok(None)` before). Fragments and messages larger than
/// [`MAX_MESSAGE_LEN`] are errors: the stream cannot be read on after them.
pub fn message_length(prefix: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(start) = prefix.first_chunk::<4>() else {
        return Ok(None);
    };
    if start[0] & 0x08 != 0 {
        return Err(DecodeError::Fragmented);
    }
    let length = HEADER_LEN + usize::from(u16::from_be_bytes([start[2], start[3]])) * 4;
    if length > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLarge {
            length,
            max: MAX_MESSAGE_LEN,
        });
    }
    Ok(Some(length))
}

/// Conference ID, transaction ID, user ID and version of whatever `bytes` starts with, for
/// answering a message that could not be decoded with an Error.
pub(crate) fn peek_header(bytes: &[u8]) -> Option<(u8, u32, u16, u16)> {
    let fixed = bytes.first_chunk::<HEADER_LEN>()?;
    Some((
        fixed[0] >> 5,
        u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        u16::from_be_bytes([fixed[8], fixed[9]]),
        u16::from_be_bytes([fixed[10], fixed[11]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: Version, primitive: Primitive) -> Header {
        Header {
            version,
            responder: false,
            primitive,
            conference_id: 0x0102_0304,
            transaction_id: 0x0506,
            user_id: 0x0708,
        }
    }

    fn round_trip(message: &Message, wire: &[u8]) {
        assert_eq!(message.encode().expect("encodes"), wire);
        assert_eq!(&Message::decode(wire).expect("decodes"), message);
    }

    /// A Hello is the common header alone (RFC 8855 §5.3.11): Ver 1, R and F clear,
    /// primitive 11, payload length 0.
    #[test]
    fn hello_is_the_bare_common_header() {
        let message = Message {
            header: header(Version::V1, Primitive::Hello),
            attributes: vec![],
        };
        round_trip(
            &message,
            &[
                0x20, 0x0b, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
            ],
        );
    }

    /// Over UDP: Ver 2, and the R bit in an answer (HelloAck with the two lists it must carry,
    /// RFC 8855 §5.3.12). SUPPORTED-ATTRIBUTES puts each type in the upper seven bits; both
    /// lists are padded to four octets.
    #[test]
    fn hello_ack_over_udp_carries_the_r_bit_and_padded_lists() {
        let mut h = header(Version::V2, Primitive::HelloAck);
        h.responder = true;
        let message = Message {
            header: h,
            attributes: vec![
                Attribute::SupportedPrimitives(vec![1, 2, 11]),
                Attribute::SupportedAttributes(vec![2, 3]),
            ],
        };
        round_trip(
            &message,
            &[
                0x50, 0x0c, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
                // SUPPORTED-PRIMITIVES (11 << 1), length 5, then three octets of padding
                0x16, 0x05, 0x01, 0x02, 0x0b, 0x00, 0x00, 0x00, //
                // SUPPORTED-ATTRIBUTES (10 << 1), length 4: FLOOR-ID 2 << 1, FLOOR-REQUEST-ID
                0x14, 0x04, 0x04, 0x06,
            ],
        );
    }

    /// FloorRequest for floor 1 with PRIORITY normal (RFC 8855 §5.3.1, §5.2.2, §5.2.4).
    #[test]
    fn floor_request_with_floor_id_and_priority() {
        let message = Message {
            header: header(Version::V1, Primitive::FloorRequest),
            attributes: vec![Attribute::FloorId(1), Attribute::Priority(2)],
        };
        round_trip(
            &message,
            &[
                0x20, 0x01, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
                0x04, 0x04, 0x00, 0x01, // FLOOR-ID 1
                0x08, 0x04, 0x40, 0x00, // PRIORITY 2 in the top three bits
            ],
        );
    }

    /// FloorRequestStatus with the grouped FLOOR-REQUEST-INFORMATION of RFC 8855 §5.3.4: the
    /// group's length counts the attributes inside it, padding included.
    #[test]
    fn floor_request_status_nests_grouped_attributes() {
        let message = Message {
            header: header(Version::V1, Primitive::FloorRequestStatus),
            attributes: vec![Attribute::FloorRequestInformation {
                floor_request_id: 0x0042,
                attributes: vec![
                    Attribute::OverallRequestStatus {
                        floor_request_id: 0x0042,
                        attributes: vec![
                            Attribute::RequestStatus {
                                status: RequestStatus::Granted,
                                queue_position: 0,
                            },
                            Attribute::StatusInfo("ok".to_owned()),
                        ],
                    },
                    Attribute::FloorRequestStatus {
                        floor_id: 1,
                        attributes: vec![],
                    },
                ],
            }],
        };
        round_trip(
            &message,
            &[
                0x20, 0x04, 0x00, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
                0x1e, 0x14, 0x00, 0x42, // FLOOR-REQUEST-INFORMATION, 20 octets
                0x24, 0x0c, 0x00, 0x42, // OVERALL-REQUEST-STATUS, 12 octets
                0x0a, 0x04, 0x03, 0x00, // REQUEST-STATUS Granted, queue position 0
                0x12, 0x04, b'o', b'k', // STATUS-INFO "ok" (4 octets, no padding)
                0x22, 0x04, 0x00, 0x01, // FLOOR-REQUEST-STATUS floor 1
            ],
        );
    }

    /// Error with ERROR-CODE 4 naming an unknown attribute type, and ERROR-INFO padded
    /// (RFC 8855 §5.3.13, §5.2.6).
    #[test]
    fn error_with_code_details_and_padded_info() {
        let mut h = header(Version::V2, Primitive::Error);
        h.responder = true;
        let message = Message {
            header: h,
            attributes: vec![
                Attribute::ErrorCode {
                    code: ErrorCode::UNKNOWN_MANDATORY_ATTRIBUTE,
                    details: vec![40 << 1],
                },
                Attribute::ErrorInfo("why".to_owned()),
            ],
        };
        round_trip(
            &message,
            &[
                0x50, 0x0d, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
                0x0c, 0x04, 0x04, 0x50, // ERROR-CODE 4, details: type 40
                0x0e, 0x05, b'w', b'h', b'y', 0x00, 0x00, 0x00, // ERROR-INFO, padded
            ],
        );
    }

    #[test]
    fn unknown_attributes_keep_their_m_bit_and_are_reported_when_mandatory() {
        let wire = [
            0x20, 0x01, 0x00, 0x02, 0, 0, 0, 1, 0, 1, 0, 1, //
            0x04, 0x04, 0x00, 0x01, // FLOOR-ID 1
            0x51, 0x03, 0xaa, 0x00, // type 40, M set, one octet
        ];
        let message = Message::decode(&wire).expect("decodes");
        assert_eq!(
            message.attributes[1],
            Attribute::Unknown {
                kind: 40,
                mandatory: true,
                contents: vec![0xaa]
            }
        );
        assert_eq!(message.unknown_mandatory(), vec![40]);
        assert_eq!(message.encode().expect("encodes"), wire);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            Message::decode(&[0x20, 0x0b, 0]),
            Err(DecodeError::TruncatedHeader { length: 3 })
        );
        assert_eq!(
            Message::decode(&[0x60, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnsupportedVersion { version: 3 })
        );
        assert_eq!(
            Message::decode(&[0x48, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Fragmented)
        );
        assert_eq!(
            Message::decode(&[0x20, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnknownPrimitive { primitive: 99 })
        );
        assert_eq!(
            Message::decode(&[0x20, 0x0b, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 1]),
            Err(DecodeError::LengthMismatch {
                declared: 8,
                actual: 4
            })
        );
        // FLOOR-ID with length 6
        let bad_length = [
            0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x06, 0, 1, 0, 0, 0, 0,
        ];
        let error = Message::decode(&bad_length).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "attribute FLOOR-ID at offset 12 has length 6, expected 4"
        );
        // a STATUS-INFO that claims more octets than the message has
        let overrun = [
            0x20, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x09, b'a', b'b',
        ];
        assert_eq!(
            Message::decode(&overrun),
            Err(DecodeError::AttributeOverrun {
                kind: 9,
                offset: 12,
                length: 9,
                available: 4
            })
        );
        // REQUEST-STATUS 9
        let status = [0x20, 0x04, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0x04, 9, 0];
        assert_eq!(
            Message::decode(&status),
            Err(DecodeError::UnknownRequestStatus {
                offset: 12,
                value: 9
            })
        );
    }

    #[test]
    fn nesting_and_counts_are_bounded() {
        // Five FLOOR-REQUEST-INFORMATION inside one another: level 5.
        let mut inner = Vec::new();
        for _ in 0..5 {
            inner = vec![Attribute::FloorRequestInformation {
                floor_request_id: 1,
                attributes: inner,
            }];
        }
        let message = Message {
            header: header(Version::V1, Primitive::FloorRequestStatus),
            attributes: inner,
        };
        assert_eq!(
            message.encode(),
            Err(EncodeError::NestingTooDeep { max: MAX_NESTING })
        );
        // The same octets, written by hand, are refused by the decoder.
        let mut wire = vec![0x20, 0x04, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
        for level in 0..5u8 {
            wire.extend_from_slice(&[0x1e, 20 - 4 * level, 0, 1]);
        }
        assert_eq!(
            Message::decode(&wire),
            Err(DecodeError::NestingTooDeep {
                offset: 28,
                max: MAX_NESTING
            })
        );
        let many = Message {
            header: header(Version::V1, Primitive::FloorQuery),
            attributes: vec![Attribute::FloorId(1); MAX_ATTRIBUTES + 1],
        };
        assert_eq!(
            many.encode(),
            Err(EncodeError::TooManyAttributes {
                max: MAX_ATTRIBUTES
            })
        );
    }

    #[test]
    fn attribute_lengths_are_bounded_by_their_octet() {
        let message = Message {
            header: header(Version::V1, Primitive::FloorRequest),
            attributes: vec![Attribute::ParticipantProvidedInfo("x".repeat(254))],
        };
        assert_eq!(
            message.encode(),
            Err(EncodeError::AttributeTooLong {
                kind: 8,
                length: 256
            })
        );
    }

    #[test]
    fn stream_framing_reads_the_length_field() {
        assert_eq!(message_length(&[0x20, 0x01, 0x00]), Ok(None));
        assert_eq!(message_length(&[0x20, 0x01, 0x00, 0x02]), Ok(Some(20)));
        assert_eq!(
            message_length(&[0x20, 0x01, 0xff, 0xff]),
            Err(DecodeError::TooLarge {
                length: 12 + 4 * 0xffff,
                max: MAX_MESSAGE_LEN
            })
        );
    }
}
