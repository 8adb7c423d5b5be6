//! The BFCP section of a call's SDP (RFC 8856): who is the floor control server, the IDs the
//! participant uses, and how BFCP reaches the far end. The room offers `UDP/BFCP` as client or
//! server (`c-s`) with IDs of its own; it answers `UDP/BFCP`, and `TCP/BFCP` or `TCP/TLS/BFCP`
//! either way: connecting out when the far end listens (`passive` or `actpass`), listening on
//! its BFCP port when the far end connects (`active`, or no `a=setup`). TLS needs the far end's
//! SHA-256 `a=fingerprint` (media or session level); the answer carries the room's own.
//! `UDP/TLS/BFCP` is refused (port 0): the call goes on without content.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ezk_sdp_types::{
    Fingerprint, FingerprintAlgorithm, MediaDescription, Setup, TaggedAddress, TransportProtocol,
};

use super::FINGERPRINT_LEN;

/// The `a=label` of the room's content section, which its `a=floorid` names (`mstrm`).
pub const CONTENT_LABEL: u32 = 3;

/// The room's own floor control IDs, offered in case it ends up the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalFloor {
    /// The conference the room's server runs.
    pub conference_id: u32,
    /// The user ID the room's server gives the far end.
    pub far_end_user_id: u16,
    /// The room's own user ID as server (for the far end's floor status).
    pub room_user_id: u16,
    /// The floor of the content stream.
    pub floor_id: u16,
}

impl LocalFloor {
    /// Fresh IDs for a call.
    pub fn random() -> LocalFloor {
        let mut bytes = [0u8; 4];
        roomd_base::random::fill(&mut bytes);
        LocalFloor {
            // Non-zero, as some endpoints treat 0 as "none".
            conference_id: u32::from_be_bytes(bytes).max(1),
            far_end_user_id: 2,
            room_user_id: 1,
            floor_id: 1,
        }
    }
}

/// How the room reaches the far end's BFCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorTransport {
    /// `UDP/BFCP` to this address, from the room's port.
    Udp(SocketAddr),
    /// `TCP/BFCP`, the room connecting to this address (`a=setup:active` on its side).
    TcpConnect(SocketAddr),
    /// `TCP/TLS/BFCP`, the room connecting to `remote` and running TLS as the client, the far
    /// end's certificate hashing to `fingerprint` (SHA-256, from its SDP).
    TlsConnect {
        /// The far end's BFCP address.
        remote: SocketAddr,
        /// Its certificate's SHA-256.
        fingerprint: [u8; FINGERPRINT_LEN],
    },
    /// `TCP/BFCP`, the far end connecting (`a=setup:active` on its side, `passive` on the
    /// room's) from this address to the room's BFCP port.
    TcpAccept(IpAddr),
    /// `TCP/TLS/BFCP`, the far end connecting from `from` and the room running TLS as the
    /// server, the far end's certificate hashing to `fingerprint`.
    TlsAccept {
        /// The far end's address.
        from: IpAddr,
        /// Its certificate's SHA-256.
        fingerprint: [u8; FINGERPRINT_LEN],
    },
}

impl FloorTransport {
    /// Whether the far end connects to the room: the room listens on its BFCP port (TCP).
    pub fn room_listens(&self) -> bool {
        matches!(
            self,
            FloorTransport::TcpAccept(_) | FloorTransport::TlsAccept { .. }
        )
    }
}

/// The room's part in floor control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorRole {
    /// The far end is the floor control server; the room asks it for the floor.
    Participant {
        /// The conference the far end runs.
        conference_id: u32,
        /// The room's user ID in it.
        user_id: u16,
        /// The content stream's floor.
        floor_id: u16,
    },
    /// The room is the floor control server, with the IDs of its [`LocalFloor`].
    Server(LocalFloor),
}

/// The BFCP both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreedFloor {
    /// How BFCP runs.
    pub transport: FloorTransport,
    /// Who serves the floor.
    pub role: FloorRole,
}

/// The BFCP section of the room's offer, on the room's BFCP UDP port `port`.
pub(super) fn offer_lines(port: u16, local: &LocalFloor) -> String {
    format!(
        "m=application {port} UDP/BFCP *\r\na=floorctrl:c-s\r\na=confid:{}\r\na=userid:{}\r\n\
         a=floorid:{} mstrm:{CONTENT_LABEL}\r\n",
        local.conference_id, local.far_end_user_id, local.floor_id
    )
}

/// The value of the section's attribute `name`, if it has one.
fn attribute<'a>(media: &'a MediaDescription, name: &str) -> Option<&'a str> {
    media
        .attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .and_then(|a| a.value.as_deref())
        .map(str::trim)
}

/// Whether `media` is a BFCP section (any transport).
pub(super) fn is_bfcp(media: &MediaDescription) -> bool {
    matches!(&media.media.proto, TransportProtocol::Other(p) if p.to_ascii_uppercase().ends_with("/BFCP"))
}

/// Whether `media` is a content (slides) video section, RFC 4796.
pub(super) fn is_content(media: &MediaDescription) -> bool {
    attribute(media, "content").is_some_and(|v| v.split(',').any(|c| c.trim() == "slides"))
}

/// The floor ID of `a=floorid:<id> [mstrm:<label>]`.
fn floor_id(media: &MediaDescription) -> Option<u16> {
    attribute(media, "floorid")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ids(media: &MediaDescription) -> Option<(u32, u16)> {
    Some((
        attribute(media, "confid")?.parse().ok()?,
        attribute(media, "userid")?.parse().ok()?,
    ))
}

/// What the BFCP section is read with from the rest of its SDP.
pub(super) struct FloorContext<'a> {
    /// Its address (its own `c=`, else the session's).
    pub address: Option<&'a TaggedAddress>,
    /// The session-level `a=fingerprint` lines.
    pub session_fingerprints: &'a [Fingerprint],
}

/// The SHA-256 fingerprint of `media`, else of the session.
fn fingerprint(media: &MediaDescription, session: &[Fingerprint]) -> Option<[u8; FINGERPRINT_LEN]> {
    let lines = if media.fingerprint.is_empty() {
        session
    } else {
        &media.fingerprint
    };
    lines
        .iter()
        .filter(|f| f.algorithm == FingerprintAlgorithm::SHA256)
        .find_map(|f| <[u8; FINGERPRINT_LEN]>::try_from(f.fingerprint.as_slice()).ok())
}

/// How the room reaches the BFCP of `media`; `None` when it is refused (port 0) or a transport
/// the room does not take.
fn transport(media: &MediaDescription, context: &FloorContext<'_>) -> Option<FloorTransport> {
    let address = context.address;
    if media.media.port == 0 {
        return None;
    }
    let ip = match address? {
        TaggedAddress::IP4(a) => IpAddr::V4(*a),
        TaggedAddress::IP6(a) => IpAddr::V6(*a),
        _ => return None,
    };
    let remote = SocketAddr::new(ip, media.media.port);
    match &media.media.proto {
        TransportProtocol::Other(p) if p.eq_ignore_ascii_case("UDP/BFCP") => {
            Some(FloorTransport::Udp(remote))
        }
        // RFC 4145: without a=setup the far end is active (it connects).
        TransportProtocol::Other(p) if p.eq_ignore_ascii_case("TCP/BFCP") => match media.setup {
            Some(Setup::Passive | Setup::ActPass) => Some(FloorTransport::TcpConnect(remote)),
            None | Some(Setup::Active) => Some(FloorTransport::TcpAccept(ip)),
            Some(Setup::HoldConn) => None,
        },
        // Over TLS only with the far end's fingerprint: without it anyone could answer.
        TransportProtocol::Other(p) if p.eq_ignore_ascii_case("TCP/TLS/BFCP") => {
            let fingerprint = fingerprint(media, context.session_fingerprints)?;
            match media.setup {
                Some(Setup::Passive | Setup::ActPass) => Some(FloorTransport::TlsConnect {
                    remote,
                    fingerprint,
                }),
                None | Some(Setup::Active) => Some(FloorTransport::TlsAccept {
                    from: ip,
                    fingerprint,
                }),
                Some(Setup::HoldConn) => None,
            }
        }
        _ => None,
    }
}

/// What the far end's answer to the room's offer (`local`) agreed for BFCP: `None` when it
/// refused the section or answered what the room cannot use.
pub(super) fn from_answer(
    media: &MediaDescription,
    context: &FloorContext<'_>,
    local: &LocalFloor,
) -> Option<AgreedFloor> {
    // The room offers UDP: an answer that would have the room listen answers another offer.
    let transport = transport(media, context).filter(|t| !t.room_listens())?;
    let role = match attribute(media, "floorctrl")? {
        "c-only" => FloorRole::Server(*local),
        "s-only" => {
            let (conference_id, user_id) = ids(media)?;
            FloorRole::Participant {
                conference_id,
                user_id,
                floor_id: floor_id(media).unwrap_or(local.floor_id),
            }
        }
        _ => return None,
    };
    Some(AgreedFloor { transport, role })
}

/// What the room takes of a caller's BFCP offer, with `local` as its IDs should it serve.
pub(super) fn from_offer(
    media: &MediaDescription,
    context: &FloorContext<'_>,
    local: &LocalFloor,
) -> Option<AgreedFloor> {
    let transport = transport(media, context)?;
    let participant = |media: &MediaDescription| {
        let (conference_id, user_id) = ids(media)?;
        Some(FloorRole::Participant {
            conference_id,
            user_id,
            floor_id: floor_id(media)?,
        })
    };
    // RFC 8856: without a=floorctrl the offerer is a client only.
    let role = match attribute(media, "floorctrl").unwrap_or("c-only") {
        "s-only" => participant(media)?,
        // Either: a caller that offers its IDs runs a conference the room joins.
        "c-s" => participant(media).unwrap_or(FloorRole::Server(LocalFloor {
            floor_id: floor_id(media).unwrap_or(local.floor_id),
            ..*local
        })),
        "c-only" => FloorRole::Server(LocalFloor {
            floor_id: floor_id(media).unwrap_or(local.floor_id),
            ..*local
        }),
        _ => return None,
    };
    Some(AgreedFloor { transport, role })
}

/// The room's answer section for `agreed`, on the room's BFCP UDP port `port`; over TLS the
/// room is known by `fingerprint` (its DTLS certificate's).
pub(super) fn answer_lines(
    agreed: &AgreedFloor,
    port: u16,
    fingerprint: &[u8; FINGERPRINT_LEN],
) -> String {
    let fingerprint_line = |fingerprint: &[u8; FINGERPRINT_LEN]| {
        let hex: Vec<String> = fingerprint.iter().map(|b| format!("{b:02X}")).collect();
        format!("a=fingerprint:sha-256 {}\r\n", hex.join(":"))
    };
    let mut sdp = match agreed.transport {
        FloorTransport::Udp(_) => format!("m=application {port} UDP/BFCP *\r\n"),
        // The far end connects to the room's BFCP port (TCP, the UDP socket's number).
        FloorTransport::TcpAccept(_) => {
            format!("m=application {port} TCP/BFCP *\r\na=setup:passive\r\na=connection:new\r\n")
        }
        FloorTransport::TlsAccept { .. } => format!(
            "m=application {port} TCP/TLS/BFCP *\r\na=setup:passive\r\na=connection:new\r\n{}",
            fingerprint_line(fingerprint)
        ),
        // RFC 4145: an active side's port is 9 (discard); it connects from any.
        FloorTransport::TcpConnect(_) => {
            "m=application 9 TCP/BFCP *\r\na=setup:active\r\na=connection:new\r\n".to_owned()
        }
        FloorTransport::TlsConnect { .. } => format!(
            "m=application 9 TCP/TLS/BFCP *\r\na=setup:active\r\na=connection:new\r\n{}",
            fingerprint_line(fingerprint)
        ),
    };
    match agreed.role {
        FloorRole::Participant { floor_id, .. } => {
            let _ = write!(
                sdp,
                "a=floorctrl:c-only\r\na=floorid:{floor_id} mstrm:{CONTENT_LABEL}\r\n"
            );
        }
        FloorRole::Server(local) => {
            let _ = write!(
                sdp,
                "a=floorctrl:s-only\r\na=confid:{}\r\na=userid:{}\r\na=floorid:{} mstrm:{CONTENT_LABEL}\r\n",
                local.conference_id, local.far_end_user_id, local.floor_id
            );
        }
    }
    sdp
}
