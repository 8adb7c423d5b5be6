//! The cloneable handle through which every input talks to the room core.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::command::RoomCommand;
use super::event::Notification;
use super::meeting::{AdmittedGuest, GuestState, GuestTicket, MeetingReport, SharedPlan};
use super::report::MediaReport;
use super::room::{GuestRequest, Request};
use super::status::{DbusStatus, IdentityStatus, StatusSnapshot};
use roomd_model::Secret;
use roomd_model::config::{Config, ConfigError};
use roomd_model::host::{HostReport, HostStatus};
use roomd_model::update::UpdateStatus;

/// Why the room core did not do what a [`RoomHandle`] asked.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The core's task has ended (roomd is shutting down); nothing was done.
    #[error("the room core has stopped")]
    Stopped,
    /// A configuration change was invalid or could not be saved; the configuration is unchanged.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command is well-formed but the room cannot do it (e.g. an unknown preset).
    #[error("{0}")]
    Refused(String),
    /// What the request names does not exist (e.g. a meeting id that is not hosted here).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (e.g. a wrong PIN or guest token).
    #[error("{0}")]
    Forbidden(String),
    /// The room could not do what it must do on the device (e.g. write the factory-reset
    /// marker); nothing else was done.
    #[error("{0}")]
    Failed(String),
    /// Too many wrong guesses; the caller must wait.
    #[error("too many wrong attempts; try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds to wait before the next attempt.
        retry_after_secs: u64,
    },
}

/// The way into the room core: commands, configuration changes and reports go in, status and
/// notifications come out. Cheap to clone; every clone talks to the same core.
#[derive(Clone)]
pub struct RoomHandle {
    pub(super) requests: mpsc::Sender<Request>,
    pub(super) status: watch::Receiver<Arc<StatusSnapshot>>,
    pub(super) config: watch::Receiver<Arc<Config>>,
    pub(super) notifications: broadcast::Sender<Notification>,
    pub(super) plan: watch::Receiver<SharedPlan>,
}

impl RoomHandle {
    /// Runs a room command; returns once the core has applied and published it.
    pub async fn execute(&self, command: RoomCommand) -> Result<(), CoreError> {
        self.ask(|reply| Request::Command { command, reply })
            .await?
    }

    /// Applies a JSON merge patch to the configuration, persists it, and returns the result.
    pub async fn patch_config(&self, patch: Value) -> Result<Arc<Config>, CoreError> {
        self.ask(|reply| Request::PatchConfig { patch, reply })
            .await?
    }

    /// Records that the first administrator now exists.
    pub async fn mark_claimed(&self) -> Result<(), CoreError> {
        self.ask(|reply| Request::MarkClaimed { reply }).await
    }

    /// Replaces the identity branch of the status (e.g. after a certificate was installed).
    pub async fn set_identity(&self, identity: IdentityStatus) -> Result<(), CoreError> {
        self.ask(|reply| Request::SetIdentity { identity, reply })
            .await
    }

    /// Passes on what the media engine learned; returns once the core has published it.
    pub async fn report(&self, report: MediaReport) -> Result<(), CoreError> {
        self.ask(|reply| Request::Report { report, reply }).await
    }

    /// Passes on where firmware updates stand (the update worker owns `status.update`); returns
    /// once the core has published it.
    pub async fn update_report(&self, status: UpdateStatus) -> Result<(), CoreError> {
        self.ask(|reply| Request::Update { status, reply }).await
    }

    /// Passes on what the operating system's services say (the host worker owns
    /// `status.host`); returns once the core has published it.
    pub async fn host_report(&self, status: HostStatus) -> Result<(), CoreError> {
        self.host(HostReport::Status(status)).await
    }

    /// Passes on a status or the outcome of applying `[host]` (events `host.applied`,
    /// `host.apply_failed`).
    pub async fn host(&self, report: HostReport) -> Result<(), CoreError> {
        self.ask(|reply| Request::Host { report, reply }).await
    }

    /// Passes on whether the D-Bus interface is served (`status.system.dbus`).
    pub async fn dbus_report(&self, status: DbusStatus) -> Result<(), CoreError> {
        self.ask(|reply| Request::Dbus { status, reply }).await
    }

    /// Passes on where the fleet channel stands (the fleet worker owns `status.fleet`).
    pub async fn fleet_report(
        &self,
        status: roomd_model::fleet::FleetStatus,
    ) -> Result<(), CoreError> {
        self.ask(|reply| Request::Fleet { status, reply }).await
    }

    /// Passes on where provisioning stands (the provisioning worker owns
    /// `status.provisioning`), with the event `provisioning.applied` or `provisioning.refused`.
    pub async fn provisioning_report(
        &self,
        report: roomd_model::provisioning::ProvisioningReport,
    ) -> Result<(), CoreError> {
        self.ask(|reply| Request::Provisioning { report, reply })
            .await
    }

    /// Applies the configuration of a provisioning bundle whose signature verified: one merge
    /// patch, validated like the file, that may set file-only keys except those a bundle may
    /// never set (`Config::apply_provisioning_patch`). Persisted before it is adopted; on error
    /// nothing changes.
    pub async fn provisioning_patch(&self, patch: Value) -> Result<Arc<Config>, CoreError> {
        self.ask(|reply| Request::ProvisioningPatch { patch, reply })
            .await?
    }

    /// Passes on where the SIP registration stands (the SIP worker owns `status.sip`).
    pub async fn sip_report(&self, status: roomd_model::sip::SipStatus) -> Result<(), CoreError> {
        self.ask(|reply| Request::Sip { status, reply }).await
    }

    /// A SIP call in rings (the SIP worker sent 100 Trying and waits for this): the core says
    /// whether it rings, was answered at once (`sip.auto_answer`) or finds the room busy.
    /// `decline` fires on `meeting.decline`.
    pub async fn sip_incoming(
        &self,
        call: roomd_model::sip::IncomingCall,
        decline: oneshot::Sender<()>,
    ) -> Result<super::room::IncomingVerdict, CoreError> {
        self.ask(|reply| Request::SipIncoming {
            call,
            decline,
            reply,
        })
        .await
    }

    /// A SIP call in ended without being answered (event `meeting.ringing.ended`; it no longer
    /// rings): not answered in time, cancelled by the caller, busy, or refused.
    pub async fn sip_incoming_ended(
        &self,
        call: roomd_model::sip::IncomingCall,
        reason: String,
    ) -> Result<(), CoreError> {
        self.ask(|reply| Request::SipIncomingEnded {
            call,
            reason,
            reply,
        })
        .await
    }

    /// Passes on what the meeting engine learned.
    pub async fn meeting_report(&self, report: MeetingReport) -> Result<(), CoreError> {
        self.ask(|reply| Request::Meeting { report, reply }).await
    }

    /// The meeting the engine should be in (with its secrets), and every change of it.
    pub fn watch_meeting_plan(&self) -> watch::Receiver<SharedPlan> {
        self.plan.clone()
    }

    /// A guest arrives at hosted meeting `meeting_id` and waits in the lobby.
    pub async fn guest_arrive(
        &self,
        meeting_id: String,
        name: String,
        pin: Option<Secret>,
        source: std::net::IpAddr,
    ) -> Result<GuestTicket, CoreError> {
        self.ask(|reply| Request::Guest {
            meeting_id,
            request: GuestRequest::Arrive {
                name,
                pin,
                source,
                reply,
            },
        })
        .await?
    }

    /// Where a guest stands, proven by their token.
    pub async fn guest_state(
        &self,
        meeting_id: String,
        guest_id: String,
        token: Secret,
    ) -> Result<GuestState, CoreError> {
        self.ask(|reply| Request::Guest {
            meeting_id,
            request: GuestRequest::State {
                guest_id,
                token,
                reply,
            },
        })
        .await?
    }

    /// The guest, if admitted: what the engine needs to connect their media.
    pub async fn guest_admitted(
        &self,
        meeting_id: String,
        guest_id: String,
        token: Secret,
    ) -> Result<AdmittedGuest, CoreError> {
        self.ask(|reply| Request::Guest {
            meeting_id,
            request: GuestRequest::Admitted {
                guest_id,
                token,
                reply,
            },
        })
        .await?
    }

    /// The guest leaves the meeting.
    pub async fn guest_leave(
        &self,
        meeting_id: String,
        guest_id: String,
        token: Secret,
    ) -> Result<GuestState, CoreError> {
        self.ask(|reply| Request::Guest {
            meeting_id,
            request: GuestRequest::Leave {
                guest_id,
                token,
                reply,
            },
        })
        .await?
    }

    /// A moderator among the guests asks for `action` (refused unless the token is theirs and
    /// the room made them a moderator).
    pub async fn guest_moderate(
        &self,
        meeting_id: String,
        guest_id: String,
        token: Secret,
        action: crate::ModeratorAction,
    ) -> Result<(), CoreError> {
        self.ask(|reply| Request::Guest {
            meeting_id,
            request: GuestRequest::Moderate {
                guest_id,
                token,
                action,
                reply,
            },
        })
        .await?
    }

    /// Answers once the core has worked through everything queued before it: a liveness check.
    pub async fn ping(&self) -> Result<(), CoreError> {
        self.ask(|reply| Request::Ping { reply }).await
    }

    /// Asks the core to stop after the requests already queued.
    pub async fn shutdown(&self) {
        let _ = self.requests.send(Request::Shutdown).await;
    }

    /// The latest status tree (cheap: a shared pointer to an immutable snapshot).
    pub fn status(&self) -> Arc<StatusSnapshot> {
        self.status.borrow().clone()
    }

    /// Follows status changes (the media engine applies each new snapshot to its pipelines).
    pub fn watch_status(&self) -> watch::Receiver<Arc<StatusSnapshot>> {
        self.status.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Follows configuration changes (e.g. to update account policies).
    pub fn watch_config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.clone()
    }

    /// Every status change and event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.notifications.subscribe()
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, CoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| CoreError::Stopped)?;
        answer.await.map_err(|_| CoreError::Stopped)
    }
}
