//! Meetings as the core sees them: what was asked for (the target, whose secrets stay out of the
//! status), who takes part, and how the streams fare. The meeting engine does the signalling and
//! media; it follows the [`MeetingPlan`] the core publishes and reports back [`MeetingReport`]s.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use roomd_model::Secret;

use crate::moderation::{LobbyGuest, Moderation, MuteRequest};

/// Characters of a hosted meeting's id: readable aloud and typeable, see [`roomd_base::random`].
pub(crate) const MEETING_ID_CHARS: usize = 10;
const PIN_MIN_DIGITS: usize = 4;
const PIN_MAX_DIGITS: usize = 12;
const DISPLAY_NAME_MAX_CHARS: usize = 64;
const TOKEN_MAX_CHARS: usize = 4096;

/// Where a meeting takes place. Secrets (PINs, bearer tokens) are [`Secret`]s: never in `Debug`.
#[derive(Debug, Clone)]
pub enum MeetingTarget {
    /// A Janus VideoRoom.
    Janus {
        /// The Janus HTTP API, e.g. `https://janus.example:8089/janus`.
        server: Url,
        /// The VideoRoom's number; never 0.
        room: u64,
        /// The room's PIN, if it has one.
        pin: Option<Secret>,
        /// The name the room uses in the meeting; None: `system.name`. At most 64 characters,
        /// no control characters.
        display_name: Option<String>,
    },
    /// Publish by WHIP; optionally also play a WHEP resource.
    Whip {
        /// The WHIP endpoint.
        url: Url,
        /// Bearer token for the endpoint(s), if needed.
        token: Option<Secret>,
        /// A WHEP resource to play as well.
        whep_url: Option<Url>,
    },
    /// Play a WHEP resource.
    Whep {
        /// The WHEP endpoint.
        url: Url,
        /// Bearer token for the endpoint, if needed.
        token: Option<Secret>,
    },
    /// Another room's hosted meeting, joined as its guest.
    Direct {
        /// The room's origin (`https://host:port`).
        room: Url,
        /// The hosted meeting's id, from the join link.
        meeting_id: String,
        /// The meeting's PIN (4 to 12 digits), if it has one.
        pin: Option<Secret>,
        /// The name the room uses in the meeting; None: `system.name`. At most 64 characters,
        /// no control characters.
        display_name: Option<String>,
    },
    /// A SIP call (issue 14) through the room's SIP account (`[sip]`).
    Sip {
        /// Whom to call: `sips:user@host[:port]` (TLS only), at most 256 characters.
        uri: String,
    },
    /// A SIP call in that the room answered (`meeting.answer`, or `sip.auto_answer`). Never
    /// parsed from `meeting.join`: only the core makes it, from the call that rang.
    SipIncoming {
        /// The SIP worker's id of the call.
        id: String,
        /// The caller's address.
        uri: String,
        /// The caller's display name; may be empty.
        display_name: String,
    },
    /// A meeting hosted by this room.
    Hosted {
        /// The PIN guests must give (4 to 12 digits); None: no PIN.
        pin: Option<Secret>,
    },
}

impl MeetingTarget {
    /// `janus`, `whip`, `whep`, `direct` or `hosted`, as in the `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            MeetingTarget::Janus { .. } => "janus",
            MeetingTarget::Whip { .. } => "whip",
            MeetingTarget::Whep { .. } => "whep",
            MeetingTarget::Direct { .. } => "direct",
            MeetingTarget::Sip { .. } | MeetingTarget::SipIncoming { .. } => "sip",
            MeetingTarget::Hosted { .. } => "hosted",
        }
    }

    /// The target without its secrets, as status and the call history show it.
    pub fn public(&self) -> Value {
        match self {
            MeetingTarget::Janus {
                server,
                room,
                pin,
                display_name,
            } => json!({
                "kind": "janus", "server": public_url(server), "room": room,
                "pin_set": pin.is_some(), "display_name": display_name,
            }),
            MeetingTarget::Whip {
                url,
                token,
                whep_url,
            } => json!({
                "kind": "whip", "url": public_url(url), "token_set": token.is_some(),
                "whep_url": whep_url.as_ref().map(public_url),
            }),
            MeetingTarget::Whep { url, token } => json!({
                "kind": "whep", "url": public_url(url), "token_set": token.is_some(),
            }),
            MeetingTarget::Direct {
                room,
                meeting_id,
                pin,
                display_name,
            } => json!({
                "kind": "direct", "address": direct_address(room, meeting_id),
                "pin_set": pin.is_some(), "display_name": display_name,
            }),
            MeetingTarget::Sip { uri } => json!({"kind": "sip", "uri": uri}),
            MeetingTarget::SipIncoming {
                uri, display_name, ..
            } => json!({
                "kind": "sip", "uri": uri, "direction": "incoming", "display_name": display_name,
            }),
            MeetingTarget::Hosted { pin } => json!({"kind": "hosted", "pin_set": pin.is_some()}),
        }
    }

    /// Parses the `target` argument of `meeting.join`; the message names the field at fault.
    pub fn parse(value: &Value) -> Result<MeetingTarget, String> {
        let raw: RawTarget = roomd_base::json_error::deserialize(value).map_err(|e| e.message)?;
        Ok(match raw {
            RawTarget::Janus {
                server,
                room,
                pin,
                display_name,
            } => MeetingTarget::Janus {
                server: server_url("server", &server)?,
                room: match room {
                    0 => return Err("room: 0 is not a Janus room number".into()),
                    n => n,
                },
                pin: optional_secret("pin", pin, check_janus_pin)?,
                display_name: display_name_of(display_name)?,
            },
            RawTarget::Whip {
                url,
                token,
                whep_url,
            } => MeetingTarget::Whip {
                url: server_url("url", &url)?,
                token: optional_secret("token", token, check_token)?,
                whep_url: whep_url.map(|u| server_url("whep_url", &u)).transpose()?,
            },
            RawTarget::Whep { url, token } => MeetingTarget::Whep {
                url: server_url("url", &url)?,
                token: optional_secret("token", token, check_token)?,
            },
            RawTarget::Direct {
                address,
                pin,
                display_name,
            } => {
                let (room, meeting_id) = parse_direct_address(&address)?;
                MeetingTarget::Direct {
                    room,
                    meeting_id,
                    pin: optional_secret("pin", pin, check_pin)?,
                    display_name: display_name_of(display_name)?,
                }
            }
            RawTarget::Sip { uri } => MeetingTarget::Sip {
                uri: sip_uri(&uri)?,
            },
            RawTarget::Hosted { pin } => MeetingTarget::Hosted {
                pin: optional_secret("pin", pin, check_pin)?,
            },
        })
    }
}

/// Targets are equal when they would lead to the same meeting; secrets compare by presence.
impl PartialEq for MeetingTarget {
    fn eq(&self, other: &Self) -> bool {
        self.public() == other.public()
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum RawTarget {
    Janus {
        server: String,
        room: u64,
        #[serde(default)]
        pin: Option<String>,
        #[serde(default)]
        display_name: Option<String>,
    },
    Whip {
        url: String,
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        whep_url: Option<String>,
    },
    Whep {
        url: String,
        #[serde(default)]
        token: Option<String>,
    },
    Direct {
        address: String,
        #[serde(default)]
        pin: Option<String>,
        #[serde(default)]
        display_name: Option<String>,
    },
    Sip {
        uri: String,
    },
    Hosted {
        #[serde(default)]
        pin: Option<String>,
    },
}

/// Longest SIP address `meeting.join` takes.
const SIP_URI_MAX_CHARS: usize = 256;

/// A SIP address to call: `sips:user@host[:port]`, TLS only (the signalling carries the SRTP
/// keys), printable ASCII without spaces, quotes or angle brackets (it goes into headers as is).
fn sip_uri(value: &str) -> Result<String, String> {
    let bad = |why: &str| format!("uri: {why}; expected sips:user@host[:port]");
    if value.len() > SIP_URI_MAX_CHARS {
        return Err(bad(&format!("longer than {SIP_URI_MAX_CHARS} characters")));
    }
    let Some(rest) = value.strip_prefix("sips:") else {
        return Err(bad("only sips: (SIP over TLS) is called"));
    };
    if !rest
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\'))
    {
        return Err(bad(
            "spaces, quotes, angle brackets and control characters are not allowed",
        ));
    }
    match rest.split_once('@') {
        Some((user, host)) if !user.is_empty() && !host.is_empty() && !host.contains('@') => {
            Ok(value.to_owned())
        }
        _ => Err(bad("no user@host")),
    }
}

/// A server URL: https, or http only to a loopback address (a server on the room itself).
fn server_url(field: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{field}: not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{field}: http is unencrypted; use https (http is accepted only for a server on \
                 this room itself)"
            ));
        }
        other => return Err(format!("{field}: scheme {other:?} is not https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field}: the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{field}: credentials do not belong in the URL; use the pin or token field"
        ));
    }
    Ok(url)
}

/// `https://host[:port]/join/<meeting-id>` → (origin, meeting id).
fn parse_direct_address(address: &str) -> Result<(Url, String), String> {
    let url = server_url("address", address)?;
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    match segments.as_slice() {
        ["join", id] if is_meeting_id(id) => {
            let mut origin = url.clone();
            origin.set_path("/");
            origin.set_query(None);
            origin.set_fragment(None);
            Ok((origin, (*id).to_owned()))
        }
        _ => Err(
            "address: expected the other room's join link, https://<room>/join/<meeting-id>".into(),
        ),
    }
}

fn direct_address(room: &Url, meeting_id: &str) -> String {
    format!("{}/join/{meeting_id}", room.as_str().trim_end_matches('/'))
}

/// Whether `id` can be a hosted meeting's id (the guest API checks path input with it).
pub fn is_meeting_id(id: &str) -> bool {
    id.len() >= 8
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A URL without its query: query strings often carry access tokens.
fn public_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn optional_secret(
    field: &str,
    value: Option<String>,
    check: fn(&str) -> Result<(), String>,
) -> Result<Option<Secret>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => {
            check(&v).map_err(|problem| format!("{field}: {problem}"))?;
            Ok(Some(Secret::new(v)))
        }
    }
}

/// The PIN of a hosted meeting: digits, so that it can be typed on any keypad.
pub fn check_pin(pin: &str) -> Result<(), String> {
    if (PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&pin.len())
        && pin.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "a PIN is {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits"
        ))
    }
}

/// Janus room PINs are free text; keep them printable and bounded.
fn check_janus_pin(pin: &str) -> Result<(), String> {
    if pin.len() <= 256 && !pin.chars().any(char::is_control) {
        Ok(())
    } else {
        Err("at most 256 characters without control characters".into())
    }
}

fn check_token(token: &str) -> Result<(), String> {
    if token.len() <= TOKEN_MAX_CHARS && token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "a bearer token is at most {TOKEN_MAX_CHARS} printable ASCII characters"
        ))
    }
}

fn display_name_of(value: Option<String>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(name) => check_display_name(&name)
            .map(|()| Some(name))
            .map_err(|p| format!("display_name: {p}")),
    }
}

/// Names people give themselves (guests) or the room: shown on displays and in lists.
pub fn check_display_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() {
        Err("a name must not be blank".into())
    } else if chars > DISPLAY_NAME_MAX_CHARS {
        Err(format!(
            "{chars} characters; at most {DISPLAY_NAME_MAX_CHARS}"
        ))
    } else if name.chars().any(char::is_control) {
        Err("control characters are not allowed".into())
    } else {
        Ok(())
    }
}

/// `status.meeting.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeetingState {
    /// No meeting.
    Idle,
    /// Signalling and connecting are under way.
    Joining,
    /// Waiting to be admitted by the host of another room's meeting.
    Lobby,
    /// In the meeting (for a hosted meeting: hosting it).
    Connected,
    /// The server or network went away; the engine rejoins with backoff.
    Reconnecting,
    /// The last meeting ended with an error (`status.meeting.error`).
    Failed,
}

impl MeetingState {
    /// Whether a meeting is going on (the encoders run, `meeting.join` is refused).
    pub fn active(self) -> bool {
        !matches!(self, MeetingState::Idle | MeetingState::Failed)
    }

    /// The state as status shows it, e.g. `connected`.
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingState::Idle => "idle",
            MeetingState::Joining => "joining",
            MeetingState::Lobby => "lobby",
            MeetingState::Connected => "connected",
            MeetingState::Reconnecting => "reconnecting",
            MeetingState::Failed => "failed",
        }
    }
}

impl fmt::Display for MeetingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `status.meeting`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeetingStatus {
    /// Where the room stands.
    pub state: MeetingState,
    /// The target without secrets; `null` when idle.
    pub target: Value,
    /// A hosted meeting's id; empty otherwise.
    pub id: String,
    /// Where guests join a hosted meeting; empty otherwise.
    pub join_url: String,
    /// RFC 3339 time of the last change of `state`.
    pub since: String,
    /// What went wrong last; empty when nothing did.
    pub error: String,
    /// Whether the meeting has streams and every one of them is DTLS-SRTP, measured on the
    /// transports (a peer not yet keyed, or whose DTLS closed, makes it false).
    pub encrypted: bool,
    /// The other participants; never the room itself.
    pub participants: Vec<Participant>,
    /// Every stream of the meeting, refreshed every second; the room's own are listed with
    /// `participant` `self` (camera and microphones) or `content`.
    pub streams: Vec<StreamStats>,
    /// End-to-end encryption of the meeting (`meeting.e2ee`), from the key agreement's state.
    pub e2ee: E2eeStatus,
    /// Whether the room put the call on hold (`meeting.hold`; SIP calls only).
    pub on_hold: bool,
    /// Whether the far end put the call on hold (its re-INVITE said `sendonly` or `inactive`;
    /// SIP calls only).
    pub far_end_on_hold: bool,
    /// Who holds the floor of the content stream (BFCP; SIP calls that agreed content only).
    pub content_floor: ContentFloor,
    /// The chat of a hosted meeting, oldest first: the last [`CHAT_KEPT`] messages, kept in
    /// memory while the meeting goes on and gone when it ends.
    pub chat: Vec<ChatMessage>,
    /// Roles and the lock of a hosted meeting (docs/meetings.md, "Roles").
    pub moderation: Moderation,
    /// The window a guest of the hosted meeting shares (the presenter), as the room display
    /// shows it; `None` while nobody does.
    pub shared_window: Option<SharedWindow>,
}

/// `status.meeting.shared_window`: a guest's shared window, measured where it is drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedWindow {
    /// The guest's participant id.
    pub participant: String,
    /// The guest's name.
    pub name: String,
    /// Frames of it that reached the room display's compositor so far.
    pub frames: u64,
}

/// Who may send content in a meeting with floor control (`status.meeting.content_floor`),
/// from the floor control session's own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentFloor {
    /// The meeting has no floor control (no SIP call, or no content agreed in it).
    None,
    /// Nobody holds the floor.
    Free,
    /// The room holds it: its content goes out.
    Room,
    /// The far end holds it: its content is shown.
    FarEnd,
}

/// `status.meeting.e2ee`: whether the meeting is end-to-end encrypted and with whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct E2eeStatus {
    /// Where the key agreement stands.
    pub state: E2eeState,
    /// Why it is not `established` (empty when it is, or when it is off).
    pub reason: String,
    /// How many times the room made a new sender key in this meeting (a participant left, or
    /// the timer): 0 for the first key.
    pub key_epoch: u32,
    /// The other participants as the key agreement knows them (by `participants[].id`).
    pub participants: Vec<E2eeParticipant>,
}

impl E2eeStatus {
    /// Not an end-to-end encrypted meeting.
    pub fn off() -> E2eeStatus {
        E2eeStatus {
            state: E2eeState::Off,
            reason: String::new(),
            key_epoch: 0,
            participants: Vec::new(),
        }
    }
}

/// Where a meeting's end-to-end key agreement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum E2eeState {
    /// Not an end-to-end encrypted meeting (`meeting.e2ee` is false, or no meeting).
    Off,
    /// Keys are being agreed: media is sent only under end-to-end keys, to those holding them.
    Establishing,
    /// Every participant holds the room's key and the room holds theirs.
    Established,
    /// It cannot be end-to-end encrypted (the reason says why); under `meeting.require_e2ee`
    /// the room sends no media.
    Failed,
}

/// One participant in the end-to-end key agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct E2eeParticipant {
    /// The participant's id, as in `participants[].id`.
    pub id: String,
    /// Media both ways is end-to-end encrypted: the room holds their current sender key and
    /// granted them its own.
    pub e2ee: bool,
    /// Their identity is verified (`verified_by` says how).
    pub verified: bool,
    /// `certificate` (their device certificate chains to a CA in `meeting.e2ee_ca_file`),
    /// `sas` (both sides confirmed the short authentication string), or empty.
    pub verified_by: String,
    /// The verified certificate's name (CN, else first DNS name); empty unless `certificate`.
    pub certificate_name: String,
    /// Why they are not verified; empty when they are.
    pub reason: String,
    /// The short authentication string to read aloud with them (six digits from both identity
    /// keys and the meeting); equal on both sides unless someone stands in between. Empty
    /// until their identity is known.
    pub sas: String,
    /// Who confirmed the string on this room (`meeting.e2ee_confirm`); empty if nobody has.
    /// `verified_by` becomes `sas` once they confirmed it on their side too.
    pub sas_confirmed_by: String,
    /// Whether their frames open with the keys the room holds, over the last second: a
    /// participant whose keys arrived but whose frames do not open (a wrong or withheld key,
    /// frames altered on the way) shows `refused`.
    pub frames: E2eeFrames,
}

/// What the room's decrypters did with a participant's frames over the last second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum E2eeFrames {
    /// No frame arrived (or none was measured yet).
    #[default]
    None,
    /// Frames opened.
    Opening,
    /// Frames arrived and none opened: they are dropped, never shown.
    Refused,
}

impl MeetingStatus {
    /// No meeting since `since` (RFC 3339); nothing measured, so not encrypted.
    pub fn idle(since: String) -> Self {
        MeetingStatus {
            state: MeetingState::Idle,
            target: Value::Null,
            id: String::new(),
            join_url: String::new(),
            since,
            error: String::new(),
            // Nothing is measured yet: nothing is shown as encrypted.
            encrypted: false,
            participants: Vec::new(),
            streams: Vec::new(),
            e2ee: E2eeStatus::off(),
            on_hold: false,
            far_end_on_hold: false,
            content_floor: ContentFloor::None,
            chat: Vec::new(),
            moderation: Moderation::default(),
            shared_window: None,
        }
    }
}

/// Chat messages `status.meeting.chat` keeps (older ones leave it, and the room's memory).
pub(crate) const CHAT_KEPT: usize = 50;
/// The longest chat message, in characters.
pub const CHAT_MAX_CHARS: usize = 500;

/// One chat message of a hosted meeting (`status.meeting.chat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Counts the meeting's messages from 1.
    pub seq: u64,
    /// Who wrote it: a guest's name, or the room's.
    pub from: String,
    /// Whether the room wrote it (`meeting.chat.send`).
    pub from_room: bool,
    /// The text, as written (shown as text, never markup).
    pub text: String,
    /// When the room took it (RFC 3339).
    pub at: String,
}

/// Whether `text` may be a chat message: 1 to [`CHAT_MAX_CHARS`] characters, not only white
/// space, and no control characters but line breaks and tabs.
pub fn chat_text_is_valid(text: &str) -> bool {
    let chars = text.chars().count();
    (1..=CHAT_MAX_CHARS).contains(&chars)
        && !text.trim().is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\t'))
}

/// Another participant of the meeting (`status.meeting.participants`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Participant {
    /// Unique within the meeting; what `meeting.admit` and `meeting.remove` take.
    pub id: String,
    /// The name they go by, as they or their server gave it.
    pub name: String,
    /// How far they have got into the meeting.
    pub state: ParticipantState,
    /// Whether their voice arrives.
    pub audio: MediaState,
    /// Whether their picture arrives.
    pub video: MediaState,
    /// Their received voice is above -45 dBFS (silent again after 800 ms below -55 dBFS).
    pub talking: bool,
    /// They raised their hand (a guest of a hosted meeting, from their page); false otherwise.
    pub hand_raised: bool,
    /// `dtls-srtp` while every stream of the participant is encrypted (DTLS connected, SRTP
    /// keyed; in a SIP call, the far end's certificate checked against its SDP), `sdes-srtp` for a SIP call whose every stream runs SRTP with the keys both sides
    /// put in their SDP, `none` otherwise.
    pub encryption: String,
}

/// How far a participant has got into the meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParticipantState {
    /// A guest waiting to be admitted.
    Lobby,
    /// Admitted or announced; media not flowing yet.
    Connecting,
    /// Media flows.
    Connected,
}

/// Whether one kind of a participant's media arrives, measured on its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaState {
    /// Packets arrive.
    On,
    /// A stream is negotiated but no packet came for 2.5 s (e.g. muted).
    Off,
    /// The participant sends no such stream.
    None,
}

/// One stream's figures, measured over the last second.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct StreamStats {
    /// The participant's id, or `self` / `content` for the room's own streams.
    pub participant: String,
    /// `send` or `receive`.
    pub direction: &'static str,
    /// `audio` or `video`.
    pub kind: &'static str,
    /// Bit rate over the last second, in kbit/s.
    pub bitrate_kbps: f64,
    /// Packets lost since the stream started (for sent streams, as the far end reports it in
    /// RTCP); may be negative when duplicates arrive.
    pub packets_lost: i64,
    /// `packets_lost` in percent of all the stream's packets, delivered and lost.
    pub loss_percent: f64,
    /// Interarrival jitter in milliseconds (for sent streams, as the far end reports it).
    pub jitter_ms: f64,
    /// Round-trip time in milliseconds from RTCP; 0 for received streams.
    pub rtt_ms: f64,
    /// Video frames per second; 0 for audio.
    pub frame_rate: f64,
    /// Video width in pixels; 0 for audio.
    pub width: u32,
    /// Video height in pixels; 0 for audio.
    pub height: u32,
    /// Frames sent (send) or decoded (receive) since the stream started.
    pub frames: u64,
    /// The stream goes through an SRTP session keyed by a connected DTLS handshake.
    pub encrypted: bool,
    /// Received audio: lost voice frames rebuilt from Opus in-band FEC.
    pub fec_recovered: u64,
    /// Received audio: lost voice frames concealed (no FEC for them).
    pub concealed: u64,
    /// Sent audio: the packet loss the room's Opus encoder expects (RTCP-reported).
    pub expected_loss_percent: u32,
    /// Sent video of a SIP call: the most the far end takes now, kbit/s (its SDP's bandwidth,
    /// lowered by its TMMBR requests); `None` without such a limit and for other streams.
    pub max_kbps: Option<u32>,
}

/// What the meeting engine should be doing, with the secrets it needs. Published by the core on
/// a watch channel; `generation` changes with every new meeting so that reports about an older
/// one are recognised and dropped.
#[derive(Debug, Clone)]
pub struct MeetingPlan {
    /// Counts meetings since roomd started; every report names the one it is about.
    pub generation: u64,
    /// What to join or host, with its secrets.
    pub target: MeetingTarget,
    /// A hosted meeting's id; empty otherwise.
    pub meeting_id: String,
    /// The name this room uses in the meeting.
    pub display_name: String,
    /// Participants the room removed (the engine disconnects them and ignores them).
    pub removed: Vec<String>,
    /// Tones asked for with `meeting.dtmf`, in order (the engine sends those it has not sent).
    pub dtmf: Vec<String>,
    /// Whether the room holds the call (`meeting.hold` / `meeting.resume`; SIP calls only).
    pub hold: bool,
    /// Participants whose short authentication string the room confirmed
    /// (`meeting.e2ee_confirm`), with who confirmed it.
    pub sas_confirmed: Vec<SasConfirmation>,
    /// What the room wrote in a hosted meeting's chat (`meeting.chat.send`), the last
    /// [`CHAT_KEPT`]: the engine sends each to the guests once (by `seq`).
    pub chat: Vec<ChatMessage>,
    /// Roles and the lock, as in `status.meeting.moderation`.
    pub moderation: Moderation,
    /// Guests waiting in the lobby (moderators' pages list them).
    pub lobby: Vec<LobbyGuest>,
    /// Requests to guests to mute, the last [`crate::moderation::MUTE_REQUESTS_KEPT`]: the
    /// engine passes each to its guest once (by `seq`).
    pub mute_requests: Vec<MuteRequest>,
}

/// A short authentication string the room confirmed with a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasConfirmation {
    /// The participant id, as in `status.meeting.e2ee.participants[].id`.
    pub participant: String,
    /// Who confirmed it on this room (the API caller's principal).
    pub by: String,
}

/// The plan the engine follows: `None` when no meeting should be going on.
pub type SharedPlan = Option<Arc<MeetingPlan>>;

/// What the meeting engine tells the core. Each names the plan generation it is about.
#[derive(Debug, Clone, PartialEq)]
pub enum MeetingReport {
    /// The meeting's state changed (`error` explains `reconnecting` or `failed`).
    State {
        /// The plan generation this is about.
        generation: u64,
        /// The new state.
        state: MeetingState,
        /// Why, for `reconnecting` and `failed`; empty otherwise.
        error: String,
    },
    /// A participant appeared or changed (replaces the entry with the same id).
    Participant {
        /// The plan generation this is about.
        generation: u64,
        /// The participant as they are now.
        participant: Participant,
    },
    /// A guest's shared window, as the room display shows it (`None`: nobody shares).
    SharedWindow {
        /// The plan generation this is about.
        generation: u64,
        /// The window shown.
        window: Option<SharedWindow>,
    },
    /// A participant left the meeting.
    ParticipantLeft {
        /// The plan generation this is about.
        generation: u64,
        /// The participant's id.
        id: String,
    },
    /// The latest per-stream figures (every second).
    Stats {
        /// The plan generation this is about.
        generation: u64,
        /// Every stream of the meeting, replacing the previous list.
        streams: Vec<StreamStats>,
        /// Whether there are streams and all of them are DTLS-SRTP (`status.meeting.encrypted`).
        encrypted: bool,
    },
    /// The meeting ended without the room leaving it (e.g. the host of another room's meeting
    /// ended it): recorded as a normal end.
    Ended {
        /// The plan generation this is about.
        generation: u64,
        /// Why it ended, for the log and event `meeting.ended.remotely`.
        reason: String,
    },
    /// The end-to-end key agreement changed (replaces `status.meeting.e2ee`).
    E2ee {
        /// The plan generation this is about.
        generation: u64,
        /// Where it stands now.
        e2ee: E2eeStatus,
    },
    /// A hold or resume (`meeting.hold` / `meeting.resume`) did not take: the call is as
    /// `on_hold` says, and `reason` says why.
    HoldFailed {
        /// The plan generation this is about.
        generation: u64,
        /// Whether the call is on hold now (what it was before the attempt).
        on_hold: bool,
        /// Why, e.g. the far end's answer to the re-INVITE.
        reason: String,
    },
    /// The far end put the call on hold or resumed it (its re-INVITE).
    FarEndHold {
        /// The plan generation this is about.
        generation: u64,
        /// Whether it holds the call now.
        on_hold: bool,
    },
    /// The floor of the content stream changed hands (or floor control started or ended).
    ContentFloor {
        /// The plan generation this is about.
        generation: u64,
        /// Who holds it now.
        floor: ContentFloor,
    },
    /// A guest of a hosted meeting wrote in the chat (the engine checked it with
    /// [`chat_text_is_valid`] and bounded their rate).
    Chat {
        /// The plan generation this is about.
        generation: u64,
        /// The guest's name.
        from: String,
        /// What they wrote.
        text: String,
    },
    /// The first picture of a remote participant reached the display.
    FirstRemoteFrame {
        /// The plan generation this is about.
        generation: u64,
        /// The participant whose picture it is.
        participant: String,
        /// Milliseconds since the meeting engine began joining.
        since_join_ms: u64,
    },
}

impl MeetingReport {
    /// The plan generation the report is about.
    pub fn generation(&self) -> u64 {
        match self {
            MeetingReport::State { generation, .. }
            | MeetingReport::Participant { generation, .. }
            | MeetingReport::ParticipantLeft { generation, .. }
            | MeetingReport::Stats { generation, .. }
            | MeetingReport::Ended { generation, .. }
            | MeetingReport::E2ee { generation, .. }
            | MeetingReport::HoldFailed { generation, .. }
            | MeetingReport::FarEndHold { generation, .. }
            | MeetingReport::ContentFloor { generation, .. }
            | MeetingReport::Chat { generation, .. }
            | MeetingReport::SharedWindow { generation, .. }
            | MeetingReport::FirstRemoteFrame { generation, .. } => *generation,
        }
    }
}

/// A guest's view of their place in a hosted meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuestState {
    /// Waiting to be admitted.
    Lobby,
    /// Let in: may connect media by WHIP and WHEP.
    Admitted,
    /// Removed by the room.
    Removed,
    /// Left, or waited in the lobby past `meeting.lobby_timeout_seconds`.
    Ended,
}

/// What a guest gets on arrival: their id and the token that proves it later.
#[derive(Debug, Clone)]
pub struct GuestTicket {
    /// `g-` and 8 characters; the guest's participant id.
    pub guest_id: String,
    /// The guest token (bearer); the core keeps only its hash.
    pub token: Secret,
    /// `lobby`, or `admitted` for a known name (`meeting.lobby`).
    pub state: GuestState,
}

/// An admitted guest, as the engine needs it to connect their media.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmittedGuest {
    /// The plan generation of the hosted meeting.
    pub generation: u64,
    /// The guest's participant id.
    pub guest_id: String,
    /// The name the guest gave.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_keep_secrets_out_of_their_public_form() {
        let t = MeetingTarget::parse(&json!({
            "kind": "janus", "server": "https://janus.example:8089/janus", "room": 1234,
            "pin": "s3cret-pin"
        }))
        .unwrap();
        let shown = t.public().to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!format!("{t:?}").contains("s3cret"));
        let t = MeetingTarget::parse(&json!({
            "kind": "whip", "url": "https://sfu.example/whip/room?access=abc", "token": "tok-123"
        }))
        .unwrap();
        let shown = t.public().to_string();
        assert!(
            !shown.contains("tok-123") && !shown.contains("access=abc"),
            "{shown}"
        );
        let t = MeetingTarget::parse(&json!({
            "kind": "direct", "address": "https://room-b.example:8443/join/AbCdEf1234", "pin": "1234"
        }))
        .unwrap();
        assert_eq!(
            t.public()["address"],
            "https://room-b.example:8443/join/AbCdEf1234"
        );
    }

    #[test]
    fn bad_targets_name_the_field() {
        let cases = [
            (
                json!({"kind": "janus", "server": "ftp://x", "room": 1}),
                "server",
            ),
            (
                json!({"kind": "janus", "server": "http://janus.example/janus", "room": 1}),
                "unencrypted",
            ),
            (
                json!({"kind": "janus", "server": "https://j.example", "room": 0}),
                "room",
            ),
            (
                json!({"kind": "janus", "server": "https://j.example"}),
                "room",
            ),
            (
                json!({"kind": "whip", "url": "https://u:p@sfu.example/whip"}),
                "credentials",
            ),
            (
                json!({"kind": "direct", "address": "https://room-b/other/path"}),
                "join link",
            ),
            (json!({"kind": "hosted", "pin": "12a4"}), "pin"),
            (json!({"kind": "zoom"}), "zoom"),
            (json!({"kind": "hosted", "colour": "red"}), "colour"),
            (
                json!({"kind": "whip", "url": "https://s.example", "token": "a b"}),
                "token",
            ),
            (
                json!({"kind": "sip", "uri": "sip:alice@pbx.example"}),
                "sips:",
            ),
            (
                json!({"kind": "sip", "uri": "sips:pbx.example"}),
                "user@host",
            ),
            (
                json!({"kind": "sip", "uri": "sips:a b@pbx.example"}),
                "spaces",
            ),
            (
                json!({"kind": "sip", "uri": format!("sips:a@{}", "x".repeat(256))}),
                "256",
            ),
        ];
        for (value, expected) in cases {
            let err = MeetingTarget::parse(&value).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn sip_targets_are_sips_addresses_shown_as_given() {
        let t = MeetingTarget::parse(&json!({"kind": "sip", "uri": "sips:alice@10.0.0.5:5061"}))
            .unwrap();
        assert_eq!(t.kind(), "sip");
        assert_eq!(
            t.public(),
            json!({"kind": "sip", "uri": "sips:alice@10.0.0.5:5061"})
        );
    }

    #[test]
    fn http_is_accepted_for_a_server_on_the_room_itself_only() {
        MeetingTarget::parse(&json!({"kind": "whep", "url": "http://127.0.0.1:8080/whep"}))
            .unwrap();
    }
}
