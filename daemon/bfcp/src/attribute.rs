//! BFCP attributes (RFC 8855 §5.2): a 7-bit type, the M ("mandatory") bit, an 8-bit length
//! that counts the two header octets and the contents but not the padding, and padding to a
//! multiple of four octets. Grouped attributes carry a 16-bit ID and then attributes of their
//! own, whose padding their length does count.

use crate::error::{DecodeError, EncodeError};
use crate::{MAX_ATTRIBUTES, MAX_NESTING};

/// What became of a floor request (REQUEST-STATUS, RFC 8855 §5.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    /// Waiting for a decision.
    Pending = 1,
    /// Accepted, to be granted when the floor is free.
    Accepted = 2,
    /// The floor is the requester's.
    Granted = 3,
    /// Refused.
    Denied = 4,
    /// Withdrawn by the requester before it was granted.
    Cancelled = 5,
    /// Given back by the requester after it was granted.
    Released = 6,
    /// Taken away by the floor control server after it was granted.
    Revoked = 7,
}

impl RequestStatus {
    /// The status with the given value, if RFC 8855 defines it.
    pub fn from_value(value: u8) -> Option<RequestStatus> {
        Some(match value {
            1 => RequestStatus::Pending,
            2 => RequestStatus::Accepted,
            3 => RequestStatus::Granted,
            4 => RequestStatus::Denied,
            5 => RequestStatus::Cancelled,
            6 => RequestStatus::Released,
            7 => RequestStatus::Revoked,
            _ => return None,
        })
    }

    /// Whether the request is over in this status (the requester holds and waits for nothing).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RequestStatus::Denied
                | RequestStatus::Cancelled
                | RequestStatus::Released
                | RequestStatus::Revoked
        )
    }
}

/// An ERROR-CODE value (RFC 8855 §5.2.6). Kept as a number so that codes registered after RFC
/// 8855 still decode; the constants name the ones it defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u8);

impl ErrorCode {
    /// 1: the conference ID is not one the server knows.
    pub const CONFERENCE_DOES_NOT_EXIST: ErrorCode = ErrorCode(1);
    /// 2: the user ID is not one the server knows.
    pub const USER_DOES_NOT_EXIST: ErrorCode = ErrorCode(2);
    /// 3: the primitive is not one the receiver handles.
    pub const UNKNOWN_PRIMITIVE: ErrorCode = ErrorCode(3);
    /// 4: attributes with the M bit the receiver does not know (their types in the details).
    pub const UNKNOWN_MANDATORY_ATTRIBUTE: ErrorCode = ErrorCode(4);
    /// 5: the sender may not do this.
    pub const UNAUTHORIZED_OPERATION: ErrorCode = ErrorCode(5);
    /// 6: the floor ID is not one of the conference's floors.
    pub const INVALID_FLOOR_ID: ErrorCode = ErrorCode(6);
    /// 7: the floor request ID is not one the server knows.
    pub const FLOOR_REQUEST_ID_DOES_NOT_EXIST: ErrorCode = ErrorCode(7);
    /// 8: too many ongoing floor requests for this floor.
    pub const MAX_FLOOR_REQUESTS_REACHED: ErrorCode = ErrorCode(8);
    /// 9: use TLS.
    pub const USE_TLS: ErrorCode = ErrorCode(9);
    /// 10: the message could not be parsed.
    pub const PARSE_ERROR: ErrorCode = ErrorCode(10);
    /// 11: use DTLS.
    pub const USE_DTLS: ErrorCode = ErrorCode(11);
    /// 12: the protocol version is not the one for this transport.
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(12);
    /// 13: the length field does not match the message.
    pub const INCORRECT_MESSAGE_LENGTH: ErrorCode = ErrorCode(13);
    /// 14: anything else.
    pub const GENERIC_ERROR: ErrorCode = ErrorCode(14);

    /// RFC 8855's name for the code, or "unknown error code".
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "Conference Does Not Exist",
            2 => "User Does Not Exist",
            3 => "Unknown Primitive",
            4 => "Unknown Mandatory Attribute",
            5 => "Unauthorized Operation",
            6 => "Invalid Floor ID",
            7 => "Floor Request ID Does Not Exist",
            8 => "Maximum Number of Ongoing Floor Requests Reached",
            9 => "Use TLS",
            10 => "Unable to Parse Message",
            11 => "Use DTLS",
            12 => "Unsupported Version",
            13 => "Incorrect Message Length",
            14 => "Generic Error",
            _ => "unknown error code",
        }
    }
}

/// One attribute, typed for every attribute RFC 8855 defines.
///
/// Known attributes are written with the M bit clear and their M bit is not kept when read:
/// every implementation understands them. Grouped attributes keep their inner attributes as a
/// list, in the order received, so that extensions and unusual orders survive a decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// BENEFICIARY-ID (1): the user a request is made for.
    BeneficiaryId(u16),
    /// FLOOR-ID (2).
    FloorId(u16),
    /// FLOOR-REQUEST-ID (3).
    FloorRequestId(u16),
    /// PRIORITY (4): 0 (lowest) to 4 (highest) in a 3-bit field.
    Priority(u8),
    /// REQUEST-STATUS (5): a request's status and its place in the queue (0: not queued).
    RequestStatus {
        /// The status.
        status: RequestStatus,
        /// Position in the floor's queue.
        queue_position: u8,
    },
    /// ERROR-CODE (6): the code and its error-specific details (for code 4, the unknown
    /// attribute types, one per octet, shifted left by one).
    ErrorCode {
        /// The code.
        code: ErrorCode,
        /// Error-specific details.
        details: Vec<u8>,
    },
    /// ERROR-INFO (7): text for a person.
    ErrorInfo(String),
    /// PARTICIPANT-PROVIDED-INFO (8): text from the requester.
    ParticipantProvidedInfo(String),
    /// STATUS-INFO (9): text about a status.
    StatusInfo(String),
    /// SUPPORTED-ATTRIBUTES (10): attribute types (7-bit values).
    SupportedAttributes(Vec<u8>),
    /// SUPPORTED-PRIMITIVES (11): primitive values.
    SupportedPrimitives(Vec<u8>),
    /// USER-DISPLAY-NAME (12).
    UserDisplayName(String),
    /// USER-URI (13).
    UserUri(String),
    /// BENEFICIARY-INFORMATION (14, grouped).
    BeneficiaryInformation {
        /// The beneficiary's user ID.
        beneficiary_id: u16,
        /// USER-DISPLAY-NAME, USER-URI, extensions.
        attributes: Vec<Attribute>,
    },
    /// FLOOR-REQUEST-INFORMATION (15, grouped).
    FloorRequestInformation {
        /// The floor request it describes.
        floor_request_id: u16,
        /// OVERALL-REQUEST-STATUS, FLOOR-REQUEST-STATUS (one per floor),
        /// BENEFICIARY-INFORMATION, REQUESTED-BY-INFORMATION, PRIORITY,
        /// PARTICIPANT-PROVIDED-INFO, extensions.
        attributes: Vec<Attribute>,
    },
    /// REQUESTED-BY-INFORMATION (16, grouped).
    RequestedByInformation {
        /// The requester's user ID.
        requested_by_id: u16,
        /// USER-DISPLAY-NAME, USER-URI, extensions.
        attributes: Vec<Attribute>,
    },
    /// FLOOR-REQUEST-STATUS (17, grouped): a request's status for one floor.
    FloorRequestStatus {
        /// The floor.
        floor_id: u16,
        /// REQUEST-STATUS, STATUS-INFO, extensions.
        attributes: Vec<Attribute>,
    },
    /// OVERALL-REQUEST-STATUS (18, grouped): a request's status as a whole.
    OverallRequestStatus {
        /// The floor request.
        floor_request_id: u16,
        /// REQUEST-STATUS, STATUS-INFO, extensions.
        attributes: Vec<Attribute>,
    },
    /// Any other type, as received.
    Unknown {
        /// The 7-bit type; not one of 1 to 18.
        kind: u8,
        /// The M bit: the sender requires the receiver to understand it.
        mandatory: bool,
        /// The contents without padding.
        contents: Vec<u8>,
    },
}

/// The highest attribute type RFC 8855 defines.
pub(crate) const LAST_KNOWN_KIND: u8 = 18;

/// RFC 8855's name of attribute type `kind`.
pub(crate) fn attribute_name(kind: u8) -> &'static str {
    match kind {
        1 => "BENEFICIARY-ID",
        2 => "FLOOR-ID",
        3 => "FLOOR-REQUEST-ID",
        4 => "PRIORITY",
        5 => "REQUEST-STATUS",
        6 => "ERROR-CODE",
        7 => "ERROR-INFO",
        8 => "PARTICIPANT-PROVIDED-INFO",
        9 => "STATUS-INFO",
        10 => "SUPPORTED-ATTRIBUTES",
        11 => "SUPPORTED-PRIMITIVES",
        12 => "USER-DISPLAY-NAME",
        13 => "USER-URI",
        14 => "BENEFICIARY-INFORMATION",
        15 => "FLOOR-REQUEST-INFORMATION",
        16 => "REQUESTED-BY-INFORMATION",
        17 => "FLOOR-REQUEST-STATUS",
        18 => "OVERALL-REQUEST-STATUS",
        _ => "(unknown type)",
    }
}

impl Attribute {
    /// The 7-bit attribute type.
    pub fn kind(&self) -> u8 {
        match self {
            Attribute::BeneficiaryId(_) => 1,
            Attribute::FloorId(_) => 2,
            Attribute::FloorRequestId(_) => 3,
            Attribute::Priority(_) => 4,
            Attribute::RequestStatus { .. } => 5,
            Attribute::ErrorCode { .. } => 6,
            Attribute::ErrorInfo(_) => 7,
            Attribute::ParticipantProvidedInfo(_) => 8,
            Attribute::StatusInfo(_) => 9,
            Attribute::SupportedAttributes(_) => 10,
            Attribute::SupportedPrimitives(_) => 11,
            Attribute::UserDisplayName(_) => 12,
            Attribute::UserUri(_) => 13,
            Attribute::BeneficiaryInformation { .. } => 14,
            Attribute::FloorRequestInformation { .. } => 15,
            Attribute::RequestedByInformation { .. } => 16,
            Attribute::FloorRequestStatus { .. } => 17,
            Attribute::OverallRequestStatus { .. } => 18,
            Attribute::Unknown { kind, .. } => *kind,
        }
    }

    /// The attributes inside a grouped attribute; empty for the others.
    pub fn inner(&self) -> &[Attribute] {
        match self {
            Attribute::BeneficiaryInformation { attributes, .. }
            | Attribute::FloorRequestInformation { attributes, .. }
            | Attribute::RequestedByInformation { attributes, .. }
            | Attribute::FloorRequestStatus { attributes, .. }
            | Attribute::OverallRequestStatus { attributes, .. } => attributes,
            _ => &[],
        }
    }
}

/// Appends `attributes` to `out`, each padded; `depth` is how many grouped attributes they are
/// inside, `count` how many attributes were written so far.
pub(crate) fn encode_attributes(
    attributes: &[Attribute],
    out: &mut Vec<u8>,
    depth: usize,
    count: &mut usize,
) -> Result<(), EncodeError> {
    if depth >= MAX_NESTING && !attributes.is_empty() {
        return Err(EncodeError::NestingTooDeep { max: MAX_NESTING });
    }
    for attribute in attributes {
        *count += 1;
        if *count > MAX_ATTRIBUTES {
            return Err(EncodeError::TooManyAttributes {
                max: MAX_ATTRIBUTES,
            });
        }
        encode_attribute(attribute, out, depth, count)?;
    }
    Ok(())
}

fn encode_attribute(
    attribute: &Attribute,
    out: &mut Vec<u8>,
    depth: usize,
    count: &mut usize,
) -> Result<(), EncodeError> {
    let kind = attribute.kind();
    let mut mandatory = false;
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    match attribute {
        Attribute::BeneficiaryId(id) | Attribute::FloorId(id) | Attribute::FloorRequestId(id) => {
            out.extend_from_slice(&id.to_be_bytes());
        }
        Attribute::Priority(priority) => {
            if *priority > 7 {
                return Err(EncodeError::OutOfRange {
                    what: "PRIORITY",
                    value: u32::from(*priority),
                    max: 7,
                });
            }
            out.extend_from_slice(&[priority << 5, 0]);
        }
        Attribute::RequestStatus {
            status,
            queue_position,
        } => out.extend_from_slice(&[*status as u8, *queue_position]),
        Attribute::ErrorCode { code, details } => {
            out.push(code.0);
            out.extend_from_slice(details);
        }
        Attribute::ErrorInfo(text)
        | Attribute::ParticipantProvidedInfo(text)
        | Attribute::StatusInfo(text)
        | Attribute::UserDisplayName(text)
        | Attribute::UserUri(text) => out.extend_from_slice(text.as_bytes()),
        Attribute::SupportedAttributes(kinds) => {
            for &supported in kinds {
                if supported > 0x7f {
                    return Err(EncodeError::OutOfRange {
                        what: "SUPPORTED-ATTRIBUTES entry",
                        value: u32::from(supported),
                        max: 0x7f,
                    });
                }
                out.push(supported << 1);
            }
        }
        Attribute::SupportedPrimitives(primitives) => out.extend_from_slice(primitives),
        Attribute::BeneficiaryInformation {
            beneficiary_id: id,
            attributes,
        }
        | Attribute::FloorRequestInformation {
            floor_request_id: id,
            attributes,
        }
        | Attribute::RequestedByInformation {
            requested_by_id: id,
            attributes,
        }
        | Attribute::FloorRequestStatus {
            floor_id: id,
            attributes,
        }
        | Attribute::OverallRequestStatus {
            floor_request_id: id,
            attributes,
        } => {
            out.extend_from_slice(&id.to_be_bytes());
            encode_attributes(attributes, out, depth + 1, count)?;
        }
        Attribute::Unknown {
            kind,
            mandatory: m,
            contents,
        } => {
            if *kind > 0x7f {
                return Err(EncodeError::OutOfRange {
                    what: "attribute type",
                    value: u32::from(*kind),
                    max: 0x7f,
                });
            }
            if (1..=LAST_KNOWN_KIND).contains(kind) {
                return Err(EncodeError::KnownKindAsUnknown { kind: *kind });
            }
            mandatory = *m;
            out.extend_from_slice(contents);
        }
    }
    let length = out.len() - start;
    let Ok(length_octet) = u8::try_from(length) else {
        return Err(EncodeError::AttributeTooLong { kind, length });
    };
    out[start] = (kind << 1) | u8::from(mandatory);
    out[start + 1] = length_octet;
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    Ok(())
}

/// Reads the attributes in `bytes[start..end]`; offsets in errors count from the start of
/// `bytes` (the message).
pub(crate) fn decode_attributes(
    bytes: &[u8],
    start: usize,
    end: usize,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Attribute>, DecodeError> {
    let mut attributes = Vec::new();
    let mut offset = start;
    while offset < end {
        if depth >= MAX_NESTING {
            return Err(DecodeError::NestingTooDeep {
                offset,
                max: MAX_NESTING,
            });
        }
        *count += 1;
        if *count > MAX_ATTRIBUTES {
            return Err(DecodeError::TooManyAttributes {
                max: MAX_ATTRIBUTES,
            });
        }
        let (attribute, next) = decode_attribute(bytes, offset, end, depth, count)?;
        attributes.push(attribute);
        offset = next;
    }
    Ok(attributes)
}

/// Reads one attribute at `offset`; returns it and the offset after its padding.
fn decode_attribute(
    bytes: &[u8],
    offset: usize,
    end: usize,
    depth: usize,
    count: &mut usize,
) -> Result<(Attribute, usize), DecodeError> {
    let available = end - offset;
    let (Some(&first), Some(&length)) = (bytes.get(offset), bytes.get(offset + 1)) else {
        return Err(DecodeError::TruncatedAttribute { offset, available });
    };
    if available < 2 {
        return Err(DecodeError::TruncatedAttribute { offset, available });
    }
    let kind = first >> 1;
    let mandatory = first & 1 == 1;
    let wrong_length = |expected: &'static str| DecodeError::AttributeLength {
        kind,
        offset,
        length,
        expected,
    };
    if length < 2 {
        return Err(wrong_length("at least 2 (its own header)"));
    }
    if usize::from(length) > available {
        return Err(DecodeError::AttributeOverrun {
            kind,
            offset,
            length,
            available,
        });
    }
    let contents = &bytes[offset + 2..offset + usize::from(length)];
    // Padding up to four octets; a sender that leaves out the last attribute's padding is
    // forgiven (the message length is still a multiple of four, or it fails earlier).
    let next = (offset + usize::from(length)).next_multiple_of(4).min(end);
    let u16_at = |i: usize| u16::from_be_bytes([contents[i], contents[i + 1]]);
    let fixed = || {
        if length == 4 {
            Ok(())
        } else {
            Err(wrong_length("expected 4"))
        }
    };
    let text = || String::from_utf8_lossy(contents).into_owned();
    let attribute = match kind {
        1..=3 => {
            fixed()?;
            let id = u16_at(0);
            match kind {
                1 => Attribute::BeneficiaryId(id),
                2 => Attribute::FloorId(id),
                _ => Attribute::FloorRequestId(id),
            }
        }
        4 => {
            fixed()?;
            Attribute::Priority(contents[0] >> 5)
        }
        5 => {
            fixed()?;
            let status = RequestStatus::from_value(contents[0]).ok_or(
                DecodeError::UnknownRequestStatus {
                    offset,
                    value: contents[0],
                },
            )?;
            Attribute::RequestStatus {
                status,
                queue_position: contents[1],
            }
        }
        6 => {
            let Some((&code, details)) = contents.split_first() else {
                return Err(wrong_length("at least 3"));
            };
            Attribute::ErrorCode {
                code: ErrorCode(code),
                details: details.to_vec(),
            }
        }
        7 => Attribute::ErrorInfo(text()),
        8 => Attribute::ParticipantProvidedInfo(text()),
        9 => Attribute::StatusInfo(text()),
        10 => Attribute::SupportedAttributes(contents.iter().map(|b| b >> 1).collect()),
        11 => Attribute::SupportedPrimitives(contents.to_vec()),
        12 => Attribute::UserDisplayName(text()),
        13 => Attribute::UserUri(text()),
        14..=18 => {
            if length < 4 {
                return Err(wrong_length("at least 4"));
            }
            let id = u16_at(0);
            let attributes = decode_attributes(
                bytes,
                offset + 4,
                offset + usize::from(length),
                depth + 1,
                count,
            )?;
            match kind {
                14 => Attribute::BeneficiaryInformation {
                    beneficiary_id: id,
                    attributes,
                },
                15 => Attribute::FloorRequestInformation {
                    floor_request_id: id,
                    attributes,
                },
                16 => Attribute::RequestedByInformation {
                    requested_by_id: id,
                    attributes,
                },
                17 => Attribute::FloorRequestStatus {
                    floor_id: id,
                    attributes,
                },
                _ => Attribute::OverallRequestStatus {
                    floor_request_id: id,
                    attributes,
                },
            }
        }
        _ => Attribute::Unknown {
            kind,
            mandatory,
            contents: contents.to_vec(),
        },
    };
    Ok((attribute, next))
}
