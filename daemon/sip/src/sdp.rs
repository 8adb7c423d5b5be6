//! SDP offer/answer for SIP calls with SRTP: the room's offer (Opus, G.722, G.711 and H.264
//! packetization-mode 1, each over `RTP/SAVP` with an `AES_CM_128_HMAC_SHA1_80` SDES key of its
//! own, RFC 4568; or over `UDP/TLS/RTP/SAVP` with the fingerprint of the room's DTLS
//! certificate, RFC 5763), and what the far end's offer or answer agrees to. The answer is untrusted input: bounded in size,
//! parsed by ezk-sdp-types, and every field checked before it reaches the media engine. Nothing
//! here panics on any input (see the property tests).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytesstr::BytesStr;
use ezk_sdp_types::{
    Bandwidth, Fingerprint, FingerprintAlgorithm, MediaDescription, MediaType, SessionDescription,
    Setup, TaggedAddress, TransportProtocol,
};

/// The only SRTP suite the room offers and accepts (RFC 4568's mandatory one).
pub const SRTP_SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Master key (16 bytes) and salt (14 bytes) of [`SRTP_SUITE`].
pub const SRTP_KEY_LEN: usize = 30;
/// A SHA-256 certificate fingerprint: the only hash the room takes in `a=fingerprint`.
pub const FINGERPRINT_LEN: usize = 32;
/// Largest SDP accepted from the far end (a room's answer is about 1 KiB).
pub const SDP_MAX_BYTES: usize = 16 * 1024;
/// Most media sections looked at in an answer: the room offers two.
const MEDIA_MAX: usize = 8;

/// Payload types of the offer.
const PT_OPUS: u8 = 111;
const PT_PCMU: u8 = 0;
const PT_G722: u8 = 9;
const PT_PCMA: u8 = 8;
const PT_H264: u8 = 96;
const PT_VP8: u8 = 97;
const PT_TELEPHONE_EVENT: u8 = 101;

/// What went wrong with the far end's SDP, in words for `status.meeting.error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Larger than [`SDP_MAX_BYTES`].
    #[error("the far end's SDP is larger than {SDP_MAX_BYTES} bytes")]
    TooLarge,
    /// Not SDP.
    #[error("the far end's SDP cannot be parsed: {0}")]
    Malformed(String),
    /// Plain RTP while encryption is required (`meeting.require_encryption`).
    #[error(
        "the far end wants unencrypted {0} (RTP/AVP); refused because meeting.require_encryption \
         is on"
    )]
    Unencrypted(&'static str),
    /// SRTP without a key the room can use.
    #[error("the far end's {0} has no usable SDES key ({SRTP_SUITE}, {SRTP_KEY_LEN} bytes)")]
    NoKey(&'static str),
    /// DTLS-SRTP without a certificate fingerprint the room can check.
    #[error(
        "the far end's {0} offers DTLS-SRTP without a SHA-256 certificate fingerprint \
         (a=fingerprint:sha-256), which the room needs to check who it talks to"
    )]
    NoFingerprint(&'static str),
    /// Keying the room does not do yet.
    #[error("the far end wants {0}, which roomd does not do yet")]
    Unsupported(String),
    /// Neither audio nor video could be agreed.
    #[error(
        "the far end's SDP has no usable audio or video (codecs offered: Opus, G.722, PCMU, PCMA, \
         H.264)"
    )]
    NoUsableMedia,
}

/// An SDES master key and salt. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey([u8; SRTP_KEY_LEN]);

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdesKey(…)")
    }
}

impl SdesKey {
    /// A fresh key from the system's random source.
    pub fn random() -> SdesKey {
        let mut key = [0u8; SRTP_KEY_LEN];
        roomd_base::random::fill(&mut key);
        SdesKey(key)
    }

    /// The key from an `inline:` value; `None` unless it is base64 of exactly 30 bytes.
    pub fn from_base64(text: &str) -> Option<SdesKey> {
        if text.len() > 64 {
            return None;
        }
        let bytes = BASE64
            .decode(text.trim_end_matches('=').to_owned() + pad(text))
            .ok()?;
        Some(SdesKey(bytes.try_into().ok()?))
    }

    /// The `inline:` value.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Key and salt, for srtpenc/srtpdec.
    pub fn bytes(&self) -> &[u8; SRTP_KEY_LEN] {
        &self.0
    }
}

/// Base64 padding some peers leave out (RFC 4568 keys are 40 characters with padding).
fn pad(text: &str) -> &'static str {
    match text.trim_end_matches('=').len() % 4 {
        2 => "==",
        3 => "=",
        _ => "",
    }
}

mod floor;
pub use floor::{AgreedFloor, CONTENT_LABEL, FloorRole, FloorTransport, LocalFloor};

/// Where the room receives media for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The room's address the far end sends to.
    pub address: IpAddr,
    /// RTP port for audio (RTCP on the next).
    pub audio_port: u16,
    /// RTP port for video (RTCP on the next).
    pub video_port: u16,
    /// RTP port for shared content, a second video stream (RTCP on the next).
    pub content_port: u16,
    /// The room's BFCP UDP port and floor control IDs: content is offered and answered only
    /// with them.
    pub floor: Option<(u16, LocalFloor)>,
    /// `o=` session id.
    pub session_id: u64,
    /// SHA-256 of the room's DTLS certificate, for DTLS-SRTP offers and answers.
    pub dtls_fingerprint: [u8; FINGERPRINT_LEN],
    /// SHA-256 of the room's certificate for BFCP over TLS, for answers that take it.
    pub floor_tls_fingerprint: [u8; FINGERPRINT_LEN],
    /// The codec the room's camera is encoded with: offered first and preferred in answers
    /// (the room can receive either, but send only this one).
    pub camera_codec: VideoCodec,
}

/// The room's offer and the keys it holds for sending.
#[derive(Debug, Clone)]
pub struct LocalOffer {
    /// The SDP text.
    pub sdp: String,
    /// The room's audio SRTP key.
    pub audio_key: SdesKey,
    /// The room's video SRTP key.
    pub video_key: SdesKey,
    /// The room's SRTP key for its content stream.
    pub content_key: SdesKey,
}

/// The session-level lines (v, o, s, c, t) of the room's offers and answers.
fn session_lines(local: &LocalMedia) -> String {
    let ip = match local.address {
        IpAddr::V4(a) => format!("IP4 {a}"),
        IpAddr::V6(a) => format!("IP6 {a}"),
    };
    format!(
        "v=0\r\no=roomd {id} 1 IN {ip}\r\ns=roomd\r\nc=IN {ip}\r\nt=0 0\r\n",
        id = local.session_id
    )
}

/// The room's offer: audio and video, SRTP with SDES keys, and the room's DTLS fingerprint
/// beside them (`a=setup:actpass`), so that a far end that keys SRTP only by DTLS can answer
/// with its own fingerprint instead of a key: one call either way, no second ring.
pub fn make_offer(local: &LocalMedia) -> LocalOffer {
    let (audio_key, video_key, content_key) =
        (SdesKey::random(), SdesKey::random(), SdesKey::random());
    let mut sdp = session_lines(local);
    let dtls = dtls_lines("actpass", &local.dtls_fingerprint, false);
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "m=audio {ap} RTP/SAVP {PT_OPUS} {PT_G722} {PT_PCMU} {PT_PCMA} {PT_TELEPHONE_EVENT}\r\n\
         a=rtpmap:{PT_OPUS} opus/48000/2\r\na=fmtp:{PT_OPUS} useinbandfec=1\r\n\
         a=rtpmap:{PT_G722} G722/8000\r\n\
         a=rtpmap:{PT_PCMU} PCMU/8000\r\na=rtpmap:{PT_PCMA} PCMA/8000\r\n\
         a=rtpmap:{PT_TELEPHONE_EVENT} telephone-event/8000\r\n\
         a=fmtp:{PT_TELEPHONE_EVENT} 0-15\r\n\
         a=crypto:1 {SRTP_SUITE} inline:{akey}\r\n{dtls}a=sendrecv\r\n\
         m=video {vp} RTP/SAVP {video_pts}\r\n\
         a=rtpmap:{PT_H264} H264/90000\r\n\
         a=fmtp:{PT_H264} packetization-mode=1;profile-level-id=42e01f\r\n\
         a=rtcp-fb:{PT_H264} nack pli\r\na=rtcp-fb:{PT_H264} ccm fir\r\n\
         a=rtcp-fb:{PT_H264} ccm tmmbr\r\n\
         a=rtpmap:{PT_VP8} VP8/90000\r\n\
         a=rtcp-fb:{PT_VP8} nack pli\r\na=rtcp-fb:{PT_VP8} ccm fir\r\n\
         a=rtcp-fb:{PT_VP8} ccm tmmbr\r\n\
         a=crypto:1 {SRTP_SUITE} inline:{vkey}\r\n{dtls}a=sendrecv\r\n",
        ap = local.audio_port,
        vp = local.video_port,
        video_pts = match local.camera_codec {
            VideoCodec::H264 => format!("{PT_H264} {PT_VP8}"),
            VideoCodec::Vp8 => format!("{PT_VP8} {PT_H264}"),
        },
        akey = audio_key.to_base64(),
        vkey = video_key.to_base64(),
    );
    // Content: a second video stream like the camera's, under BFCP floor control.
    if let Some((bfcp_port, floor)) = &local.floor {
        let _ = write!(
            sdp,
            "m=video {cp} RTP/SAVP {video_pts}\r\n\
             a=rtpmap:{PT_H264} H264/90000\r\n\
             a=fmtp:{PT_H264} packetization-mode=1;profile-level-id=42e01f\r\n\
             a=rtcp-fb:{PT_H264} nack pli\r\na=rtcp-fb:{PT_H264} ccm fir\r\n\
             a=rtpmap:{PT_VP8} VP8/90000\r\n\
             a=rtcp-fb:{PT_VP8} nack pli\r\na=rtcp-fb:{PT_VP8} ccm fir\r\n\
             a=content:slides\r\na=label:{CONTENT_LABEL}\r\n\
             a=crypto:1 {SRTP_SUITE} inline:{ckey}\r\n{dtls}a=sendrecv\r\n{bfcp}",
            cp = local.content_port,
            video_pts = match local.camera_codec {
                VideoCodec::H264 => format!("{PT_H264} {PT_VP8}"),
                VideoCodec::Vp8 => format!("{PT_VP8} {PT_H264}"),
            },
            ckey = content_key.to_base64(),
            bfcp = floor::offer_lines(*bfcp_port, floor),
        );
    }
    LocalOffer {
        sdp,
        audio_key,
        video_key,
        content_key,
    }
}

/// The same offer as plain RTP (`RTP/AVP`, no keys): only when `meeting.require_encryption`
/// is off and the far end refused SRTP.
pub fn make_plain_offer(secure: &LocalOffer) -> LocalOffer {
    let sdp = secure
        .sdp
        .split("\r\n")
        .filter(|line| {
            !["a=crypto:", "a=fingerprint:", "a=setup:"]
                .iter()
                .any(|p| line.starts_with(p))
        })
        .map(|line| line.replacen(" RTP/SAVP ", " RTP/AVP ", 1))
        .collect::<Vec<_>>()
        .join("\r\n");
    LocalOffer {
        sdp,
        audio_key: secure.audio_key.clone(),
        video_key: secure.video_key.clone(),
        content_key: secure.content_key.clone(),
    }
}

/// The same offer keyed by DTLS-SRTP only (`UDP/TLS/RTP/SAVP`, the room's certificate
/// fingerprint, `a=setup:actpass`, RTCP multiplexing offered): for a far end that refused the
/// first offer's `RTP/SAVP`, as strict DTLS-SRTP peers do.
pub fn make_dtls_offer(secure: &LocalOffer) -> LocalOffer {
    let sdp = secure
        .sdp
        .split("\r\n")
        .filter(|line| !line.starts_with("a=crypto:"))
        .map(|line| {
            let line = line.replacen(" RTP/SAVP ", " UDP/TLS/RTP/SAVP ", 1);
            if line.starts_with("a=fingerprint:") {
                format!("{line}\r\na=rtcp-mux")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    LocalOffer {
        sdp,
        audio_key: secure.audio_key.clone(),
        video_key: secure.video_key.clone(),
        content_key: secure.content_key.clone(),
    }
}

/// The DTLS lines of one of the room's media sections.
fn dtls_lines(setup: &str, fingerprint: &[u8; FINGERPRINT_LEN], rtcp_mux: bool) -> String {
    let fingerprint: Vec<String> = fingerprint.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "a=setup:{setup}\r\na=fingerprint:sha-256 {}\r\n{}",
        fingerprint.join(":"),
        if rtcp_mux { "a=rtcp-mux\r\n" } else { "" }
    )
}

/// Audio codecs the room speaks in SIP calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// Opus, 48 kHz.
    Opus,
    /// G.722, 16 kHz wideband (its RTP clock is 8 kHz, RFC 3551).
    G722,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

/// Video codecs the room speaks in SIP calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264, packetization-mode 1.
    H264,
    /// VP8 (RFC 7741).
    Vp8,
}

/// How the far end keys a stream's SRTP, from its SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FarEndKeying {
    /// Plain RTP (`RTP/AVP`): only when `meeting.require_encryption` is off.
    Plain,
    /// SDES (`RTP/SAVP` with `a=crypto`).
    Sdes {
        /// The far end's key (what the room decrypts with).
        key: SdesKey,
        /// The tag of the far end's `a=crypto` line that gave it (an answer repeats it).
        tag: u32,
    },
    /// DTLS-SRTP (`UDP/TLS/RTP/SAVP` with `a=fingerprint` and `a=setup`).
    Dtls {
        /// SHA-256 of the certificate the far end will show in the handshake.
        fingerprint: [u8; FINGERPRINT_LEN],
        /// Whether the room starts the handshake: the far end said `passive`, or `actpass`
        /// (the room answers `active`, as RFC 5763 asks of answerers).
        room_is_client: bool,
        /// The far end multiplexes RTCP on the RTP port (`a=rtcp-mux`).
        rtcp_mux: bool,
    },
}

impl FarEndKeying {
    /// Whether the stream runs SRTP.
    pub fn encrypted(&self) -> bool {
        !matches!(self, FarEndKeying::Plain)
    }
}

/// One direction-agnostic media stream both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreedStream<C> {
    /// The codec.
    pub codec: C,
    /// Its payload type.
    pub payload_type: u8,
    /// Where the far end receives RTP.
    pub remote_rtp: SocketAddr,
    /// Where the far end receives RTCP.
    pub remote_rtcp: SocketAddr,
    /// How the far end keys the stream's SRTP.
    pub keying: FarEndKeying,
    /// The most the far end takes in this stream, kbit/s of media: its `b=TIAS` (RFC 3890,
    /// without packet headers), else its `b=AS` less 5 % for RTP, UDP and IP headers; of the
    /// section, else of the session.
    pub max_kbps: Option<u32>,
    /// The payload type of RFC 4733 DTMF events (`telephone-event/8000`) in this stream, when
    /// the far end takes them.
    pub telephone_event: Option<u8>,
}

/// What an answer agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    /// Audio, unless refused (port 0) or without a common codec.
    pub audio: Option<AgreedStream<AudioCodec>>,
    /// Video, likewise.
    pub video: Option<AgreedStream<VideoCodec>>,
    /// Shared content (`a=content:slides`), only together with [`Agreed::floor`].
    pub content: Option<AgreedStream<VideoCodec>>,
    /// BFCP floor control of the content, only together with [`Agreed::content`].
    pub floor: Option<AgreedFloor>,
}

impl Agreed {
    /// Whether every agreed stream is SRTP: what the encryption indicator shows.
    pub fn encrypted(&self) -> bool {
        self.audio.as_ref().is_none_or(|s| s.keying.encrypted())
            && self.video.as_ref().is_none_or(|s| s.keying.encrypted())
            && self.content.as_ref().is_none_or(|s| s.keying.encrypted())
    }

    /// Content goes with its floor control: one without the other is dropped.
    fn pair_content_with_floor(&mut self) {
        if self.content.is_none() || self.floor.is_none() {
            self.content = None;
            self.floor = None;
        }
    }
}

/// Reads the far end's answer to the room's offer, whose BFCP IDs were `floor`. With
/// `require_encryption`, any stream the far end wants as plain RTP refuses the whole answer.
pub fn parse_answer(
    answer: &str,
    require_encryption: bool,
    floor: Option<&LocalFloor>,
) -> Result<Agreed, SdpError> {
    let sdp = parse_bounded(answer)?;
    let mut agreed = agree_streams(&sdp, require_encryption)?;
    agreed.floor = floor.and_then(|local| agree_floor(&sdp, local, floor::from_answer));
    agreed.pair_content_with_floor();
    Ok(agreed)
}

/// The BFCP of the first BFCP section of `sdp`, as `read` takes it (from an offer or an
/// answer), the room's own IDs being `local`.
fn agree_floor(
    sdp: &SessionDescription,
    local: &LocalFloor,
    read: fn(&MediaDescription, &floor::FloorContext<'_>, &LocalFloor) -> Option<AgreedFloor>,
) -> Option<AgreedFloor> {
    let media = sdp
        .media_descriptions
        .iter()
        .take(MEDIA_MAX)
        .find(|m| floor::is_bfcp(m))?;
    let context = floor::FloorContext {
        address: media_address(sdp, media),
        session_fingerprints: &sdp.fingerprint,
    };
    read(media, &context, local)
}

fn parse_bounded(text: &str) -> Result<SessionDescription, SdpError> {
    if text.len() > SDP_MAX_BYTES {
        return Err(SdpError::TooLarge);
    }
    parse_sdp(text)
}

/// The address of `media`: its own `c=`, else the session's.
fn media_address<'a>(
    sdp: &'a SessionDescription,
    media: &'a MediaDescription,
) -> Option<&'a TaggedAddress> {
    media
        .connection
        .as_ref()
        .or(sdp.connection.as_ref())
        .map(|c| &c.address)
}

/// The audio, video and content streams of `sdp` the room can take (no floor yet).
fn agree_streams(sdp: &SessionDescription, require_encryption: bool) -> Result<Agreed, SdpError> {
    let session = SessionDefaults {
        address: sdp.connection.as_ref().map(|c| &c.address),
        bandwidth: &sdp.bandwidth,
        setup: sdp.setup.as_ref(),
        fingerprint: &sdp.fingerprint,
    };
    let mut agreed = Agreed {
        audio: None,
        video: None,
        content: None,
        floor: None,
    };
    for media in sdp.media_descriptions.iter().take(MEDIA_MAX) {
        match media.media.media_type {
            MediaType::Audio if agreed.audio.is_none() => {
                agreed.audio = agree(media, &session, require_encryption, "audio", audio_codec)?;
            }
            // Content the room cannot take (e.g. unencrypted) is refused alone: the call goes
            // on without it.
            MediaType::Video if floor::is_content(media) && agreed.content.is_none() => {
                agreed.content =
                    match agree(media, &session, require_encryption, "content", video_codec) {
                        Ok(content) => content,
                        Err(error) => {
                            tracing::info!("SIP: the far end's content is refused: {error}");
                            None
                        }
                    };
            }
            MediaType::Video if floor::is_content(media) => {}
            MediaType::Video if agreed.video.is_none() => {
                agreed.video = agree(media, &session, require_encryption, "video", video_codec)?;
            }
            _ => {}
        }
    }
    if agreed.audio.is_none() && agreed.video.is_none() {
        return Err(SdpError::NoUsableMedia);
    }
    Ok(agreed)
}

/// One media section of a caller's offer, in the offer's order: the answer has one for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferedSection {
    /// The section audio was agreed from (its transport, e.g. `RTP/SAVP`).
    Audio(String),
    /// The section video was agreed from.
    Video(String),
    /// The section content was agreed from.
    Content(String),
    /// The BFCP section of the content's floor control.
    Floor,
    /// A section the room refuses (port 0 in the answer): media type, transport, a format.
    Refused(String, String, String),
}

/// What a caller's offer agrees to, with its sections for the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// The streams the room takes, as from an answer.
    pub agreed: Agreed,
    /// Every media section of the offer, in order.
    pub sections: Vec<OfferedSection>,
    /// Every video codec of the offer the room can take, with its payload type, in the
    /// caller's order.
    pub video_choices: Vec<(u8, VideoCodec)>,
    /// The same for the content section.
    pub content_choices: Vec<(u8, VideoCodec)>,
}

impl Offered {
    /// Takes `camera` for video when the caller offered it (the room can send only the codec
    /// its camera is encoded with), else the caller's first choice.
    /// Content likewise: it is encoded in the camera's codec.
    pub fn prefer_video(&mut self, camera: VideoCodec) {
        for (stream, choices) in [
            (self.agreed.video.as_mut(), &self.video_choices),
            (self.agreed.content.as_mut(), &self.content_choices),
        ] {
            if let Some(stream) = stream
                && let Some(&(payload_type, codec)) = choices.iter().find(|(_, c)| *c == camera)
            {
                stream.payload_type = payload_type;
                stream.codec = codec;
            }
        }
    }
}

/// Reads a caller's offer (an INVITE's SDP): the same checks as an answer (with
/// `require_encryption`, a plain RTP stream refuses the whole offer), the first usable audio and
/// video taken in the caller's order of preference, content with BFCP when the room has a
/// `floor` of its own to answer with, every other section refused.
pub fn parse_offer(
    offer: &str,
    require_encryption: bool,
    floor: Option<&LocalFloor>,
) -> Result<Offered, SdpError> {
    let sdp = parse_bounded(offer)?;
    let mut agreed = agree_streams(&sdp, require_encryption)?;
    agreed.floor = floor.and_then(|local| agree_floor(&sdp, local, floor::from_offer));
    agreed.pair_content_with_floor();
    // The answerer picks: the room's order (Opus, then G.711), not the caller's, as some
    // phones list G.711 first.
    if let Some(audio) = agreed.audio.as_mut()
        && let Some(media) = sdp
            .media_descriptions
            .iter()
            .find(|m| m.media.media_type == MediaType::Audio && m.media.port != 0)
        && let Some((payload_type, codec)) = [
            AudioCodec::Opus,
            AudioCodec::G722,
            AudioCodec::Pcmu,
            AudioCodec::Pcma,
        ]
        .iter()
        .find_map(|want| {
            media
                .media
                .fmts
                .iter()
                .find(|&&pt| audio_codec(media, pt) == Some(*want))
                .map(|&pt| (pt, *want))
        })
    {
        audio.payload_type = payload_type;
        audio.codec = codec;
    }
    if sdp.media_descriptions.len() > MEDIA_MAX {
        return Err(SdpError::Malformed(format!(
            "more than {MEDIA_MAX} media sections"
        )));
    }
    let choices = |content: bool| -> Vec<(u8, VideoCodec)> {
        sdp.media_descriptions
            .iter()
            .find(|m| {
                m.media.media_type == MediaType::Video
                    && m.media.port != 0
                    && floor::is_content(m) == content
            })
            .map(|media| {
                media
                    .media
                    .fmts
                    .iter()
                    .take(32)
                    .filter_map(|&pt| video_codec(media, pt).map(|c| (pt, c)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (video_choices, content_choices) = (choices(false), choices(true));
    // The formats of each m= line as written (the parser keeps numeric ones only; a refused
    // section repeats the offer's, e.g. `*` of BFCP).
    let raw_formats: Vec<String> = offer
        .lines()
        .filter_map(|line| line.strip_prefix("m="))
        .map(|line| {
            let formats: Vec<&str> = line.split_whitespace().skip(3).take(32).collect();
            first_line(&formats.join(" "))
        })
        .collect();
    let (mut audio, mut video) = (agreed.audio.is_some(), agreed.video.is_some());
    let (mut content, mut bfcp) = (agreed.content.is_some(), agreed.floor.is_some());
    let sections = sdp
        .media_descriptions
        .iter()
        .enumerate()
        .map(|(index, media)| {
            let proto = first_line(&media.media.proto.to_string());
            match media.media.media_type {
                MediaType::Audio if audio && media.media.port != 0 => {
                    audio = false;
                    OfferedSection::Audio(proto)
                }
                MediaType::Video
                    if content && media.media.port != 0 && floor::is_content(media) =>
                {
                    content = false;
                    OfferedSection::Content(proto)
                }
                MediaType::Video if video && media.media.port != 0 && !floor::is_content(media) => {
                    video = false;
                    OfferedSection::Video(proto)
                }
                MediaType::App if bfcp && floor::is_bfcp(media) => {
                    bfcp = false;
                    OfferedSection::Floor
                }
                _ => OfferedSection::Refused(
                    first_line(&media.media.media_type.to_string()),
                    proto,
                    raw_formats
                        .get(index)
                        .filter(|f| {
                            !f.is_empty() && raw_formats.len() == sdp.media_descriptions.len()
                        })
                        .cloned()
                        .unwrap_or_else(|| "0".to_owned()),
                ),
            }
        })
        .collect();
    Ok(Offered {
        agreed,
        sections,
        video_choices,
        content_choices,
    })
}

/// The room's answer to `offered`: each agreed stream with the caller's payload type and, for
/// SDES-SRTP, a fresh key of the room's under the caller's crypto tag, for DTLS-SRTP the room's
/// fingerprint and role; other sections refused.
pub fn make_answer(local: &LocalMedia, offered: &Offered) -> LocalOffer {
    let (audio_key, video_key, content_key) =
        (SdesKey::random(), SdesKey::random(), SdesKey::random());
    let mut sdp = session_lines(local);
    let crypto = |sdp: &mut String, keying: &FarEndKeying, own: &SdesKey| match keying {
        FarEndKeying::Plain => {}
        FarEndKeying::Sdes { tag, .. } => {
            let _ = write!(
                sdp,
                "a=crypto:{tag} {SRTP_SUITE} inline:{}\r\n",
                own.to_base64()
            );
        }
        FarEndKeying::Dtls {
            room_is_client,
            rtcp_mux,
            ..
        } => sdp.push_str(&dtls_lines(
            if *room_is_client { "active" } else { "passive" },
            &local.dtls_fingerprint,
            *rtcp_mux,
        )),
    };
    let agreed = &offered.agreed;
    for section in &offered.sections {
        match (section, &agreed.audio, &agreed.video) {
            (OfferedSection::Audio(proto), Some(audio), _) => {
                let pt = audio.payload_type;
                let events = audio
                    .telephone_event
                    .map(|te| format!(" {te}"))
                    .unwrap_or_default();
                let _ = write!(sdp, "m=audio {} {proto} {pt}{events}\r\n", local.audio_port);
                let _ = match audio.codec {
                    AudioCodec::Opus => write!(
                        sdp,
                        "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} useinbandfec=1\r\n"
                    ),
                    AudioCodec::G722 => write!(sdp, "a=rtpmap:{pt} G722/8000\r\n"),
                    AudioCodec::Pcmu => write!(sdp, "a=rtpmap:{pt} PCMU/8000\r\n"),
                    AudioCodec::Pcma => write!(sdp, "a=rtpmap:{pt} PCMA/8000\r\n"),
                };
                if let Some(te) = audio.telephone_event {
                    let _ = write!(
                        sdp,
                        "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n"
                    );
                }
                crypto(&mut sdp, &audio.keying, &audio_key);
                sdp.push_str("a=sendrecv\r\n");
            }
            (OfferedSection::Video(proto), _, Some(video)) => {
                video_section(&mut sdp, proto, local.video_port, video, Feedback::Tmmbr);
                crypto(&mut sdp, &video.keying, &video_key);
                sdp.push_str("a=sendrecv\r\n");
            }
            (OfferedSection::Content(proto), _, _) => match (&agreed.content, &local.floor) {
                (Some(content), Some(_)) => {
                    video_section(
                        &mut sdp,
                        proto,
                        local.content_port,
                        content,
                        Feedback::Pictures,
                    );
                    let _ = write!(sdp, "a=content:slides\r\na=label:{CONTENT_LABEL}\r\n");
                    crypto(&mut sdp, &content.keying, &content_key);
                    sdp.push_str("a=sendrecv\r\n");
                }
                _ => {
                    let _ = write!(sdp, "m=video 0 {proto} 96\r\n");
                }
            },
            (OfferedSection::Floor, _, _) => match (&agreed.floor, &local.floor) {
                (Some(floor), Some((port, _))) => sdp.push_str(&floor::answer_lines(
                    floor,
                    *port,
                    &local.floor_tls_fingerprint,
                )),
                _ => sdp.push_str("m=application 0 UDP/BFCP *\r\n"),
            },
            (OfferedSection::Refused(media, proto, fmt), _, _) => {
                let _ = write!(sdp, "m={media} 0 {proto} {fmt}\r\n");
            }
            // A section whose stream was not agreed after all: refused.
            (OfferedSection::Audio(proto), None, _) => {
                let _ = write!(sdp, "m=audio 0 {proto} 0\r\n");
            }
            (OfferedSection::Video(proto), _, None) => {
                let _ = write!(sdp, "m=video 0 {proto} 96\r\n");
            }
        }
    }
    LocalOffer {
        sdp,
        audio_key,
        video_key,
        content_key,
    }
}

/// The RTCP feedback the room takes in a video stream (RFC 4585, 5104).
#[derive(Clone, Copy, PartialEq)]
enum Feedback {
    /// Requests for pictures (PLI, FIR): the content stream.
    Pictures,
    /// Those, and TMMBR, which holds the encoder's bit rate: the camera's stream.
    Tmmbr,
}

/// The `m=` line and codec lines of a video section of the room's answer.
fn video_section(
    sdp: &mut String,
    proto: &str,
    port: u16,
    video: &AgreedStream<VideoCodec>,
    feedback: Feedback,
) {
    let pt = video.payload_type;
    let _ = write!(sdp, "m=video {port} {proto} {pt}\r\n");
    let _ = match video.codec {
        VideoCodec::H264 => write!(
            sdp,
            "a=rtpmap:{pt} H264/90000\r\n\
             a=fmtp:{pt} packetization-mode=1;profile-level-id=42e01f\r\n"
        ),
        VideoCodec::Vp8 => write!(sdp, "a=rtpmap:{pt} VP8/90000\r\n"),
    };
    let _ = write!(sdp, "a=rtcp-fb:{pt} nack pli\r\na=rtcp-fb:{pt} ccm fir\r\n");
    if feedback == Feedback::Tmmbr {
        let _ = write!(sdp, "a=rtcp-fb:{pt} ccm tmmbr\r\n");
    }
}

/// Parses SDP with ezk-sdp-types, keeping its known panic out: it computes an SDES key
/// lifetime `|2^N` as `2u32.pow(N)`, which overflows for N >= 32 (found by the property tests
/// below); such a line is refused here first. Any other panic inside the parser is caught and
/// becomes an error too, so that the far end's text cannot take the call's task down.
fn parse_sdp(text: &str) -> Result<SessionDescription, SdpError> {
    if let Some(exponent) = text.split("2^").skip(1).find_map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (digits.len() > 2 || digits.parse::<u32>().is_ok_and(|n| n >= 32)).then_some(digits)
    }) {
        return Err(SdpError::Malformed(format!(
            "an SRTP key lifetime of 2^{} packets is out of range",
            first_line(&exponent)
        )));
    }
    let source = BytesStr::from(text.to_owned());
    match std::panic::catch_unwind(|| SessionDescription::parse(&source)) {
        Ok(Ok(sdp)) => Ok(sdp),
        Ok(Err(e)) => Err(SdpError::Malformed(first_line(&e.to_string()))),
        Err(_) => Err(SdpError::Malformed(
            "the SDP parser gave up on it".to_owned(),
        )),
    }
}

/// The first line of a parser error, at most 200 characters: it quotes the far end's text.
fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

fn audio_codec(media: &MediaDescription, pt: u8) -> Option<AudioCodec> {
    match rtpmap_of(media, pt) {
        Some((name, rate)) if name.eq_ignore_ascii_case("opus") && rate == 48000 => {
            Some(AudioCodec::Opus)
        }
        Some((name, 8000)) if name.eq_ignore_ascii_case("G722") => Some(AudioCodec::G722),
        Some((name, 8000)) if name.eq_ignore_ascii_case("PCMU") => Some(AudioCodec::Pcmu),
        Some((name, 8000)) if name.eq_ignore_ascii_case("PCMA") => Some(AudioCodec::Pcma),
        None if pt == PT_G722 => Some(AudioCodec::G722),
        None if pt == PT_PCMU => Some(AudioCodec::Pcmu),
        None if pt == PT_PCMA => Some(AudioCodec::Pcma),
        _ => None,
    }
}

fn video_codec(media: &MediaDescription, pt: u8) -> Option<VideoCodec> {
    let (name, rate) = rtpmap_of(media, pt)?;
    if rate != 90000 {
        return None;
    }
    if name.eq_ignore_ascii_case("VP8") {
        return Some(VideoCodec::Vp8);
    }
    if !name.eq_ignore_ascii_case("H264") {
        return None;
    }
    // Only packetization-mode 1 (what the room's payloader sends and its depayloader expects
    // alongside single NAL units).
    let mode1 = media.fmtp.iter().any(|f| {
        f.format == pt
            && f.params
                .split(';')
                .any(|p| p.trim().eq_ignore_ascii_case("packetization-mode=1"))
    });
    mode1.then_some(VideoCodec::H264)
}

fn rtpmap_of(media: &MediaDescription, pt: u8) -> Option<(&str, u32)> {
    media
        .rtpmap
        .iter()
        .find(|m| m.payload == pt)
        .map(|m| (&*m.encoding, m.clock_rate))
}

/// What a media section takes from the session level when it says nothing itself.
struct SessionDefaults<'a> {
    address: Option<&'a TaggedAddress>,
    bandwidth: &'a [Bandwidth],
    setup: Option<&'a Setup>,
    fingerprint: &'a [Fingerprint],
}

/// The media bitrate `lines` allow, kbit/s: TIAS (bit/s of media) over AS (kbit/s with headers).
fn max_kbps(lines: &[Bandwidth]) -> Option<u32> {
    let of = |kind: &str| {
        lines
            .iter()
            .find(|b| b.type_.eq_ignore_ascii_case(kind))
            .map(|b| b.bandwidth)
    };
    of("TIAS")
        .map(|bps| bps / 1000)
        .or_else(|| of("AS").map(|kbps| kbps - kbps / 20))
        .filter(|kbps| *kbps > 0)
}

/// The far end's DTLS-SRTP keying of `media`: its SHA-256 fingerprint and who starts the
/// handshake.
fn dtls_keying(
    media: &MediaDescription,
    session: &SessionDefaults<'_>,
    kind: &'static str,
) -> Result<FarEndKeying, SdpError> {
    let fingerprints = if media.fingerprint.is_empty() {
        session.fingerprint
    } else {
        &media.fingerprint
    };
    let fingerprint = fingerprints
        .iter()
        .filter(|f| f.algorithm == FingerprintAlgorithm::SHA256)
        .find_map(|f| <[u8; FINGERPRINT_LEN]>::try_from(f.fingerprint.as_slice()).ok())
        .ok_or(SdpError::NoFingerprint(kind))?;
    // RFC 4145: no a=setup means active.
    let room_is_client = match media.setup.as_ref().or(session.setup) {
        None | Some(Setup::Active) => false,
        Some(Setup::Passive | Setup::ActPass) => true,
        Some(Setup::HoldConn) => {
            return Err(SdpError::Unsupported(format!(
                "{kind} with a=setup:holdconn (no DTLS connection)"
            )));
        }
    };
    Ok(FarEndKeying::Dtls {
        fingerprint,
        room_is_client,
        rtcp_mux: media.rtcp_mux,
    })
}

fn agree<C: Copy>(
    media: &MediaDescription,
    session: &SessionDefaults<'_>,
    require_encryption: bool,
    kind: &'static str,
    codec_of: fn(&MediaDescription, u8) -> Option<C>,
) -> Result<Option<AgreedStream<C>>, SdpError> {
    if media.media.port == 0 {
        // Refused by the far end.
        return Ok(None);
    }
    let keying = match &media.media.proto {
        TransportProtocol::RtpSavp | TransportProtocol::RtpSavpf => {
            let key = media
                .crypto
                .iter()
                .filter(|c| c.suite.as_str() == SRTP_SUITE)
                .find_map(|c| {
                    let key = SdesKey::from_base64(&c.keys.first()?.key_and_salt)?;
                    Some((c.tag, key))
                });
            match key {
                Some((tag, key)) => FarEndKeying::Sdes { key, tag },
                // DTLS-SRTP over RTP/SAVP, as older peers write it (baresip answers the room's
                // SDES offer so when it keys by DTLS only): the fingerprint says how.
                None if !media.fingerprint.is_empty() || !session.fingerprint.is_empty() => {
                    dtls_keying(media, session, kind)?
                }
                None => return Err(SdpError::NoKey(kind)),
            }
        }
        TransportProtocol::UdpTlsRtpSavp | TransportProtocol::UdpTlsRtpSavpf => {
            dtls_keying(media, session, kind)?
        }
        TransportProtocol::RtpAvp | TransportProtocol::RtpAvpf => {
            if require_encryption {
                return Err(SdpError::Unencrypted(kind));
            }
            FarEndKeying::Plain
        }
        other => {
            return Err(SdpError::Unsupported(format!(
                "{kind} over {}",
                first_line(&other.to_string())
            )));
        }
    };
    let Some((payload_type, codec)) = media
        .media
        .fmts
        .iter()
        .find_map(|&pt| codec_of(media, pt).map(|c| (pt, c)))
    else {
        return Ok(None);
    };
    let address = media
        .connection
        .as_ref()
        .map(|c| &c.address)
        .or(session.address)
        .ok_or_else(|| SdpError::Malformed(format!("no address (c=) for {kind}")))?;
    let ip = match address {
        TaggedAddress::IP4(a) => IpAddr::V4(*a),
        TaggedAddress::IP6(a) => IpAddr::V6(*a),
        _ => {
            return Err(SdpError::Unsupported(format!(
                "a host name as the {kind} address"
            )));
        }
    };
    let rtcp_port = match &media.rtcp {
        _ if matches!(keying, FarEndKeying::Dtls { rtcp_mux: true, .. }) => media.media.port,
        Some(rtcp) => rtcp.port,
        None => media.media.port.checked_add(1).ok_or_else(|| {
            SdpError::Malformed(format!(
                "{kind} port {} leaves no RTCP port",
                media.media.port
            ))
        })?,
    };
    let telephone_event = media.rtpmap.iter().find_map(|m| {
        (m.encoding.eq_ignore_ascii_case("telephone-event")
            && m.clock_rate == 8000
            && media.media.fmts.contains(&m.payload))
        .then_some(m.payload)
    });
    Ok(Some(AgreedStream {
        codec,
        payload_type,
        telephone_event,
        remote_rtp: SocketAddr::new(ip, media.media.port),
        remote_rtcp: SocketAddr::new(ip, rtcp_port),
        keying,
        max_kbps: max_kbps(&media.bandwidth).or_else(|| max_kbps(session.bandwidth)),
    }))
}

#[cfg(test)]
mod tests;
