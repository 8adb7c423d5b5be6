//! Property tests of the codec, on the stable toolchain (no fuzzer here): whatever arrives
//! from the network is decoded or refused with a typed error, never a panic; whatever the
//! typed model can say survives encoding and decoding unchanged; a cut message is an error.

use proptest::prelude::*;
use roomd_bfcp::{
    Attribute, DecodeError, ErrorCode, HEADER_LEN, Header, MAX_MESSAGE_LEN, Message, Primitive,
    RequestStatus, Version, message_length,
};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 :@.]{0,24}",
        // anything printable, multi-octet UTF-8 included
        "\\PC{0,8}",
    ]
}

fn request_status() -> impl Strategy<Value = RequestStatus> {
    (1u8..=7).prop_map(|v| RequestStatus::from_value(v).expect("1 to 7 are defined"))
}

fn leaf() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        any::<u16>().prop_map(Attribute::BeneficiaryId),
        any::<u16>().prop_map(Attribute::FloorId),
        any::<u16>().prop_map(Attribute::FloorRequestId),
        (0u8..=7).prop_map(Attribute::Priority),
        (request_status(), any::<u8>()).prop_map(|(status, queue_position)| {
            Attribute::RequestStatus {
                status,
                queue_position,
            }
        }),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..12)).prop_map(|(code, details)| {
            Attribute::ErrorCode {
                code: ErrorCode(code),
                details,
            }
        }),
        text().prop_map(Attribute::ErrorInfo),
        text().prop_map(Attribute::ParticipantProvidedInfo),
        text().prop_map(Attribute::StatusInfo),
        prop::collection::vec(0u8..=127, 0..12).prop_map(Attribute::SupportedAttributes),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Attribute::SupportedPrimitives),
        text().prop_map(Attribute::UserDisplayName),
        text().prop_map(Attribute::UserUri),
        (
            prop_oneof![Just(0u8), 19u8..=127],
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(|(kind, mandatory, contents)| Attribute::Unknown {
                kind,
                mandatory,
                contents
            }),
    ]
}

fn attribute() -> impl Strategy<Value = Attribute> {
    // Three levels of grouping below the top: within the decoder's MAX_NESTING.
    leaf().prop_recursive(3, 24, 3, |inner| {
        let group = (any::<u16>(), prop::collection::vec(inner, 0..4));
        prop_oneof![
            group.clone().prop_map(|(beneficiary_id, attributes)| {
                Attribute::BeneficiaryInformation {
                    beneficiary_id,
                    attributes,
                }
            }),
            group.clone().prop_map(|(floor_request_id, attributes)| {
                Attribute::FloorRequestInformation {
                    floor_request_id,
                    attributes,
                }
            }),
            group.clone().prop_map(|(requested_by_id, attributes)| {
                Attribute::RequestedByInformation {
                    requested_by_id,
                    attributes,
                }
            }),
            group
                .clone()
                .prop_map(|(floor_id, attributes)| Attribute::FloorRequestStatus {
                    floor_id,
                    attributes
                }),
            group.prop_map(|(floor_request_id, attributes)| {
                Attribute::OverallRequestStatus {
                    floor_request_id,
                    attributes,
                }
            }),
        ]
    })
}

fn header() -> impl Strategy<Value = Header> {
    (
        prop_oneof![Just(Version::V1), Just(Version::V2)],
        any::<bool>(),
        prop::sample::select(Primitive::ALL.to_vec()),
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(
            |(version, responder, primitive, conference_id, transaction_id, user_id)| Header {
                version,
                responder,
                primitive,
                conference_id,
                transaction_id,
                user_id,
            },
        )
}

/// A message the model can say and the wire can carry: grouped attributes whose contents
/// outgrow the 8-bit length are left out (their encoding error has a test of its own).
fn message() -> impl Strategy<Value = Message> {
    (header(), prop::collection::vec(attribute(), 0..6))
        .prop_map(|(header, attributes)| Message { header, attributes })
        .prop_filter("fits the attribute length octet", |m| m.encode().is_ok())
}

/// A common header for `payload` octets (version 1 or 2, a known primitive) followed by them:
/// random octets that get past the header, into the attribute decoder.
fn framed_payload() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..=2,
        any::<bool>(),
        1u8..=17,
        any::<[u8; 8]>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(version, responder, primitive, ids, mut payload)| {
            payload.truncate(payload.len() / 4 * 4);
            let units = (payload.len() / 4) as u16;
            let mut bytes = vec![(version << 5) | (u8::from(responder) << 4), primitive];
            bytes.extend_from_slice(&units.to_be_bytes());
            bytes.extend_from_slice(&ids);
            bytes.extend_from_slice(&payload);
            bytes
        })
}

/// Whatever decodes encodes to something that decodes to the same (decoding is canonical:
/// padding, reserved bits and the M bit of known attributes are not kept).
fn decodes_canonically(bytes: &[u8]) {
    if let Ok(message) = Message::decode(bytes)
        && let Ok(again) = message.encode()
    {
        assert_eq!(Message::decode(&again), Ok(message));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_octets_decode_or_are_refused_without_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        decodes_canonically(&bytes);
        let _ = message_length(&bytes);
    }

    #[test]
    fn arbitrary_attributes_behind_a_valid_header_decode_or_are_refused(
        bytes in framed_payload()
    ) {
        decodes_canonically(&bytes);
    }

    #[test]
    fn every_message_of_the_model_survives_encoding_and_decoding(message in message()) {
        let bytes = message.encode().expect("the strategy keeps only what encodes");
        prop_assert_eq!(bytes.len() % 4, 0);
        prop_assert_eq!(message_length(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(Message::decode(&bytes), Ok(message));
    }

    #[test]
    fn every_cut_of_a_valid_message_is_an_error(message in message(), cut in any::<prop::sample::Index>()) {
        let bytes = message.encode().expect("the strategy keeps only what encodes");
        let length = cut.index(bytes.len());
        let result = Message::decode(&bytes[..length]);
        prop_assert!(result.is_err(), "{} of {} octets decoded: {:?}", length, bytes.len(), result);
        if length < HEADER_LEN {
            prop_assert_eq!(result, Err(DecodeError::TruncatedHeader { length }));
        }
        // A stream reader waits for the rest instead.
        if let Ok(Some(needed)) = message_length(&bytes[..length]) {
            prop_assert!(needed > length);
        }
    }

    #[test]
    fn a_changed_octet_decodes_or_is_refused_without_panic(
        message in message(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut bytes = message.encode().expect("the strategy keeps only what encodes");
        let at = at.index(bytes.len());
        bytes[at] = value;
        decodes_canonically(&bytes);
    }
}

#[test]
fn oversized_input_is_refused_before_it_is_read() {
    let bytes = vec![0x20; MAX_MESSAGE_LEN + 1];
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TooLarge {
            length: MAX_MESSAGE_LEN + 1,
            max: MAX_MESSAGE_LEN
        })
    );
}
