//! Documents passed directly between the guests of a hosted meeting (docs/meetings.md,
//! "Documents"). A guest offers a file to another; the receiver accepts or declines on their
//! page; the file then goes in chunks over the two guests' data channels, through the room,
//! which passes each chunk on as it arrives: nothing of it is kept, let alone written. The
//! sender's page shows the SHA-256 it computed, the receiver's page the one it computes from
//! what arrived; both show the sender's.
//!
//! Everything a guest sends is bounded here: the room's policy (`meeting.documents`, the size
//! cap), transfers at once in the meeting and per guest, the chunk size, chunks ahead of the
//! receiver's acknowledgements (so the room never holds more than a window per transfer), and
//! time without progress.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::engine::GuestDirection;
use super::roster::Roster;
use roomd_model::config::MeetingConfig;

/// Transfers going on at once in a meeting, and per sending guest.
const MAX_TRANSFERS: usize = 8;
const MAX_TRANSFERS_PER_SENDER: usize = 2;
/// Base64 characters of one chunk at most (45 KiB of the file): a chunk message stays within
/// a data channel message (64 KiB).
pub(crate) const MAX_CHUNK_CHARS: usize = 61_440;
/// Chunks passed on ahead of the receiver's acknowledgements.
const WINDOW: u64 = 8;
/// A transfer that makes no progress this long is cancelled (a receiver who never answers, a
/// page that went away).
const STALLED_AFTER: Duration = Duration::from_secs(60);
const MAX_NAME_CHARS: usize = 255;
const MAX_ID_CHARS: usize = 64;

/// What the room's policy allows: the largest document, or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DocumentPolicy {
    pub(crate) max_bytes: Option<u64>,
}

impl DocumentPolicy {
    /// `meeting.documents` and `meeting.document_max_mb`.
    pub(crate) fn of(meeting: &MeetingConfig) -> DocumentPolicy {
        DocumentPolicy {
            max_bytes: meeting
                .documents
                .then(|| u64::from(meeting.document_max_mb) * 1_000_000),
        }
    }
}

struct Transfer {
    from: String,
    to: String,
    size: u64,
    accepted: bool,
    /// Bytes of the file passed on so far.
    passed: u64,
    next_seq: u64,
    /// The last chunk the receiver acknowledged.
    acked: Option<u64>,
    last_progress: Instant,
}

/// A document message from a guest's page (see `hosted_messages`).
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub(crate) enum DocumentMessage {
    /// `{"type":"file_offer","transfer","to","name","size","sha256"}`
    #[serde(rename = "file_offer")]
    Offer {
        transfer: String,
        to: String,
        name: String,
        size: u64,
        sha256: String,
    },
    #[serde(rename = "file_answer")]
    Answer { transfer: String, accept: bool },
    #[serde(rename = "file_chunk")]
    Chunk {
        transfer: String,
        seq: u64,
        data: String,
    },
    #[serde(rename = "file_ack")]
    Ack { transfer: String, seq: u64 },
    #[serde(rename = "file_end")]
    End { transfer: String },
    #[serde(rename = "file_cancel")]
    Cancel { transfer: String },
}

/// What the room passes on to a page.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Outgoing<'a> {
    #[serde(rename = "file_offer")]
    Offer {
        transfer: &'a str,
        from: &'a str,
        name: &'a str,
        size: u64,
        sha256: &'a str,
    },
    #[serde(rename = "file_answer")]
    Answer { transfer: &'a str, accept: bool },
    #[serde(rename = "file_chunk")]
    Chunk {
        transfer: &'a str,
        seq: u64,
        data: &'a str,
    },
    #[serde(rename = "file_ack")]
    Ack { transfer: &'a str, seq: u64 },
    #[serde(rename = "file_end")]
    End { transfer: &'a str },
    #[serde(rename = "file_cancel")]
    Cancel { transfer: &'a str, reason: &'a str },
}

#[derive(Default)]
pub(crate) struct Documents {
    transfers: HashMap<String, Transfer>,
}

impl Documents {
    /// Takes `message` from guest `id`: passes it on, or cancels the transfer with a reason
    /// for both pages.
    pub(crate) fn take(
        &mut self,
        pages: &impl Pages,
        policy: DocumentPolicy,
        id: &str,
        message: DocumentMessage,
    ) {
        let result = match message {
            DocumentMessage::Offer {
                transfer,
                to,
                name,
                size,
                sha256,
            } => self.offer(pages, policy, id, transfer, to, &name, size, &sha256),
            DocumentMessage::Answer { transfer, accept } => {
                self.answer(pages, id, &transfer, accept)
            }
            DocumentMessage::Chunk {
                transfer,
                seq,
                data,
            } => self.chunk(pages, id, &transfer, seq, &data),
            DocumentMessage::Ack { transfer, seq } => self.ack(pages, id, &transfer, seq),
            DocumentMessage::End { transfer } => self.end(pages, id, &transfer),
            DocumentMessage::Cancel { transfer } => {
                match self.transfers.get(&transfer) {
                    Some(t) if t.from == id || t.to == id => {
                        self.cancel(pages, &transfer, "cancelled by the other side")
                    }
                    _ => {}
                }
                Ok(())
            }
        };
        if let Err((transfer, reason)) = result {
            tracing::debug!("guest {id}: document transfer refused: {reason}");
            if self.transfers.contains_key(&transfer) {
                self.cancel(pages, &transfer, reason);
            } else {
                // Refused before it began: only the sender hears why.
                let message = Outgoing::Cancel {
                    transfer: &transfer,
                    reason,
                };
                send(pages, id, &message);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn offer(
        &mut self,
        pages: &impl Pages,
        policy: DocumentPolicy,
        id: &str,
        transfer: String,
        to: String,
        name: &str,
        size: u64,
        sha256: &str,
    ) -> Result<(), (String, &'static str)> {
        let refuse = |reason| Err((transfer.clone(), reason));
        if transfer.is_empty()
            || transfer.len() > MAX_ID_CHARS
            || !transfer
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err((
                String::new(),
                "a transfer id is 1 to 64 letters, digits or -",
            ));
        }
        if self.transfers.contains_key(&transfer) {
            return Err((String::new(), "that transfer id is taken"));
        }
        let Some(max_bytes) = policy.max_bytes else {
            return refuse("documents are switched off in this room");
        };
        if size == 0 || size > max_bytes {
            return refuse("the document is empty or larger than this room allows");
        }
        if !name_is_valid(name) {
            return refuse("the name is empty, too long, or has control characters or slashes");
        }
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return refuse("the SHA-256 is not 64 hexadecimal digits");
        }
        if to == id || pages.name(&to).is_none() {
            return refuse("nobody of that id is in the meeting");
        }
        let from_here = self.transfers.values().filter(|t| t.from == id).count();
        if self.transfers.len() >= MAX_TRANSFERS || from_here >= MAX_TRANSFERS_PER_SENDER {
            return refuse("too many documents on their way; wait for one to arrive");
        }
        let from_name = pages.name(id).unwrap_or_default().to_owned();
        let passed_on = send(
            pages,
            &to,
            &Outgoing::Offer {
                transfer: &transfer,
                from: &from_name,
                name,
                size,
                sha256: &sha256.to_ascii_lowercase(),
            },
        );
        if !passed_on {
            return refuse("the receiver's page is not connected");
        }
        self.transfers.insert(
            transfer,
            Transfer {
                from: id.to_owned(),
                to,
                size,
                accepted: false,
                passed: 0,
                next_seq: 0,
                acked: None,
                last_progress: Instant::now(),
            },
        );
        Ok(())
    }

    fn answer(
        &mut self,
        pages: &impl Pages,
        id: &str,
        transfer: &str,
        accept: bool,
    ) -> Result<(), (String, &'static str)> {
        let Some(t) = self.transfers.get_mut(transfer).filter(|t| t.to == id) else {
            return Ok(());
        };
        if t.accepted {
            return Ok(());
        }
        if !accept {
            let from = t.from.clone();
            self.transfers.remove(transfer);
            send(pages, &from, &Outgoing::Answer { transfer, accept });
            return Ok(());
        }
        t.accepted = true;
        t.last_progress = Instant::now();
        send(pages, &t.from, &Outgoing::Answer { transfer, accept });
        Ok(())
    }

    fn chunk(
        &mut self,
        pages: &impl Pages,
        id: &str,
        transfer: &str,
        seq: u64,
        data: &str,
    ) -> Result<(), (String, &'static str)> {
        let refuse = |reason| Err((transfer.to_owned(), reason));
        let Some(t) = self.transfers.get_mut(transfer).filter(|t| t.from == id) else {
            return Ok(());
        };
        if !t.accepted {
            return refuse("a chunk before the receiver accepted");
        }
        if seq != t.next_seq {
            return refuse("a chunk out of order");
        }
        if seq.saturating_sub(t.acked.map_or(0, |a| a + 1)) >= WINDOW {
            return refuse("chunks sent ahead of the receiver's acknowledgements");
        }
        let Some(bytes) = base64_len(data) else {
            return refuse("a chunk that is not base64 of at most 45 KiB");
        };
        if t.passed + bytes > t.size {
            return refuse("more bytes than the document was offered with");
        }
        t.passed += bytes;
        t.next_seq += 1;
        t.last_progress = Instant::now();
        let to = t.to.clone();
        if !send(
            pages,
            &to,
            &Outgoing::Chunk {
                transfer,
                seq,
                data,
            },
        ) {
            return refuse("the receiver's page is not connected");
        }
        Ok(())
    }

    fn ack(
        &mut self,
        pages: &impl Pages,
        id: &str,
        transfer: &str,
        seq: u64,
    ) -> Result<(), (String, &'static str)> {
        let Some(t) = self.transfers.get_mut(transfer).filter(|t| t.to == id) else {
            return Ok(());
        };
        if seq >= t.next_seq || t.acked.is_some_and(|a| seq <= a) {
            return Err((
                transfer.to_owned(),
                "an acknowledgement of no chunk passed on",
            ));
        }
        t.acked = Some(seq);
        t.last_progress = Instant::now();
        let from = t.from.clone();
        send(pages, &from, &Outgoing::Ack { transfer, seq });
        Ok(())
    }

    fn end(
        &mut self,
        pages: &impl Pages,
        id: &str,
        transfer: &str,
    ) -> Result<(), (String, &'static str)> {
        let Some(t) = self.transfers.get(transfer).filter(|t| t.from == id) else {
            return Ok(());
        };
        if !t.accepted || t.passed != t.size {
            return Err((transfer.to_owned(), "the document ended short of its size"));
        }
        let to = t.to.clone();
        self.transfers.remove(transfer);
        send(pages, &to, &Outgoing::End { transfer });
        Ok(())
    }

    /// Cancels transfers whose sender or receiver left, and those that made no progress for
    /// [`STALLED_AFTER`].
    pub(crate) fn prune(&mut self, pages: &impl Pages) {
        let gone: Vec<(String, &'static str)> = self
            .transfers
            .iter()
            .filter_map(|(id, t)| {
                if pages.name(&t.from).is_none() || pages.name(&t.to).is_none() {
                    Some((id.clone(), "the other side left the meeting"))
                } else if t.last_progress.elapsed() > STALLED_AFTER {
                    Some((id.clone(), "no progress for a minute"))
                } else {
                    None
                }
            })
            .collect();
        for (id, reason) in gone {
            self.cancel(pages, &id, reason);
        }
    }

    fn cancel(&mut self, pages: &impl Pages, transfer: &str, reason: &str) {
        if let Some(t) = self.transfers.remove(transfer) {
            let message = Outgoing::Cancel { transfer, reason };
            send(pages, &t.from, &message);
            send(pages, &t.to, &message);
        }
    }
}

/// Where transfers' messages go: the guests' pages (each guest's WHEP data channel).
pub(crate) trait Pages {
    /// Guest `id`'s name, if they are in the meeting.
    fn name(&self, id: &str) -> Option<&str>;
    /// Sends `text` to guest `id`'s page; false if it has no open channel.
    fn send(&self, id: &str, text: &str) -> bool;
}

impl Pages for Roster {
    fn name(&self, id: &str) -> Option<&str> {
        Roster::name(self, id)
    }

    fn send(&self, id: &str, text: &str) -> bool {
        self.send_data_to(id, GuestDirection::Whep.as_str(), text)
    }
}

/// Sends `message` to guest `id`'s page; false if it has no open channel.
fn send(pages: &impl Pages, id: &str, message: &Outgoing<'_>) -> bool {
    serde_json::to_string(message).is_ok_and(|text| pages.send(id, &text))
}

/// A file name as shown: 1 to 255 characters, no control characters, no path.
fn name_is_valid(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && !name.trim().is_empty()
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
}

/// The bytes `data` (standard base64, padded) decodes to; `None` if it is not that, or longer
/// than [`MAX_CHUNK_CHARS`].
fn base64_len(data: &str) -> Option<u64> {
    let bytes = data.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_CHUNK_CHARS || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    let body = &bytes[..bytes.len() - padding];
    if padding > 2
        || !body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
    {
        return None;
    }
    Some((bytes.len() / 4 * 3 - padding) as u64)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::{DocumentMessage, DocumentPolicy, Documents, Pages, base64_len, name_is_valid};

    /// Two guests' pages, recording what each is sent.
    #[derive(Default)]
    struct Sent(RefCell<Vec<(String, serde_json::Value)>>);

    impl Pages for Sent {
        fn name(&self, id: &str) -> Option<&str> {
            match id {
                "g-a" => Some("Alice"),
                "g-b" => Some("Bob"),
                _ => None,
            }
        }
        fn send(&self, id: &str, text: &str) -> bool {
            let value = serde_json::from_str(text).unwrap_or_default();
            self.0.borrow_mut().push((id.to_owned(), value));
            true
        }
    }

    impl Sent {
        fn last(&self, id: &str) -> serde_json::Value {
            let sent = self.0.borrow();
            sent.iter()
                .rev()
                .find(|(to, _)| to == id)
                .map(|(_, m)| m.clone())
                .unwrap_or_default()
        }
    }

    const POLICY: DocumentPolicy = DocumentPolicy {
        max_bytes: Some(100),
    };
    const HASH: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

    fn offer(transfer: &str, size: u64) -> DocumentMessage {
        DocumentMessage::Offer {
            transfer: transfer.into(),
            to: "g-b".into(),
            name: "minutes.txt".into(),
            size,
            sha256: HASH.into(),
        }
    }

    fn chunk(seq: u64, data: &str) -> DocumentMessage {
        DocumentMessage::Chunk {
            transfer: "t1".into(),
            seq,
            data: data.into(),
        }
    }

    #[test]
    fn a_document_goes_through_once_accepted_and_in_order() {
        let pages = Sent::default();
        let mut documents = Documents::default();
        documents.take(&pages, POLICY, "g-a", offer("t1", 6));
        let offered = pages.last("g-b");
        assert_eq!(offered["type"], "file_offer");
        assert_eq!(offered["from"], "Alice");
        // Before Bob accepts, a chunk ends the transfer, for both.
        documents.take(&pages, POLICY, "g-a", chunk(0, "aGVsbG8h"));
        assert_eq!(pages.last("g-a")["type"], "file_cancel");
        assert_eq!(pages.last("g-b")["type"], "file_cancel");

        documents.take(&pages, POLICY, "g-a", offer("t1", 6));
        let answer = DocumentMessage::Answer {
            transfer: "t1".into(),
            accept: true,
        };
        // Only the receiver answers: Alice's own "accept" is nothing.
        documents.take(&pages, POLICY, "g-a", answer);
        documents.take(&pages, POLICY, "g-a", chunk(0, "aGVsbG8h"));
        assert_eq!(pages.last("g-b")["type"], "file_cancel");

        documents.take(&pages, POLICY, "g-a", offer("t1", 6));
        let answer = DocumentMessage::Answer {
            transfer: "t1".into(),
            accept: true,
        };
        documents.take(&pages, POLICY, "g-b", answer);
        assert_eq!(pages.last("g-a")["type"], "file_answer");
        documents.take(&pages, POLICY, "g-a", chunk(0, "aGVsbG8h"));
        assert_eq!(pages.last("g-b")["type"], "file_chunk");
        assert_eq!(pages.last("g-b")["data"], "aGVsbG8h");
        let ack = DocumentMessage::Ack {
            transfer: "t1".into(),
            seq: 0,
        };
        documents.take(&pages, POLICY, "g-b", ack);
        assert_eq!(pages.last("g-a")["type"], "file_ack");
        documents.take(
            &pages,
            POLICY,
            "g-a",
            DocumentMessage::End {
                transfer: "t1".into(),
            },
        );
        assert_eq!(pages.last("g-b")["type"], "file_end");
        assert!(documents.transfers.is_empty());
    }

    #[test]
    fn what_breaks_the_rules_is_refused_with_a_reason() {
        let pages = Sent::default();
        let mut documents = Documents::default();
        let reason = |pages: &Sent, who: &str| {
            pages.last(who)["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        // Over the cap, to nobody, a name that is a path, a bad hash; documents switched off.
        documents.take(&pages, POLICY, "g-a", offer("t1", 101));
        assert!(reason(&pages, "g-a").contains("larger"));
        let mut to_nobody = offer("t1", 6);
        if let DocumentMessage::Offer { to, .. } = &mut to_nobody {
            *to = "g-x".into();
        }
        documents.take(&pages, POLICY, "g-a", to_nobody);
        assert!(reason(&pages, "g-a").contains("nobody"));
        let mut path = offer("t1", 6);
        if let DocumentMessage::Offer { name, .. } = &mut path {
            *name = "../../etc/passwd".into();
        }
        documents.take(&pages, POLICY, "g-a", path);
        assert!(reason(&pages, "g-a").contains("slashes"));
        let off = DocumentPolicy { max_bytes: None };
        documents.take(&pages, off, "g-a", offer("t1", 6));
        assert!(reason(&pages, "g-a").contains("switched off"));
        assert!(documents.transfers.is_empty());
        assert!(
            pages.0.borrow().iter().all(|(to, _)| to == "g-a"),
            "Bob heard of refused offers"
        );

        // Accepted: a chunk out of order, more bytes than offered, an end short of the size.
        let accepted = |documents: &mut Documents, size: u64| {
            documents.take(&pages, POLICY, "g-a", offer("t1", size));
            let answer = DocumentMessage::Answer {
                transfer: "t1".into(),
                accept: true,
            };
            documents.take(&pages, POLICY, "g-b", answer);
        };
        accepted(&mut documents, 6);
        documents.take(&pages, POLICY, "g-a", chunk(1, "aGVsbG8h"));
        assert!(reason(&pages, "g-b").contains("out of order"));
        accepted(&mut documents, 5);
        documents.take(&pages, POLICY, "g-a", chunk(0, "aGVsbG8h"));
        assert!(reason(&pages, "g-b").contains("more bytes"));
        accepted(&mut documents, 6);
        documents.take(&pages, POLICY, "g-a", chunk(0, "aGVsbA=="));
        documents.take(
            &pages,
            POLICY,
            "g-a",
            DocumentMessage::End {
                transfer: "t1".into(),
            },
        );
        assert!(reason(&pages, "g-b").contains("short"));
        // Chunks ahead of the acknowledgements: the window is 8.
        accepted(&mut documents, 100);
        for seq in 0..8 {
            documents.take(&pages, POLICY, "g-a", chunk(seq, "aGVs"));
        }
        assert_eq!(pages.last("g-b")["type"], "file_chunk");
        documents.take(&pages, POLICY, "g-a", chunk(8, "aGVs"));
        assert!(reason(&pages, "g-b").contains("ahead"));
        assert!(documents.transfers.is_empty());
    }

    #[test]
    fn a_chunk_is_padded_base64_within_the_bound() {
        assert_eq!(base64_len("aGVsbG8="), Some(5));
        assert_eq!(base64_len("aGVsbG8h"), Some(6));
        assert_eq!(base64_len("aGVsbA=="), Some(4));
        for bad in ["", "aGVsbG8", "aGV$bG8=", "a===", &"A".repeat(61_444)] {
            assert_eq!(base64_len(bad), None, "{bad:.20}");
        }
    }

    #[test]
    fn a_name_is_shown_as_a_name_and_never_a_path() {
        assert!(name_is_valid("Quarterly report (final).pdf"));
        for bad in [
            "",
            "   ",
            "../etc/passwd",
            "a\\b",
            "bell\u{7}",
            &"x".repeat(256),
        ] {
            assert!(!name_is_valid(bad), "{bad:?}");
        }
    }
}
