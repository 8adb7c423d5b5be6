//! The room core: the one owner of room state.
//!
//! Every input (API, timers, later D-Bus and the touch panel) becomes a typed [`RoomCommand`] sent to
//! the core's task; the core applies it, persists what must survive, and publishes the result:
//! the status tree on a `watch` channel (for readers that want the latest value) and every change
//! and event on a `broadcast` channel (for subscribers that want each one).

pub mod call_history;
mod command;
mod event;
mod handle;
mod meeting;
mod meeting_desk;
mod moderation;
mod report;
mod room;
mod status;
mod status_diff;

pub use command::{COMMANDS, CommandError, CommandSpec, RoomCommand};
pub use event::{Event, Notification, RoomEvent};
pub use handle::{CoreError, RoomHandle};
pub use meeting::{
    AdmittedGuest, CHAT_MAX_CHARS, ChatMessage, ContentFloor, E2eeFrames, E2eeParticipant,
    E2eeState, E2eeStatus, GuestState, GuestTicket, MediaState, MeetingPlan, MeetingReport,
    MeetingState, MeetingStatus, MeetingTarget, Participant, ParticipantState, SasConfirmation,
    SharedPlan, SharedWindow, StreamStats, chat_text_is_valid, check_display_name, check_pin,
    is_meeting_id,
};
pub use moderation::{LobbyGuest, Moderation, ModeratorAction, MuteRequest};
pub use report::{EngineState, MediaEngineStatus, MediaReport};
pub use room::{CoreSetup, IncomingVerdict, spawn};
pub use status::{
    CameraState, ContentState, DbusState, DbusStatus, IdentityStatus, RoomStatus, StandbyState,
    StatusSnapshot, status_at,
};

#[cfg(test)]
mod meeting_tests;
#[cfg(test)]
mod tests;
