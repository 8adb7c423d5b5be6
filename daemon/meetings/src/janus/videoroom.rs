//! Handles on the VideoRoom plugin: one publisher handle (our camera and microphone; another for
//! shared content) and one subscriber handle per remote feed (or several feeds on one handle).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::error::JanusError;
use super::event::{MediaKind, Publisher, parse_publishers};
use super::message::{Envelope, Jsep, optional_string, optional_u64, required_u64};
use super::session::{Candidate, JanusSession};

const PLUGIN: &str = "janus.plugin.videoroom";

/// What `join` as a publisher tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The room joined.
    pub room: u64,
    /// Our publisher id in the room (other participants see it as a feed id).
    pub id: u64,
    /// Identifies us to the room when subscribing (rooms with `require_pvtid`).
    pub private_id: Option<u64>,
    /// Who publishes already.
    pub publishers: Vec<Publisher>,
}

/// A feed (and optionally one of its streams) to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRef {
    /// The publisher's id in the room.
    pub feed: u64,
    /// One stream of the feed by its `mid`; all of its streams when `None`.
    pub mid: Option<String>,
}

/// One stream in a subscription, as Janus maps it into its offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedStream {
    /// The stream's `mid` in Janus' offer to us.
    pub mid: String,
    /// Audio, video or data.
    pub kind: MediaKind,
    /// The publisher it comes from (`feed_id`), if Janus says.
    pub feed: Option<u64>,
    /// That publisher's display name, if it set one.
    pub feed_display: Option<String>,
    /// The stream's `mid` in the publisher's SDP.
    pub feed_mid: Option<String>,
}

/// Janus' offer for a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberOffer {
    /// The SDP offer to answer.
    pub sdp: String,
    /// The streams it carries, in Janus' order.
    pub streams: Vec<SubscribedStream>,
}

/// A handle attached to the VideoRoom plugin.
#[derive(Debug, Clone)]
pub struct VideoRoomHandle {
    session: Arc<JanusSession>,
    id: u64,
    /// The room this handle joined (for error messages), once it has.
    room: Option<u64>,
}

impl VideoRoomHandle {
    /// Attaches a new VideoRoom handle to `session`.
    pub fn attach(session: &Arc<JanusSession>) -> Result<VideoRoomHandle, JanusError> {
        let id = session.attach(PLUGIN)?;
        Ok(VideoRoomHandle {
            session: session.clone(),
            id,
            room: None,
        })
    }

    /// The server's id for this handle (events name it as `handle`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Joins `room` as a publisher (no media yet: see [`VideoRoomHandle::publish`]).
    pub fn join_publisher(
        &mut self,
        room: u64,
        pin: Option<&str>,
        display: &str,
    ) -> Result<Joined, JanusError> {
        self.join_publisher_as(room, pin, display, None)
    }

    /// Joins `room` as a publisher with our own publisher `id` (Janus picks one when `None`).
    /// Knowing the id before Janus announces the feed lets the room tell its own second feed
    /// (shared content) from everyone else's. Janus refuses an id already in the room.
    pub fn join_publisher_as(
        &mut self,
        room: u64,
        pin: Option<&str>,
        display: &str,
        id: Option<u64>,
    ) -> Result<Joined, JanusError> {
        let mut body =
            json!({"request": "join", "ptype": "publisher", "room": room, "display": display});
        if let Some(pin) = pin {
            body["pin"] = json!(pin);
        }
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        self.room = Some(room);
        let data = self.request("join", body, None, room)?;
        expect_videoroom(&data, "joined", "join")?;
        let malformed = |problem: String| malformed("join", problem);
        Ok(Joined {
            room: optional_u64(&data, "room")
                .map_err(malformed)?
                .unwrap_or(room),
            id: required_u64(&data, "id").map_err(malformed)?,
            private_id: optional_u64(&data, "private_id").map_err(malformed)?,
            publishers: match data.get("publishers") {
                Some(list) => parse_publishers(list).map_err(malformed)?,
                None => Vec::new(),
            },
        })
    }

    /// Publishes with our SDP `offer`; returns Janus' SDP answer.
    pub fn publish(&self, offer: &str) -> Result<String, JanusError> {
        let (data, jsep) =
            self.request_with_jsep("publish", json!({"request": "publish"}), ("offer", offer))?;
        expect_ok(&data, "configured", "publish")?;
        answer_sdp(jsep, "publish")
    }

    /// Tells Janus whether to relay our stream `mid` to the room (muting at the server: the
    /// room stops getting it even while our PeerConnection keeps sending).
    pub fn set_relayed(&self, mid: &str, relay: bool) -> Result<(), JanusError> {
        let body = json!({"request": "configure", "streams": [{"mid": mid, "send": relay}]});
        let data = self.request("configure", body, None, self.room_or_zero())?;
        expect_ok(&data, "configured", "configure")
    }

    /// Stops publishing (we stay in the room).
    pub fn unpublish(&self) -> Result<(), JanusError> {
        let data = self.request(
            "unpublish",
            json!({"request": "unpublish"}),
            None,
            self.room_or_zero(),
        )?;
        expect_ok(&data, "unpublished", "unpublish")
    }

    /// Joins `room` as a subscriber to `feeds`; returns Janus' offer. `private_id` is ours from
    /// [`Joined`] (rooms with `require_pvtid` need it).
    pub fn join_subscriber(
        &mut self,
        room: u64,
        pin: Option<&str>,
        feeds: &[FeedRef],
        private_id: Option<u64>,
    ) -> Result<SubscriberOffer, JanusError> {
        let streams: Vec<Value> = feeds
            .iter()
            .map(|f| match &f.mid {
                Some(mid) => json!({"feed": f.feed, "mid": mid}),
                None => json!({"feed": f.feed}),
            })
            .collect();
        let mut body =
            json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
        if let Some(pin) = pin {
            body["pin"] = json!(pin);
        }
        if let Some(private_id) = private_id {
            body["private_id"] = json!(private_id);
        }
        self.room = Some(room);
        let reply = self.session.message(self.id, "join", body, None)?;
        let data = plugin_data(&reply, "join", room)?;
        expect_videoroom(&data, "attached", "join")?;
        let jsep = reply
            .jsep
            .ok_or_else(|| malformed("join", "Janus sent no offer".to_owned()))?;
        if jsep.kind != "offer" {
            return Err(malformed(
                "join",
                "Janus sent an SDP that is not an offer".to_owned(),
            ));
        }
        let streams = match data.get("streams") {
            Some(Value::Array(list)) => list.iter().map(parse_subscribed).collect::<Result<_, _>>(),
            _ => Err("\"streams\" is missing or not an array".to_owned()),
        }
        .map_err(|p| malformed("join", p))?;
        Ok(SubscriberOffer {
            sdp: jsep.sdp,
            streams,
        })
    }

    /// Starts a subscription with our SDP `answer` to Janus' offer.
    pub fn start(&self, answer: &str) -> Result<(), JanusError> {
        let (data, _) =
            self.request_with_jsep("start", json!({"request": "start"}), ("answer", answer))?;
        expect_ok(&data, "started", "start")
    }

    /// Leaves the room (publisher) or ends the subscription (subscriber).
    pub fn leave(&self) -> Result<(), JanusError> {
        let data = self.request(
            "leave",
            json!({"request": "leave"}),
            None,
            self.room_or_zero(),
        )?;
        // Publishers get `leaving: "ok"`, subscribers `left: "ok"`.
        if data.get("leaving").and_then(Value::as_str) == Some("ok")
            || data.get("left").and_then(Value::as_str) == Some("ok")
        {
            Ok(())
        } else {
            Err(malformed(
                "leave",
                "the answer says neither leaving nor left \"ok\"".to_owned(),
            ))
        }
    }

    /// Sends one of our ICE candidates on this handle's PeerConnection (`None`: complete).
    pub fn trickle(&self, candidate: Option<&Candidate>) -> Result<(), JanusError> {
        self.session.trickle(self.id, candidate)
    }

    /// Detaches the handle from the plugin (the PeerConnection, if any, is closed).
    pub fn detach(self) -> Result<(), JanusError> {
        self.session.detach(self.id)
    }

    fn room_or_zero(&self) -> u64 {
        self.room.unwrap_or(0)
    }

    fn request(
        &self,
        request: &str,
        body: Value,
        jsep: Option<(&str, &str)>,
        room: u64,
    ) -> Result<Map<String, Value>, JanusError> {
        let reply = self.session.message(self.id, request, body, jsep)?;
        plugin_data(&reply, request, room)
    }

    fn request_with_jsep(
        &self,
        request: &str,
        body: Value,
        jsep: (&str, &str),
    ) -> Result<(Map<String, Value>, Option<Jsep>), JanusError> {
        let reply = self.session.message(self.id, request, body, Some(jsep))?;
        let data = plugin_data(&reply, request, self.room_or_zero())?;
        Ok((data, reply.jsep))
    }
}

/// The VideoRoom's answer in `reply`, with its error codes turned into typed errors.
fn plugin_data(
    reply: &Envelope,
    request: &str,
    room: u64,
) -> Result<Map<String, Value>, JanusError> {
    let data = reply
        .plugin_data
        .clone()
        .ok_or_else(|| malformed(request, "the answer has no plugin data".to_owned()))?;
    if let Some(code) = data.get("error_code") {
        let reason = optional_string(&data, "error")
            .ok()
            .flatten()
            .unwrap_or_default();
        return Err(match code.as_i64() {
            Some(426) => JanusError::NoSuchRoom { room },
            Some(433) => JanusError::Unauthorized { room },
            // A room with a PIN asked without one: "Missing mandatory element (pin)".
            Some(429) if reason.contains("(pin)") => JanusError::Unauthorized { room },
            Some(code) => JanusError::VideoRoom {
                request: request.to_owned(),
                code,
            },
            None => malformed(request, "\"error_code\" is not an integer".to_owned()),
        });
    }
    Ok(data)
}

fn expect_videoroom(
    data: &Map<String, Value>,
    expected: &str,
    request: &str,
) -> Result<(), JanusError> {
    match data.get("videoroom").and_then(Value::as_str) {
        Some(kind) if kind == expected => Ok(()),
        // What the server wrote instead stays out of the message (it reaches status).
        Some(_) => Err(malformed(
            request,
            format!("expected videoroom {expected:?}, got another kind"),
        )),
        None => Err(malformed(
            request,
            format!("expected videoroom {expected:?}, got none"),
        )),
    }
}

fn expect_ok(data: &Map<String, Value>, field: &str, request: &str) -> Result<(), JanusError> {
    if data.get(field).and_then(Value::as_str) == Some("ok") {
        Ok(())
    } else {
        Err(malformed(
            request,
            format!("the answer lacks {field:?}: \"ok\""),
        ))
    }
}

fn answer_sdp(jsep: Option<Jsep>, request: &str) -> Result<String, JanusError> {
    match jsep {
        Some(jsep) if jsep.kind == "answer" => Ok(jsep.sdp),
        Some(jsep) => Err(malformed(
            request,
            format!("Janus sent an SDP {:?}, not an answer", jsep.kind),
        )),
        None => Err(malformed(request, "Janus sent no SDP answer".to_owned())),
    }
}

fn parse_subscribed(value: &Value) -> Result<SubscribedStream, String> {
    let Value::Object(s) = value else {
        return Err("a subscribed stream is not an object".to_owned());
    };
    let kind = match optional_string(s, "type")?.as_deref() {
        Some("audio") => MediaKind::Audio,
        Some("video") => MediaKind::Video,
        Some("data") => MediaKind::Data,
        _ => return Err("a stream type is not audio, video or data".to_owned()),
    };
    Ok(SubscribedStream {
        mid: optional_string(s, "mid")?.ok_or("a subscribed stream has no \"mid\"")?,
        kind,
        feed: optional_u64(s, "feed_id")?,
        feed_display: optional_string(s, "feed_display")?,
        feed_mid: optional_string(s, "feed_mid")?,
    })
}

fn malformed(request: &str, problem: String) -> JanusError {
    JanusError::BadAnswer {
        request: request.to_owned(),
        problem,
    }
}
