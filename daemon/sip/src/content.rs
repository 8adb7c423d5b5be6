//! Content in a SIP call: the BFCP floor of the content stream (roomd-bfcp) and what the room
//! sends because of it. Sharing asks the far end's floor control server for the floor (or, the
//! room serving, takes it); the room's content goes out only while the room holds the floor,
//! and stops the moment it loses it. Who holds the floor is what `status.meeting.content_floor`
//! shows; the far end's content is shown as it arrives.

use std::sync::Arc;

use roomd_bfcp::{
    FloorEvent, FloorIds, FloorServer, Participant, ServerIds, SessionError, Timers, Transport,
};
use roomd_core::ContentFloor;
use roomd_media::sip::SipMedia;
use tokio::sync::watch;

use crate::sdp::{AgreedFloor, FloorRole, FloorTransport};
use crate::{floor_connect, floor_tls};

/// The room's side of the floor control session.
enum Control {
    Participant(Participant),
    Server(FloorServer),
}

/// A call's floor control, running while the call lasts.
pub(crate) struct CallContent {
    control: Control,
    holder: watch::Receiver<ContentFloor>,
    events: tokio::task::JoinHandle<()>,
}

impl Drop for CallContent {
    fn drop(&mut self) {
        // The session itself ends with its handle (saying Goodbye); its events end here.
        self.events.abort();
    }
}

impl CallContent {
    /// Starts floor control as `agreed` says: over `sockets.udp` (the room's BFCP UDP port,
    /// named in its SDP), or a TCP connection, the room's to the far end or the far end's to
    /// `sockets.tcp` (the same port number), with TLS on it for `TCP/TLS/BFCP`; `media` sends
    /// the room's content while the room holds the floor.
    pub(crate) async fn start(
        agreed: &AgreedFloor,
        sockets: FloorSockets,
        media: Arc<SipMedia>,
    ) -> Result<CallContent, String> {
        let FloorSockets { udp: socket, tcp } = sockets;
        let listener = || -> Result<tokio::net::TcpListener, String> {
            let listener = tcp.ok_or("the room has no BFCP port to listen on")?;
            listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
                .map_err(|e| format!("the BFCP listening port: {e}"))
        };
        let transport = match agreed.transport {
            FloorTransport::Udp(remote) => {
                socket
                    .set_nonblocking(true)
                    .map_err(|e| format!("the BFCP socket: {e}"))?;
                let socket = tokio::net::UdpSocket::from_std(socket)
                    .map_err(|e| format!("the BFCP socket: {e}"))?;
                Transport::Udp { socket, remote }
            }
            FloorTransport::TcpConnect(remote) => Transport::Tcp(Box::new(
                floor_connect::connect(remote)
                    .await
                    .map_err(|e| e.to_string())?,
            )),
            FloorTransport::TlsConnect {
                remote,
                fingerprint,
            } => {
                let certificate = floor_tls::room_certificate().map_err(|e| e.to_string())?;
                let stream = floor_connect::connect(remote)
                    .await
                    .map_err(|e| e.to_string())?;
                let tls = floor_tls::connect(stream, remote, fingerprint, certificate)
                    .await
                    .map_err(|e| e.to_string())?;
                Transport::Tcp(Box::new(tls))
            }
            FloorTransport::TcpAccept(from) => Transport::Tcp(Box::new(
                floor_connect::accept_from(listener()?, from, floor_connect::ACCEPT_TIMEOUT)
                    .await
                    .map_err(|e| e.to_string())?,
            )),
            FloorTransport::TlsAccept { from, fingerprint } => {
                let certificate = floor_tls::room_certificate().map_err(|e| e.to_string())?;
                let stream =
                    floor_connect::accept_from(listener()?, from, floor_connect::ACCEPT_TIMEOUT)
                        .await
                        .map_err(|e| e.to_string())?;
                let peer = stream.peer_addr().map_err(|e| e.to_string())?;
                let tls = floor_tls::accept(stream, peer, fingerprint, certificate)
                    .await
                    .map_err(|e| e.to_string())?;
                Transport::Tcp(Box::new(tls))
            }
        };
        let (control, mut events) = match agreed.role {
            FloorRole::Participant {
                conference_id,
                user_id,
                floor_id,
            } => {
                let ids = FloorIds {
                    conference_id,
                    user_id,
                    floor_id,
                };
                let (participant, events) = Participant::start(transport, ids, Timers::default());
                (Control::Participant(participant), events)
            }
            FloorRole::Server(local) => {
                let ids = ServerIds {
                    conference_id: local.conference_id,
                    floor_id: local.floor_id,
                    far_end_user_id: local.far_end_user_id,
                    room_user_id: local.room_user_id,
                };
                let (server, events) = FloorServer::start(transport, ids, Timers::default());
                (Control::Server(server), events)
            }
        };
        let (holder_tx, holder) = watch::channel(ContentFloor::Free);
        let events = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                tracing::info!("SIP call: content floor: {event:?}");
                let now = match event {
                    FloorEvent::Granted => ContentFloor::Room,
                    FloorEvent::HeldBy { .. } => ContentFloor::FarEnd,
                    FloorEvent::Free
                    | FloorEvent::Released
                    | FloorEvent::Revoked { .. }
                    | FloorEvent::Denied { .. } => ContentFloor::Free,
                    FloorEvent::Closed(reason) => {
                        tracing::warn!("SIP call: the content's floor control ended: {reason:?}");
                        ContentFloor::Free
                    }
                    FloorEvent::Connected | FloorEvent::Pending { .. } => continue,
                };
                // The room's content goes out only while the room holds the floor.
                media.set_content_sending(now == ContentFloor::Room);
                holder_tx.send_if_modified(|h| std::mem::replace(h, now) != now);
            }
        });
        Ok(CallContent {
            control,
            holder,
            events,
        })
    }

    /// Who holds the floor, as it changes.
    pub(crate) fn watch(&self) -> watch::Receiver<ContentFloor> {
        self.holder.clone()
    }

    /// Asks for (or takes) the floor when `share`, gives it back otherwise.
    pub(crate) async fn share(&self, share: bool) -> Result<(), SessionError> {
        match (&self.control, share) {
            (Control::Participant(p), true) => p.request_floor().await.map(|_| ()),
            (Control::Participant(p), false) => p.release_floor().await,
            (Control::Server(s), true) => s.take_floor().await,
            (Control::Server(s), false) => s.release_floor().await,
        }
    }
}

/// The room's BFCP ports of a call: UDP, and TCP on the same number where the far end connects.
pub(crate) struct FloorSockets {
    /// The UDP socket the SDP names.
    pub(crate) udp: std::net::UdpSocket,
    /// A listener on the same port number, bound only when the far end is to connect.
    pub(crate) tcp: Option<std::net::TcpListener>,
}
