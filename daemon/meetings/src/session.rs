//! What every meeting session gets, and the choice of session by target.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::Backoff;
use super::engine::GuestDirection;
use super::https::{HttpsClient, HttpsError};
use super::janus::JanusError;
use super::sip_session::SipCalls;
use super::whip::WhipError;
use super::{
    MeetingError, direct_session, hosted_session, janus_session, sip_session, whip_session,
};
use roomd_core::{
    AdmittedGuest, MeetingPlan, MeetingReport, MeetingState, MeetingTarget, RoomHandle,
};
use roomd_identity::secrets::SecretStore;
use roomd_media::webrtc::{IceServers, PeerError, PeerOptions};
use roomd_media::{Feed, MediaTaps};
use roomd_model::config::{MeetingConfig, TURN_PASSWORD_SECRET};
use roomd_model::outbound::OutboundPolicy;

/// Requests from the API, passed on by the engine to the session (only a hosted meeting takes
/// them).
pub(crate) enum SessionCommand {
    ConnectGuest {
        guest: AdmittedGuest,
        direction: GuestDirection,
        offer: String,
        reply: oneshot::Sender<Result<String, MeetingError>>,
    },
    DisconnectGuest {
        guest_id: String,
        direction: Option<GuestDirection>,
    },
}

pub(crate) struct SessionContext {
    pub room: RoomHandle,
    pub taps: MediaTaps,
    /// The plan; changes while the meeting goes on (e.g. participants removed).
    pub plan: watch::Receiver<Arc<MeetingPlan>>,
    pub commands: mpsc::Receiver<SessionCommand>,
    /// Becomes `true` when the session must leave.
    pub stop: watch::Receiver<bool>,
    /// Where the TURN password is kept (sealed).
    pub secrets: Arc<SecretStore>,
    /// The room's SIP account, when `[sip]` sets one up.
    pub sip: Option<Arc<dyn SipCalls>>,
    /// The device identity for end-to-end encrypted meetings, once the daemon gave it.
    pub identity: Option<super::MeetingIdentity>,
}

impl SessionContext {
    pub(crate) fn generation(&self) -> u64 {
        self.plan.borrow().generation
    }

    /// Resolves once the session must leave.
    pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
        // An error means the engine is gone: leave as well.
        let _ = stop.wait_for(|s| *s).await;
    }

    /// Options for a new peer under the current configuration: ICE servers only as configured
    /// (none by default), and the encryption policy.
    pub(crate) fn peer_options(&self, label: &str, send: bool, receive: bool) -> PeerOptions {
        let meeting = self.room.config().meeting.clone();
        PeerOptions {
            label: label.to_owned(),
            ice: IceServers {
                stun: Some(meeting.stun_server.clone()).filter(|s| !s.is_empty()),
                turn: turn_url(&meeting, &self.secrets),
            },
            require_encryption: meeting.require_encryption,
            send_video: send,
            video_feed: Feed::Camera,
            send_audio: send,
            receive,
            end_to_end: false,
            relay: false,
            relay_slots: false,
        }
    }

    pub(crate) async fn report_state(&self, state: MeetingState, error: impl Into<String>) {
        let report = MeetingReport::State {
            generation: self.generation(),
            state,
            error: error.into(),
        };
        let _ = self.room.meeting_report(report).await;
    }

    /// Reports a failure that ends the meeting; logged with the reason.
    pub(crate) async fn fail(&self, error: impl std::fmt::Display) {
        let error = error.to_string();
        tracing::warn!("meeting failed: {error}");
        self.report_state(MeetingState::Failed, error).await;
    }
}

/// Why an attempt to join did not work, and whether trying again can help. The failure is
/// classified once, here, and keeps its typed cause for the log and the status.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The server or network is away: try again with backoff.
    Transient(Failure),
    /// The answer cannot be right (malformed signalling, refused credentials, policy): leave.
    Fatal(Failure),
}

impl Attempt {
    pub(crate) fn fatal(e: impl Into<Failure>) -> Attempt {
        Attempt::Fatal(e.into())
    }

    /// What went wrong, whichever way it was classified.
    pub(crate) fn into_failure(self) -> Failure {
        match self {
            Attempt::Transient(failure) | Attempt::Fatal(failure) => failure,
        }
    }
}

/// What went wrong in an attempt: the error of the layer that failed, or, where no error value
/// exists (a server's word, a hang-up, a timeout the session measured), the reason in words.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Https(#[from] HttpsError),
    #[error(transparent)]
    Janus(#[from] JanusError),
    #[error(transparent)]
    Whip(#[from] WhipError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("signalling task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("unusable URL: {0}")]
    Url(#[from] url::ParseError),
    #[error(transparent)]
    E2ee(#[from] super::e2ee_janus::E2eeStartError),
    #[error("{0}")]
    Said(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure::Said(reason)
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Failure {
        Failure::Said(reason.to_owned())
    }
}

/// Transport trouble passes; everything else a server says is taken at its word.
pub(crate) fn http_attempt(e: HttpsError) -> Attempt {
    match e {
        HttpsError::Dns { .. } | HttpsError::Connect { .. } | HttpsError::Timeout { .. } => {
            Attempt::Transient(e.into())
        }
        HttpsError::Status { status, .. } if status >= 500 => Attempt::Transient(e.into()),
        other => Attempt::Fatal(other.into()),
    }
}

/// Runs blocking signalling I/O off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Attempt> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Attempt::Fatal(e.into()))
}

/// The HTTPS client under the current `meeting.ca_file` and `meeting.allowed_servers`; a CA
/// file that cannot be read ends the meeting with the reason.
pub(crate) async fn https_client(ctx: &SessionContext) -> Option<HttpsClient> {
    let meeting = ctx.room.config().meeting.clone();
    // The configuration checked every entry when it was loaded.
    let policy = match OutboundPolicy::new(&meeting.allowed_servers) {
        Ok(policy) => policy,
        Err(e) => {
            ctx.fail(format!("meeting.allowed_servers: {e}")).await;
            return None;
        }
    };
    let ca_file = meeting.ca_file;
    let built = blocking(move || {
        let path = (!ca_file.is_empty()).then(|| std::path::PathBuf::from(&ca_file));
        HttpsClient::new(path.as_deref(), policy)
    })
    .await;
    match built {
        Ok(Ok(client)) => Some(client),
        Ok(Err(e)) => {
            ctx.fail(e).await;
            None
        }
        Err(attempt) => {
            ctx.fail(attempt.into_failure()).await;
            None
        }
    }
}

/// What a session does between two stays in a meeting: again with backoff while the server or
/// network is away (`reconnecting`), never again once an answer could not be right (`failed`),
/// and not at all once the room leaves. Attempts watch `stop` themselves, so that they can hang
/// up politely.
///
/// ```text
/// let mut rejoin = Rejoin::new("Janus meeting", &ctx);
/// while rejoin.again(&ctx, join(&mut ctx, rejoin.backoff()).await).await {}
/// ```
pub(crate) struct Rejoin {
    what: &'static str,
    backoff: Backoff,
    stop: watch::Receiver<bool>,
}

impl Rejoin {
    pub(crate) fn new(what: &'static str, ctx: &SessionContext) -> Rejoin {
        Rejoin {
            what,
            backoff: Backoff::default(),
            stop: ctx.stop.clone(),
        }
    }

    /// The backoff, for an attempt to reset once it got in.
    pub(crate) fn backoff(&mut self) -> &mut Backoff {
        &mut self.backoff
    }

    /// Whether to try again after an attempt ended with `outcome` (having waited if so).
    pub(crate) async fn again(
        &mut self,
        ctx: &SessionContext,
        outcome: Result<(), Attempt>,
    ) -> bool {
        let reason = match outcome {
            Ok(()) => return false,
            Err(Attempt::Fatal(reason)) => {
                ctx.fail(reason).await;
                return false;
            }
            Err(Attempt::Transient(reason)) => reason.to_string(),
        };
        if *self.stop.borrow() {
            return false;
        }
        let wait = self.backoff.next_wait();
        tracing::warn!("{} lost: {reason}; trying again in {wait:?}", self.what);
        ctx.report_state(MeetingState::Reconnecting, reason).await;
        tokio::select! {
            _ = SessionContext::stopped(&mut self.stop) => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }
}

/// How long a meeting waits for the room's camera encoder before it goes ahead (and a peer
/// that needs it fails, naming it). Building the video branch takes well under a second.
const VIDEO_READY_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the session the plan's target calls for until it ends or must stop.
pub(crate) async fn run(context: SessionContext) {
    if !context.taps.wait_for_video(VIDEO_READY_LIMIT).await {
        tracing::warn!(
            "the camera's encoder is not ready after {VIDEO_READY_LIMIT:?}; joining anyway"
        );
    }
    let target = context.plan.borrow().target.clone();
    match target {
        MeetingTarget::Hosted { .. } => hosted_session::run(context).await,
        MeetingTarget::Janus { .. } => janus_session::run(context).await,
        MeetingTarget::Whip { .. } | MeetingTarget::Whep { .. } => whip_session::run(context).await,
        MeetingTarget::Direct { .. } => direct_session::run(context).await,
        MeetingTarget::Sip { .. } | MeetingTarget::SipIncoming { .. } => {
            sip_session::run(context).await
        }
    }
}

/// The TURN server's URL with its password from the sealed store, for webrtcbin only (never
/// logged, shown or saved).
fn turn_url(meeting: &MeetingConfig, secrets: &SecretStore) -> Option<String> {
    if meeting.turn_server.is_empty() {
        return None;
    }
    let mut url = url::Url::parse(&meeting.turn_server).ok()?;
    if !meeting.turn_password.is_empty() {
        match secrets.get(TURN_PASSWORD_SECRET) {
            Ok(Some(password)) => {
                let password = String::from_utf8_lossy(&password).into_owned();
                if url.set_password(Some(&password)).is_err() {
                    tracing::warn!("the TURN server's URL takes no password; using it without");
                }
            }
            Ok(None) => tracing::warn!(
                "meeting.turn_password is set but the secret store holds none; set it again"
            ),
            Err(e) => tracing::warn!("cannot read the TURN password: {e}"),
        }
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomd_identity::secrets::KeyProtection;

    #[test]
    fn webrtcbin_gets_the_turn_password_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretStore::open(dir.path(), &KeyProtection::Software).unwrap();
        let mut meeting = MeetingConfig::default();
        assert_eq!(turn_url(&meeting, &secrets), None);
        meeting.turn_server = "turn://room@turn.example.org:3478".to_owned();
        assert_eq!(
            turn_url(&meeting, &secrets).unwrap(),
            "turn://room@turn.example.org:3478"
        );
        secrets.put(TURN_PASSWORD_SECRET, b"p@ss:word").unwrap();
        meeting.turn_password = roomd_model::config::SECRET_SET.to_owned();
        assert_eq!(
            turn_url(&meeting, &secrets).unwrap(),
            "turn://room:p%40ss%3Aword@turn.example.org:3478"
        );
    }
}
