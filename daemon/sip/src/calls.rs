//! Calls through the room's SIP account. Out: INVITE with the room's SDES-SRTP offer over the
//! TLS connection the account registered through, the far end's answer checked (`sdp`). In: an
//! INVITE's offer is checked first (488 when it is not acceptable, plain RTP under
//! `meeting.require_encryption` included), then the room core decides (busy: 486; listed in
//! `sip.auto_answer`: answered at once; else 180 Ringing until `meeting.answer`,
//! `meeting.decline` (603), the caller's CANCEL or `sip.ring_timeout_s` (480)). BYE either way.
//! Requests the far end sends inside a call (BYE, ACK) reach the call's dialog.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::sip::Header;
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::oneshot;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Auth, HostWithPort, Method, Param, Scheme, StatusCode, Transport, Uri};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::SipAddr;

use crate::SipError;
use crate::content::{CallContent, FloorSockets};
use crate::floor_tls;
use crate::registration::Account;
use crate::sdp::{
    Agreed, AgreedStream, AudioCodec, FarEndKeying, LocalFloor, LocalMedia, LocalOffer, Offered,
    SDP_MAX_BYTES, SdesKey, SdpError, VideoCodec, make_answer, make_dtls_offer, make_offer,
    make_plain_offer, parse_answer, parse_offer,
};
use roomd_core::{IncomingVerdict, RoomHandle};
use roomd_model::sip::IncomingCall;

/// The far end's id in `status.meeting.streams`.
const FAR_END: &str = "far-end";
use roomd_core::{ContentFloor, StreamStats};
use roomd_media::sip::{Protection, RtcpFigures, SipMedia, SipPorts, SipStream, room_certificate};
use roomd_media::{Feed, MediaTaps};
use roomd_meetings::{CallEncryption, HoldError, SipCall, SipCalls, SipFuture};

/// How long the far end may take to answer (ringing included).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Calls in that may ring at once (the core lets one ring; the others are busy at once).
const RINGING_MAX: usize = 8;
/// Characters of a caller's display name and address kept for status.
const CALLER_NAME_MAX_CHARS: usize = 64;
const CALLER_URI_MAX_CHARS: usize = 256;
/// How long the ringing call's task may take to hand the call over to `answer`.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);

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
    room: RoomHandle,
    /// Calls in that ring, by id: asking one's task (through the sender) hands its call over.
    ringing: Mutex<HashMap<String, oneshot::Sender<oneshot::Sender<Answerable>>>>,
}

/// A call in that rang, as its task hands it to `answer`.
struct Answerable {
    dialog: InviteDialog,
    states: DialogStateReceiver,
    offered: Offered,
    /// The floor control IDs the offer was read with: the answer names the same.
    floor_ids: LocalFloor,
    ip: IpAddr,
    uri: String,
}

impl SipPhone {
    pub(crate) fn new(
        endpoint: EndpointInnerRef,
        account: Arc<Account>,
        room: RoomHandle,
    ) -> SipPhone {
        SipPhone {
            dialogs: Arc::new(DialogLayer::new(endpoint)),
            account,
            route: Mutex::new(None),
            room,
            ringing: Mutex::new(HashMap::new()),
        }
    }

    fn route(&self) -> Option<Route> {
        self.route.lock().ok().and_then(|r| r.clone())
    }

    /// Forgets ringing call `id`; false when `answer` took it already.
    fn stop_ringing(&self, id: &str) -> bool {
        self.ringing
            .lock()
            .map(|mut ringing| ringing.remove(id).is_some())
            .unwrap_or(false)
    }

    /// A call in (an INVITE outside any dialog), from the offer's check to the end of its
    /// ringing.
    async fn incoming(self: Arc<Self>, mut tx: Transaction) {
        let config = self.room.config();
        let caller = caller_of(&tx.original);
        // Tells the core (and its subscribers) why a call in did not ring.
        let refused = |reason: String| {
            let room = self.room.clone();
            let caller = caller.clone();
            async move {
                let _ = room.sip_incoming_ended(caller, reason).await;
            }
        };
        let Some(ip) = self.route().and_then(|r| r.local_ip) else {
            let _ = tx.reply(StatusCode::TemporarilyUnavailable).await;
            refused("the room is not registered (480)".to_owned()).await;
            return;
        };
        let body = tx.original.body();
        let floor_ids = LocalFloor::random();
        let offered = if body.len() > SDP_MAX_BYTES {
            Err(SdpError::TooLarge)
        } else if body.is_empty() {
            Err(SdpError::Malformed(
                "the INVITE carries no SDP offer, which the room needs".to_owned(),
            ))
        } else {
            parse_offer(
                &String::from_utf8_lossy(body),
                config.meeting.require_encryption,
                Some(&floor_ids),
            )
        };
        let offered = match offered {
            Ok(offered) => offered,
            Err(e) => {
                tracing::warn!("SIP: a call from {} refused: {e}", caller.uri);
                let _ = tx.reply(StatusCode::NotAcceptableHere).await;
                refused(format!("refused with 488 Not Acceptable Here: {e}")).await;
                return;
            }
        };
        let full = self
            .ringing
            .lock()
            .map(|r| r.len() >= RINGING_MAX)
            .unwrap_or(true);
        if full {
            let _ = tx.reply(StatusCode::BusyHere).await;
            return;
        }
        let contact = self.contact();
        let (state_tx, states) = self.dialogs.new_dialog_state_channel();
        // Without the connection while the dialog is made: rsipstack would add
        // `transport=tls` (the connection's) to the caller's Contact as the dialog's remote
        // target, and a proxy in between (the caller on UDP behind it) would then forward the
        // room's BYE over TLS to a UDP phone. In-call requests follow the route set instead.
        let connection = tx.connection.take();
        let created = self
            .dialogs
            .get_or_create_server_invite(&tx, state_tx, None, contact.ok());
        tx.connection = connection;
        let dialog = match created {
            Ok(dialog) => dialog,
            Err(e) => {
                tracing::warn!("SIP: cannot take a call from {}: {e}", caller.uri);
                let _ = tx.reply(StatusCode::ServerInternalError).await;
                return;
            }
        };
        // The INVITE's transaction (100 Trying, the responses below, ACK or CANCEL) runs on.
        let mut handler = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = handler.handle(&mut tx).await {
                tracing::debug!("SIP: a call in: {e}");
            }
        });
        let (answer_tx, answer_rx) = oneshot::channel();
        if let Ok(mut ringing) = self.ringing.lock() {
            ringing.insert(caller.id.clone(), answer_tx);
        }
        let (decline_tx, decline_rx) = oneshot::channel();
        let verdict = self.room.sip_incoming(caller.clone(), decline_tx).await;
        if !matches!(
            verdict,
            Ok(IncomingVerdict::Ringing | IncomingVerdict::Answered)
        ) {
            self.stop_ringing(&caller.id);
            let _ = dialog.reject(Some(StatusCode::BusyHere), None);
            self.dialogs.remove_dialog(&dialog.id());
            let _ = self
                .room
                .sip_incoming_ended(
                    caller,
                    "busy: the room is in a meeting or another call rings (486)".to_owned(),
                )
                .await;
            return;
        }
        if let Err(e) = dialog.ringing(None, None) {
            tracing::debug!("SIP: 180 Ringing: {e}");
        }
        let ring_timeout = Duration::from_secs(config.sip.ring_timeout_s.into());
        let call = Answerable {
            dialog,
            states,
            offered,
            floor_ids,
            ip,
            uri: caller.uri.clone(),
        };
        self.ring(caller, call, answer_rx, decline_rx, ring_timeout)
            .await;
    }

    /// Lets call in `caller` ring until it is answered (handed over), declined, cancelled or
    /// not answered in time.
    async fn ring(
        &self,
        caller: IncomingCall,
        mut call: Answerable,
        mut answer_rx: oneshot::Receiver<oneshot::Sender<Answerable>>,
        mut decline_rx: oneshot::Receiver<()>,
        ring_timeout: Duration,
    ) {
        let deadline = tokio::time::sleep(ring_timeout);
        tokio::pin!(deadline);
        let mut core_gone = false;
        let (code, reason) = loop {
            tokio::select! {
                asked = &mut answer_rx => {
                    if let Ok(reply) = asked {
                        let _ = reply.send(call);
                    }
                    return;
                }
                declined = &mut decline_rx, if !core_gone => match declined {
                    // The core said so (and told its subscribers).
                    Ok(()) => break (Some(StatusCode::Decline), None),
                    // Answered (the core keeps no way to decline then), or the core stopped.
                    Err(_) => core_gone = true,
                },
                _ = &mut deadline => break (
                    Some(StatusCode::TemporarilyUnavailable),
                    Some(format!("not answered within {} s (480)", ring_timeout.as_secs())),
                ),
                state = call.states.recv() => match state {
                    Some(DialogState::Terminated(..)) | None => break (
                        None,
                        Some("the caller hung up before the call was answered".to_owned()),
                    ),
                    Some(_) => {}
                },
            }
        };
        if !self.stop_ringing(&caller.id) {
            // `answer` took the call meanwhile: hand it over after all.
            if let Ok(reply) = answer_rx.await {
                let _ = reply.send(call);
            }
            return;
        }
        if let Some(code) = code
            && let Err(e) = call.dialog.reject(Some(code), None)
        {
            tracing::debug!("SIP: ending a ringing call: {e}");
        }
        self.dialogs.remove_dialog(&call.dialog.id());
        if let Some(reason) = reason {
            tracing::info!("SIP: the call from {} ended: {reason}", caller.uri);
            let _ = self.room.sip_incoming_ended(caller, reason).await;
        }
    }

    /// The room's Contact: its user at its end of the TLS connection.
    fn contact(&self) -> Result<Uri, SipError> {
        let route = self.route().ok_or(SipError::NotRegistered)?;
        Ok(Uri {
            scheme: Some(Scheme::Sips),
            auth: Some(Auth {
                user: self.account.user.clone(),
                password: None,
            }),
            host_with_port: route.local.clone(),
            params: vec![Param::Transport(Transport::Tls)],
            ..Default::default()
        })
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
                    Method::Invite => {
                        tokio::spawn(self.clone().incoming(tx));
                        continue;
                    }
                    _ => StatusCode::MethodNotAllowed,
                }
            };
            if let Err(e) = tx.reply(reply).await {
                tracing::debug!("SIP: cannot answer a request: {e}");
            }
        }
    }
}

/// The caller of an INVITE as status shows it: display name and address (no parameters),
/// bounded, without control characters; a fresh id.
fn caller_of(invite: &rsipstack::sip::Request) -> IncomingCall {
    let from = invite
        .from_header()
        .ok()
        .and_then(|h| rsipstack::sip::typed::From::parse(h.value()).ok());
    let clean = |text: &str, max: usize| -> String {
        text.chars().filter(|c| !c.is_control()).take(max).collect()
    };
    let (display_name, uri) = match from {
        Some(from) => {
            let scheme = match from.uri.scheme {
                Some(Scheme::Sips) => "sips",
                _ => "sip",
            };
            let user = from
                .uri
                .auth
                .as_ref()
                .map(|a| format!("{}@", a.user))
                .unwrap_or_default();
            (
                clean(
                    from.display_name
                        .as_deref()
                        .unwrap_or_default()
                        .trim_matches('"'),
                    CALLER_NAME_MAX_CHARS,
                ),
                clean(
                    &format!("{scheme}:{user}{}", from.uri.host_with_port),
                    CALLER_URI_MAX_CHARS,
                ),
            )
        }
        None => (String::new(), "unknown".to_owned()),
    };
    let mut id = [0u8; 9];
    roomd_base::random::fill(&mut id);
    IncomingCall {
        id: format!(
            "in-{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        display_name,
        uri,
        // The core stamps it.
        since: String::new(),
    }
}

/// Answers call in `call` with the room's SDP and starts its media.
async fn answer_call(
    dialogs: Arc<DialogLayer>,
    call: Answerable,
    require_encryption: bool,
    taps: MediaTaps,
) -> Result<Box<dyn SipCall>, SipError> {
    let Answerable {
        dialog,
        states,
        mut offered,
        floor_ids,
        ip,
        uri,
    } = call;
    let camera_codec = camera_codec(&taps);
    offered.prefer_video(camera_codec);
    let refuse = |e: SipError| {
        if let Err(reject) = dialog.reject(Some(StatusCode::NotAcceptableHere), None) {
            tracing::debug!("SIP: refusing a call: {reject}");
        }
        dialogs.remove_dialog(&dialog.id());
        e
    };
    // meeting.require_encryption may have been turned on while it rang.
    if require_encryption && !offered.agreed.encrypted() {
        return Err(refuse(SipError::Sdp(SdpError::Unencrypted("media"))));
    }
    let ports = SipPorts::bind(ip).map_err(|e| refuse(SipError::Media(e.to_string())))?;
    let certificate = room_certificate().map_err(|e| refuse(SipError::Media(e.to_string())))?;
    let floor_tls_fingerprint = *floor_tls::room_certificate()
        .map_err(|e| refuse(SipError::Media(e.to_string())))?
        .fingerprint();
    let mut session_id = [0u8; 8];
    roomd_base::random::fill(&mut session_id);
    let bfcp = bind_bfcp(ip);
    // A far end that connects to the room's BFCP finds it listening on the UDP port's number.
    let listener = match (&bfcp, &offered.agreed.floor) {
        (Some((_, port)), Some(floor)) if floor.transport.room_listens() => {
            match std::net::TcpListener::bind((ip, *port)) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    tracing::warn!(
                        "SIP: cannot listen for BFCP on {ip}:{port} ({e}); the call goes without content"
                    );
                    offered.agreed.floor = None;
                    None
                }
            }
        }
        _ => None,
    };
    if bfcp.is_none() || offered.agreed.floor.is_none() {
        offered.agreed.content = None;
        offered.agreed.floor = None;
    }
    let local = LocalMedia {
        address: ip,
        audio_port: ports.port(Feed::Microphone),
        video_port: ports.port(Feed::Camera),
        content_port: ports.port(Feed::Content),
        floor: bfcp.as_ref().map(|(_, port)| (*port, floor_ids)),
        session_id: u64::from_be_bytes(session_id) >> 1,
        dtls_fingerprint: *certificate.fingerprint(),
        floor_tls_fingerprint,
        camera_codec,
    };
    let answer = make_answer(&local, &offered);
    let streams = media_streams(&offered.agreed, &answer);
    let media = SipMedia::start(&taps, ports, &uri, &streams)
        .map_err(|e| refuse(SipError::Media(e.to_string())))?;
    let media = Arc::new(media);
    dialog
        .accept(
            Some(vec![Header::ContentType("application/sdp".into())]),
            Some(answer.sdp.clone().into_bytes()),
        )
        .map_err(|e| SipError::Signalling {
            what: "200 OK",
            reason: e.to_string(),
        })?;
    // After the answer: a far end that connects to the room does so once it has it.
    let content = start_content(&offered.agreed, bfcp, listener, &media).await;
    Ok(Box::new(ActiveCall {
        dialog,
        dialogs,
        states,
        agreed: offered.agreed,
        media,
        content,
        local_sdp: answer.sdp,
        sdp_version: 1,
        far_end_hold: tokio::sync::watch::channel(false).0,
        started: tokio::time::Instant::now(),
        rates: std::sync::Mutex::new(Rates::default()),
    }))
}

impl SipCalls for SipPhone {
    fn answer(
        &self,
        id: String,
        require_encryption: bool,
        taps: MediaTaps,
    ) -> SipFuture<'static, Result<Box<dyn SipCall>, String>> {
        let asked = self.ringing.lock().ok().and_then(|mut r| r.remove(&id));
        let dialogs = self.dialogs.clone();
        Box::pin(async move {
            let asked = asked.ok_or_else(|| SipError::NotRinging.to_string())?;
            let (reply, handed) = oneshot::channel();
            asked
                .send(reply)
                .map_err(|_| SipError::NotRinging.to_string())?;
            let call = match tokio::time::timeout(HANDOVER_TIMEOUT, handed).await {
                Ok(Ok(call)) => call,
                _ => return Err(SipError::NotRinging.to_string()),
            };
            answer_call(dialogs, call, require_encryption, taps)
                .await
                .map_err(|e| e.to_string())
        })
    }

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
    let ports = SipPorts::bind(ip).map_err(|e| e.to_string())?;
    let mut session_id = [0u8; 8];
    roomd_base::random::fill(&mut session_id);
    let certificate = room_certificate().map_err(|e| e.to_string())?;
    let floor_tls_fingerprint = *floor_tls::room_certificate()
        .map_err(|e| e.to_string())?
        .fingerprint();
    let bfcp = bind_bfcp(ip);
    let floor = LocalFloor::random();
    let local = LocalMedia {
        address: ip,
        audio_port: ports.port(Feed::Microphone),
        video_port: ports.port(Feed::Camera),
        content_port: ports.port(Feed::Content),
        floor: bfcp.as_ref().map(|(_, port)| (*port, floor)),
        // Positive as a signed 63-bit number, as some peers parse it.
        session_id: u64::from_be_bytes(session_id) >> 1,
        dtls_fingerprint: *certificate.fingerprint(),
        floor_tls_fingerprint,
        camera_codec: camera_codec(&taps),
    };
    let offer = make_offer(&local);
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
    let refused_media = |response: &Option<rsipstack::sip::Response>| {
        response
            .as_ref()
            .is_some_and(|r| matches!(r.status_code.code(), 488 | 606))
    };
    // A far end that refuses RTP/SAVP (strict DTLS-SRTP peers) is called again offering
    // UDP/TLS/RTP/SAVP; only when
    // meeting.require_encryption is off, a peer without SRTP at all gets a third call offering
    // plain RTP, and the encryption indicator stays off for it.
    let mut fallbacks = vec![("DTLS-SRTP", make_dtls_offer(&offer))];
    if !require_encryption {
        fallbacks.push(("plain RTP (unencrypted)", make_plain_offer(&offer)));
    }
    let mut offer = offer;
    for (what, fallback) in fallbacks {
        if !refused_media(&response) {
            break;
        }
        tracing::warn!("SIP: {uri} refused the room's media; calling again with {what}");
        offer = fallback;
        let mut again = option.clone();
        again.offer = Some(offer.sdp.clone().into_bytes());
        (dialog, response, states) = invite(&dialogs, again).await?;
    }
    let response = response.ok_or_else(|| "the INVITE got no final answer".to_owned())?;
    if response.status_code != StatusCode::OK {
        let code = response.status_code.code();
        return Err(format!(
            "the far end answered {}{}",
            response.status_code,
            match code {
                // The room offers SDES-SRTP (RTP/SAVP), then DTLS-SRTP: a peer that does only
                // plain RTP refuses the media this way.
                488 | 606 if require_encryption => {
                    " (it does not accept the room's media: SRTP keyed by SDES or by DTLS, \
                     which meeting.require_encryption asks for)"
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
        parse_answer(
            &String::from_utf8_lossy(body),
            require_encryption,
            bfcp.is_some().then_some(&floor),
        )
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
    let streams = media_streams(&agreed, &offer);
    let media = match SipMedia::start(&taps, ports, uri, &streams) {
        Ok(media) => Arc::new(media),
        Err(e) => {
            if let Err(bye) = dialog.bye().await {
                tracing::debug!("SIP: BYE after the media failed: {bye}");
            }
            dialogs.remove_dialog(&dialog.id());
            return Err(format!("the call's media does not start: {e}"));
        }
    };
    let content = start_content(&agreed, bfcp, None, &media).await;
    Ok(Box::new(ActiveCall {
        dialog,
        dialogs,
        states,
        agreed,
        media,
        content,
        local_sdp: offer.sdp,
        sdp_version: 1,
        far_end_hold: tokio::sync::watch::channel(false).0,
        started: tokio::time::Instant::now(),
        rates: std::sync::Mutex::new(Rates::default()),
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
fn media_streams(agreed: &Agreed, offer: &LocalOffer) -> Vec<SipStream> {
    let mut streams = Vec::new();
    if let Some(audio) = &agreed.audio {
        streams.push(SipStream {
            feed: Feed::Microphone,
            encoding: match audio.codec {
                AudioCodec::Opus => "OPUS",
                AudioCodec::G722 => "G722",
                AudioCodec::Pcmu => "PCMU",
                AudioCodec::Pcma => "PCMA",
            }
            .to_owned(),
            payload_type: audio.payload_type,
            remote_rtp: audio.remote_rtp,
            remote_rtcp: audio.remote_rtcp,
            protection: protection(&audio.keying, &offer.audio_key),
            max_kbps: audio.max_kbps,
            telephone_event: audio.telephone_event,
        });
    }
    if let Some(video) = &agreed.video {
        if let Some(kbps) = video.max_kbps {
            tracing::info!("SIP call: the far end takes at most {kbps} kbit/s of video");
        }
        streams.push(video_stream(Feed::Camera, video, &offer.video_key));
    }
    if let Some(content) = &agreed.content {
        streams.push(video_stream(Feed::Content, content, &offer.content_key));
    }
    streams
}

/// A video stream (camera or content) as the media engine takes it.
fn video_stream(feed: Feed, video: &AgreedStream<VideoCodec>, own: &SdesKey) -> SipStream {
    SipStream {
        feed,
        encoding: match video.codec {
            VideoCodec::H264 => "H264",
            VideoCodec::Vp8 => "VP8",
        }
        .to_owned(),
        payload_type: video.payload_type,
        remote_rtp: video.remote_rtp,
        remote_rtcp: video.remote_rtcp,
        protection: protection(&video.keying, own),
        max_kbps: video.max_kbps,
        telephone_event: None,
    }
}

/// The room's BFCP socket for a call, on `ip`: content is offered and answered only with one.
fn bind_bfcp(ip: IpAddr) -> Option<(std::net::UdpSocket, u16)> {
    let bound = std::net::UdpSocket::bind((ip, 0)).and_then(|socket| {
        let port = socket.local_addr()?.port();
        Ok((socket, port))
    });
    match bound {
        Ok(bound) => Some(bound),
        Err(e) => {
            tracing::warn!("SIP: no BFCP port on {ip} ({e}); the call goes without content");
            None
        }
    }
}

/// The call's floor control, where content was agreed; a failure to start it leaves the call
/// without content.
async fn start_content(
    agreed: &Agreed,
    bfcp: Option<(std::net::UdpSocket, u16)>,
    listener: Option<std::net::TcpListener>,
    media: &Arc<SipMedia>,
) -> Option<CallContent> {
    let (floor, (udp, _)) = (agreed.floor.as_ref()?, bfcp?);
    let sockets = FloorSockets { udp, tcp: listener };
    match CallContent::start(floor, sockets, media.clone()).await {
        Ok(content) => Some(content),
        Err(e) => {
            tracing::warn!("SIP call: no content in this call: {e}");
            None
        }
    }
}

/// The codec the room's camera is encoded with (H.264 until the video branch says otherwise).
fn camera_codec(taps: &MediaTaps) -> VideoCodec {
    match taps.video_codec() {
        Some(roomd_media::Codec::Vp8) => VideoCodec::Vp8,
        _ => VideoCodec::H264,
    }
}

/// How the media engine protects a stream the far end keys with `keying`, the room's SDES key
/// being `own`.
fn protection(keying: &FarEndKeying, own: &crate::sdp::SdesKey) -> Protection {
    match keying {
        FarEndKeying::Plain => Protection::Plain,
        FarEndKeying::Sdes { key, .. } => Protection::Sdes {
            send: *own.bytes(),
            receive: *key.bytes(),
        },
        FarEndKeying::Dtls {
            fingerprint,
            room_is_client,
            rtcp_mux,
        } => Protection::Dtls {
            client: *room_is_client,
            remote_fingerprint: *fingerprint,
            rtcp_mux: *rtcp_mux,
        },
    }
}

/// A call that was answered and accepted.
struct ActiveCall {
    dialog: InviteDialog,
    dialogs: Arc<DialogLayer>,
    states: DialogStateReceiver,
    agreed: Agreed,
    media: Arc<SipMedia>,
    /// The content's floor control, where the call agreed content.
    content: Option<CallContent>,
    /// The room's SDP as last sent (offer or answer): re-INVITEs and answers to the far end's
    /// re-INVITEs repeat it with another direction and the next `o=` version.
    local_sdp: String,
    sdp_version: u64,
    /// Whether the far end holds the call: its last re-INVITE said `sendonly` or `inactive`.
    far_end_hold: tokio::sync::watch::Sender<bool>,
    /// When the media started: the DTLS handshakes' deadline counts from it.
    started: tokio::time::Instant,
    /// The streams' bit rates, from their RTP bytes between two readings of status.
    rates: std::sync::Mutex<Rates>,
}

/// RTP bit rates of a call's six streams (audio, video and content, each sent and received),
/// each over the time between two readings at least a second apart.
#[derive(Default)]
struct Rates {
    last: Option<(std::time::Instant, [u64; 6])>,
    kbps: [f64; 6],
}

impl Rates {
    fn update(&mut self, bytes: [u64; 6]) -> [f64; 6] {
        let now = std::time::Instant::now();
        match self.last {
            Some((at, before)) if now.duration_since(at) >= Duration::from_secs(1) => {
                let seconds = now.duration_since(at).as_secs_f64();
                for (i, kbps) in self.kbps.iter_mut().enumerate() {
                    *kbps = bytes[i].saturating_sub(before[i]) as f64 * 8.0 / 1000.0 / seconds;
                }
                self.last = Some((now, bytes));
            }
            Some(_) => {}
            None => self.last = Some((now, bytes)),
        }
        self.kbps
    }
}

/// The direction that answers an offer's (RFC 3264 6.1): the first direction attribute of
/// the offer, mirrored; `sendrecv` when it has none.
fn mirrored_direction(offer: &str) -> &'static str {
    let direction = offer
        .lines()
        .take(256)
        .map(str::trim)
        .find_map(|line| match line {
            "a=sendonly" => Some("recvonly"),
            "a=recvonly" => Some("sendonly"),
            "a=inactive" => Some("inactive"),
            "a=sendrecv" => Some("sendrecv"),
            _ => None,
        });
    direction.unwrap_or("sendrecv")
}

impl ActiveCall {
    /// The room's SDP again with `direction` on every stream and the next `o=` version.
    fn next_sdp(&mut self, direction: &str) -> String {
        self.sdp_version += 1;
        let mut sdp = String::new();
        for line in self.local_sdp.lines() {
            let line = match line {
                "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive" => {
                    format!("a={direction}")
                }
                _ if line.starts_with("o=") => {
                    let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
                    if let Some(version) = fields.get_mut(2) {
                        *version = self.sdp_version.to_string();
                    }
                    fields.join(" ")
                }
                _ => line.to_owned(),
            };
            sdp.push_str(&line);
            sdp.push_str("\r\n");
        }
        sdp
    }
}

/// Resolves when the call's DTLS-SRTP handshakes fail (the far end's certificate is not the
/// one its SDP names) or do not finish within [`DTLS_TIMEOUT`] of the call's start, with
/// why; never for a call without DTLS or once its handshakes are done.
async fn media_failed(media: &SipMedia, started: tokio::time::Instant) -> String {
    let mut progress = media.dtls_progress();
    let settled = progress.wait_for(|p| p.pending == 0 || p.failure.is_some());
    let failure = match tokio::time::timeout_at(started + DTLS_TIMEOUT, settled).await {
        Err(_) => Some(format!(
            "the DTLS-SRTP handshake with the far end did not finish within {} s",
            DTLS_TIMEOUT.as_secs()
        )),
        Ok(Ok(p)) => p.failure.clone(),
        Ok(Err(_)) => None,
    };
    match failure {
        Some(reason) => reason,
        None => std::future::pending().await,
    }
}

/// How long a call's DTLS-SRTP handshakes may take (OpenSSL retransmits its first flight
/// after 1 s, doubling: a lost packet or two fits).
const DTLS_TIMEOUT: Duration = Duration::from_secs(20);

impl SipCall for ActiveCall {
    fn encryption(&self) -> CallEncryption {
        if !(self.agreed.encrypted() && self.media.encrypted()) {
            return CallEncryption::None;
        }
        let dtls = [
            self.agreed.audio.as_ref().map(|s| &s.keying),
            self.agreed.video.as_ref().map(|s| &s.keying),
            self.agreed.content.as_ref().map(|s| &s.keying),
        ]
        .into_iter()
        .flatten()
        .any(|k| matches!(k, FarEndKeying::Dtls { .. }));
        if dtls {
            CallEncryption::DtlsSrtp
        } else {
            CallEncryption::SdesSrtp
        }
    }

    fn streams(&self) -> Vec<StreamStats> {
        let counters = self.media.counters();
        let encrypted = self.encryption().is_encrypted();
        let rates = self.rates.lock().map_or([0.0; 6], |mut rates| {
            rates.update([
                counters.audio_sent.bytes(),
                counters.audio_received.bytes(),
                counters.video_sent.bytes(),
                counters.video_received.bytes(),
                counters.content_sent.bytes(),
                counters.content_received.bytes(),
            ])
        });
        let stream =
            |direction: &'static str, kind: &'static str, frames: u64, rtcp: RtcpFigures| {
                StreamStats {
                    // The room's own content is listed as `content`, as in every meeting.
                    participant: if (kind, direction) == ("content", "send") {
                        "content".to_owned()
                    } else {
                        FAR_END.to_owned()
                    },
                    direction,
                    kind,
                    bitrate_kbps: match (kind, direction) {
                        ("audio", "send") => rates[0],
                        ("audio", _) => rates[1],
                        ("video", "send") => rates[2],
                        ("video", _) => rates[3],
                        (_, "send") => rates[4],
                        _ => rates[5],
                    },
                    packets_lost: rtcp.packets_lost,
                    loss_percent: rtcp.loss_percent(),
                    jitter_ms: rtcp.jitter_ms,
                    rtt_ms: rtcp.rtt_ms,
                    frame_rate: 0.0,
                    width: 0,
                    height: 0,
                    frames,
                    encrypted,
                    fec_recovered: 0,
                    concealed: 0,
                    expected_loss_percent: 0,
                    max_kbps: if (kind, direction) == ("video", "send") {
                        self.media.camera_limit_kbps()
                    } else {
                        None
                    },
                }
            };
        let mut streams = Vec::new();
        for (agreed, feed, kind, sent_frames, received_frames) in [
            (
                self.agreed.audio.is_some(),
                Feed::Microphone,
                "audio",
                &counters.audio_sent,
                &counters.audio_received,
            ),
            (
                self.agreed.video.is_some(),
                Feed::Camera,
                "video",
                &counters.video_sent,
                &counters.video_received,
            ),
            (
                self.content.is_some(),
                Feed::Content,
                "content",
                &counters.content_sent,
                &counters.content_received,
            ),
        ] {
            if !agreed {
                continue;
            }
            // One reading of the stream's RTP session for both directions.
            let (sent, received) = self.media.rtcp(feed).unwrap_or_default();
            streams.push(stream("send", kind, sent_frames.get(), sent));
            streams.push(stream("receive", kind, received_frames.get(), received));
        }
        streams
    }

    fn content_floor(&self) -> tokio::sync::watch::Receiver<ContentFloor> {
        match &self.content {
            Some(content) => content.watch(),
            None => tokio::sync::watch::channel(ContentFloor::None).1,
        }
    }

    fn share_content(&mut self, share: bool) -> SipFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let content = self.content.as_ref().ok_or_else(|| {
                "the far end agreed no content stream with floor control (BFCP) in this call"
                    .to_owned()
            })?;
            content.share(share).await.map_err(|e| e.to_string())
        })
    }

    fn far_end_hold(&self) -> tokio::sync::watch::Receiver<bool> {
        self.far_end_hold.subscribe()
    }

    fn first_video_frame(&self) -> tokio::sync::watch::Receiver<bool> {
        self.media.first_video_frame()
    }

    fn ended(&mut self) -> SipFuture<'_, String> {
        Box::pin(async move {
            loop {
                let next = tokio::select! {
                    state = self.states.recv() => Ok(state),
                    reason = media_failed(&self.media, self.started) => Err(reason),
                };
                let state = match next {
                    Ok(Some(state)) => state,
                    Ok(None) => break,
                    Err(reason) => {
                        tracing::warn!("SIP call: {reason}");
                        if let Err(e) = self.dialog.bye().await {
                            tracing::debug!("SIP: BYE after the media failed: {e}");
                        }
                        self.dialogs.remove_dialog(&self.dialog.id());
                        return reason;
                    }
                };
                // The far end's re-INVITE (hold, resume, a session refresh): answered with
                // the room's media as it is, the direction mirrored. Other requests inside
                // the call (INFO, OPTIONS, UPDATE) get 200 OK.
                let handle = match &state {
                    DialogState::Updated(_, request, handle) => {
                        let body = request.body();
                        if request.method == Method::Invite && body.len() <= SDP_MAX_BYTES {
                            let direction = mirrored_direction(&String::from_utf8_lossy(body));
                            tracing::info!("SIP: the far end re-INVITEs; answering {direction}");
                            let sdp = self.next_sdp(direction);
                            // Answered in a task of its own: the session stops awaiting this
                            // future whenever something else happens (a tick, a command), and
                            // an answer must not be dropped half sent.
                            let handle = handle.clone();
                            tokio::spawn(async move {
                                let respond = handle.respond(
                                    StatusCode::OK,
                                    Some(vec![Header::ContentType("application/sdp".into())]),
                                    Some(sdp.into_bytes()),
                                );
                                if let Err(e) = respond.await {
                                    tracing::debug!("SIP: answering a re-INVITE: {e}");
                                }
                            });
                            // It sends nothing it wants us to play (`sendonly` mirrored to
                            // `recvonly`, or `inactive`): it put us on hold.
                            let held = matches!(direction, "recvonly" | "inactive");
                            self.far_end_hold
                                .send_if_modified(|h| std::mem::replace(h, held) != held);
                            continue;
                        }
                        Some(handle.clone())
                    }
                    DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                        Some(handle.clone())
                    }
                    _ => None,
                };
                if let Some(handle) = handle {
                    // In a task of its own, as the answer to a re-INVITE above.
                    tokio::spawn(async move {
                        if let Err(e) = handle.reply(StatusCode::OK).await {
                            tracing::debug!("SIP: answering a request inside the call: {e}");
                        }
                    });
                    continue;
                }
                if let DialogState::Terminated(_, reason) = state {
                    return match reason {
                        // UAS: the far end of a call out; UAC: the caller of a call in.
                        TerminatedReason::UasBye | TerminatedReason::UacBye => {
                            "the far end hung up".to_owned()
                        }
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

    fn hold(&mut self, hold: bool) -> SipFuture<'_, Result<(), HoldError>> {
        Box::pin(async move {
            let sdp = self.next_sdp(if hold { "sendonly" } else { "sendrecv" });
            let reinvite = self.dialog.reinvite(
                Some(vec![Header::ContentType("application/sdp".into())]),
                Some(sdp.into_bytes()),
            );
            match tokio::time::timeout(ANSWER_TIMEOUT, reinvite).await {
                Ok(Ok(Some(response))) if response.status_code == StatusCode::OK => Ok(()),
                Ok(Ok(Some(response))) => Err(HoldError::Refused {
                    status: response.status_code.to_string(),
                }),
                Ok(Ok(None)) => Err(HoldError::NotEstablished),
                Ok(Err(e)) => Err(HoldError::Failed(Box::new(e))),
                Err(_) => Err(HoldError::Timeout {
                    seconds: ANSWER_TIMEOUT.as_secs(),
                }),
            }
        })
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

#[cfg(test)]
mod tests;
