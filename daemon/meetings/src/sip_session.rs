//! A SIP call (issue 14; docs/meetings.md, "SIP"): the room calls `sips:…` through its SIP
//! account. The signalling and SDP live in `roomd-sip`, which sits above this crate and reaches
//! it through [`SipCalls`] (so that the meetings crate does not depend on the SIP stack). A call
//! is not redialled: a refusal, an answer the room cannot accept or the far end hanging up ends
//! the meeting with the reason. While the room shares content (`video.content.start`), the call
//! asks for the floor of its content stream (BFCP), where the far end agreed one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::session::SessionContext;
use roomd_core::{
    ContentFloor, MediaState, MeetingReport, MeetingState, MeetingTarget, Participant,
    ParticipantState, StreamStats,
};

/// The far end's id in `status.meeting.participants` and `streams`.
const FAR_END: &str = "far-end";
use roomd_media::MediaTaps;

/// A boxed future, as the object-safe traits below return them.
pub type SipFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The room's SIP account as the meeting engine uses it.
pub trait SipCalls: Send + Sync + 'static {
    /// Calls `uri` (a `sips:` address `meeting.join` checked) and resolves once the far end
    /// answered and the room accepted its answer, or with why not (refused, unreachable, an
    /// answer without encryption while `require_encryption`).
    fn call(
        &self,
        uri: String,
        require_encryption: bool,
        taps: MediaTaps,
    ) -> SipFuture<'static, Result<Box<dyn SipCall>, String>>;

    /// Answers the call in `id` that rang (200 OK with the room's SDP answer to the caller's
    /// offer) and resolves with the call once its media runs, or with why not (it stopped
    /// ringing, its offer is not acceptable).
    fn answer(
        &self,
        id: String,
        require_encryption: bool,
        taps: MediaTaps,
    ) -> SipFuture<'static, Result<Box<dyn SipCall>, String>>;
}

/// Why a hold or resume (a re-INVITE) did not take.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The far end answered with a failure.
    #[error("the far end answered the re-INVITE with {status}")]
    Refused {
        /// Its status line, e.g. `488 Not Acceptable Here`.
        status: String,
    },
    /// The call has no confirmed dialog to send it in.
    #[error("the call is not established")]
    NotEstablished,
    /// Sending it failed (transport or transaction).
    #[error("the re-INVITE failed: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No final answer in time.
    #[error("no answer to the re-INVITE within {seconds} s")]
    Timeout {
        /// The limit.
        seconds: u64,
    },
}

/// How a SIP call's media is protected, as the encryption indicator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEncryption {
    /// Not (or not yet) encrypted: plain RTP, or a DTLS-SRTP handshake still under way.
    None,
    /// SRTP with the keys both sides put in their SDP (RFC 4568).
    SdesSrtp,
    /// SRTP keyed by a DTLS handshake on the media ports, the far end's certificate checked
    /// against the fingerprint in its SDP (RFC 5763).
    DtlsSrtp,
}

impl CallEncryption {
    /// Whether the media is encrypted.
    pub fn is_encrypted(self) -> bool {
        self != CallEncryption::None
    }

    /// The participant's `encryption` in status.
    pub fn as_str(self) -> &'static str {
        match self {
            CallEncryption::None => "none",
            CallEncryption::SdesSrtp => "sdes-srtp",
            CallEncryption::DtlsSrtp => "dtls-srtp",
        }
    }
}

/// A call that was answered.
pub trait SipCall: Send {
    /// How its media is protected right now: every agreed stream SRTP (from the SDP both sides
    /// agreed) and its media running through SRTP with those keys.
    fn encryption(&self) -> CallEncryption;
    /// The call's streams as `status.meeting.streams` shows them.
    fn streams(&self) -> Vec<StreamStats>;
    /// Whether the far end holds the call (its re-INVITE said `sendonly` or `inactive`), as it
    /// changes. Its changes arrive while [`SipCall::ended`] is being awaited (which answers the
    /// far end's requests).
    fn far_end_hold(&self) -> tokio::sync::watch::Receiver<bool>;
    /// Turns true when the first far-end video frame is decoded.
    fn first_video_frame(&self) -> tokio::sync::watch::Receiver<bool>;
    /// Resolves when the far end ends the call, or its media cannot go on (a DTLS handshake
    /// that fails or does not finish in time), with the reason.
    fn ended(&mut self) -> SipFuture<'_, String>;
    /// Sends DTMF tones (RFC 4733) in the call's audio; false when the far end takes none.
    fn send_dtmf(&self, digits: &str) -> bool;
    /// Holds the call (re-INVITE with `a=sendonly`) or resumes it (`a=sendrecv`); resolves
    /// once the far end accepted, or with why not.
    fn hold(&mut self, hold: bool) -> SipFuture<'_, Result<(), HoldError>>;
    /// Ends the call from the room's side (BYE).
    fn hang_up(self: Box<Self>) -> SipFuture<'static, ()>;
    /// Who holds the floor of the call's content stream, as it changes ([`ContentFloor::None`]
    /// throughout when the call agreed no content).
    fn content_floor(&self) -> tokio::sync::watch::Receiver<ContentFloor>;
    /// Asks for the floor and sends the room's content once granted (`share`), or gives the
    /// floor back; an error says why not (e.g. no content agreed in this call).
    fn share_content(&mut self, share: bool) -> SipFuture<'_, Result<(), String>>;
}

pub(crate) async fn run(ctx: SessionContext) {
    let (uri, incoming, name) = match ctx.plan.borrow().target.clone() {
        MeetingTarget::Sip { uri } => (uri.clone(), None, uri),
        MeetingTarget::SipIncoming {
            id,
            uri,
            display_name,
        } => {
            let name = if display_name.is_empty() {
                uri.clone()
            } else {
                display_name
            };
            (uri, Some(id), name)
        }
        _ => return,
    };
    let Some(sip) = ctx.sip.clone() else {
        ctx.fail("the room has no SIP account: set sip.registrar and the other [sip] keys")
            .await;
        return;
    };
    let config = ctx.room.config();
    let require_encryption = config.meeting.require_encryption;
    let media_timeout = std::time::Duration::from_secs(config.sip.media_timeout_s.into());
    let mut stop = ctx.stop.clone();
    let joined_at = std::time::Instant::now();
    let call = tokio::select! {
        _ = SessionContext::stopped(&mut stop) => return,
        call = call(&sip, &uri, incoming.clone(), require_encryption, ctx.taps.clone()) => call,
    };
    let mut call = match call {
        Ok(call) => call,
        Err(e) if incoming.is_some() => {
            ctx.fail(format!("the SIP call from {uri} cannot be answered: {e}"))
                .await;
            return;
        }
        Err(e) => {
            ctx.fail(format!("the SIP call to {uri} failed: {e}")).await;
            return;
        }
    };
    tracing::info!(
        "SIP call to {uri} established (media {})",
        match call.encryption() {
            CallEncryption::None => "not encrypted yet",
            CallEncryption::SdesSrtp => "SRTP keyed by SDES",
            CallEncryption::DtlsSrtp => "SRTP keyed by DTLS",
        }
    );
    ctx.report_state(MeetingState::Connected, "").await;
    let mut stats = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut received = Received::default();
    let mut plan = ctx.plan.clone();
    let mut tones_sent = 0;
    let mut held = false;
    let mut far_end_hold = call.far_end_hold();
    let mut first_video = call.first_video_frame();
    let mut first_video_reported = false;
    let mut content_floor = call.content_floor();
    let report = MeetingReport::ContentFloor {
        generation: ctx.generation(),
        floor: *content_floor.borrow_and_update(),
    };
    let _ = ctx.room.meeting_report(report).await;
    let mut room_status = ctx.room.watch_status();
    let mut content_wanted = false;
    // The RTP timeout: when the far end's media last arrived (or the call was held, when none
    // is due).
    let mut media_seen = tokio::time::Instant::now();
    let mut frames_seen = 0;
    loop {
        tokio::select! {
            true = async { first_video.wait_for(|decoded| *decoded).await.is_ok() }, if !first_video_reported => {
                first_video_reported = true;
                let since_join_ms = joined_at.elapsed().as_millis() as u64;
                tracing::info!("SIP call with {uri}: first far-end picture {since_join_ms} ms after the call started");
                let report = MeetingReport::FirstRemoteFrame {
                    generation: ctx.generation(),
                    participant: FAR_END.to_owned(),
                    since_join_ms,
                };
                let _ = ctx.room.meeting_report(report).await;
            }
            Ok(()) = content_floor.changed() => {
                let floor = *content_floor.borrow_and_update();
                let report = MeetingReport::ContentFloor {
                    generation: ctx.generation(),
                    floor,
                };
                let _ = ctx.room.meeting_report(report).await;
            }
            // Only a change of the sharing state matters; the status changes every second
            // (the call's figures), so content shared before the call is seen within one.
            Ok(()) = room_status.changed() => {
                let wanted = crate::janus_content::shared(&room_status.borrow_and_update().status);
                if wanted != content_wanted && *content_floor.borrow() != ContentFloor::None {
                    content_wanted = wanted;
                    match call.share_content(wanted).await {
                        Ok(()) => tracing::info!(
                            "SIP call with {uri}: {} the content floor",
                            if wanted { "asked for" } else { "gave back" }
                        ),
                        Err(e) => tracing::warn!("SIP call with {uri}: content: {e}"),
                    }
                }
            }
            Ok(()) = far_end_hold.changed() => {
                let on_hold = *far_end_hold.borrow_and_update();
                tracing::info!("SIP call with {uri}: the far end {}", if on_hold { "holds the call" } else { "resumed the call" });
                let report = MeetingReport::FarEndHold {
                    generation: ctx.generation(),
                    on_hold,
                };
                let _ = ctx.room.meeting_report(report).await;
            }
            changed = plan.changed() => {
                if changed.is_err() {
                    continue;
                }
                // meeting.dtmf appends to the plan: send what is new.
                let (tones, hold) = {
                    let plan = plan.borrow_and_update();
                    (plan.dtmf.clone(), plan.hold)
                };
                if hold != held {
                    match call.hold(hold).await {
                        Ok(()) => {
                            tracing::info!(
                                "SIP call with {uri}: {}",
                                if hold { "on hold" } else { "resumed" }
                            );
                            held = hold;
                        }
                        Err(e) => {
                            let reason = format!(
                                "cannot {} the call: {e}",
                                if hold { "hold" } else { "resume" }
                            );
                            tracing::warn!("SIP call with {uri}: {reason}");
                            let report = MeetingReport::HoldFailed {
                                generation: ctx.generation(),
                                on_hold: held,
                                reason,
                            };
                            let _ = ctx.room.meeting_report(report).await;
                        }
                    }
                }
                for digits in tones.iter().skip(tones_sent) {
                    // The count only: the tones may be a conference PIN.
                    tracing::info!("SIP call to {uri}: sending {} DTMF tone(s)", digits.len());
                    if !call.send_dtmf(digits) {
                        tracing::warn!("SIP call to {uri}: the far end takes no DTMF tones");
                    }
                }
                tones_sent = tones.len();
            }
            _ = SessionContext::stopped(&mut stop) => {
                call.hang_up().await;
                return;
            }
            reason = call.ended() => {
                tracing::info!("SIP call to {uri} ended: {reason}");
                let report = MeetingReport::Ended {
                    generation: ctx.generation(),
                    reason,
                };
                let _ = ctx.room.meeting_report(report).await;
                return;
            }
            _ = stats.tick() => {
                let streams = call.streams();
                let frames: u64 = streams
                    .iter()
                    .filter(|s| s.direction == "receive")
                    .map(|s| s.frames)
                    .sum();
                if frames > frames_seen || held || *far_end_hold.borrow() {
                    media_seen = tokio::time::Instant::now();
                }
                frames_seen = frames;
                if media_seen.elapsed() >= media_timeout {
                    let reason = format!(
                        "no audio or video from the far end for {} s (sip.media_timeout_s); the \
                         room hung up",
                        media_timeout.as_secs()
                    );
                    tracing::warn!("SIP call with {uri}: {reason}");
                    call.hang_up().await;
                    let report = MeetingReport::Ended {
                        generation: ctx.generation(),
                        reason,
                    };
                    let _ = ctx.room.meeting_report(report).await;
                    return;
                }
                let encryption = call.encryption();
                let participant = received.participant(&name, &streams, encryption);
                let report = MeetingReport::Participant {
                    generation: ctx.generation(),
                    participant,
                };
                let _ = ctx.room.meeting_report(report).await;
                let report = MeetingReport::Stats {
                    generation: ctx.generation(),
                    streams,
                    encrypted: encryption.is_encrypted(),
                };
                let _ = ctx.room.meeting_report(report).await;
            }
        }
    }
}

async fn call(
    sip: &Arc<dyn SipCalls>,
    uri: &str,
    incoming: Option<String>,
    require_encryption: bool,
    taps: MediaTaps,
) -> Result<Box<dyn SipCall>, String> {
    match incoming {
        Some(id) => sip.answer(id, require_encryption, taps).await,
        None => sip.call(uri.to_owned(), require_encryption, taps).await,
    }
}

/// Frames received from the far end at the last look, to tell flowing media from stalled.
#[derive(Default)]
struct Received {
    audio: u64,
    video: u64,
}

impl Received {
    /// The far end as a participant: named by the address called (or the caller's display
    /// name or address); a kind is `on` while its
    /// frames grew since the last look, `off` when they did not, `none` when not agreed.
    fn participant(
        &mut self,
        uri: &str,
        streams: &[StreamStats],
        encryption: CallEncryption,
    ) -> Participant {
        let state = |kind: &str, last: &mut u64| {
            let Some(stream) = streams
                .iter()
                .find(|s| s.direction == "receive" && s.kind == kind)
            else {
                return MediaState::None;
            };
            let flowing = stream.frames > *last;
            *last = stream.frames;
            if flowing {
                MediaState::On
            } else {
                MediaState::Off
            }
        };
        let audio = state("audio", &mut self.audio);
        let video = state("video", &mut self.video);
        Participant {
            id: FAR_END.to_owned(),
            name: uri.to_owned(),
            state: ParticipantState::Connected,
            audio,
            video,
            talking: false,
            hand_raised: false,
            encryption: encryption.as_str().to_owned(),
        }
    }
}
