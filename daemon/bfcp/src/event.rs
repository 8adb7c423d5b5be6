//! What a session tells the room about the floor, seen from the room's side: both roles send
//! the same events, so that the caller shows and acts on them the same way.

use tokio::sync::mpsc;

use crate::error::SessionError;

/// How many events wait for the caller before further ones are dropped (with a warning): a
/// caller that stops reading must not make the session grow without bound or stall.
pub(crate) const EVENT_QUEUE: usize = 64;

/// A change of the floor, or of the session, from the room's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloorEvent {
    /// The far end answered our Hello (participant), or sent its first request (server).
    Connected,
    /// The room's floor request waits at the floor control server (Pending or Accepted).
    Pending {
        /// Its place in the queue (0: not said).
        queue_position: u8,
    },
    /// The room holds the floor: it may send its content.
    Granted,
    /// The room gave the floor back (or withdrew its request).
    Released,
    /// The room's floor request was refused.
    Denied {
        /// The server's STATUS-INFO, if any.
        status_info: Option<String>,
    },
    /// The room held the floor and has lost it: it must stop sending its content.
    Revoked {
        /// The server's STATUS-INFO, if any.
        status_info: Option<String>,
    },
    /// Someone else holds the floor, usually the far end presenting.
    HeldBy {
        /// Their user ID, when the floor control server says it.
        user_id: Option<u16>,
    },
    /// Nobody holds the floor.
    Free,
    /// The session has ended; the handle's operations fail from now on.
    Closed(CloseReason),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The far end said Goodbye.
    Goodbye,
    /// The room closed it (`close`, or every handle dropped).
    Local,
    /// The far end did not answer Hello (participant) in time.
    NoAnswer,
    /// The transport failed or closed; the error as text.
    Transport(String),
}

/// Why a session of `role` (for the log) that `served` this way ended: its own reason, or its
/// failure as a transport one.
pub(crate) fn close_reason(served: Result<CloseReason, SessionError>, role: &str) -> CloseReason {
    served.unwrap_or_else(|error| {
        tracing::warn!(%error, "BFCP {role} session failed");
        CloseReason::Transport(error.to_string())
    })
}

/// The sending side of a session's events.
pub(crate) struct Events {
    sender: mpsc::Sender<FloorEvent>,
    /// The last floor state sent (Free, HeldBy), not to repeat it.
    last_floor: Option<FloorEvent>,
}

impl Events {
    pub(crate) fn new() -> (Events, mpsc::Receiver<FloorEvent>) {
        let (sender, receiver) = mpsc::channel(EVENT_QUEUE);
        (
            Events {
                sender,
                last_floor: None,
            },
            receiver,
        )
    }

    pub(crate) fn send(&mut self, event: FloorEvent) {
        match &event {
            FloorEvent::Free | FloorEvent::HeldBy { .. } => {
                if self.last_floor.as_ref() == Some(&event) {
                    return;
                }
                self.last_floor = Some(event.clone());
            }
            // After the room held or asked for the floor, the next Free or HeldBy is news.
            FloorEvent::Granted
            | FloorEvent::Released
            | FloorEvent::Revoked { .. }
            | FloorEvent::Denied { .. } => self.last_floor = None,
            _ => {}
        }
        tracing::debug!(?event, "BFCP floor event");
        if let Err(error) = self.sender.try_send(event) {
            match error {
                mpsc::error::TrySendError::Full(event) => {
                    tracing::warn!(?event, "BFCP floor event dropped: nobody reads the events")
                }
                // Nobody listens any more: nothing to tell.
                mpsc::error::TrySendError::Closed(_) => {}
            }
        }
    }
}
