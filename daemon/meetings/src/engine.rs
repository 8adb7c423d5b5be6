//! The meeting engine's task: follows the core's [`MeetingPlan`], runs one session for the
//! meeting going on (Janus, WHIP/WHEP, a direct call or a hosted meeting), stops it when the
//! plan ends, and passes guests' WHIP/WHEP offers to a hosted meeting. It owns no room state:
//! what it learns goes to the core as [`roomd_core::MeetingReport`]s.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::session::{self, SessionCommand, SessionContext};
use super::sip_session::SipCalls;
use super::{MeetingError, MeetingIdentity};
use roomd_core::{AdmittedGuest, MeetingPlan, RoomHandle};
use roomd_identity::secrets::SecretStore;
use roomd_media::MediaTaps;

/// How long a session may take to leave politely (hang up at the server) before it is cut.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Which way a guest's media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestDirection {
    /// The guest's camera and microphone to the room (WHIP).
    Whip,
    /// The room's picture and sound to the guest (WHEP).
    Whep,
}

impl GuestDirection {
    /// `whip` or `whep`, as in URLs, logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestDirection::Whip => "whip",
            GuestDirection::Whep => "whep",
        }
    }
}

/// How the API reaches the meeting engine (guests' media of a hosted meeting).
#[derive(Clone)]
pub struct MeetingEngineHandle {
    requests: mpsc::Sender<SessionCommand>,
    identity: Arc<OnceLock<MeetingIdentity>>,
}

impl MeetingEngineHandle {
    /// The device identity that signs for the room in end-to-end encrypted meetings
    /// (`meeting.e2ee`); meetings starting from now on use it. Given once; later calls are
    /// ignored.
    pub fn set_identity(&self, identity: MeetingIdentity) {
        let _ = self.identity.set(identity);
    }

    /// Answers an admitted guest's WHIP or WHEP offer.
    pub async fn connect_guest(
        &self,
        guest: AdmittedGuest,
        direction: GuestDirection,
        offer: String,
    ) -> Result<String, MeetingError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(SessionCommand::ConnectGuest {
                guest,
                direction,
                offer,
                reply,
            })
            .await
            .map_err(|_| MeetingError::Stopped)?;
        answer.await.map_err(|_| MeetingError::Stopped)?
    }

    /// Hangs up a guest's WHIP or WHEP session, or both (`None`).
    pub async fn disconnect_guest(&self, guest_id: String, direction: Option<GuestDirection>) {
        let _ = self
            .requests
            .send(SessionCommand::DisconnectGuest {
                guest_id,
                direction,
            })
            .await;
    }
}

/// Starts the meeting engine on the current tokio runtime.
pub fn start(
    room: RoomHandle,
    taps: MediaTaps,
    secrets: Arc<SecretStore>,
    sip: Option<Arc<dyn SipCalls>>,
) -> (MeetingEngineHandle, JoinHandle<()>) {
    let (requests_tx, requests) = mpsc::channel(32);
    let identity = Arc::new(OnceLock::new());
    let task = tokio::spawn(run(room, taps, secrets, sip, identity.clone(), requests));
    (
        MeetingEngineHandle {
            requests: requests_tx,
            identity,
        },
        task,
    )
}

/// The session of the meeting going on.
struct Running {
    generation: u64,
    plan: watch::Sender<Arc<MeetingPlan>>,
    commands: mpsc::Sender<SessionCommand>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(LEAVE_TIMEOUT, &mut task)
            .await
            .is_err()
        {
            tracing::warn!("meeting session did not leave within {LEAVE_TIMEOUT:?}; cutting it");
            task.abort();
        }
    }
}

async fn run(
    room: RoomHandle,
    taps: MediaTaps,
    secrets: Arc<SecretStore>,
    sip: Option<Arc<dyn SipCalls>>,
    identity: Arc<OnceLock<MeetingIdentity>>,
    mut requests: mpsc::Receiver<SessionCommand>,
) {
    let mut plans = room.watch_meeting_plan();
    let mut running: Option<Running> = None;
    loop {
        tokio::select! {
            changed = plans.changed() => {
                if changed.is_err() {
                    break; // the core stopped
                }
                let plan = plans.borrow_and_update().clone();
                running = follow(running, plan, &room, &taps, &secrets, &sip, identity.get()).await;
            }
            Some(command) = requests.recv() => {
                // A guest's offer goes only to the meeting it was admitted to.
                let session = match &command {
                    SessionCommand::ConnectGuest { guest, .. } => {
                        running.as_ref().filter(|r| r.generation == guest.generation)
                    }
                    SessionCommand::DisconnectGuest { .. } => running.as_ref(),
                };
                let unsent = match session {
                    Some(r) => r.commands.send(command).await.err().map(|e| e.0),
                    None => Some(command),
                };
                if let Some(SessionCommand::ConnectGuest { reply, .. }) = unsent {
                    let _ = reply.send(Err(MeetingError::NotHosting));
                }
            }
        }
    }
    if let Some(r) = running {
        r.stop().await;
    }
}

/// Makes the running session match `plan`: keeps it (passing on changes such as removed
/// participants), or stops it and starts the new one.
async fn follow(
    running: Option<Running>,
    plan: Option<Arc<MeetingPlan>>,
    room: &RoomHandle,
    taps: &MediaTaps,
    secrets: &Arc<SecretStore>,
    sip: &Option<Arc<dyn SipCalls>>,
    identity: Option<&MeetingIdentity>,
) -> Option<Running> {
    match (running, plan) {
        (Some(r), Some(plan)) if r.generation == plan.generation => {
            r.plan.send_replace(plan);
            Some(r)
        }
        (running, plan) => {
            if let Some(r) = running {
                r.stop().await;
            }
            plan.map(|plan| {
                let (plan_tx, plan_rx) = watch::channel(plan.clone());
                let (commands_tx, commands) = mpsc::channel(16);
                let (stop_tx, stop) = watch::channel(false);
                let context = SessionContext {
                    room: room.clone(),
                    taps: taps.clone(),
                    plan: plan_rx,
                    commands,
                    stop,
                    secrets: secrets.clone(),
                    sip: sip.clone(),
                    identity: identity.cloned(),
                };
                Running {
                    generation: plan.generation,
                    plan: plan_tx,
                    commands: commands_tx,
                    stop: stop_tx,
                    task: tokio::spawn(session::run(context)),
                }
            })
        }
    }
}
