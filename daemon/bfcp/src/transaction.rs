//! Transactions: our requests paired with the far end's answers, retransmitted over UDP
//! (RFC 8855's request retransmission timer T1 = 500 ms, doubled after each transmission, a
//! bounded number of them), waited for with a bound over a stream; the far end's requests answered once, and a
//! retransmitted request answered again from a cache instead of being acted on twice.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::attribute::{Attribute, ErrorCode};
use crate::error::{DecodeError, SessionError};
use crate::message::{Header, Message, Primitive, Version, peek_header};
use crate::transport::{Link, Transport};

/// The time bounds of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1: the wait after the first transmission of a request over UDP; each further wait is
    /// twice the one before. RFC 8855: 500 ms.
    pub t1: Duration,
    /// How often a request is sent over UDP at most, the first time included. RFC 8855: 4
    /// (three retransmissions).
    pub transmissions: u32,
    /// How long an answer is kept to send again when the far end repeats its request (UDP).
    /// Longer than the far end retransmits for.
    pub answer_lifetime: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            t1: Duration::from_millis(500),
            transmissions: 4,
            answer_lifetime: Duration::from_secs(10),
        }
    }
}

impl Timers {
    /// How long a request waits for its answer in all: over UDP the sum of the retransmission
    /// intervals (7.5 s with RFC 8855's values), over a stream the same time for the one
    /// transmission.
    pub fn answer_timeout(&self) -> Duration {
        (0..self.transmissions.min(MAX_TRANSMISSIONS))
            .map(|k| self.interval_after(k + 1))
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// The wait after the `sent`-th transmission.
    fn interval_after(&self, sent: u32) -> Duration {
        self.t1
            .saturating_mul(1 << sent.saturating_sub(1).min(MAX_TRANSMISSIONS))
    }
}

/// `now` plus `wait`, or far in the future when that does not fit an `Instant`.
fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// A bound on `Timers::transmissions`, so that doubling cannot overflow.
const MAX_TRANSMISSIONS: u32 = 16;
/// How many of our requests may wait for answers at once.
pub(crate) const MAX_PENDING: usize = 16;
/// How many answers are kept for retransmitted requests.
const MAX_ANSWERS: usize = 32;

/// What [`Endpoint::next`] brings.
pub(crate) enum Happening<P> {
    /// A request or notification from the far end, seen for the first time.
    Incoming(Message),
    /// The answer to a request of ours.
    Answered(P, Message),
    /// A request of ours that got no answer in time.
    Unanswered(P, SessionError),
}

struct Pending<P> {
    transaction_id: u16,
    primitive: Primitive,
    bytes: Vec<u8>,
    sent: u32,
    first_sent: Instant,
    next: Instant,
    purpose: P,
}

/// An answer we sent, kept for a retransmission of its request.
struct Answer {
    request: Header,
    bytes: Vec<u8>,
    until: Instant,
}

/// One side of a BFCP association: the link, our requests in flight (each with the purpose
/// `P` its role gave it), and our recent answers.
pub(crate) struct Endpoint<P> {
    link: Link,
    timers: Timers,
    conference_id: u32,
    last_transaction_id: u16,
    pending: Vec<Pending<P>>,
    answers: VecDeque<Answer>,
}

impl<P> Endpoint<P> {
    pub(crate) fn new(transport: Transport, timers: Timers, conference_id: u32) -> Endpoint<P> {
        Endpoint {
            link: Link::new(transport),
            timers,
            conference_id,
            last_transaction_id: random_start(),
            pending: Vec::new(),
            answers: VecDeque::new(),
        }
    }

    pub(crate) fn reliable(&self) -> bool {
        self.link.reliable()
    }

    fn next_transaction_id(&mut self) -> u16 {
        loop {
            self.last_transaction_id = self.last_transaction_id.wrapping_add(1);
            let id = self.last_transaction_id;
            if id != 0 && self.pending.iter().all(|p| p.transaction_id != id) {
                return id;
            }
        }
    }

    /// Sends a request of ours (R clear, a new transaction ID) and remembers it until
    /// answered.
    pub(crate) async fn request(
        &mut self,
        user_id: u16,
        primitive: Primitive,
        attributes: Vec<Attribute>,
        purpose: P,
    ) -> Result<(), SessionError> {
        if self.pending.len() >= MAX_PENDING {
            return Err(SessionError::Busy { max: MAX_PENDING });
        }
        let transaction_id = self.next_transaction_id();
        let bytes = Message {
            header: Header {
                version: self.link.version(),
                responder: false,
                primitive,
                conference_id: self.conference_id,
                transaction_id,
                user_id,
            },
            attributes,
        }
        .encode()?;
        self.link.send(&bytes).await?;
        let now = Instant::now();
        let wait = if self.reliable() {
            self.timers.answer_timeout()
        } else {
            self.timers.interval_after(1)
        };
        self.pending.push(Pending {
            transaction_id,
            primitive,
            bytes,
            sent: 1,
            first_sent: now,
            next: after(now, wait),
            purpose,
        });
        Ok(())
    }

    /// Sends what the floor control server tells of its own (FloorRequestStatus,
    /// FloorStatus): over UDP a request the far end acknowledges; over a stream with
    /// transaction ID 0 and no acknowledgement, as RFC 8855 has it.
    pub(crate) async fn notify(
        &mut self,
        user_id: u16,
        primitive: Primitive,
        attributes: Vec<Attribute>,
        purpose: P,
    ) -> Result<(), SessionError> {
        if !self.reliable() {
            return self.request(user_id, primitive, attributes, purpose).await;
        }
        let bytes = Message {
            header: Header {
                version: self.link.version(),
                responder: false,
                primitive,
                conference_id: self.conference_id,
                transaction_id: 0,
                user_id,
            },
            attributes,
        }
        .encode()?;
        self.link.send(&bytes).await
    }

    /// Answers the far end's `request` in its transaction (R set over UDP) and keeps the
    /// answer for a retransmission of the request.
    pub(crate) async fn answer(
        &mut self,
        request: &Header,
        primitive: Primitive,
        attributes: Vec<Attribute>,
    ) -> Result<(), SessionError> {
        let bytes = Message {
            header: Header {
                version: request.version,
                responder: !self.reliable(),
                primitive,
                conference_id: request.conference_id,
                transaction_id: request.transaction_id,
                user_id: request.user_id,
            },
            attributes,
        }
        .encode()?;
        self.link.send(&bytes).await?;
        if !self.reliable() {
            let now = Instant::now();
            self.answers.retain(|a| a.until > now);
            if self.answers.len() >= MAX_ANSWERS {
                self.answers.pop_front();
            }
            self.answers.push_back(Answer {
                request: *request,
                bytes,
                until: after(now, self.timers.answer_lifetime),
            });
        }
        Ok(())
    }

    /// Answers `request` with an Error.
    pub(crate) async fn answer_error(
        &mut self,
        request: &Header,
        code: ErrorCode,
        details: Vec<u8>,
        info: &str,
    ) -> Result<(), SessionError> {
        tracing::debug!(primitive = %request.primitive, code = code.0, info, "BFCP request refused");
        let attributes = vec![
            Attribute::ErrorCode { code, details },
            Attribute::ErrorInfo(info.to_owned()),
        ];
        self.answer(request, Primitive::Error, attributes).await
    }

    /// Acknowledges a FloorRequestStatus or FloorStatus the server sent of its own: over UDP
    /// only, where it carries a transaction ID; nothing over a stream.
    pub(crate) async fn acknowledge(&mut self, notification: &Header) -> Result<(), SessionError> {
        let ack = match notification.primitive {
            Primitive::FloorRequestStatus => Primitive::FloorRequestStatusAck,
            Primitive::FloorStatus => Primitive::FloorStatusAck,
            _ => return Ok(()),
        };
        if self.reliable() || notification.transaction_id == 0 {
            return Ok(());
        }
        self.answer(notification, ack, Vec::new()).await
    }

    /// Waits for what happens next, retransmitting meanwhile. Cancel-safe: nothing is lost
    /// when the caller stops waiting to do something else.
    pub(crate) async fn next(&mut self) -> Result<Happening<P>, SessionError> {
        enum Woken {
            Received(Result<Vec<u8>, SessionError>),
            Timer,
        }
        loop {
            let deadline = self.pending.iter().map(|p| p.next).min();
            let woken = tokio::select! {
                received = self.link.recv() => Woken::Received(received),
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    Woken::Timer
                }
            };
            let happening = match woken {
                Woken::Received(received) => self.on_received(&received?).await?,
                Woken::Timer => self.on_timer().await?,
            };
            if let Some(happening) = happening {
                return Ok(happening);
            }
        }
    }

    async fn on_received(&mut self, bytes: &[u8]) -> Result<Option<Happening<P>>, SessionError> {
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "undecodable BFCP message from the far end");
                self.refuse_undecodable(bytes, &error).await?;
                return Ok(None);
            }
        };
        let header = message.header;
        let reliable = self.reliable();
        let answers = |p: &Pending<P>| {
            header.transaction_id != 0
                && header.transaction_id == p.transaction_id
                && header.conference_id == self.conference_id
                && (reliable || header.responder)
                && p.primitive.is_answered_by(header.primitive)
        };
        if let Some(index) = self.pending.iter().position(answers) {
            let pending = self.pending.swap_remove(index);
            return Ok(Some(Happening::Answered(pending.purpose, message)));
        }
        if (header.responder && !reliable) || is_only_an_answer(header.primitive) {
            tracing::debug!(primitive = %header.primitive, transaction = header.transaction_id,
                "BFCP answer to no request in flight (late or repeated) dropped");
            return Ok(None);
        }
        let now = Instant::now();
        let repeated = self
            .answers
            .iter()
            .find(|a| a.until > now && a.request == header)
            .map(|a| a.bytes.clone());
        if let Some(bytes) = repeated {
            tracing::debug!(primitive = %header.primitive, transaction = header.transaction_id,
                "repeated BFCP request answered again");
            self.link.send(&bytes).await?;
            return Ok(None);
        }
        Ok(Some(Happening::Incoming(message)))
    }

    async fn on_timer(&mut self) -> Result<Option<Happening<P>>, SessionError> {
        let now = Instant::now();
        let Some(index) = self.pending.iter().position(|p| p.next <= now) else {
            return Ok(None);
        };
        let reliable = self.reliable();
        let timers = self.timers;
        let pending = &mut self.pending[index];
        if reliable || pending.sent >= timers.transmissions.min(MAX_TRANSMISSIONS) {
            let pending = self.pending.swap_remove(index);
            let error = SessionError::Timeout {
                primitive: pending.primitive,
                transmissions: pending.sent,
                waited: now - pending.first_sent,
            };
            return Ok(Some(Happening::Unanswered(pending.purpose, error)));
        }
        pending.sent += 1;
        pending.next = after(now, timers.interval_after(pending.sent));
        tracing::debug!(primitive = %pending.primitive, transaction = pending.transaction_id,
            transmission = pending.sent, "BFCP request retransmitted");
        let bytes = pending.bytes.clone();
        self.link.send(&bytes).await?;
        Ok(None)
    }

    /// Answers what could not be decoded with the Error RFC 8855 names for it, when enough of
    /// a header is there to address it, and it is not itself an answer (no Error loops).
    async fn refuse_undecodable(
        &mut self,
        bytes: &[u8],
        error: &DecodeError,
    ) -> Result<(), SessionError> {
        let Some((version, conference_id, transaction_id, user_id)) = peek_header(bytes) else {
            return Ok(());
        };
        let responder = bytes[0] & 0x10 != 0;
        let primitive = Primitive::from_value(bytes[1]);
        if responder || primitive.is_some_and(is_only_an_answer) {
            return Ok(());
        }
        let code = match error {
            DecodeError::UnsupportedVersion { .. } => ErrorCode::UNSUPPORTED_VERSION,
            DecodeError::UnknownPrimitive { .. } => ErrorCode::UNKNOWN_PRIMITIVE,
            DecodeError::LengthMismatch { .. } => ErrorCode::INCORRECT_MESSAGE_LENGTH,
            _ => ErrorCode::PARSE_ERROR,
        };
        let header = Header {
            version: match version {
                1 => Version::V1,
                2 => Version::V2,
                _ => self.link.version(),
            },
            responder: false,
            // Any primitive: the answer is an Error, addressed by the IDs alone.
            primitive: primitive.unwrap_or(Primitive::Hello),
            conference_id,
            transaction_id,
            user_id,
        };
        self.answer_error(&header, code, Vec::new(), &error.to_string())
            .await
    }
}

/// Primitives that only ever answer a request: one that matches no request of ours is late
/// or repeated, never something to act on.
fn is_only_an_answer(primitive: Primitive) -> bool {
    matches!(
        primitive,
        Primitive::HelloAck
            | Primitive::ChairActionAck
            | Primitive::UserStatus
            | Primitive::Error
            | Primitive::FloorRequestStatusAck
            | Primitive::FloorStatusAck
            | Primitive::GoodbyeAck
    )
}

/// A transaction ID to count on from, different per session: libre, for one, takes any
/// message with the transaction ID of its own request in flight as that request's answer,
/// whatever its primitive or R bit, so our IDs should rarely meet the far end's.
fn random_start() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x6266_6370);
    hasher.finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_timers_wait_seven_and_a_half_seconds_in_four_transmissions() {
        let timers = Timers::default();
        assert_eq!(timers.interval_after(1), Duration::from_millis(500));
        assert_eq!(timers.interval_after(2), Duration::from_millis(1000));
        assert_eq!(timers.interval_after(4), Duration::from_millis(4000));
        assert_eq!(timers.answer_timeout(), Duration::from_millis(7500));
    }

    #[test]
    fn absurd_timers_do_not_overflow() {
        let timers = Timers {
            t1: Duration::MAX,
            transmissions: u32::MAX,
            answer_lifetime: Duration::MAX,
        };
        assert_eq!(timers.answer_timeout(), Duration::MAX);
    }
}
