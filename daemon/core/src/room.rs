//! The core's task: applies requests one at a time, in order, and publishes what changed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::command::RoomCommand;
use super::event::{Event, Notification, RoomEvent};
use super::handle::{CoreError, RoomHandle};
use super::meeting::{AdmittedGuest, GuestState, GuestTicket, MeetingReport, MeetingTarget};
use super::meeting_desk::MeetingDesk;
use super::report::{EngineState, MediaReport};
use super::status::{
    CameraState, ContentState, DbusStatus, IdentityStatus, RoomStatus, StandbyState, StatusSnapshot,
};
use super::status_diff::changed_leaves;
use crate::call_history::{CallHistory, CallRecord};
use roomd_model::Secret;
use roomd_model::config::{
    CAMERA_PRESETS_MAX_ENTRIES, CameraPosition, CameraPreset, Config, ConfigError,
};
use roomd_model::factory_reset;
use roomd_model::host::HostReport;
use roomd_model::sip::IncomingCall;
use roomd_model::update::{UpdateState, UpdateStatus};

/// Requests queued for the core; replies go back on the enclosed channels.
pub(super) enum Request {
    Command {
        command: RoomCommand,
        reply: oneshot::Sender<Result<(), CoreError>>,
    },
    PatchConfig {
        patch: Value,
        reply: oneshot::Sender<Result<Arc<Config>, CoreError>>,
    },
    MarkClaimed {
        reply: oneshot::Sender<()>,
    },
    SetIdentity {
        identity: IdentityStatus,
        reply: oneshot::Sender<()>,
    },
    Report {
        report: MediaReport,
        reply: oneshot::Sender<()>,
    },
    Meeting {
        report: MeetingReport,
        reply: oneshot::Sender<()>,
    },
    Update {
        status: UpdateStatus,
        reply: oneshot::Sender<()>,
    },
    Dbus {
        status: DbusStatus,
        reply: oneshot::Sender<()>,
    },
    Fleet {
        status: roomd_model::fleet::FleetStatus,
        reply: oneshot::Sender<()>,
    },
    Provisioning {
        report: roomd_model::provisioning::ProvisioningReport,
        reply: oneshot::Sender<()>,
    },
    ProvisioningPatch {
        patch: Value,
        reply: oneshot::Sender<Result<Arc<Config>, CoreError>>,
    },
    Sip {
        status: roomd_model::sip::SipStatus,
        reply: oneshot::Sender<()>,
    },
    SipIncoming {
        call: IncomingCall,
        decline: oneshot::Sender<()>,
        reply: oneshot::Sender<IncomingVerdict>,
    },
    SipIncomingEnded {
        call: IncomingCall,
        reason: String,
        reply: oneshot::Sender<()>,
    },
    Host {
        report: HostReport,
        reply: oneshot::Sender<()>,
    },
    Guest {
        meeting_id: String,
        request: GuestRequest,
    },
    Ping {
        reply: oneshot::Sender<()>,
    },
    Shutdown,
}

/// What a guest of a hosted meeting asks (through the public guest API), with where the answer
/// goes.
pub(super) enum GuestRequest {
    Arrive {
        name: String,
        pin: Option<Secret>,
        /// The address the guest came from (wrong PINs are counted per source).
        source: std::net::IpAddr,
        reply: oneshot::Sender<Result<GuestTicket, CoreError>>,
    },
    State {
        guest_id: String,
        token: Secret,
        reply: oneshot::Sender<Result<GuestState, CoreError>>,
    },
    Admitted {
        guest_id: String,
        token: Secret,
        reply: oneshot::Sender<Result<AdmittedGuest, CoreError>>,
    },
    Leave {
        guest_id: String,
        token: Secret,
        reply: oneshot::Sender<Result<GuestState, CoreError>>,
    },
    /// A moderator's request ([`crate::ModeratorAction`]).
    Moderate {
        guest_id: String,
        token: Secret,
        action: crate::ModeratorAction,
        reply: oneshot::Sender<Result<(), CoreError>>,
    },
}

/// What the core starts from.
pub struct CoreSetup {
    /// The configuration as loaded at start.
    pub config: Config,
    /// Where configuration changes are persisted.
    pub config_path: PathBuf,
    /// Whether the first administrator exists already (`system.claimed`).
    pub claimed: bool,
    /// The device identity's branch of the status at start.
    pub identity: IdentityStatus,
}

/// Starts the core on the current tokio runtime.
pub fn spawn(setup: CoreSetup) -> (RoomHandle, JoinHandle<()>) {
    let status = RoomStatus::at_start(&setup.config, setup.claimed, setup.identity.clone());
    let published = to_value(&status);
    let (requests_tx, requests) = mpsc::channel(64);
    let (status_tx, status_rx) = watch::channel(Arc::new(StatusSnapshot::new(
        status.clone(),
        published.clone(),
    )));
    let (config_tx, config_rx) = watch::channel(Arc::new(setup.config.clone()));
    // Slow subscribers lag and are told so (broadcast's Lagged) rather than holding up the core.
    let (notifications, _) = broadcast::channel(1024);
    let (meetings, plan) = MeetingDesk::new();
    let handle = RoomHandle {
        requests: requests_tx,
        status: status_rx,
        config: config_rx,
        notifications: notifications.clone(),
        plan,
    };
    let room = Room {
        history: CallHistory::in_state_dir(&setup.config.system.state_dir),
        meetings,
        ringing: None,
        config: setup.config,
        config_path: setup.config_path,
        status,
        published,
        status_tx,
        config_tx,
        notifications,
        next_seq: 1,
        last_activity: Instant::now(),
    };
    (handle, tokio::spawn(room.run(requests)))
}

/// The SIP call that rings.
struct Ringing {
    call: IncomingCall,
    /// Tells the SIP worker to decline it (603).
    decline: oneshot::Sender<()>,
}

/// What the core makes of a SIP call in (`RoomHandle::sip_incoming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingVerdict {
    /// It rings: `status.sip.incoming`, event `meeting.ringing`.
    Ringing,
    /// The caller is in `sip.auto_answer`: the call is the meeting now.
    Answered,
    /// The room is in a meeting or another call rings: 486 Busy Here.
    Busy,
}

fn not_ringing() -> CoreError {
    CoreError::Refused("no SIP call is ringing (see status.sip.incoming)".to_owned())
}

/// Whether `sip.auto_answer` lists `caller`: scheme, user and host compared without
/// parameters, the host case-insensitively; `sip:` and `sips:` count the same.
fn auto_answered(config: &Config, caller: &str) -> bool {
    fn key(uri: &str) -> Option<(String, String)> {
        let rest = uri
            .strip_prefix("sips:")
            .or_else(|| uri.strip_prefix("sip:"))?;
        let rest = rest.split([';', '?', '>']).next()?;
        let (user, host) = rest.split_once('@')?;
        Some((user.to_owned(), host.to_ascii_lowercase()))
    }
    let Some(caller) = key(caller) else {
        return false;
    };
    config
        .sip
        .auto_answer
        .iter()
        .any(|listed| key(listed).is_some_and(|k| k == caller))
}

impl Room {
    /// A SIP call in: busy while in a meeting or while another call rings; answered at once
    /// when its caller is in `sip.auto_answer`; else it rings.
    fn sip_incoming(
        &mut self,
        mut call: IncomingCall,
        decline: oneshot::Sender<()>,
    ) -> (IncomingVerdict, Vec<RoomEvent>) {
        call.since = now_rfc3339();
        if self.meetings.in_meeting() || self.ringing.is_some() {
            return (IncomingVerdict::Busy, Vec::new());
        }
        let mut events = vec![RoomEvent::MeetingRinging {
            id: call.id.clone(),
            display_name: call.display_name.clone(),
            uri: call.uri.clone(),
        }];
        let auto = auto_answered(&self.config, &call.uri);
        if let Some(sip) = self.status.sip.as_mut() {
            sip.incoming = Some(call.clone());
        }
        self.ringing = Some(Ringing { call, decline });
        if !auto {
            return (IncomingVerdict::Ringing, events);
        }
        match self.answer_call() {
            Ok(joined) => {
                events.extend(joined);
                (IncomingVerdict::Answered, events)
            }
            Err(e) => {
                tracing::warn!("SIP: cannot answer a call automatically: {e}");
                (IncomingVerdict::Ringing, events)
            }
        }
    }

    /// `meeting.answer`: the call that rings becomes the meeting; the meeting engine answers it
    /// (200 OK with the room's SDP answer).
    fn answer_call(&mut self) -> Result<Vec<RoomEvent>, CoreError> {
        let ringing = self.ringing.take().ok_or_else(not_ringing)?;
        let target = MeetingTarget::SipIncoming {
            id: ringing.call.id.clone(),
            uri: ringing.call.uri.clone(),
            display_name: ringing.call.display_name.clone(),
        };
        match self
            .meetings
            .join(&mut self.status.meeting, target, &self.config)
        {
            Ok(events) => {
                if let Some(sip) = self.status.sip.as_mut() {
                    sip.incoming = None;
                }
                Ok(events)
            }
            Err(e) => {
                // Still ringing: leave the meeting first, or decline.
                self.ringing = Some(ringing);
                Err(e)
            }
        }
    }
}

/// What is left to do after a command or report changed the status (`Room::carry_out`).
#[derive(Default)]
struct Effects {
    events: Vec<RoomEvent>,
    /// A configuration patch to merge and persist before the events are published.
    persist: Option<Value>,
    /// A finished call for the history.
    record: Option<CallRecord>,
    /// The factory-reset marker's content, written before the events are published (a marker
    /// that cannot be written fails the command: no restart is announced without it).
    factory_reset_marker: Option<String>,
}

struct Room {
    meetings: MeetingDesk,
    /// The SIP call that rings, with the way to decline it (`status.sip.incoming`).
    ringing: Option<Ringing>,
    history: CallHistory,
    config: Config,
    config_path: PathBuf,
    status: RoomStatus,
    /// `status` as last published, to compute what changed.
    published: Value,
    status_tx: watch::Sender<Arc<StatusSnapshot>>,
    config_tx: watch::Sender<Arc<Config>>,
    notifications: broadcast::Sender<Notification>,
    next_seq: u64,
    last_activity: Instant,
}

impl Room {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        // The first tick is at once: what expired while the device was off goes at start.
        let mut history_retention = tokio::time::interval(HISTORY_RETENTION_EVERY);
        history_retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let standby_due = self.standby_due();
            let lobby_due = self.meetings.next_lobby_expiry(self.lobby_timeout());
            tokio::select! {
                request = requests.recv() => match request {
                    Some(Request::Shutdown) | None => break,
                    Some(request) => self.handle(request).await,
                },
                _ = history_retention.tick() => self.apply_history_retention().await,
                _ = sleep_until(standby_due) => {
                    tracing::info!("no activity for {} minutes: entering standby", self.config.standby.delay_minutes);
                    let mut events = Vec::new();
                    self.set_standby(StandbyState::On, "timer", &mut events);
                    self.publish(events);
                }
                _ = sleep_until(lobby_due) => {
                    let limit = self.lobby_timeout();
                    let expired = self.meetings.expire_lobby(&mut self.status.meeting, limit);
                    self.publish(expired);
                }
            }
        }
        tracing::debug!("room core stopped");
    }

    /// How long a guest may wait in the lobby (`meeting.lobby_timeout_seconds`).
    fn lobby_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.meeting.lobby_timeout_seconds.into())
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Command { command, reply } => {
                let result = match self.apply(command) {
                    Ok(effects) => self.carry_out(effects).await,
                    Err(refused) => Err(refused),
                };
                let _ = reply.send(result);
            }
            Request::Meeting { report, reply } => {
                let (events, record) = self.meetings.report(&mut self.status.meeting, report);
                let effects = Effects {
                    events,
                    record,
                    ..Effects::default()
                };
                // Nothing is persisted for a report, so carrying it out cannot fail.
                let _ = self.carry_out(effects).await;
                let _ = reply.send(());
            }
            Request::Guest {
                meeting_id,
                request,
            } => self.guest(&meeting_id, request).await,
            Request::PatchConfig { patch, reply } => {
                let result = self.patch_config(patch).await;
                let _ = reply.send(result);
            }
            Request::MarkClaimed { reply } => {
                if !self.status.system.claimed {
                    self.status.system.claimed = true;
                    self.publish(vec![RoomEvent::SystemClaimed {}]);
                }
                let _ = reply.send(());
            }
            Request::Report { report, reply } => {
                let events = self.apply_report(report);
                self.publish(events);
                let _ = reply.send(());
            }
            Request::Update { status, reply } => {
                let events = update_events(&self.status.update, &status);
                self.status.update = status;
                self.publish(events);
                let _ = reply.send(());
            }
            Request::Host { report, reply } => {
                let events = match report {
                    HostReport::Status(status) => {
                        self.status.host = status;
                        Vec::new()
                    }
                    HostReport::Applied { keys } => vec![RoomEvent::HostApplied { keys }],
                    HostReport::ApplyFailed { key, reason } => {
                        vec![RoomEvent::HostApplyFailed { key, reason }]
                    }
                };
                self.publish(events);
                let _ = reply.send(());
            }
            Request::Dbus { status, reply } => {
                // Status only: who serves the interface is not an event of the room.
                self.status.system.dbus = status;
                self.publish(Vec::new());
                let _ = reply.send(());
            }
            Request::Provisioning { report, reply } => {
                use roomd_model::provisioning::ProvisioningReport;
                let (status, events) = match report {
                    ProvisioningReport::Status(status) => (status, Vec::new()),
                    ProvisioningReport::Applied {
                        source,
                        serial,
                        status,
                    } => (
                        status,
                        vec![RoomEvent::ProvisioningApplied { source, serial }],
                    ),
                    ProvisioningReport::Refused {
                        source,
                        reason,
                        status,
                    } => (
                        status,
                        vec![RoomEvent::ProvisioningRefused { source, reason }],
                    ),
                };
                self.status.provisioning = Some(status);
                self.publish(events);
                let _ = reply.send(());
            }
            Request::ProvisioningPatch { patch, reply } => {
                let result = self
                    .patch_config_with(patch, Config::apply_provisioning_patch)
                    .await;
                let _ = reply.send(result);
            }
            Request::Fleet { status, reply } => {
                // Status only: subscribers see status.fleet change.
                self.status.fleet = Some(status);
                self.publish(Vec::new());
                let _ = reply.send(());
            }
            Request::Sip { mut status, reply } => {
                // Status only: subscribers see status.sip change. The call that rings is the
                // core's to say.
                status.incoming = self.status.sip.as_ref().and_then(|s| s.incoming.clone());
                self.status.sip = Some(status);
                self.publish(Vec::new());
                let _ = reply.send(());
            }
            Request::SipIncoming {
                call,
                decline,
                reply,
            } => {
                let (verdict, events) = self.sip_incoming(call, decline);
                self.publish(events);
                let _ = reply.send(verdict);
            }
            Request::SipIncomingEnded {
                call,
                reason,
                reply,
            } => {
                if self.ringing.as_ref().is_some_and(|r| r.call.id == call.id) {
                    self.ringing = None;
                    if let Some(sip) = self.status.sip.as_mut() {
                        sip.incoming = None;
                    }
                }
                self.publish(vec![RoomEvent::MeetingRingingEnded {
                    display_name: call.display_name,
                    uri: call.uri,
                    reason,
                }]);
                let _ = reply.send(());
            }
            Request::SetIdentity { identity, reply } => {
                // Status changes only: subscribers see identity.certificate_sha256 change.
                self.status.identity = identity;
                self.publish(Vec::new());
                let _ = reply.send(());
            }
            Request::Ping { reply } => {
                let _ = reply.send(());
            }
            Request::Shutdown => {}
        }
    }

    /// Changes the status for one command and returns what is left to do: the events it
    /// causes, configuration to persist, a call to record (`carry_out` does those). A command
    /// the room cannot carry out changes nothing.
    fn apply(&mut self, command: RoomCommand) -> Result<Effects, CoreError> {
        let mut effects = Effects::default();
        let events = &mut effects.events;
        // Refusals first, so that a refused command is not counted as activity either.
        let recalled = match &command {
            RoomCommand::RecallCameraPreset { name } => Some(self.preset(name)?),
            _ => None,
        };
        let saved_presets = match &command {
            RoomCommand::SaveCameraPreset { name } => Some(self.presets_with(name)?),
            _ => None,
        };
        if command == RoomCommand::RebootForUpdate {
            return self.reboot_for_update();
        }
        // Power commands are no use of the room: the host worker follows the event and asks
        // logind (event first, then the call).
        match &command {
            RoomCommand::Reboot { by } => {
                return Ok(Effects {
                    events: vec![RoomEvent::SystemRebootRequested { by: by.clone() }],
                    ..Effects::default()
                });
            }
            RoomCommand::PowerOff { by } => {
                return Ok(Effects {
                    events: vec![RoomEvent::SystemPowerOffRequested { by: by.clone() }],
                    ..Effects::default()
                });
            }
            _ => {}
        }
        if let RoomCommand::FactoryReset { by } = &command {
            return Ok(Effects {
                events: vec![RoomEvent::FactoryResetRequested { by: by.clone() }],
                factory_reset_marker: Some(factory_reset::command_marker(by)),
                ..Effects::default()
            });
        }
        // Any use of the room counts as activity and wakes it, as on every room system.
        self.last_activity = Instant::now();
        if command != RoomCommand::ActivateStandby {
            self.set_standby(StandbyState::Off, "activity", events);
        }
        match command {
            RoomCommand::SetVolume { level } => {
                if self.status.audio.volume != level {
                    self.status.audio.volume = level;
                    events.push(RoomEvent::VolumeChanged { level });
                }
            }
            RoomCommand::SetMicrophonesMuted { muted } => {
                if self.status.audio.microphones.muted != muted {
                    self.status.audio.microphones.muted = muted;
                    events.push(if muted {
                        RoomEvent::MicrophonesMuted {}
                    } else {
                        RoomEvent::MicrophonesUnmuted {}
                    });
                }
            }
            RoomCommand::SetLayout { layout } => {
                if self.status.video.layout != layout {
                    self.status.video.layout = layout;
                    events.push(RoomEvent::LayoutChanged { layout });
                }
            }
            RoomCommand::SetSelfview { mode, position } => {
                let selfview = &mut self.status.video.selfview;
                let before = selfview.clone();
                selfview.mode = mode;
                if let Some(position) = position {
                    selfview.position = position;
                }
                if *selfview != before {
                    events.push(RoomEvent::SelfviewChanged {
                        mode: selfview.mode,
                        position: selfview.position,
                    });
                }
            }
            RoomCommand::ActivateStandby => self.set_standby(StandbyState::On, "command", events),
            RoomCommand::DeactivateStandby => {} // woken above
            RoomCommand::SetCameraEnabled { enabled } => {
                let state = if enabled {
                    CameraState::On
                } else {
                    CameraState::Off
                };
                if self.status.video.camera.state != state {
                    self.status.video.camera.state = state;
                    events.push(if enabled {
                        RoomEvent::CameraOn {}
                    } else {
                        RoomEvent::CameraOff {}
                    });
                }
            }
            RoomCommand::SetContentSharing { active } => {
                let state = if active {
                    ContentState::Active
                } else {
                    ContentState::Inactive
                };
                if self.status.video.content.state != state {
                    self.status.video.content.state = state;
                    events.push(if active {
                        RoomEvent::ContentStarted {}
                    } else {
                        RoomEvent::ContentStopped {}
                    });
                }
            }
            RoomCommand::SetCameraPosition { pan, tilt, zoom } => {
                let current = self.status.video.camera.position;
                let position = CameraPosition {
                    pan: pan.unwrap_or(current.pan),
                    tilt: tilt.unwrap_or(current.tilt),
                    zoom: zoom.unwrap_or(current.zoom),
                };
                self.move_camera(position, None, events);
            }
            RoomCommand::RecallCameraPreset { name } => {
                if let Some(position) = recalled {
                    self.move_camera(position, Some(&name), events);
                }
            }
            // The configuration is persisted before the event is published (`carry_out`).
            RoomCommand::SaveCameraPreset { name } => {
                let presets = saved_presets.unwrap_or_default();
                effects.persist = Some(json!({ "video": { "camera_presets": presets } }));
                events.push(RoomEvent::CameraPresetSaved {
                    name,
                    position: self.status.video.camera.position,
                });
            }
            RoomCommand::JoinMeeting { target } => events.extend(self.meetings.join(
                &mut self.status.meeting,
                *target,
                &self.config,
            )?),
            RoomCommand::LeaveMeeting => {
                let (left, record) = self.meetings.leave(&mut self.status.meeting, None);
                events.extend(left);
                effects.record = record;
            }
            RoomCommand::AdmitParticipant { id } => {
                events.extend(self.meetings.admit(&mut self.status.meeting, &id)?)
            }
            RoomCommand::RemoveParticipant { id } => {
                events.extend(self.meetings.remove(&mut self.status.meeting, &id)?)
            }
            RoomCommand::SetModerator { id, moderator } => {
                let by = self.config.system.name.clone();
                events.extend(self.meetings.set_moderator(
                    &mut self.status.meeting,
                    &id,
                    moderator,
                    &by,
                )?)
            }
            RoomCommand::SetPresenter { id } => {
                let by = self.config.system.name.clone();
                events.extend(self.meetings.set_presenter(
                    &mut self.status.meeting,
                    id.as_deref(),
                    &by,
                )?)
            }
            RoomCommand::LockMeeting { locked } => {
                let by = self.config.system.name.clone();
                events.extend(
                    self.meetings
                        .set_locked(&mut self.status.meeting, locked, &by)?,
                )
            }
            RoomCommand::AskToMute { id } => {
                let by = self.config.system.name.clone();
                events.extend(self.meetings.ask_to_mute(&id, &by)?)
            }
            RoomCommand::SendDtmf { digits } => {
                self.meetings.dtmf(&self.status.meeting, &digits)?
            }
            RoomCommand::SendChat { text } => {
                let from = self.config.system.name.clone();
                self.meetings.chat(&mut self.status.meeting, from, text)?
            }
            RoomCommand::AnswerCall => events.extend(self.answer_call()?),
            RoomCommand::HoldCall { hold } => {
                events.extend(self.meetings.hold(&mut self.status.meeting, hold)?)
            }
            RoomCommand::ConfirmSas { id, by } => events.extend(self.meetings.confirm_sas(
                &mut self.status.meeting,
                &id,
                &by,
            )?),
            RoomCommand::DeclineCall => {
                let ringing = self.ringing.take().ok_or_else(not_ringing)?;
                if let Some(sip) = self.status.sip.as_mut() {
                    sip.incoming = None;
                }
                let _ = ringing.decline.send(());
                events.push(RoomEvent::MeetingRingingEnded {
                    display_name: ringing.call.display_name,
                    uri: ringing.call.uri,
                    reason: "declined (meeting.decline)".to_owned(),
                });
            }
            RoomCommand::RebootForUpdate
            | RoomCommand::FactoryReset { .. }
            | RoomCommand::Reboot { .. }
            | RoomCommand::PowerOff { .. } => {} // answered above
        }
        Ok(effects)
    }

    /// Does what a command or report left to do, in this order: persist (a failure fails the
    /// command, and its events are not published), publish, record the call.
    async fn carry_out(&mut self, effects: Effects) -> Result<(), CoreError> {
        if let Some(patch) = effects.persist {
            self.patch_config(patch).await?;
        }
        if let Some(marker) = effects.factory_reset_marker {
            self.write_factory_reset_marker(marker).await?;
        }
        self.publish(effects.events);
        self.record_call(effects.record).await;
        Ok(())
    }

    /// Writes `<state_dir>/factory-reset` atomically: whoever restarts roomd next (itself, right
    /// after this command, or a power cut) finds a whole marker or none.
    async fn write_factory_reset_marker(&self, marker: String) -> Result<(), CoreError> {
        let path = self
            .config
            .system
            .state_dir
            .join(factory_reset::MARKER_FILE);
        let shown = path.display().to_string();
        let written = tokio::task::spawn_blocking(move || {
            roomd_base::fsutil::write_atomic(&path, marker.as_bytes(), 0o600)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|written| written);
        written.map_err(|e| {
            CoreError::Failed(format!(
                "cannot write the factory-reset marker {shown}: {e}; nothing was reset"
            ))
        })
    }

    /// `update.reboot`: only when an installed update waits for it. The update worker follows
    /// the event and asks logind to reboot.
    fn reboot_for_update(&mut self) -> Result<Effects, CoreError> {
        let update = &self.status.update;
        if !update.needs_reboot {
            return Err(CoreError::Refused(format!(
                "no installed update waits for a reboot (status.update.state is {}); install \
                 one with POST /api/v1/update first",
                update.state.as_str()
            )));
        }
        Ok(Effects {
            events: vec![RoomEvent::UpdateRebootRequested {
                version: update.version.clone(),
            }],
            ..Effects::default()
        })
    }

    async fn guest(&mut self, meeting_id: &str, request: GuestRequest) {
        // Also here: the timer may not have fired yet when a guest asks right at the limit.
        let lobby_timeout = self.lobby_timeout();
        let expired = self
            .meetings
            .expire_lobby(&mut self.status.meeting, lobby_timeout);
        if !expired.is_empty() {
            self.publish(expired);
        }
        let meeting = &mut self.status.meeting;
        let desk = &mut self.meetings;
        match request {
            GuestRequest::Arrive {
                name,
                pin,
                source,
                reply,
            } => {
                let result =
                    desk.guest_arrive(meeting, meeting_id, name, pin, source, &self.config);
                let result = result.map(|(ticket, events)| {
                    self.publish(events);
                    ticket
                });
                let _ = reply.send(result);
            }
            GuestRequest::State {
                guest_id,
                token,
                reply,
            } => {
                let _ = reply.send(desk.guest_state(meeting_id, &guest_id, &token));
            }
            GuestRequest::Admitted {
                guest_id,
                token,
                reply,
            } => {
                let _ = reply.send(desk.guest_admitted(meeting_id, &guest_id, &token));
            }
            GuestRequest::Leave {
                guest_id,
                token,
                reply,
            } => {
                let result = desk.guest_leave(meeting, meeting_id, &guest_id, &token);
                let result = result.map(|(state, events)| {
                    self.publish(events);
                    state
                });
                let _ = reply.send(result);
            }
            GuestRequest::Moderate {
                guest_id,
                token,
                action,
                reply,
            } => {
                let result = desk.guest_moderate(meeting, meeting_id, &guest_id, &token, action);
                let result = match result {
                    Ok((events, record)) => {
                        let effects = Effects {
                            events,
                            record,
                            ..Effects::default()
                        };
                        self.carry_out(effects).await
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
        }
    }

    /// Deletes call-history entries past `meeting.history_retention_days`, also when nobody
    /// reads the history (participant names are personal data).
    async fn apply_history_retention(&self) {
        let history = self.history.clone();
        let retention = self.config.meeting.history_retention_days;
        match tokio::task::spawn_blocking(move || history.apply_retention(retention)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(deleted)) => tracing::info!(
                "call history: deleted {deleted} entries older than {retention} days"
            ),
            Ok(Err(e)) => tracing::error!("call history retention: {e}"),
            Err(e) => tracing::error!("call history task: {e}"),
        }
    }

    /// Adds a finished meeting to the call history. A history that cannot be written is
    /// logged; the meeting itself has ended either way.
    async fn record_call(&self, record: Option<CallRecord>) {
        let Some(record) = record else { return };
        let history = self.history.clone();
        let retention = self.config.meeting.history_retention_days;
        match tokio::task::spawn_blocking(move || history.append(record, retention)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("call history: {e}"),
            Err(e) => tracing::error!("call history task: {e}"),
        }
    }

    fn preset(&self, name: &str) -> Result<CameraPosition, CoreError> {
        let presets = &self.config.video.camera_presets;
        presets
            .iter()
            .find(|p| p.name == name)
            .map(CameraPreset::position)
            .ok_or_else(|| {
                let saved: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
                CoreError::Refused(format!(
                    "no camera preset named {name:?} (video.camera_presets); saved presets: {}",
                    if saved.is_empty() {
                        "none".to_owned()
                    } else {
                        saved.join(", ")
                    }
                ))
            })
    }

    fn move_camera(
        &mut self,
        position: CameraPosition,
        preset: Option<&str>,
        events: &mut Vec<RoomEvent>,
    ) {
        if self.status.video.camera.position != position {
            self.status.video.camera.position = position;
            events.push(RoomEvent::CameraMoved {
                position,
                preset: preset.map(str::to_owned),
            });
        }
    }

    /// The camera presets with the camera's current position saved as `name` (replacing one of
    /// that name); refused when the list is full and `name` is new.
    fn presets_with(&self, name: &str) -> Result<Vec<CameraPreset>, CoreError> {
        let position = self.status.video.camera.position;
        let mut presets = self.config.video.camera_presets.clone();
        let preset = CameraPreset {
            name: name.to_owned(),
            pan: position.pan,
            tilt: position.tilt,
            zoom: position.zoom,
        };
        let full = presets.len() >= CAMERA_PRESETS_MAX_ENTRIES;
        match presets.iter_mut().find(|p| p.name == name) {
            Some(existing) => *existing = preset,
            None if full => {
                return Err(CoreError::Refused(format!(
                    "{CAMERA_PRESETS_MAX_ENTRIES} camera presets are saved already; save over \
                     one of them or remove one through the configuration"
                )));
            }
            None => presets.push(preset),
        }
        Ok(presets)
    }

    /// Records what the media engine reports; returns the events it causes.
    fn apply_report(&mut self, report: MediaReport) -> Vec<RoomEvent> {
        let mut events = Vec::new();
        match report {
            MediaReport::Hardware(hardware) => {
                if hardware.missing > 0 {
                    events.push(RoomEvent::HardwareMissing {
                        missing: hardware.missing,
                    });
                }
                self.status.system.hardware = Some(hardware);
            }
            MediaReport::Engine(media) => {
                if media.state == EngineState::Failed
                    && self.status.system.media.state != EngineState::Failed
                {
                    events.push(RoomEvent::MediaFailed {
                        detail: media.detail.clone(),
                    });
                }
                self.status.system.media = media;
            }
            MediaReport::CameraBitrate { kbps } => {
                self.status.system.media.camera_kbps = kbps;
            }
            MediaReport::MicrophoneLevel { rms_db } => {
                // Tenths of a dB are as fine as any meter shows; finer only adds status churn.
                let level = (rms_db.clamp(super::status::SILENCE_DB, 0.0) * 10.0).round() / 10.0;
                self.status.audio.microphones.level = level;
            }
            MediaReport::BranchRebuilt {
                branch,
                reason,
                elapsed_ms,
            } => {
                self.status.system.media.rebuilds += 1;
                events.push(RoomEvent::BranchRebuilt {
                    branch,
                    reason,
                    elapsed_ms,
                });
            }
        }
        events
    }

    fn set_standby(
        &mut self,
        state: StandbyState,
        reason: &'static str,
        events: &mut Vec<RoomEvent>,
    ) {
        if self.status.standby.state != state {
            self.status.standby.state = state;
            events.push(match state {
                StandbyState::On => RoomEvent::StandbyActivated { reason },
                StandbyState::Off => RoomEvent::StandbyDeactivated { reason },
            });
        }
    }

    /// When the room should fall asleep, if it should at all.
    fn standby_due(&self) -> Option<Instant> {
        let standby = &self.config.standby;
        // Nobody wants the room to fall asleep in the middle of a meeting.
        let idle = !self.meetings.in_meeting();
        (standby.enabled && idle && self.status.standby.state == StandbyState::Off).then(|| {
            self.last_activity + Duration::from_secs(u64::from(standby.delay_minutes) * 60)
        })
    }

    async fn patch_config(&mut self, patch: Value) -> Result<Arc<Config>, CoreError> {
        self.patch_config_with(patch, Config::apply_merge_patch)
            .await
    }

    /// Applies `patch` with `merge` (the API's rules, or a signed provisioning bundle's),
    /// persists and publishes the result.
    async fn patch_config_with(
        &mut self,
        patch: Value,
        merge: fn(&Config, &Value) -> Result<Config, ConfigError>,
    ) -> Result<Arc<Config>, CoreError> {
        let new = merge(&self.config, &patch)?;
        let keys = self.config.changed_keys(&new);
        if keys.is_empty() {
            return Ok(Arc::new(new));
        }
        // Persist before adopting: a change that cannot be saved is not made at all.
        let path = self.config_path.clone();
        let to_save = new.clone();
        tokio::task::spawn_blocking(move || to_save.save(&path))
            .await
            .map_err(|e| ConfigError::Patch {
                key: None,
                message: format!("saving failed: {e}"),
            })??;
        tracing::info!(keys = ?keys, "configuration changed");
        self.config = new;
        self.status.system.name = self.config.system.name.clone();
        let shared = Arc::new(self.config.clone());
        self.config_tx.send_replace(shared.clone());
        self.publish(vec![RoomEvent::ConfigChanged { keys }]);
        Ok(shared)
    }

    /// Publishes the status snapshot, each changed leaf, then the events, in that order.
    fn publish(&mut self, events: Vec<RoomEvent>) {
        let current = to_value(&self.status);
        let changes = changed_leaves(&self.published, &current);
        if !changes.is_empty() {
            self.status_tx.send_replace(Arc::new(StatusSnapshot::new(
                self.status.clone(),
                current.clone(),
            )));
            self.published = current;
        }
        // A send error only means nobody is subscribed right now.
        for (path, value) in changes {
            let _ = self
                .notifications
                .send(Notification::StatusChanged { path, value });
        }
        for event in events {
            let event = Event {
                seq: self.next_seq,
                time: now_rfc3339(),
                event,
            };
            self.next_seq += 1;
            tracing::debug!(event = event.name(), "room event");
            let _ = self.notifications.send(Notification::Event(event));
        }
    }
}

/// The events a new `status.update` causes, compared with the one before.
fn update_events(before: &UpdateStatus, after: &UpdateStatus) -> Vec<RoomEvent> {
    let mut events = Vec::new();
    if before.state != after.state {
        events.push(RoomEvent::UpdateStateChanged {
            state: after.state,
            version: after.version.clone(),
            error: after.error.clone(),
        });
        match after.state {
            UpdateState::Installed => events.push(RoomEvent::UpdateInstalled {
                version: after.version.clone(),
            }),
            UpdateState::Failed => events.push(RoomEvent::UpdateFailed {
                error: after.error.clone(),
            }),
            _ => {}
        }
    }
    if let (None, Some(rolled_back)) = (&before.rolled_back, &after.rolled_back) {
        events.push(RoomEvent::UpdateRolledBack {
            from: rolled_back.from.clone(),
            to: rolled_back.to.clone(),
        });
    }
    if !before.marked_good && after.marked_good {
        events.push(RoomEvent::UpdateMarkedGood {
            slot: after.booted_slot.clone(),
            version: after.image_version.clone(),
        });
    }
    events
}

/// How often the call history's retention is applied: an entry is deleted within this time of
/// expiring.
pub(crate) const HISTORY_RETENTION_EVERY: Duration = Duration::from_secs(3600);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn to_value(status: &RoomStatus) -> Value {
    // RoomStatus holds only strings, numbers, booleans and unit enums: serialisation cannot fail.
    serde_json::to_value(status).unwrap_or(Value::Null)
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
