//! Events Janus sends on its own (not answers to our requests), typed.

use serde_json::{Map, Value};

use super::message::{Envelope, Jsep, kind_of, optional_string, optional_u64, required_u64};

/// A kind of media stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// An audio track.
    Audio,
    /// A video track.
    Video,
    /// A data channel.
    Data,
}

/// One stream a publisher sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedStream {
    /// Audio, video or data.
    pub kind: MediaKind,
    /// The stream's `mid` in the publisher's SDP.
    pub mid: String,
    /// The codec Janus negotiated with the publisher (`opus`, `vp8`, ...), if it says.
    pub codec: Option<String>,
    /// A stream the publisher stopped (`disabled`).
    pub disabled: bool,
}

/// Someone publishing in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// The publisher's id in the room (its feed id, to subscribe to).
    pub id: u64,
    /// Its display name, if it set one.
    pub display: Option<String>,
    /// What it publishes; empty when Janus lists none.
    pub streams: Vec<PublishedStream>,
}

/// What a session's event stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum JanusEvent {
    /// New publishers started publishing (Janus lists only those with media).
    PublishersJoined {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// The room, when the event names it.
        room: Option<u64>,
        /// Who started publishing, with their streams.
        publishers: Vec<Publisher>,
    },
    /// Someone entered the room without publishing yet (rooms with `notify_joining`).
    ParticipantJoining {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// The room, when the event names it.
        room: Option<u64>,
        /// The participant's id in the room.
        id: u64,
        /// Its display name, if it set one.
        display: Option<String>,
    },
    /// A publisher left the room.
    PublisherLeft {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// The room, when the event names it.
        room: Option<u64>,
        /// The participant's id in the room.
        id: u64,
    },
    /// A publisher stopped publishing (it may still be in the room).
    PublisherUnpublished {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// The room, when the event names it.
        room: Option<u64>,
        /// The participant's id in the room.
        id: u64,
    },
    /// A publisher was kicked out by a moderator.
    PublisherKicked {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// The room, when the event names it.
        room: Option<u64>,
        /// The participant's id in the room.
        id: u64,
    },
    /// Talking started or stopped (rooms with `audiolevel_event`).
    Talking {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// The room, when the event names it.
        room: Option<u64>,
        /// The participant's id in the room.
        id: u64,
        /// `true` when talking started, `false` when it stopped.
        talking: bool,
    },
    /// The room was destroyed.
    RoomDestroyed {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// The room, when the event names it.
        room: Option<u64>,
    },
    /// The PeerConnection of a handle is up (ICE and DTLS done).
    WebrtcUp {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
    },
    /// Janus started or stopped receiving a medium on a handle.
    Media {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// `audio` or `video`, as Janus names it.
        kind: String,
        /// The stream's `mid`, when Janus names it.
        mid: Option<String>,
        /// Whether Janus now receives it.
        receiving: bool,
    },
    /// The PeerConnection of a handle is gone.
    Hangup {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// Janus' reason, e.g. `DTLS alert`.
        reason: String,
    },
    /// Janus sees losses on a handle's stream (`uplink`: in what Janus receives from us).
    SlowLink {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// `true`: losses in what Janus receives from us; `false`: in what it sends.
        uplink: bool,
        /// The stream's `mid`, when Janus names it.
        mid: Option<String>,
        /// Packets lost, as Janus counts them (0 when it does not say).
        lost: u64,
    },
    /// The handle was detached (by us or the server).
    Detached {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
    },
    /// An error event from Janus or the VideoRoom not tied to one of our requests.
    Error {
        /// The handle it concerns, if any.
        handle: Option<u64>,
        /// Janus' or the VideoRoom's error code.
        code: i64,
        /// Janus' reason text.
        reason: String,
    },
    /// Janus renegotiates a handle on its own (a subscription `updated` with a new offer, an ICE
    /// restart): answer `offer` kinds with [`super::VideoRoomHandle::start`].
    Renegotiation {
        /// The handle it concerns (Janus' `sender`).
        handle: u64,
        /// Janus' offer (or answer).
        jsep: Jsep,
    },
    /// The server ended the session (idle timeout); the stream ends after this.
    SessionTimeout,
    /// A well-formed event of a kind this client does not act on (for logs).
    Other {
        /// The handle it concerns, if any.
        handle: Option<u64>,
        /// What kind of event it was, for the log.
        summary: String,
    },
}

impl JanusEvent {
    /// The handle the event is about, if any (route it to the publisher or subscription).
    pub fn handle(&self) -> Option<u64> {
        match self {
            JanusEvent::PublishersJoined { handle, .. }
            | JanusEvent::ParticipantJoining { handle, .. }
            | JanusEvent::PublisherLeft { handle, .. }
            | JanusEvent::PublisherUnpublished { handle, .. }
            | JanusEvent::PublisherKicked { handle, .. }
            | JanusEvent::Talking { handle, .. }
            | JanusEvent::RoomDestroyed { handle, .. }
            | JanusEvent::WebrtcUp { handle }
            | JanusEvent::Media { handle, .. }
            | JanusEvent::Hangup { handle, .. }
            | JanusEvent::SlowLink { handle, .. }
            | JanusEvent::Detached { handle }
            | JanusEvent::Renegotiation { handle, .. } => Some(*handle),
            JanusEvent::Error { handle, .. } | JanusEvent::Other { handle, .. } => *handle,
            JanusEvent::SessionTimeout => None,
        }
    }
}

/// Reads an unsolicited event; `Err` names a malformed field.
pub(super) fn parse_event(envelope: &Envelope) -> Result<JanusEvent, String> {
    let raw = &envelope.raw;
    let handle = || {
        envelope
            .sender
            .ok_or_else(|| "\"sender\" is missing".to_owned())
    };
    Ok(match envelope.kind.as_str() {
        "timeout" => JanusEvent::SessionTimeout,
        "webrtcup" => JanusEvent::WebrtcUp { handle: handle()? },
        "hangup" => JanusEvent::Hangup {
            handle: handle()?,
            reason: optional_string(raw, "reason")?.unwrap_or_default(),
        },
        "detached" => JanusEvent::Detached { handle: handle()? },
        "media" => JanusEvent::Media {
            handle: handle()?,
            kind: optional_string(raw, "type")?.ok_or("\"type\" is missing")?,
            mid: optional_string(raw, "mid")?,
            receiving: match raw.get("receiving") {
                Some(Value::Bool(b)) => *b,
                other => {
                    return Err(format!(
                        "\"receiving\" is {}, not a boolean",
                        describe(other)
                    ));
                }
            },
        },
        "slowlink" => JanusEvent::SlowLink {
            handle: handle()?,
            uplink: match raw.get("uplink") {
                Some(Value::Bool(b)) => *b,
                other => return Err(format!("\"uplink\" is {}, not a boolean", describe(other))),
            },
            mid: optional_string(raw, "mid")?,
            lost: optional_u64(raw, "lost")?.unwrap_or(0),
        },
        "error" => {
            let (code, reason) = envelope.error.clone().ok_or("\"error\" is missing")?;
            JanusEvent::Error {
                handle: envelope.sender,
                code,
                reason,
            }
        }
        // An SDP we did not ask for must reach the session logic whatever else the event says.
        "event" if envelope.jsep.is_some() => JanusEvent::Renegotiation {
            handle: handle()?,
            jsep: envelope.jsep.clone().ok_or("\"jsep\" is missing")?,
        },
        "event" => match &envelope.plugin_data {
            Some(data) => parse_plugin_event(handle()?, data)?,
            None => JanusEvent::Other {
                handle: envelope.sender,
                summary: "event without plugin data".to_owned(),
            },
        },
        other => JanusEvent::Other {
            handle: envelope.sender,
            summary: format!("janus {other:?}"),
        },
    })
}

fn parse_plugin_event(handle: u64, data: &Map<String, Value>) -> Result<JanusEvent, String> {
    let kind = optional_string(data, "videoroom")?.unwrap_or_default();
    let room = optional_u64(data, "room")?;
    if let Some(code) = data.get("error_code") {
        return Ok(JanusEvent::Error {
            handle: Some(handle),
            code: code.as_i64().ok_or("\"error_code\" is not an integer")?,
            reason: optional_string(data, "error")?.unwrap_or_default(),
        });
    }
    match kind.as_str() {
        "talking" | "stopped-talking" => {
            return Ok(JanusEvent::Talking {
                handle,
                room,
                id: required_u64(data, "id")?,
                talking: kind == "talking",
            });
        }
        "destroyed" => return Ok(JanusEvent::RoomDestroyed { handle, room }),
        _ => {}
    }
    if let Some(list) = data.get("publishers") {
        return Ok(JanusEvent::PublishersJoined {
            handle,
            room,
            publishers: parse_publishers(list)?,
        });
    }
    // `leaving`/`unpublished` are ids here; "ok" only in answers to our own requests.
    if let Some(id) = data.get("leaving").and_then(Value::as_u64) {
        return Ok(JanusEvent::PublisherLeft { handle, room, id });
    }
    if let Some(id) = data.get("unpublished").and_then(Value::as_u64) {
        return Ok(JanusEvent::PublisherUnpublished { handle, room, id });
    }
    if let Some(id) = data.get("kicked").and_then(Value::as_u64) {
        return Ok(JanusEvent::PublisherKicked { handle, room, id });
    }
    if let Some(joining) = data.get("joining") {
        let Value::Object(joining) = joining else {
            return Err(format!(
                "\"joining\" is {}, not an object",
                kind_of(joining)
            ));
        };
        return Ok(JanusEvent::ParticipantJoining {
            handle,
            room,
            id: required_u64(joining, "id")?,
            display: optional_string(joining, "display")?,
        });
    }
    Ok(JanusEvent::Other {
        handle: Some(handle),
        summary: format!("videoroom {kind:?}"),
    })
}

/// Reads a `publishers` list (in `joined` answers and in events).
pub(super) fn parse_publishers(list: &Value) -> Result<Vec<Publisher>, String> {
    let Value::Array(items) = list else {
        return Err(format!("\"publishers\" is {}, not an array", kind_of(list)));
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(p) = item else {
                return Err(format!("a publisher is {}, not an object", kind_of(item)));
            };
            let streams = match p.get("streams") {
                None => Vec::new(),
                Some(Value::Array(s)) => s.iter().map(parse_stream).collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(format!("\"streams\" is {}, not an array", kind_of(other)));
                }
            };
            Ok(Publisher {
                id: required_u64(p, "id").map_err(|e| format!("publisher: {e}"))?,
                display: optional_string(p, "display")?,
                streams,
            })
        })
        .collect()
}

fn parse_stream(value: &Value) -> Result<PublishedStream, String> {
    let Value::Object(s) = value else {
        return Err(format!("a stream is {}, not an object", kind_of(value)));
    };
    let kind = match optional_string(s, "type")?.as_deref() {
        Some("audio") => MediaKind::Audio,
        Some("video") => MediaKind::Video,
        Some("data") => MediaKind::Data,
        _ => return Err("a stream type is not audio, video or data".to_owned()),
    };
    Ok(PublishedStream {
        kind,
        mid: optional_string(s, "mid")?.ok_or("a stream has no \"mid\"")?,
        codec: optional_string(s, "codec")?,
        disabled: s.get("disabled").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn describe(value: Option<&Value>) -> &'static str {
    value.map(kind_of).unwrap_or("missing")
}
