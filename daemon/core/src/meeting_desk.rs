//! The room core's meeting desk: joins and leaves, the lobby of a hosted meeting, and what the
//! meeting engine reports. It changes `status.meeting`, publishes the [`MeetingPlan`] the engine
//! follows, and hands finished meetings to the call history. It lives inside the core task, so
//! every change here is ordered with every other change of the room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tokio::time::Instant;

use super::event::RoomEvent;
use super::handle::CoreError;
use super::meeting::{
    AdmittedGuest, CHAT_KEPT, ChatMessage, GuestState, GuestTicket, MEETING_ID_CHARS, MediaState,
    MeetingPlan, MeetingReport, MeetingState, MeetingStatus, MeetingTarget, Participant,
    ParticipantState, SasConfirmation, SharedPlan, chat_text_is_valid, check_display_name,
};
use super::room::now_rfc3339;
use crate::call_history::CallRecord;
use roomd_base::net_source::source_group;
use roomd_base::random::{UNAMBIGUOUS_ALPHABET, code};
use roomd_model::config::{Config, LobbyPolicy};
use roomd_model::{Secret, random_base64url, sha256};

/// Wrong PINs from one source before each further attempt from it must wait. Counted per
/// source (IPv6 by /64): one bad guesser cannot lock everyone else out of the meeting.
const FREE_PIN_ATTEMPTS: u32 = 5;
const MAX_PIN_DELAY: Duration = Duration::from_secs(300);
/// Sources whose wrong PINs are remembered; when full, a source whose wait is over makes room,
/// else a new source waits too (it takes this many addresses to get there).
const MAX_PIN_SOURCES: usize = 1024;
mod moderation;

/// Guests in one lobby and meeting at most: a bound on what an open join link can cost.
const MAX_GUESTS: usize = 32;
/// Of those, waiting in the lobby at once: arrivals beyond it are refused until someone is
/// admitted or a place frees (a waiting guest leaves after `meeting.lobby_timeout_seconds`).
pub(super) const MAX_LOBBY: usize = 16;
/// Guests remembered per meeting, those who left included (so that their state can still be
/// asked for); the oldest who left are forgotten first.
const MAX_GUEST_RECORDS: usize = 4 * MAX_GUESTS;

struct Guest {
    name: String,
    token_sha256: [u8; 32],
    state: GuestState,
    arrived: Instant,
}

/// Wrong PINs from one source.
struct PinAttempts {
    wrong: u32,
    next_attempt: Instant,
}

/// The meeting going on, as far as the core needs to remember beyond the status.
struct Current {
    plan: Arc<MeetingPlan>,
    started_at: String,
    started: Instant,
    /// Names of everyone seen, for the call history.
    seen: Vec<String>,
    guests: HashMap<String, Guest>,
    wrong_pins: HashMap<IpAddr, PinAttempts>,
    /// The chat's last message number.
    chat_seq: u64,
    /// The last mute request's number.
    mute_seq: u64,
}

pub(super) struct MeetingDesk {
    plan_tx: watch::Sender<SharedPlan>,
    generation: u64,
    current: Option<Current>,
}

/// Events for the core to publish.
pub(super) type Events = Vec<RoomEvent>;
/// Events to publish, and a finished meeting for the call history.
pub(super) type Outcome = (Events, Option<CallRecord>);

impl MeetingDesk {
    pub(super) fn new() -> (MeetingDesk, watch::Receiver<SharedPlan>) {
        let (plan_tx, plan_rx) = watch::channel(None);
        (
            MeetingDesk {
                plan_tx,
                generation: 0,
                current: None,
            },
            plan_rx,
        )
    }

    pub(super) fn in_meeting(&self) -> bool {
        self.current.is_some()
    }

    pub(super) fn join(
        &mut self,
        status: &mut MeetingStatus,
        target: MeetingTarget,
        config: &Config,
    ) -> Result<Vec<RoomEvent>, CoreError> {
        if self.current.is_some() {
            return Err(CoreError::Refused(format!(
                "the room is already in a meeting ({}); leave it first with meeting.leave",
                status.state
            )));
        }
        if config.meeting.require_pin && matches!(target, MeetingTarget::Hosted { pin: None }) {
            return Err(CoreError::Refused(
                "this room's policy (meeting.require_pin) wants a PIN for every meeting it hosts: \
                 give target.pin"
                    .into(),
            ));
        }
        self.generation += 1;
        let hosted = matches!(target, MeetingTarget::Hosted { .. });
        let meeting_id = if hosted {
            code(MEETING_ID_CHARS, UNAMBIGUOUS_ALPHABET)
        } else {
            String::new()
        };
        let plan = Arc::new(MeetingPlan {
            generation: self.generation,
            display_name: display_name_for(&target, config),
            target,
            meeting_id: meeting_id.clone(),
            removed: Vec::new(),
            dtmf: Vec::new(),
            hold: false,
            sas_confirmed: Vec::new(),
            chat: Vec::new(),
            moderation: Default::default(),
            lobby: Vec::new(),
            mute_requests: Vec::new(),
        });
        let now = now_rfc3339();
        *status = MeetingStatus::idle(now.clone());
        status.target = plan.target.public();
        // A hosted meeting is open as soon as it exists; guests arrive into it.
        status.state = if hosted {
            MeetingState::Connected
        } else {
            MeetingState::Joining
        };
        if hosted {
            status.id = meeting_id.clone();
            status.join_url = format!("{}/join/{meeting_id}", public_url(config));
        }
        let events = vec![RoomEvent::MeetingJoining {
            target: status.target.clone(),
            id: status.id.clone(),
            join_url: status.join_url.clone(),
        }];
        self.current = Some(Current {
            plan: plan.clone(),
            started_at: now,
            started: Instant::now(),
            seen: Vec::new(),
            guests: HashMap::new(),
            wrong_pins: HashMap::new(),
            chat_seq: 0,
            mute_seq: 0,
        });
        self.plan_tx.send_replace(Some(plan));
        Ok(events)
    }

    /// Ends the meeting (left by the room, or failed): the engine stops, guests see `ended`.
    pub(super) fn leave(&mut self, status: &mut MeetingStatus, error: Option<String>) -> Outcome {
        let Some(current) = self.current.take() else {
            if status.state == MeetingState::Failed {
                // Leaving clears the failure that is still shown.
                *status = MeetingStatus::idle(now_rfc3339());
                return (vec![RoomEvent::MeetingCleared {}], None);
            }
            return (Vec::new(), None);
        };
        self.plan_tx.send_replace(None);
        let duration = current.started.elapsed().as_secs();
        let (outcome, state) = match &error {
            Some(_) => ("failed", MeetingState::Failed),
            None => ("ended", MeetingState::Idle),
        };
        let record = CallRecord {
            id: format!("call-{}", random_base64url(9)),
            kind: current.plan.target.kind().to_owned(),
            target: current.plan.target.public(),
            started_at: current.started_at,
            ended_at: now_rfc3339(),
            duration_seconds: duration,
            outcome: outcome.to_owned(),
            error: error.clone().unwrap_or_default(),
            participants: current.seen,
        };
        *status = MeetingStatus::idle(now_rfc3339());
        status.state = state;
        status.error = error.clone().unwrap_or_default();
        let events = vec![RoomEvent::MeetingEnded {
            outcome,
            error: status.error.clone(),
            duration_seconds: duration,
        }];
        (events, Some(record))
    }

    pub(super) fn admit(
        &mut self,
        status: &mut MeetingStatus,
        id: &str,
    ) -> Result<Vec<RoomEvent>, CoreError> {
        let current = self.current_or_refuse()?;
        let guest = current.guests.get_mut(id).ok_or_else(|| {
            CoreError::Refused(format!(
                "no guest {id:?} in the lobby; see status.meeting.participants"
            ))
        })?;
        if guest.state != GuestState::Lobby {
            return Err(CoreError::Refused(format!(
                "guest {id:?} is not waiting in the lobby"
            )));
        }
        guest.state = GuestState::Admitted;
        // Named in the call history even if their media never connects.
        if !current.seen.contains(&guest.name) {
            current.seen.push(guest.name.clone());
        }
        let name = guest.name.clone();
        if let Some(p) = status.participants.iter_mut().find(|p| p.id == id) {
            p.state = ParticipantState::Connecting;
        }
        self.refresh_lobby();
        Ok(vec![RoomEvent::ParticipantAdmitted {
            participant: id.to_owned(),
            name,
        }])
    }

    pub(super) fn remove(
        &mut self,
        status: &mut MeetingStatus,
        id: &str,
    ) -> Result<Vec<RoomEvent>, CoreError> {
        let current = self.current_or_refuse()?;
        let known = status.participants.iter().any(|p| p.id == id);
        if !known {
            return Err(CoreError::Refused(format!(
                "no participant {id:?} in the meeting; see status.meeting.participants"
            )));
        }
        if let Some(guest) = current.guests.get_mut(id) {
            guest.state = GuestState::Removed;
        }
        status.participants.retain(|p| p.id != id);
        status.streams.retain(|s| s.participant != id);
        let mut plan = (*current.plan).clone();
        plan.removed.push(id.to_owned());
        current.plan = Arc::new(plan);
        let plan = current.plan.clone();
        self.plan_tx.send_replace(Some(plan));
        self.forget_roles_of(status, id);
        self.refresh_lobby();
        Ok(vec![RoomEvent::ParticipantRemoved {
            participant: id.to_owned(),
        }])
    }

    /// The room writes `text` in a hosted meeting's chat: shown in status, sent to the guests.
    pub(super) fn chat(
        &mut self,
        status: &mut MeetingStatus,
        from: String,
        text: String,
    ) -> Result<(), CoreError> {
        let current = self.current_or_refuse()?;
        if current.plan.meeting_id.is_empty() {
            return Err(CoreError::Refused(
                "only a meeting this room hosts has a chat".into(),
            ));
        }
        let message = next_chat(current, from, true, text);
        keep_chat(&mut status.chat, message.clone());
        let mut plan = (*current.plan).clone();
        keep_chat(&mut plan.chat, message);
        current.plan = Arc::new(plan);
        let plan = current.plan.clone();
        self.plan_tx.send_replace(Some(plan));
        Ok(())
    }

    /// Queues DTMF tones for the current call (a SIP call only: other meetings carry none).
    pub(super) fn dtmf(&mut self, status: &MeetingStatus, digits: &str) -> Result<(), CoreError> {
        let current = self.current_or_refuse()?;
        if !matches!(
            current.plan.target,
            MeetingTarget::Sip { .. } | MeetingTarget::SipIncoming { .. }
        ) {
            return Err(CoreError::Refused(
                "DTMF tones go to SIP calls only; this meeting is not one".into(),
            ));
        }
        if status.state != MeetingState::Connected {
            return Err(CoreError::Refused(
                "the call is not connected yet; send the tones once it is".into(),
            ));
        }
        // A bound on what a plan carries: a long conference PIN is some 20 digits.
        if current.plan.dtmf.len() >= DTMF_MAX_COMMANDS {
            return Err(CoreError::Refused(format!(
                "at most {DTMF_MAX_COMMANDS} meeting.dtmf commands per call"
            )));
        }
        let mut plan = (*current.plan).clone();
        plan.dtmf.push(digits.to_owned());
        current.plan = Arc::new(plan);
        let plan = current.plan.clone();
        self.plan_tx.send_replace(Some(plan));
        Ok(())
    }

    /// Holds or resumes the current call (a connected SIP call only); the engine sends the
    /// re-INVITE.
    pub(super) fn hold(
        &mut self,
        status: &mut MeetingStatus,
        hold: bool,
    ) -> Result<Vec<RoomEvent>, CoreError> {
        let current = self.current_or_refuse()?;
        if !matches!(
            current.plan.target,
            MeetingTarget::Sip { .. } | MeetingTarget::SipIncoming { .. }
        ) {
            return Err(CoreError::Refused(
                "only SIP calls are put on hold; this meeting is not one".into(),
            ));
        }
        if status.state != MeetingState::Connected {
            return Err(CoreError::Refused("the call is not connected".into()));
        }
        if current.plan.hold == hold {
            return Ok(Vec::new());
        }
        let mut plan = (*current.plan).clone();
        plan.hold = hold;
        current.plan = Arc::new(plan);
        let plan = current.plan.clone();
        self.plan_tx.send_replace(Some(plan));
        status.on_hold = hold;
        Ok(vec![RoomEvent::MeetingHold { on_hold: hold }])
    }

    /// Records that the room's people compared the short authentication string with
    /// participant `id` and it matched; the engine tells that participant. Refused unless the
    /// meeting is end-to-end encrypted and the participant's string is known.
    pub(super) fn confirm_sas(
        &mut self,
        status: &mut MeetingStatus,
        id: &str,
        by: &str,
    ) -> Result<Vec<RoomEvent>, CoreError> {
        let current = self.current_or_refuse()?;
        let Some(participant) = status.e2ee.participants.iter_mut().find(|p| p.id == id) else {
            return Err(CoreError::Refused(format!(
                "no participant {id:?} in the end-to-end key agreement; see \
                 status.meeting.e2ee.participants"
            )));
        };
        if participant.sas.is_empty() {
            return Err(CoreError::Refused(format!(
                "participant {id:?} has no short authentication string yet (their identity is \
                 not known): wait until status shows one"
            )));
        }
        if current
            .plan
            .sas_confirmed
            .iter()
            .any(|c| c.participant == id)
        {
            return Ok(Vec::new());
        }
        participant.sas_confirmed_by = by.to_owned();
        let mut plan = (*current.plan).clone();
        plan.sas_confirmed.push(SasConfirmation {
            participant: id.to_owned(),
            by: by.to_owned(),
        });
        current.plan = Arc::new(plan);
        let plan = current.plan.clone();
        self.plan_tx.send_replace(Some(plan));
        Ok(vec![RoomEvent::MeetingE2eeConfirmed {
            participant: id.to_owned(),
            by: by.to_owned(),
        }])
    }

    /// Applies what the engine reports about the current meeting; reports about an earlier
    /// one are dropped.
    pub(super) fn report(&mut self, status: &mut MeetingStatus, report: MeetingReport) -> Outcome {
        let Some(current) = self.current.as_mut() else {
            return (Vec::new(), None);
        };
        if report.generation() != current.plan.generation {
            return (Vec::new(), None);
        }
        let mut events = Vec::new();
        match report {
            MeetingReport::State {
                state: MeetingState::Failed,
                error,
                ..
            } => {
                tracing::warn!("meeting failed: {error}");
                return self.leave(status, Some(error));
            }
            MeetingReport::Ended { reason, .. } => {
                tracing::info!("meeting ended: {reason}");
                let (mut events, record) = self.leave(status, None);
                events.push(RoomEvent::MeetingEndedRemotely { reason });
                return (events, record);
            }
            MeetingReport::HoldFailed {
                on_hold, reason, ..
            } => {
                tracing::warn!("the call's hold or resume did not take: {reason}");
                // Status and the plan say what the call really is, so that the same command
                // can be given again.
                if current.plan.hold != on_hold {
                    let mut plan = (*current.plan).clone();
                    plan.hold = on_hold;
                    current.plan = Arc::new(plan);
                    self.plan_tx.send_replace(Some(current.plan.clone()));
                }
                status.on_hold = on_hold;
                events.push(RoomEvent::MeetingHoldFailed { on_hold, reason });
            }
            MeetingReport::SharedWindow { window, .. } => {
                status.shared_window = window;
            }
            MeetingReport::ContentFloor { floor, .. } => {
                status.content_floor = floor;
            }
            MeetingReport::FarEndHold { on_hold, .. } => {
                if status.far_end_on_hold != on_hold {
                    status.far_end_on_hold = on_hold;
                    events.push(RoomEvent::MeetingHoldFarEnd { on_hold });
                }
            }
            MeetingReport::State { state, error, .. } => {
                if status.state != state || status.error != error {
                    status.state = state;
                    status.error = error.clone();
                    status.since = now_rfc3339();
                    events.push(RoomEvent::MeetingStateChanged { state, error });
                }
            }
            MeetingReport::Participant { participant, .. } => {
                if current.plan.removed.contains(&participant.id) {
                    return (events, None);
                }
                if !current.seen.contains(&participant.name) {
                    current.seen.push(participant.name.clone());
                }
                match status
                    .participants
                    .iter_mut()
                    .find(|p| p.id == participant.id)
                {
                    Some(existing) => {
                        let joined_now = existing.state != ParticipantState::Connected
                            && participant.state == ParticipantState::Connected;
                        *existing = participant.clone();
                        if joined_now {
                            events.push(RoomEvent::ParticipantConnected {
                                participant: participant.id.clone(),
                                name: participant.name.clone(),
                            });
                        }
                    }
                    None => {
                        events.push(RoomEvent::ParticipantJoined {
                            participant: participant.id.clone(),
                            name: participant.name.clone(),
                        });
                        status.participants.push(participant);
                    }
                }
            }
            MeetingReport::ParticipantLeft { id, .. } => {
                if status.participants.iter().any(|p| p.id == id) {
                    status.participants.retain(|p| p.id != id);
                    status.streams.retain(|s| s.participant != id);
                    events.push(RoomEvent::ParticipantLeft { participant: id });
                }
            }
            MeetingReport::Stats {
                streams, encrypted, ..
            } => {
                status.encrypted = encrypted;
                status.streams = streams.clone();
                events.push(RoomEvent::MeetingStats { streams, encrypted });
            }
            MeetingReport::E2ee { e2ee, .. } => {
                if status.e2ee != e2ee {
                    status.e2ee = e2ee.clone();
                    events.push(RoomEvent::MeetingE2ee { e2ee });
                }
            }
            MeetingReport::Chat { from, text, .. } => {
                // The engine checked it; checked again here, as everything that reaches status.
                if chat_text_is_valid(&text) {
                    let message = next_chat(current, from, false, text);
                    keep_chat(&mut status.chat, message);
                }
            }
            MeetingReport::FirstRemoteFrame {
                participant,
                since_join_ms,
                ..
            } => events.push(RoomEvent::FirstRemoteFrame {
                participant,
                since_join_ms,
            }),
        }
        (events, None)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn guest_arrive(
        &mut self,
        status: &mut MeetingStatus,
        meeting_id: &str,
        name: String,
        pin: Option<Secret>,
        source: IpAddr,
        config: &Config,
    ) -> Result<(GuestTicket, Events), CoreError> {
        let lobby_timeout = Duration::from_secs(config.meeting.lobby_timeout_seconds.into());
        let mut events = self.expire_lobby(status, lobby_timeout);
        let current = self.hosted(meeting_id)?;
        if current.plan.moderation.locked {
            return Err(CoreError::Forbidden(
                "the meeting is locked: nobody new may join it now".into(),
            ));
        }
        check_display_name(&name).map_err(|p| CoreError::Refused(format!("name: {p}")))?;
        let now = Instant::now();
        let source = source_group(source);
        if let Some(attempts) = current.wrong_pins.get(&source)
            && now < attempts.next_attempt
        {
            return Err(CoreError::TooManyAttempts {
                retry_after_secs: (attempts.next_attempt - now).as_secs().max(1),
            });
        }
        if let MeetingTarget::Hosted {
            pin: Some(expected),
        } = &current.plan.target
        {
            let given = pin.as_ref().map(Secret::expose).unwrap_or_default();
            if !bool::from(expected.expose().as_bytes().ct_eq(given.as_bytes())) {
                record_wrong_pin(&mut current.wrong_pins, source, now)?;
                return Err(CoreError::Forbidden(if pin.is_none() {
                    "this meeting needs a PIN".into()
                } else {
                    "wrong PIN".into()
                }));
            }
        }
        let count =
            |state: GuestState| current.guests.values().filter(|g| g.state == state).count();
        let (waiting, admitted) = (count(GuestState::Lobby), count(GuestState::Admitted));
        if waiting + admitted >= MAX_GUESTS {
            return Err(CoreError::Refused(format!(
                "the meeting is full ({MAX_GUESTS} guests)"
            )));
        }
        if waiting >= MAX_LOBBY {
            return Err(CoreError::Refused(format!(
                "the lobby is full ({MAX_LOBBY} guests waiting); try again later"
            )));
        }
        // A known name skips the lobby, but only where the PIN was needed and given: a name
        // alone is what anyone can type.
        let has_pin = matches!(current.plan.target, MeetingTarget::Hosted { pin: Some(_) });
        let known = has_pin
            && config.meeting.lobby == LobbyPolicy::UnknownNames
            && config
                .meeting
                .known_guest_names
                .iter()
                .any(|known| known.trim().to_lowercase() == name.trim().to_lowercase());
        forget_oldest_who_left(&mut current.guests);
        let guest_id = format!("g-{}", code(8, UNAMBIGUOUS_ALPHABET));
        let token = random_base64url(32);
        current.guests.insert(
            guest_id.clone(),
            Guest {
                name: name.clone(),
                token_sha256: sha256(&token),
                state: GuestState::Lobby,
                arrived: now,
            },
        );
        status.participants.push(Participant {
            id: guest_id.clone(),
            name: name.clone(),
            state: ParticipantState::Lobby,
            audio: MediaState::None,
            video: MediaState::None,
            talking: false,
            hand_raised: false,
            // No media yet: nothing of theirs is encrypted.
            encryption: "none".into(),
        });
        events.push(RoomEvent::GuestWaiting {
            participant: guest_id.clone(),
            name: name.clone(),
        });
        let state = if known {
            tracing::info!("guest {guest_id} has a known name and the PIN: admitted at once");
            events.extend(self.admit(status, &guest_id)?);
            GuestState::Admitted
        } else {
            self.refresh_lobby();
            GuestState::Lobby
        };
        Ok((
            GuestTicket {
                guest_id,
                token: Secret::new(token),
                state,
            },
            events,
        ))
    }

    pub(super) fn guest_state(
        &mut self,
        meeting_id: &str,
        guest_id: &str,
        token: &Secret,
    ) -> Result<GuestState, CoreError> {
        Ok(self.guest(meeting_id, guest_id, token)?.state)
    }

    pub(super) fn guest_admitted(
        &mut self,
        meeting_id: &str,
        guest_id: &str,
        token: &Secret,
    ) -> Result<AdmittedGuest, CoreError> {
        let generation = self.generation;
        let guest = self.guest(meeting_id, guest_id, token)?;
        match guest.state {
            GuestState::Admitted => Ok(AdmittedGuest {
                generation,
                guest_id: guest_id.to_owned(),
                name: guest.name.clone(),
            }),
            GuestState::Lobby => Err(CoreError::Forbidden(
                "still waiting in the lobby: someone in the room must admit you first".into(),
            )),
            GuestState::Removed => Err(CoreError::Forbidden(
                "you were removed from this meeting".into(),
            )),
            GuestState::Ended => Err(CoreError::Forbidden("the meeting has ended".into())),
        }
    }

    pub(super) fn guest_leave(
        &mut self,
        status: &mut MeetingStatus,
        meeting_id: &str,
        guest_id: &str,
        token: &Secret,
    ) -> Result<(GuestState, Events), CoreError> {
        let guest = self.guest(meeting_id, guest_id, token)?;
        // Leaving twice is leaving once: nothing more to tell anyone.
        if guest.state == GuestState::Ended {
            return Ok((GuestState::Ended, Vec::new()));
        }
        guest.state = GuestState::Ended;
        let mut events = Vec::new();
        if status.participants.iter().any(|p| p.id == guest_id) {
            status.participants.retain(|p| p.id != guest_id);
            status.streams.retain(|s| s.participant != guest_id);
            events.push(RoomEvent::ParticipantLeft {
                participant: guest_id.to_owned(),
            });
        }
        // The engine drops the guest's media with the participant (see the plan's removed list).
        self.drop_media_of(guest_id);
        self.forget_roles_of(status, guest_id);
        self.refresh_lobby();
        Ok((GuestState::Ended, events))
    }

    /// Has the engine drop `guest_id`'s media (through the plan's removed list, once).
    fn drop_media_of(&mut self, guest_id: &str) {
        if let Some(current) = self.current.as_mut()
            && !current.plan.removed.iter().any(|id| id == guest_id)
        {
            let mut plan = (*current.plan).clone();
            plan.removed.push(guest_id.to_owned());
            current.plan = Arc::new(plan);
            self.plan_tx.send_replace(Some(current.plan.clone()));
        }
    }

    /// When the first guest now waiting in the lobby reaches `limit`, if anyone waits.
    pub(super) fn next_lobby_expiry(&self, limit: Duration) -> Option<Instant> {
        let current = self.current.as_ref()?;
        current
            .guests
            .values()
            .filter(|g| g.state == GuestState::Lobby)
            .map(|g| g.arrived + limit)
            .min()
    }

    /// Guests who waited in the lobby longer than `limit` leave it (their state becomes
    /// `ended`): a lobby place is not held forever by someone nobody admits.
    pub(super) fn expire_lobby(&mut self, status: &mut MeetingStatus, limit: Duration) -> Events {
        let Some(current) = self.current.as_mut() else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        for (id, guest) in &mut current.guests {
            if guest.state == GuestState::Lobby && guest.arrived.elapsed() >= limit {
                guest.state = GuestState::Ended;
                expired.push(id.clone());
            }
        }
        let mut events = Vec::new();
        for id in expired {
            tracing::info!("guest {id} waited in the lobby for {limit:?} without being admitted");
            status.participants.retain(|p| p.id != id);
            events.push(RoomEvent::ParticipantLeft { participant: id });
        }
        if !events.is_empty() {
            self.refresh_lobby();
        }
        events
    }

    fn current_or_refuse(&mut self) -> Result<&mut Current, CoreError> {
        self.current
            .as_mut()
            .ok_or_else(|| CoreError::Refused("the room is not in a meeting".into()))
    }

    /// The hosted meeting `meeting_id`; the same answer for "ended" and "never existed", so
    /// that ids cannot be probed.
    fn hosted(&mut self, meeting_id: &str) -> Result<&mut Current, CoreError> {
        self.current
            .as_mut()
            .filter(|c| {
                !c.plan.meeting_id.is_empty()
                    && bool::from(c.plan.meeting_id.as_bytes().ct_eq(meeting_id.as_bytes()))
            })
            .ok_or_else(|| CoreError::NotFound("no such meeting here (or it has ended)".into()))
    }

    fn guest(
        &mut self,
        meeting_id: &str,
        guest_id: &str,
        token: &Secret,
    ) -> Result<&mut Guest, CoreError> {
        let current = self.hosted(meeting_id)?;
        let guest = current
            .guests
            .get_mut(guest_id)
            .ok_or_else(|| CoreError::NotFound("no such guest in this meeting".into()))?;
        if !bool::from(guest.token_sha256.ct_eq(&sha256(token.expose()))) {
            return Err(CoreError::Forbidden(
                "the guest token does not match".into(),
            ));
        }
        Ok(guest)
    }
}

/// Counts a wrong PIN from `source`; after the free attempts each further one waits twice as
/// long as the one before (up to `MAX_PIN_DELAY`).
fn record_wrong_pin(
    table: &mut HashMap<IpAddr, PinAttempts>,
    source: IpAddr,
    now: Instant,
) -> Result<(), CoreError> {
    if !table.contains_key(&source) && table.len() >= MAX_PIN_SOURCES {
        table.retain(|_, a| a.next_attempt > now);
        if table.len() >= MAX_PIN_SOURCES {
            return Err(CoreError::TooManyAttempts {
                retry_after_secs: MAX_PIN_DELAY.as_secs(),
            });
        }
    }
    let attempts = table.entry(source).or_insert(PinAttempts {
        wrong: 0,
        next_attempt: now,
    });
    attempts.wrong += 1;
    if attempts.wrong >= FREE_PIN_ATTEMPTS {
        let doublings = (attempts.wrong - FREE_PIN_ATTEMPTS).min(16);
        attempts.next_attempt = now + Duration::from_secs(1 << doublings).min(MAX_PIN_DELAY);
    }
    Ok(())
}

/// Makes room for one more guest record by forgetting the one who left longest ago.
fn forget_oldest_who_left(guests: &mut HashMap<String, Guest>) {
    while guests.len() >= MAX_GUEST_RECORDS {
        let oldest = guests
            .iter()
            .filter(|(_, g)| matches!(g.state, GuestState::Ended | GuestState::Removed))
            .min_by_key(|(_, g)| g.arrived)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => {
                guests.remove(&id);
            }
            None => break,
        }
    }
}

/// Most `meeting.dtmf` commands one call takes.
pub(crate) const DTMF_MAX_COMMANDS: usize = 256;

fn display_name_for(target: &MeetingTarget, config: &Config) -> String {
    match target {
        MeetingTarget::Janus {
            display_name: Some(name),
            ..
        }
        | MeetingTarget::Direct {
            display_name: Some(name),
            ..
        } => name.clone(),
        _ => config.system.name.clone(),
    }
}

/// Where guests reach this room: `meeting.public_url`, else the first certificate name, else
/// the first listen address (the host name when that is a wildcard).
pub(super) fn public_url(config: &Config) -> String {
    if !config.meeting.public_url.is_empty() {
        return config.meeting.public_url.clone();
    }
    let Some(listen) = config.api.listen.first() else {
        return "https://localhost".into();
    };
    let port = match listen.port() {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let host = match config.api.certificate_names.first() {
        Some(name) if name.parse::<std::net::Ipv6Addr>().is_ok() => format!("[{name}]"),
        Some(name) => name.clone(),
        None if listen.ip().is_unspecified() => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into()),
        None if listen.is_ipv6() => format!("[{}]", listen.ip()),
        None => listen.ip().to_string(),
    };
    format!("https://{host}{port}")
}

/// The meeting's next chat message.
fn next_chat(current: &mut Current, from: String, from_room: bool, text: String) -> ChatMessage {
    current.chat_seq += 1;
    ChatMessage {
        seq: current.chat_seq,
        from,
        from_room,
        text,
        at: now_rfc3339(),
    }
}

/// Adds `message`, keeping the last [`CHAT_KEPT`].
fn keep_chat(chat: &mut Vec<ChatMessage>, message: ChatMessage) {
    chat.push(message);
    if chat.len() > CHAT_KEPT {
        chat.remove(0);
    }
}
