//! Reading a remote SDP before webrtcbin sees it: is it well-formed, does it meet the
//! encryption policy, which media does it carry, and which of its payload types are codecs the
//! room can send or decode. Browsers pick their own payload type numbers, so the room answers
//! with the numbers the offer used.

use gstreamer as gst;
use gstreamer_sdp as gst_sdp;

use super::PeerError;
use crate::{Codec, MediaKind};

/// The only transport webrtcbin speaks, and the one the policy demands.
pub const SECURE_PROTO: &str = "UDP/TLS/RTP/SAVPF";

/// A media line's direction attribute, as the remote wrote it (its own point of view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (also the default when none is given).
    SendRecv,
    /// `a=sendonly`: the remote only sends.
    SendOnly,
    /// `a=recvonly`: the remote only receives.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The remote sends on this media line.
    pub fn remote_sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// The remote receives on this media line.
    pub fn remote_receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// One offered payload type, as caps webrtcbin takes as a codec preference.
#[derive(Debug, Clone)]
pub struct Format {
    /// The RTP payload type number the remote chose.
    pub pt: u32,
    /// The encoding name, upper case (`OPUS`, `H264`, `VP8`).
    pub encoding: String,
    /// `application/x-rtp` caps for it, from the media line.
    pub caps: gst::Caps,
    /// The format's own `a=fmtp` parameters, as offered (GStreamer's caps turn H.264's
    /// profile-level-id into a profile name, which browsers would not understand back).
    pub fmtp: Vec<(String, String)>,
}

impl Format {
    /// The `a=fmtp` parameter `key` (case-insensitive), as offered.
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.fmtp
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Makes an answer take the DTLS server role (`a=setup:passive`) wherever the offer let the
/// answerer choose (`actpass`) and webrtcbin chose client (`active`). Why: as the client, the
/// room sent its first DTLS flight as soon as its own ICE saw a working pair, and a server
/// (Janus) that had not yet finished ICE on its side dropped it; OpenSSL retries only after a
/// second, so one join in three waited exactly a second longer for the first picture. As the
/// server, the room waits for the offerer's hello, which comes once the offerer (the ICE
/// controlling side, which decides when ICE is done) is ready. RFC 5763 allows either role.
/// Returns how many media lines were changed.
pub fn answer_as_dtls_server(
    offer: &gst_sdp::SDPMessageRef,
    answer: &mut gst_sdp::SDPMessageRef,
) -> usize {
    let setup_of = |media: &gst_sdp::SDPMediaRef| {
        media
            .attributes()
            .find(|a| a.key() == "setup")
            .and_then(|a| a.value().map(str::to_owned))
    };
    let session_setup = offer
        .attributes()
        .find(|a| a.key() == "setup")
        .and_then(|a| a.value().map(str::to_owned));
    let mut changed = 0;
    for index in 0..answer.medias_len() {
        let offered = offer
            .media(index)
            .and_then(setup_of)
            .or_else(|| session_setup.clone());
        if offered.as_deref() != Some("actpass") {
            continue;
        }
        let Some(media) = answer.media_mut(index) else {
            continue;
        };
        let Some(at) = media
            .attributes()
            .position(|a| a.key() == "setup" && a.value() == Some("active"))
        else {
            continue;
        };
        if media
            .replace_attribute(
                at as u32,
                gst_sdp::SDPAttribute::new("setup", Some("passive")),
            )
            .is_ok()
        {
            changed += 1;
        }
    }
    changed
}

/// The `a=fmtp:<pt> k=v;k=v` parameters of payload type `pt`.
fn fmtp_of(media: &gst_sdp::SDPMediaRef, pt: u32) -> Vec<(String, String)> {
    let prefix = format!("{pt} ");
    media
        .attributes()
        .filter(|a| a.key() == "fmtp")
        .filter_map(|a| a.value())
        .find_map(|v| v.strip_prefix(&prefix).map(str::to_owned))
        .map(|parameters| {
            parameters
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// One audio or video media line of a remote description.
#[derive(Debug, Clone)]
pub struct RemoteMedia {
    /// The line's position among all media lines of the description, from 0.
    pub index: usize,
    /// Audio or video.
    pub kind: MediaKind,
    /// The line's direction, else the session's, else `sendrecv`.
    pub direction: Direction,
    /// Its payload types GStreamer can describe, in offer order.
    pub formats: Vec<Format>,
}

/// Parses `text` as SDP; refuses what is not one.
pub fn parse(text: &str) -> Result<gst_sdp::SDPMessage, PeerError> {
    if !text.trim_start().starts_with("v=0") {
        return Err(PeerError::MalformedSdp(
            "an SDP starts with the line v=0".into(),
        ));
    }
    let message = gst_sdp::SDPMessage::parse_buffer(text.as_bytes())
        .map_err(|e| PeerError::MalformedSdp(e.to_string()))?;
    if message.medias_len() == 0 {
        return Err(PeerError::NoUsableMedia("it has no media lines".into()));
    }
    Ok(message)
}

/// Whether `message` has an active data channel line (`m=application … webrtc-datachannel`).
pub fn has_data_channel(message: &gst_sdp::SDPMessageRef) -> bool {
    message.medias().any(|media| {
        media.media() == Some("application")
            && media.port() != 0
            && media.formats().any(|f| f == "webrtc-datachannel")
    })
}

/// The audio and video lines of `message`, checked against the policy: with
/// `require_encryption`, every active line must be DTLS-SRTP (`UDP/TLS/RTP/SAVPF`) with a DTLS
/// fingerprint. Lines with port 0 (rejected or stopped) and data channels are skipped.
pub fn media_lines(
    message: &gst_sdp::SDPMessageRef,
    require_encryption: bool,
) -> Result<Vec<RemoteMedia>, PeerError> {
    let session_fingerprint = message.attribute_val("fingerprint").is_some();
    let session_direction = direction_of(message.attributes().map(|a| a.key()));
    let mut lines = Vec::new();
    for (index, media) in message.medias().enumerate() {
        let kind = match media.media() {
            Some("audio") => MediaKind::Audio,
            Some("video") => MediaKind::Video,
            _ => continue,
        };
        if media.port() == 0 {
            continue;
        }
        let proto = media.proto().unwrap_or("");
        if require_encryption {
            if proto != SECURE_PROTO {
                return Err(PeerError::Unencrypted(format!(
                    "media line {index} ({}) uses {proto}, not {SECURE_PROTO}",
                    kind_name(kind)
                )));
            }
            if !session_fingerprint && media.attribute_val("fingerprint").is_none() {
                return Err(PeerError::Unencrypted(format!(
                    "media line {index} ({}) has no DTLS fingerprint",
                    kind_name(kind)
                )));
            }
        }
        let direction = direction_of(media.attributes().map(|a| a.key()))
            .or(session_direction)
            .unwrap_or(Direction::SendRecv);
        let formats = media
            .formats()
            .filter_map(|f| f.parse::<u32>().ok())
            .filter_map(|pt| {
                let caps = media.caps_from_media(pt as i32)?;
                let encoding = caps
                    .structure(0)?
                    .get::<&str>("encoding-name")
                    .ok()?
                    .to_ascii_uppercase();
                let fmtp = fmtp_of(media, pt);
                Some(Format {
                    pt,
                    encoding,
                    caps,
                    fmtp,
                })
            })
            .collect();
        lines.push(RemoteMedia {
            index,
            kind,
            direction,
            formats,
        });
    }
    if lines.is_empty() {
        return Err(PeerError::NoUsableMedia(
            "it has no active audio or video line".into(),
        ));
    }
    Ok(lines)
}

fn direction_of<'a>(keys: impl Iterator<Item = &'a str>) -> Option<Direction> {
    keys.filter_map(|key| match key {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    })
    .last()
}

/// `audio` or `video`, as SDP's `m=` line names the kind.
pub fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// The offered format the room's encoder output fits: for H.264 packetization mode 1 in
/// constrained baseline (profile-level-id 42e0xx or 42c0xx), else baseline (4200xx, which
/// constrained-baseline streams satisfy); for VP8 any VP8; for audio Opus.
pub fn sendable(media: &RemoteMedia, video: Option<Codec>) -> Option<Format> {
    let mut candidates: Vec<&Format> = match media.kind {
        MediaKind::Audio => media
            .formats
            .iter()
            .filter(|f| f.encoding == "OPUS")
            .collect(),
        MediaKind::Video => match video? {
            Codec::Vp8 => media
                .formats
                .iter()
                .filter(|f| f.encoding == "VP8")
                .collect(),
            Codec::H264 => media
                .formats
                .iter()
                .filter(|f| f.encoding == "H264" && packetization_mode(f) == 1)
                .filter(|f| h264_rank(f).is_some())
                .collect(),
        },
    };
    candidates.sort_by_key(|f| h264_rank(f).unwrap_or(0));
    candidates.first().map(|f| (*f).clone())
}

/// The offered formats the room can decode: H.264 (packetization mode 1) and VP8, Opus.
pub fn receivable(media: &RemoteMedia) -> Vec<Format> {
    media
        .formats
        .iter()
        .filter(|f| match media.kind {
            MediaKind::Audio => f.encoding == "OPUS",
            MediaKind::Video => {
                f.encoding == "VP8" || (f.encoding == "H264" && packetization_mode(f) == 1)
            }
        })
        .cloned()
        .collect()
}

fn packetization_mode(format: &Format) -> u32 {
    format
        .parameter("packetization-mode")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// Lower is better: constrained baseline first, then baseline. `None` for other profiles.
fn h264_rank(format: &Format) -> Option<u8> {
    if format.encoding != "H264" {
        return Some(0);
    }
    let profile = format.parameter("profile-level-id")?.to_ascii_lowercase();
    match profile.get(..4)? {
        "42e0" | "42c0" => Some(0),
        "4200" => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDONLY: &str = include_str!("testdata/chromium-sendonly.sdp");
    const RECVONLY: &str = include_str!("testdata/chromium-recvonly.sdp");

    fn lines(text: &str) -> Vec<RemoteMedia> {
        gst::init().unwrap();
        let message = parse(text).unwrap();
        media_lines(&message, true).unwrap()
    }

    #[test]
    fn chromium_offers_give_their_own_payload_types() {
        let offer = lines(RECVONLY);
        assert_eq!(offer.len(), 2);
        assert_eq!(offer[0].kind, MediaKind::Audio);
        assert_eq!(offer[0].direction, Direction::RecvOnly);
        assert_eq!(sendable(&offer[0], None).unwrap().pt, 111);
        let video = sendable(&offer[1], Some(Codec::H264)).unwrap();
        // Chromium 156 offers 42e01f with packetization-mode=1 as payload type 108.
        assert_eq!(video.encoding, "H264");
        assert_eq!(video.pt, 108);
        assert_eq!(video.parameter("profile-level-id"), Some("42e01f"));
        assert_eq!(sendable(&offer[1], Some(Codec::Vp8)).unwrap().pt, 96);

        let offer = lines(SENDONLY);
        assert_eq!(offer[1].direction, Direction::SendOnly);
        let receivable: Vec<u32> = receivable(&offer[1]).iter().map(|f| f.pt).collect();
        assert!(receivable.contains(&96), "VP8: {receivable:?}");
        assert!(receivable.contains(&108), "H.264: {receivable:?}");
        assert!(!receivable.contains(&109), "H.264 mode 0: {receivable:?}");
    }

    #[test]
    fn unencrypted_offers_are_refused_under_the_policy() {
        gst::init().unwrap();
        let plain = RECVONLY.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
        let message = parse(&plain).unwrap();
        let err = media_lines(&message, true).unwrap_err();
        assert!(matches!(err, PeerError::Unencrypted(_)), "{err}");
        assert!(err.to_string().contains("RTP/AVP"), "{err}");
        assert!(media_lines(&message, false).is_ok());

        let no_fingerprint: String = RECVONLY
            .lines()
            .filter(|l| !l.starts_with("a=fingerprint"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let err = media_lines(&parse(&no_fingerprint).unwrap(), true).unwrap_err();
        assert!(err.to_string().contains("fingerprint"), "{err}");
    }

    #[test]
    fn malformed_and_empty_descriptions_are_named() {
        gst::init().unwrap();
        let err = parse("hello").unwrap_err();
        assert!(matches!(err, PeerError::MalformedSdp(_)), "{err}");
        let err = parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n").unwrap_err();
        assert!(matches!(err, PeerError::NoUsableMedia(_)), "{err}");
        let only_data = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        let err = media_lines(&parse(only_data).unwrap(), true).unwrap_err();
        assert!(matches!(err, PeerError::NoUsableMedia(_)), "{err}");
    }

    #[test]
    fn an_answer_takes_the_server_role_only_where_the_offer_lets_it_choose() {
        gst::init().unwrap();
        let offer = parse(SENDONLY).unwrap();
        let answer_text = |setup: &str| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                 m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=setup:{setup}\r\na=mid:0\r\n\
                 m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=setup:{setup}\r\na=mid:1\r\n"
            )
        };
        let setups = |message: &gst_sdp::SDPMessage| -> Vec<String> {
            message
                .medias()
                .filter_map(|m| m.attribute_val("setup").map(str::to_owned))
                .collect()
        };
        let mut answer = parse(&answer_text("active")).unwrap();
        assert_eq!(answer_as_dtls_server(&offer, &mut answer), 2);
        assert_eq!(setups(&answer), ["passive", "passive"]);
        // Already passive: nothing to do.
        assert_eq!(answer_as_dtls_server(&offer, &mut answer), 0);

        // An offerer that insists on being the client leaves the answer as it is.
        let insisting = parse(&SENDONLY.replace("a=setup:actpass", "a=setup:active")).unwrap();
        let mut answer = parse(&answer_text("active")).unwrap();
        assert_eq!(answer_as_dtls_server(&insisting, &mut answer), 0);
        assert_eq!(setups(&answer), ["active", "active"]);
    }
}
