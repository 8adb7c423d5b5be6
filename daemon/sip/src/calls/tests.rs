//! What a call takes from the far end's SIP messages, fed arbitrary input: the caller shown on
//! the panel and in events (from an INVITE's From header), and the direction the room answers a
//! re-INVITE with. rsipstack parses the message; whatever it lets through must come out bounded
//! and printable, never a panic.

use proptest::prelude::*;

use super::*;

/// An INVITE as a caller could send it, with `from` as its From header's value.
fn invite(from: &str) -> String {
    format!(
        "INVITE sip:room412@10.77.1.2 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.77.1.9:5070;branch=z9hG4bK776asdhds\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:room412@10.77.1.2>\r\n\
         From: {from}\r\n\
         Call-ID: a84b4c76e66710\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@10.77.1.9:5070>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn caller_of_text(from: &str) -> Option<IncomingCall> {
    let request = rsipstack::sip::Request::try_from(invite(from).as_str()).ok()?;
    Some(caller_of(&request))
}

#[test]
fn the_caller_is_its_display_name_and_address_without_parameters() {
    let caller = caller_of_text(
        "\"Alice Example\" <sips:alice@pbx.example.org:5061;transport=tls>;tag=1928301774",
    )
    .expect("a valid INVITE");
    assert_eq!(caller.display_name, "Alice Example");
    assert_eq!(caller.uri, "sips:alice@pbx.example.org:5061");
}

#[test]
fn the_answer_mirrors_the_offers_direction() {
    assert_eq!(mirrored_direction("v=0\r\na=sendonly\r\n"), "recvonly");
    assert_eq!(mirrored_direction("a=recvonly"), "sendonly");
    assert_eq!(mirrored_direction("a=inactive"), "inactive");
    assert_eq!(mirrored_direction("m=audio 1 RTP/SAVP 0"), "sendrecv");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any From header: a caller with a name of at most 64 and an address of at most 256
    /// characters, none of them control characters (they reach the panel, events and logs).
    #[test]
    fn any_from_header_gives_a_bounded_printable_caller(
        from in prop_oneof![
            "\\PC{0,300}",
            "\"[ -~]{0,120}\" <sips?:[ -~]{0,80}@[a-z0-9.:\\[\\]-]{0,60}(;[a-z=]{0,20})?>(;tag=[a-z0-9]{0,10})?",
            "[ -~\u{80}-\u{10ffff}]{0,400}",
        ],
    ) {
        if let Some(caller) = caller_of_text(&from) {
            prop_assert!(caller.display_name.chars().count() <= CALLER_NAME_MAX_CHARS);
            prop_assert!(caller.uri.chars().count() <= CALLER_URI_MAX_CHARS);
            prop_assert!(!caller.display_name.chars().any(char::is_control));
            prop_assert!(!caller.uri.chars().any(char::is_control));
        }
    }

    /// Any bytes as a whole SIP message: rsipstack's parser says yes or no, never panics, and a
    /// request it takes gives a bounded caller.
    #[test]
    fn any_message_is_parsed_or_refused_without_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        if let Ok(request) = rsipstack::sip::Request::try_from(bytes.as_slice()) {
            let caller = caller_of(&request);
            prop_assert!(caller.uri.chars().count() <= CALLER_URI_MAX_CHARS);
        }
    }

    /// Any re-INVITE body: one of the four directions.
    #[test]
    fn any_reinvite_body_is_answered_with_a_direction(body in "\\PC{0,600}") {
        let direction = mirrored_direction(&body);
        prop_assert!(["sendrecv", "sendonly", "recvonly", "inactive"].contains(&direction));
    }
}
