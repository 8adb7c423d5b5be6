//! Calls out through the room's SIP account: INVITE with the room's SDES-SRTP offer over the TLS
//! connection the account registered through, the far end's answer checked (`sdp`), BYE either
//! way. Requests the far end sends inside a call (BYE) reach the call's dialog; calls in are
//! not taken yet (480).

use std::net::{IpAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Auth, HostWithPort, Method, Param, Scheme, StatusCode, Transport, Uri};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::SipAddr;

use crate::registration::Account;
use crate::sdp::{
    Agreed, AudioCodec, LocalMedia, LocalOffer, SDP_MAX_BYTES, VideoCodec, make_offer,
    make_plain_offer, parse_answer,
};

/// The far end's id in `status.meeting.streams`.
const FAR_END: &str = "far-end";
use roomd_core::StreamStats;
use roomd_media::sip::{SipMedia, SipStream};
use roomd_media::{MediaKind, MediaTaps};
use roomd_meetings::{SipCall, SipCalls, SipFuture};

/// How long the far end may take to answer (ringing included).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at finding two neighbouring free UDP ports (RTP and RTCP) per stream.
const PORT_ATTEMPTS: usize = 32;

/// Where the account registered last: calls go out over the same TLS connection.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The proxy or registrar (TLS, resolved address).
    pub(crate) server: SipAddr,
    /// The room's end of the connection (for Contact).
    pub(crate) local: HostWithPort,
    /// The room's address on that connection (where it receives media).
    pub(crate) local_ip: Option<IpAddr>,
}

/// The account's telephone: places calls, and passes in-call requests to their dialogs.
pub struct SipPhone {
    dialogs: Arc<DialogLayer>,
    account: Arc<Account>,
    route: Mutex<Option<Route>>,
}

impl SipPhone {
    pub(crate) fn new(endpoint: EndpointInnerRef, account: Arc<Account>) -> SipPhone {
        SipPhone {
            dialogs: Arc::new(DialogLayer::new(endpoint)),
            account,
            route: Mutex::new(None),
        }
    }

    pub(crate) fn set_route(&self, route: Option<Route>) {
        if let Ok(mut current) = self.route.lock() {
            *current = route;
        }
    }

    /// Answers what the far end sends: requests inside a call go to its dialog (a BYE ends
    /// it); anything else is refused, as the room takes no calls in yet.
    pub(crate) async fn serve_incoming(self: Arc<Self>, mut incoming: TransactionReceiver) {
        while let Some(mut tx) = incoming.recv().await {
            let in_dialog = tx
                .original
                .to_header()
                .ok()
                .and_then(|to| to.tag().ok().flatten())
                .is_some();
            let reply = if in_dialog {
                match self.dialogs.match_dialog(&tx) {
                    Some(mut dialog) => {
                        tokio::spawn(async move {
                            if let Err(e) = dialog.handle(&mut tx).await {
                                tracing::debug!("SIP: in-call request: {e}");
                            }
                        });
                        continue;
                    }
                    None => StatusCode::CallTransactionDoesNotExist,
                }
            } else {
                match tx.original.method {
                    Method::Ack => continue,
                    Method::Options => StatusCode::OK,
                    Method::Invite => StatusCode::TemporarilyUnavailable,
                    _ => StatusCode::MethodNotAllowed,
                }
            };
            if let Err(e) = tx.reply(reply).await {
                tracing::debug!("SIP: cannot answer a request: {e}");
            }
        }
    }
}

impl SipCalls for SipPhone {
    fn call(
        &self,
        uri: String,
        require_encryption: bool,
        taps: MediaTaps,
    ) -> SipFuture<'static, Result<Box<dyn SipCall>, String>> {
        let route = self.route.lock().ok().and_then(|r| r.clone());
        let dialogs = self.dialogs.clone();
        let account = self.account.clone();
        Box::pin(async move {
            let route = route.ok_or_else(|| {
                "the room is not registered with its SIP registrar (see status.sip)".to_owned()
            })?;
            place_call(dialogs, &account, route, &uri, require_encryption, taps).await
        })
    }
}

/// Two UDP sockets on neighbouring ports, RTP on the even one (RFC 3550 11).
fn bind_pair(ip: IpAddr) -> Result<(UdpSocket, UdpSocket), String> {
    for _ in 0..PORT_ATTEMPTS {
        let rtp = UdpSocket::bind((ip, 0)).map_err(|e| format!("cannot bind a UDP port: {e}"))?;
        let port = rtp
            .local_addr()
            .map_err(|e| format!("cannot read a UDP port: {e}"))?
            .port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)) {
            return Ok((rtp, rtcp));
        }
    }
    Err(format!(
        "no two neighbouring free UDP ports on {ip} after {PORT_ATTEMPTS} attempts"
    ))
}

async fn place_call(
    dialogs: Arc<DialogLayer>,
    account: &Account,
    route: Route,
    uri: &str,
    require_encryption: bool,
    taps: MediaTaps,
) -> Result<Box<dyn SipCall>, String> {
    let ip = route
        .local_ip
        .ok_or_else(|| "the room's address on the SIP connection is unknown".to_owned())?;
    let audio = bind_pair(ip)?;
    let video = bind_pair(ip)?;
    let port = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut session_id = [0u8; 8];
    roomd_base::random::fill(&mut session_id);
    let offer = make_offer(&LocalMedia {
        address: ip,
        audio_port: port(&audio.0),
        video_port: port(&video.0),
        // Positive as a signed 63-bit number, as some peers parse it.
        session_id: u64::from_be_bytes(session_id) >> 1,
    });
    let callee = Uri::try_from(uri).map_err(|e| format!("{uri} is not a SIP address: {e}"))?;
    let caller =
        Uri::try_from(format!("sips:{}@{}", account.user, account.registrar.host_port()).as_str())
            .map_err(|e| format!("the room's own address is not usable: {e}"))?;
    let contact = Uri {
        scheme: Some(Scheme::Sips),
        auth: Some(Auth {
            user: account.user.clone(),
            password: None,
        }),
        host_with_port: route.local.clone(),
        params: vec![Param::Transport(Transport::Tls)],
        ..Default::default()
    };
    let option = InviteOption {
        caller_display_name: (!account.display_name.is_empty())
            .then(|| account.display_name.clone()),
        caller,
        callee,
        destination: Some(route.server.clone()),
        content_type: Some("application/sdp".to_owned()),
        offer: Some(offer.sdp.clone().into_bytes()),
        contact,
        credential: Some(account.credential()),
        ..Default::default()
    };
    let (mut dialog, mut response, mut states) = invite(&dialogs, option.clone()).await?;
    let mut offer = offer;
    let refused_srtp = response
        .as_ref()
        .is_some_and(|r| matches!(r.status_code.code(), 488 | 606));
    if refused_srtp && !require_encryption {
        // meeting.require_encryption is off: a peer without SRTP gets a second call offering
        // plain RTP, and the encryption indicator stays off for it.
        tracing::warn!("SIP: {uri} refused SRTP; calling again with plain RTP (unencrypted)");
        offer = make_plain_offer(&offer);
        let mut plain = option;
        plain.offer = Some(offer.sdp.clone().into_bytes());
        (dialog, response, states) = invite(&dialogs, plain).await?;
    }
    let response = response.ok_or_else(|| "the INVITE got no final answer".to_owned())?;
    if response.status_code != StatusCode::OK {
        let code = response.status_code.code();
        return Err(format!(
            "the far end answered {}{}",
            response.status_code,
            match code {
                // The room always offers SDES-SRTP (RTP/SAVP): a peer that does only plain RTP
                // refuses the media this way.
                488 | 606 if require_encryption => {
                    " (it does not accept the room's media: SRTP with SDES keys, which \
                     meeting.require_encryption asks for)"
                }
                488 | 606 => " (it accepts neither SRTP nor plain RTP from the room)",
                486 | 600 => " (busy)",
                404 | 604 => " (no such user)",
                480 => " (not available)",
                _ => "",
            }
        ));
    }
    let body = response.body();
    let agreed = if body.len() > SDP_MAX_BYTES {
        Err(crate::sdp::SdpError::TooLarge)
    } else {
        parse_answer(&String::from_utf8_lossy(body), require_encryption)
    };
    let agreed = match agreed {
        Ok(agreed) => agreed,
        Err(e) => {
            // Answered, but not acceptable: end it at once.
            if let Err(bye) = dialog.bye().await {
                tracing::debug!("SIP: BYE after a refused answer: {bye}");
            }
            dialogs.remove_dialog(&dialog.id());
            return Err(e.to_string());
        }
    };
    let streams = media_streams(&agreed, &offer, port(&audio.0), port(&video.0));
    // The ports were held for the offer; the call's udpsrcs bind them now.
    drop((audio, video));
    let media = match SipMedia::start(&taps, ip, uri, &streams) {
        Ok(media) => media,
        Err(e) => {
            if let Err(bye) = dialog.bye().await {
                tracing::debug!("SIP: BYE after the media failed: {bye}");
            }
            dialogs.remove_dialog(&dialog.id());
            return Err(format!("the call's media does not start: {e}"));
        }
    };
    Ok(Box::new(ActiveCall {
        dialog,
        dialogs,
        states,
        agreed,
        media,
    }))
}

/// One INVITE with its answer (`None`: no final answer) and the dialog's state changes.
async fn invite(
    dialogs: &DialogLayer,
    option: InviteOption,
) -> Result<
    (
        InviteDialog,
        Option<rsipstack::sip::Response>,
        DialogStateReceiver,
    ),
    String,
> {
    let (state_tx, states) = dialogs.new_dialog_state_channel();
    let invite = dialogs.do_invite(option, state_tx);
    match tokio::time::timeout(ANSWER_TIMEOUT, invite).await {
        Err(_) => Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(format!("the INVITE failed: {e}")),
        Ok(Ok((dialog, response))) => Ok((dialog, response, states)),
    }
}

/// The agreed streams as the media engine takes them, with the room's and the far end's keys.
fn media_streams(
    agreed: &Agreed,
    offer: &LocalOffer,
    audio_port: u16,
    video_port: u16,
) -> Vec<SipStream> {
    let mut streams = Vec::new();
    if let Some(audio) = &agreed.audio {
        streams.push(SipStream {
            kind: MediaKind::Audio,
            encoding: match audio.codec {
                AudioCodec::Opus => "OPUS",
                AudioCodec::Pcmu => "PCMU",
                AudioCodec::Pcma => "PCMA",
            }
            .to_owned(),
            payload_type: audio.payload_type,
            local_port: audio_port,
            remote_rtp: audio.remote_rtp,
            remote_rtcp: audio.remote_rtcp,
            send_key: audio.remote_key.as_ref().map(|_| *offer.audio_key.bytes()),
            receive_key: audio.remote_key.as_ref().map(|k| *k.bytes()),
            telephone_event: audio.telephone_event,
        });
    }
    if let Some(video) = &agreed.video {
        streams.push(SipStream {
            kind: MediaKind::Video,
            encoding: match video.codec {
                VideoCodec::H264 => "H264",
            }
            .to_owned(),
            payload_type: video.payload_type,
            local_port: video_port,
            remote_rtp: video.remote_rtp,
            remote_rtcp: video.remote_rtcp,
            send_key: video.remote_key.as_ref().map(|_| *offer.video_key.bytes()),
            receive_key: video.remote_key.as_ref().map(|k| *k.bytes()),
            telephone_event: None,
        });
    }
    streams
}

/// A call that was answered and accepted.
struct ActiveCall {
    dialog: InviteDialog,
    dialogs: Arc<DialogLayer>,
    states: DialogStateReceiver,
    agreed: Agreed,
    media: SipMedia,
}

impl SipCall for ActiveCall {
    fn encrypted(&self) -> bool {
        self.agreed.encrypted() && self.media.encrypted()
    }

    fn streams(&self) -> Vec<StreamStats> {
        let counters = self.media.counters();
        let encrypted = self.encrypted();
        let stream = |direction: &'static str, kind: &'static str, frames: u64| StreamStats {
            participant: FAR_END.to_owned(),
            direction,
            kind,
            bitrate_kbps: 0.0,
            packets_lost: 0,
            loss_percent: 0.0,
            jitter_ms: 0.0,
            rtt_ms: 0.0,
            frame_rate: 0.0,
            width: 0,
            height: 0,
            frames,
            encrypted,
            fec_recovered: 0,
            concealed: 0,
            expected_loss_percent: 0,
        };
        let mut streams = Vec::new();
        if self.agreed.audio.is_some() {
            streams.push(stream("send", "audio", counters.audio_sent.get()));
            streams.push(stream("receive", "audio", counters.audio_received.get()));
        }
        if self.agreed.video.is_some() {
            streams.push(stream("send", "video", counters.video_sent.get()));
            streams.push(stream("receive", "video", counters.video_received.get()));
        }
        streams
    }

    fn ended(&mut self) -> SipFuture<'_, String> {
        Box::pin(async move {
            while let Some(state) = self.states.recv().await {
                if let DialogState::Terminated(_, reason) = state {
                    return match reason {
                        TerminatedReason::UasBye => "the far end hung up".to_owned(),
                        TerminatedReason::Timeout => "the call timed out".to_owned(),
                        other => format!("the call ended ({other:?})"),
                    };
                }
            }
            "the SIP account stopped".to_owned()
        })
    }

    fn send_dtmf(&self, digits: &str) -> bool {
        self.media.send_dtmf(digits)
    }

    fn hang_up(self: Box<Self>) -> SipFuture<'static, ()> {
        Box::pin(async move {
            if let Err(e) = self.dialog.bye().await {
                tracing::debug!("SIP: BYE: {e}");
            }
            self.dialogs.remove_dialog(&self.dialog.id());
        })
    }
}
