//! The core's task: applies requests one at a time, in order, and publishes what changed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::command::RoomCommand;
use super::event::{Event, Notification};
use super::handle::{CoreError, RoomHandle};
use super::meeting::{AdmittedGuest, GuestState, GuestTicket, MeetingReport, MeetingStatus};
use super::meeting_desk::MeetingDesk;
use super::report::{MediaEngineStatus, MediaReport};
use super::status::{
    AudioStatus, CameraState, CameraStatus, ContentState, ContentStatus, IdentityStatus,
    MicrophonesStatus, RoomStatus, SelfviewStatus, StandbyState, StandbyStatus, StatusSnapshot,
    SystemStatus, VideoStatus,
};
use super::status_diff::changed_leaves;
use crate::call_history::{CallHistory, CallRecord};
use roomd_model::Secret;
use roomd_model::config::{
    CAMERA_PRESETS_MAX_ENTRIES, CameraPosition, CameraPreset, Config, ConfigError,
};

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
    let status = initial_status(&setup);
    let published = to_value(&status);
    let (requests_tx, requests) = mpsc::channel(64);
    let (status_tx, status_rx) = watch::channel(Arc::new(StatusSnapshot::new(published.clone())));
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

fn initial_status(setup: &CoreSetup) -> RoomStatus {
    let c = &setup.config;
    RoomStatus {
        system: SystemStatus {
            name: c.system.name.clone(),
            version: env!("CARGO_PKG_VERSION"),
            hardware_profile: c.system.hardware_profile.clone(),
            claimed: setup.claimed,
            started_at: now_rfc3339(),
            hardware: None,
            media: MediaEngineStatus::starting(),
        },
        meeting: MeetingStatus::idle(now_rfc3339()),
        audio: AudioStatus {
            volume: c.audio.default_volume,
            microphones: MicrophonesStatus {
                muted: false,
                level: SILENCE_DB,
            },
        },
        video: VideoStatus {
            layout: c.video.default_layout,
            selfview: SelfviewStatus {
                mode: c.video.selfview,
                position: c.video.selfview_position,
            },
            camera: CameraStatus {
                state: CameraState::On,
                position: CameraPosition::HOME,
            },
            content: ContentStatus {
                state: ContentState::Inactive,
            },
        },
        standby: StandbyStatus {
            state: StandbyState::Off,
        },
        identity: setup.identity.clone(),
    }
}

struct Room {
    meetings: MeetingDesk,
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
            Request::Command {
                command: RoomCommand::SaveCameraPreset { name },
                reply,
            } => {
                let result = self.save_camera_preset(name).await;
                let _ = reply.send(result);
            }
            Request::Command {
                command: RoomCommand::LeaveMeeting,
                reply,
            } => {
                self.last_activity = Instant::now();
                let (events, record) = self.meetings.leave(&mut self.status.meeting, None);
                self.publish(events);
                self.record_call(record).await;
                let _ = reply.send(Ok(()));
            }
            Request::Command { command, reply } => {
                let result = self.apply(command).map(|events| self.publish(events));
                let _ = reply.send(result);
            }
            Request::Meeting { report, reply } => {
                let (events, record) = self.meetings.report(&mut self.status.meeting, report);
                self.publish(events);
                self.record_call(record).await;
                let _ = reply.send(());
            }
            Request::Guest {
                meeting_id,
                request,
            } => self.guest(&meeting_id, request),
            Request::PatchConfig { patch, reply } => {
                let result = self.patch_config(patch).await;
                let _ = reply.send(result);
            }
            Request::MarkClaimed { reply } => {
                if !self.status.system.claimed {
                    self.status.system.claimed = true;
                    self.publish(vec![("system.claimed", json!({}))]);
                }
                let _ = reply.send(());
            }
            Request::Report { report, reply } => {
                let events = self.apply_report(report);
                self.publish(events);
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

    /// Changes the status for one command and names the events it causes; a command the room
    /// cannot carry out changes nothing.
    fn apply(&mut self, command: RoomCommand) -> Result<Vec<(&'static str, Value)>, CoreError> {
        let mut events = Vec::new();
        // Refusals first, so that a refused command is not counted as activity either.
        let recalled = match &command {
            RoomCommand::RecallCameraPreset { name } => Some(self.preset(name)?),
            _ => None,
        };
        // Any use of the room counts as activity and wakes it, as on every room system.
        self.last_activity = Instant::now();
        if command != RoomCommand::ActivateStandby {
            self.set_standby(StandbyState::Off, "activity", &mut events);
        }
        match command {
            RoomCommand::SetVolume { level } => {
                if self.status.audio.volume != level {
                    self.status.audio.volume = level;
                    events.push(("audio.volume.changed", json!({ "level": level })));
                }
            }
            RoomCommand::SetMicrophonesMuted { muted } => {
                if self.status.audio.microphones.muted != muted {
                    self.status.audio.microphones.muted = muted;
                    let name = if muted {
                        "audio.microphones.muted"
                    } else {
                        "audio.microphones.unmuted"
                    };
                    events.push((name, json!({})));
                }
            }
            RoomCommand::SetLayout { layout } => {
                if self.status.video.layout != layout {
                    self.status.video.layout = layout;
                    events.push(("video.layout.changed", json!({ "layout": layout })));
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
                    events.push(("video.selfview.changed", json!(selfview)));
                }
            }
            RoomCommand::ActivateStandby => {
                self.set_standby(StandbyState::On, "command", &mut events)
            }
            RoomCommand::DeactivateStandby => {} // woken above
            RoomCommand::SetCameraEnabled { enabled } => {
                let state = if enabled {
                    CameraState::On
                } else {
                    CameraState::Off
                };
                if self.status.video.camera.state != state {
                    self.status.video.camera.state = state;
                    let name = if enabled {
                        "video.camera.on"
                    } else {
                        "video.camera.off"
                    };
                    events.push((name, json!({})));
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
                    let name = if active {
                        "video.content.started"
                    } else {
                        "video.content.stopped"
                    };
                    events.push((name, json!({})));
                }
            }
            RoomCommand::SetCameraPosition { pan, tilt, zoom } => {
                let current = self.status.video.camera.position;
                let position = CameraPosition {
                    pan: pan.unwrap_or(current.pan),
                    tilt: tilt.unwrap_or(current.tilt),
                    zoom: zoom.unwrap_or(current.zoom),
                };
                self.move_camera(position, None, &mut events);
            }
            RoomCommand::RecallCameraPreset { name } => {
                if let Some(position) = recalled {
                    self.move_camera(position, Some(&name), &mut events);
                }
            }
            // Saving changes the configuration, which is persisted first: see `handle`.
            RoomCommand::SaveCameraPreset { .. } => {}
            RoomCommand::JoinMeeting { target } => events.extend(self.meetings.join(
                &mut self.status.meeting,
                *target,
                &self.config,
            )?),
            // Leaving writes the call history: see `handle`.
            RoomCommand::LeaveMeeting => {}
            RoomCommand::AdmitParticipant { id } => {
                events.extend(self.meetings.admit(&mut self.status.meeting, &id)?)
            }
            RoomCommand::RemoveParticipant { id } => {
                events.extend(self.meetings.remove(&mut self.status.meeting, &id)?)
            }
        }
        Ok(events)
    }

    fn guest(&mut self, meeting_id: &str, request: GuestRequest) {
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
                    desk.guest_arrive(meeting, meeting_id, name, pin, source, lobby_timeout);
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
        events: &mut Vec<(&'static str, Value)>,
    ) {
        if self.status.video.camera.position != position {
            self.status.video.camera.position = position;
            let mut data = json!(position);
            if let Some(name) = preset {
                data["preset"] = json!(name);
            }
            events.push(("video.camera.moved", data));
        }
    }

    /// Stores the camera's current position as preset `name` (replacing one of that name) in
    /// the configuration, persisted like any other configuration change.
    async fn save_camera_preset(&mut self, name: String) -> Result<(), CoreError> {
        let position = self.status.video.camera.position;
        let mut presets = self.config.video.camera_presets.clone();
        let preset = CameraPreset {
            name: name.clone(),
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
        self.patch_config(json!({ "video": { "camera_presets": presets } }))
            .await?;
        self.last_activity = Instant::now();
        self.publish(vec![(
            "video.camera.preset.saved",
            json!({ "name": name, "position": position }),
        )]);
        Ok(())
    }

    /// Records what the media engine reports; returns the events it causes.
    fn apply_report(&mut self, report: MediaReport) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        match report {
            MediaReport::Hardware(hardware) => {
                if hardware.missing > 0 {
                    events.push((
                        "system.hardware.missing",
                        json!({ "missing": hardware.missing }),
                    ));
                }
                self.status.system.hardware = Some(hardware);
            }
            MediaReport::Engine(media) => {
                if media.state == "failed" && self.status.system.media.state != "failed" {
                    events.push(("media.failed", json!({ "detail": media.detail })));
                }
                self.status.system.media = media;
            }
            MediaReport::MicrophoneLevel { rms_db } => {
                // Tenths of a dB are as fine as any meter shows; finer only adds status churn.
                let level = (rms_db.clamp(SILENCE_DB, 0.0) * 10.0).round() / 10.0;
                self.status.audio.microphones.level = level;
            }
            MediaReport::BranchRebuilt {
                branch,
                reason,
                elapsed_ms,
            } => {
                self.status.system.media.rebuilds += 1;
                events.push((
                    "media.branch.rebuilt",
                    json!({ "branch": branch, "reason": reason, "elapsed_ms": elapsed_ms }),
                ));
            }
        }
        events
    }

    fn set_standby(
        &mut self,
        state: StandbyState,
        reason: &str,
        events: &mut Vec<(&'static str, Value)>,
    ) {
        if self.status.standby.state != state {
            self.status.standby.state = state;
            let name = match state {
                StandbyState::On => "standby.activated",
                StandbyState::Off => "standby.deactivated",
            };
            events.push((name, json!({ "reason": reason })));
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
        let new = self.config.apply_merge_patch(&patch)?;
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
        self.publish(vec![("config.changed", json!({ "keys": keys }))]);
        Ok(shared)
    }

    /// Publishes the status snapshot, each changed leaf, then the events, in that order.
    fn publish(&mut self, events: Vec<(&'static str, Value)>) {
        let current = to_value(&self.status);
        let changes = changed_leaves(&self.published, &current);
        if !changes.is_empty() {
            self.status_tx
                .send_replace(Arc::new(StatusSnapshot::new(current.clone())));
            self.published = current;
        }
        // A send error only means nobody is subscribed right now.
        for (path, value) in changes {
            let _ = self
                .notifications
                .send(Notification::StatusChanged { path, value });
        }
        for (name, data) in events {
            let event = Event {
                seq: self.next_seq,
                time: now_rfc3339(),
                name: name.to_owned(),
                data,
            };
            self.next_seq += 1;
            tracing::debug!(event = %event.name, "room event");
            let _ = self.notifications.send(Notification::Event(event));
        }
    }
}

/// How often the call history's retention is applied: an entry is deleted within this time of
/// expiring.
pub(crate) const HISTORY_RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The level reported for silence (and before the first measurement), in dBFS.
const SILENCE_DB: f64 = -100.0;

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
