//! The desk's side of roles in a hosted meeting ([`crate::moderation`]): the host's commands
//! and a moderator's requests change `status.meeting.moderation` and the plan together, so
//! that the engine tells every guest at once.

use std::sync::Arc;

use super::{Current, Events, MeetingDesk, Outcome};
use crate::event::RoomEvent;
use crate::handle::CoreError;
use crate::meeting::{GuestState, MeetingPlan, MeetingStatus};
use crate::moderation::{LobbyGuest, MUTE_REQUESTS_KEPT, Moderation, ModeratorAction, MuteRequest};
use roomd_model::Secret;

impl MeetingDesk {
    /// `meeting.moderator.grant` / `meeting.moderator.revoke`: only the host makes moderators.
    pub(crate) fn set_moderator(
        &mut self,
        status: &mut MeetingStatus,
        id: &str,
        moderator: bool,
        by: &str,
    ) -> Result<Events, CoreError> {
        let current = hosted_meeting(self.current.as_mut())?;
        let mut moderation = current.plan.moderation.clone();
        if moderator {
            admitted(current, id)?;
            if !moderation.moderators.iter().any(|m| m == id) {
                moderation.moderators.push(id.to_owned());
            }
        } else if !moderation.moderators.iter().any(|m| m == id) {
            return Err(CoreError::Refused(format!(
                "{id:?} is not a moderator; see status.meeting.moderation"
            )));
        } else {
            moderation.moderators.retain(|m| m != id);
        }
        Ok(self.set_moderation(status, moderation, by))
    }

    /// `meeting.presenter.set` (`Some`) or `meeting.presenter.clear` (`None`): one guest at a
    /// time may share a window.
    pub(crate) fn set_presenter(
        &mut self,
        status: &mut MeetingStatus,
        id: Option<&str>,
        by: &str,
    ) -> Result<Events, CoreError> {
        let current = hosted_meeting(self.current.as_mut())?;
        if let Some(id) = id {
            admitted(current, id)?;
        }
        let mut moderation = current.plan.moderation.clone();
        moderation.presenter = id.map(str::to_owned);
        Ok(self.set_moderation(status, moderation, by))
    }

    /// `meeting.lock` / `meeting.unlock`: whether anyone new may arrive.
    pub(crate) fn set_locked(
        &mut self,
        status: &mut MeetingStatus,
        locked: bool,
        by: &str,
    ) -> Result<Events, CoreError> {
        let current = hosted_meeting(self.current.as_mut())?;
        let mut moderation = current.plan.moderation.clone();
        moderation.locked = locked;
        Ok(self.set_moderation(status, moderation, by))
    }

    /// `meeting.ask_mute`: the guest's page asks them to switch their microphone off. It is a
    /// request: nobody but the guest mutes or unmutes them.
    pub(crate) fn ask_to_mute(&mut self, id: &str, by: &str) -> Result<Events, CoreError> {
        let current = hosted_meeting(self.current.as_mut())?;
        admitted(current, id)?;
        current.mute_seq += 1;
        let request = MuteRequest {
            seq: current.mute_seq,
            participant: id.to_owned(),
            from: by.to_owned(),
        };
        self.change_plan(|plan| {
            plan.mute_requests.push(request);
            let excess = plan.mute_requests.len().saturating_sub(MUTE_REQUESTS_KEPT);
            plan.mute_requests.drain(..excess);
        });
        Ok(vec![RoomEvent::MuteRequested {
            participant: id.to_owned(),
            by: by.to_owned(),
        }])
    }

    /// A moderator's request from their page: the guest proves who they are with their token
    /// and must be a moderator; then it is done as the host would do it, but a moderator may
    /// not remove another moderator (nor themself: they leave).
    pub(crate) fn guest_moderate(
        &mut self,
        status: &mut MeetingStatus,
        meeting_id: &str,
        guest_id: &str,
        token: &Secret,
        action: ModeratorAction,
    ) -> Result<Outcome, CoreError> {
        let guest = self.guest(meeting_id, guest_id, token)?;
        if guest.state != GuestState::Admitted {
            return Err(CoreError::Forbidden(
                "only a guest in the meeting may moderate it".into(),
            ));
        }
        let by = guest.name.clone();
        let moderators = hosted_meeting(self.current.as_mut())?
            .plan
            .moderation
            .moderators
            .clone();
        if !moderators.iter().any(|m| m == guest_id) {
            return Err(CoreError::Forbidden(
                "only a moderator may do this; the room makes moderators".into(),
            ));
        }
        tracing::info!("moderator {guest_id}: {}", action.describe());
        let events = match action {
            ModeratorAction::Admit { participant } => self.admit(status, &participant)?,
            ModeratorAction::Remove { participant } => {
                if participant == guest_id {
                    return Err(CoreError::Refused(
                        "to leave the meeting, leave it; a moderator removes others".into(),
                    ));
                }
                if moderators.contains(&participant) {
                    return Err(CoreError::Forbidden(
                        "only the room removes a moderator".into(),
                    ));
                }
                self.remove(status, &participant)?
            }
            ModeratorAction::AskToMute { participant } => self.ask_to_mute(&participant, &by)?,
            ModeratorAction::Lock {} => self.set_locked(status, true, &by)?,
            ModeratorAction::Unlock {} => self.set_locked(status, false, &by)?,
            ModeratorAction::GrantPresenter { participant } => {
                self.set_presenter(status, Some(&participant), &by)?
            }
            ModeratorAction::TakePresenter {} => self.set_presenter(status, None, &by)?,
            ModeratorAction::End {} => {
                let (mut events, record) = self.leave(status, None);
                events.push(RoomEvent::MeetingEndedByModerator { by });
                return Ok((events, record));
            }
        };
        Ok((events, None))
    }

    /// A participant who left or was removed holds no role any more.
    pub(super) fn forget_roles_of(&mut self, status: &mut MeetingStatus, id: &str) {
        let Some(current) = self.current.as_ref() else {
            return;
        };
        let mut moderation = current.plan.moderation.clone();
        moderation.moderators.retain(|m| m != id);
        if moderation.presenter.as_deref() == Some(id) {
            moderation.presenter = None;
        }
        if moderation != current.plan.moderation {
            // Nobody asked: the status change tells the panel, no event is due.
            let _ = self.set_moderation(status, moderation, "");
        }
    }

    /// The plan lists who waits in the lobby, for moderators' pages; called after every change
    /// of a guest's state.
    pub(super) fn refresh_lobby(&mut self) {
        let Some(current) = self.current.as_ref() else {
            return;
        };
        let mut lobby: Vec<LobbyGuest> = current
            .guests
            .iter()
            .filter(|(_, g)| g.state == GuestState::Lobby)
            .map(|(id, g)| LobbyGuest {
                id: id.clone(),
                name: g.name.clone(),
            })
            .collect();
        lobby.sort_by(|a, b| a.id.cmp(&b.id));
        if lobby != current.plan.lobby {
            self.change_plan(|plan| plan.lobby = lobby);
        }
    }

    fn set_moderation(
        &mut self,
        status: &mut MeetingStatus,
        moderation: Moderation,
        by: &str,
    ) -> Events {
        status.moderation = moderation.clone();
        let unchanged = self
            .current
            .as_ref()
            .is_some_and(|c| c.plan.moderation == moderation);
        if unchanged {
            return Vec::new();
        }
        self.change_plan(|plan| plan.moderation = moderation.clone());
        if by.is_empty() {
            return Vec::new();
        }
        vec![RoomEvent::MeetingModeration {
            moderation,
            by: by.to_owned(),
        }]
    }

    /// Publishes the current plan changed by `change`.
    pub(super) fn change_plan(&mut self, change: impl FnOnce(&mut MeetingPlan)) {
        if let Some(current) = self.current.as_mut() {
            let mut plan = (*current.plan).clone();
            change(&mut plan);
            current.plan = Arc::new(plan);
            self.plan_tx.send_replace(Some(current.plan.clone()));
        }
    }
}

fn hosted_meeting(current: Option<&mut Current>) -> Result<&mut Current, CoreError> {
    match current {
        Some(current) if !current.plan.meeting_id.is_empty() => Ok(current),
        Some(_) => Err(CoreError::Refused(
            "only a meeting this room hosts has roles".into(),
        )),
        None => Err(CoreError::Refused("the room is not in a meeting".into())),
    }
}

/// Guest `id`, admitted to the meeting.
fn admitted(current: &Current, id: &str) -> Result<(), CoreError> {
    match current.guests.get(id) {
        Some(guest) if guest.state == GuestState::Admitted => Ok(()),
        _ => Err(CoreError::Refused(format!(
            "no guest {id:?} in the meeting; see status.meeting.participants"
        ))),
    }
}
