//! Roles in a meeting the room hosts (docs/meetings.md, "Roles"). The room is the host: from
//! its panel and API it makes guests moderators and takes that back. The host and moderators
//! admit guests from the lobby, remove participants, ask someone to mute (a request the guest
//! answers on their own page: nobody is muted or unmuted from afar), lock the meeting, hand
//! the presenter role to one guest and take it back, and end the meeting for everyone.

use serde::{Deserialize, Serialize};

/// Mute requests the plan keeps (the engine sends each once, by `seq`).
pub(crate) const MUTE_REQUESTS_KEPT: usize = 32;

/// `status.meeting.moderation`: who holds which role, and whether the meeting is locked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Moderation {
    /// Nobody new may arrive (`meeting.lock`); guests already in the lobby still wait there.
    pub locked: bool,
    /// The guests the host made moderators, by participant id.
    pub moderators: Vec<String>,
    /// The one guest who may share a window, by participant id; `None`: no guest may.
    pub presenter: Option<String>,
}

/// What a moderator asks for on their page (`POST …/guests/{guest_id}/moderation`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModeratorAction {
    /// Lets a guest in from the lobby.
    Admit {
        /// The guest's participant id.
        participant: String,
    },
    /// Removes a guest from the meeting (not another moderator: only the host does that).
    Remove {
        /// The guest's participant id.
        participant: String,
    },
    /// Asks a guest to switch their microphone off.
    AskToMute {
        /// The guest's participant id.
        participant: String,
    },
    /// Locks the meeting: nobody new may arrive.
    Lock {},
    /// Opens the meeting again.
    Unlock {},
    /// Makes a guest the presenter (the one who may share a window).
    GrantPresenter {
        /// The guest's participant id.
        participant: String,
    },
    /// Takes the presenter role back: no guest may share.
    TakePresenter {},
    /// Ends the meeting for everyone.
    End {},
}

impl ModeratorAction {
    /// What the audit log and the room's log say was asked (never more than ids).
    pub fn describe(&self) -> String {
        match self {
            ModeratorAction::Admit { participant } => format!("admit {participant}"),
            ModeratorAction::Remove { participant } => format!("remove {participant}"),
            ModeratorAction::AskToMute { participant } => format!("ask {participant} to mute"),
            ModeratorAction::Lock {} => "lock the meeting".into(),
            ModeratorAction::Unlock {} => "unlock the meeting".into(),
            ModeratorAction::GrantPresenter { participant } => {
                format!("make {participant} the presenter")
            }
            ModeratorAction::TakePresenter {} => "take the presenter role back".into(),
            ModeratorAction::End {} => "end the meeting for everyone".into(),
        }
    }
}

/// The host or a moderator asked a guest to switch their microphone off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuteRequest {
    /// Counts the meeting's requests from 1.
    pub seq: u64,
    /// The guest asked.
    pub participant: String,
    /// Who asks: the room's name or the moderator's.
    pub from: String,
}

/// A guest waiting in the lobby, as moderators see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LobbyGuest {
    /// The guest's participant id.
    pub id: String,
    /// The name they gave.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::ModeratorAction;

    #[test]
    fn a_moderators_request_parses_into_one_action_and_anything_else_is_refused() {
        let parse = |s: &str| serde_json::from_str::<ModeratorAction>(s);
        assert_eq!(
            parse(r#"{"action":"remove","participant":"g-1"}"#).ok(),
            Some(ModeratorAction::Remove {
                participant: "g-1".into()
            })
        );
        assert_eq!(
            parse(r#"{"action":"lock"}"#).ok(),
            Some(ModeratorAction::Lock {})
        );
        for bad in [
            r#"{"action":"lock","participant":"g-1"}"#,
            r#"{"action":"unmute","participant":"g-1"}"#,
            r#"{"action":"grant_moderator","participant":"g-1"}"#,
            r#"{"action":"remove"}"#,
            r#"{}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was taken");
        }
    }
}
