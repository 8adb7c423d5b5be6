//! What a guest's page may say to the room on its WHEP data channel (docs/meetings.md,
//! "Everyone sees everyone"). The channel already bounds size and rate (the peer drops more than
//! 64 KiB a message and 100 messages a second); here each message is parsed into a type, and
//! anything else is refused with a reason for the log (never the message itself).

use serde::Deserialize;

use super::hosted_documents::DocumentMessage;

/// A guest's message.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum GuestMessage {
    /// `{"type":"hand","raised":true}`: the guest raises (or lowers) their hand.
    Hand { raised: bool },
    /// `{"type":"chat","text":"…"}`: the guest writes in the chat.
    Chat { text: String },
}

/// Why a message was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GuestMessageError {
    #[error("a guest's message is not one of the room's ({0})")]
    Unknown(String),
}

/// A message of either kind: the page's own, or a document transfer's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Guest(GuestMessage),
    Document(DocumentMessage),
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Incoming, GuestMessageError> {
    if let Ok(message) = serde_json::from_slice(bytes) {
        return Ok(Incoming::Guest(message));
    }
    serde_json::from_slice(bytes)
        .map(Incoming::Document)
        .map_err(|e| GuestMessageError::Unknown(fault(&e)))
}

/// What kind of fault, and where: never the text that was sent.
fn fault(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "not a known message",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{kind} at column {}", e.column())
}

#[cfg(test)]
mod tests {
    use super::{GuestMessage, Incoming, parse};
    use crate::hosted_documents::DocumentMessage;

    #[test]
    fn a_raised_hand_and_a_chat_line_are_taken_and_anything_else_refused() {
        assert_eq!(
            parse(br#"{"type":"hand","raised":true}"#).ok(),
            Some(Incoming::Guest(GuestMessage::Hand { raised: true }))
        );
        assert_eq!(
            parse(br#"{"type":"chat","text":"hello"}"#).ok(),
            Some(Incoming::Guest(GuestMessage::Chat {
                text: "hello".into()
            }))
        );
        assert_eq!(
            parse(br#"{"type":"file_ack","transfer":"t-1","seq":3}"#).ok(),
            Some(Incoming::Document(DocumentMessage::Ack {
                transfer: "t-1".into(),
                seq: 3
            }))
        );
        for bad in [
            &br#"{"type":"hand"}"#[..],
            br#"{"type":"hand","raised":"yes"}"#,
            br#"{"type":"hand","raised":true,"by":"Mallory"}"#,
            br#"{"type":"chat","text":"hi","from":"Mallory"}"#,
            br#"{"type":"unmute","participant":"g-1"}"#,
            br#"{"type":"file_ack","transfer":"t-1","seq":-1}"#,
            br#"{"type":"file_end","transfer":"t-1","path":"/etc/Mallory"}"#,
            b"not json",
            b"",
        ] {
            let error = parse(bad).expect_err("refused");
            assert!(
                !error.to_string().contains("Mallory"),
                "the reason repeats what was sent: {error}"
            );
        }
    }
}
