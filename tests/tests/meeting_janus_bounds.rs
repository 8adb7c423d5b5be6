//! A Janus room with more publishers than a room can show: roomd receives at most 9 feeds
//! and ignores the rest (with a log line), and names the server chose are bounded.
//!
//! The Janus here is a hostile server speaking just enough of the VideoRoom protocol: it lists
//! 12 publishers with very long names, offers each subscriber a valid SDP, accepts `start`,
//! and never answers roomd's own `publish` (so the meeting stays in joining while it watches).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use roomd_tests::{HarnessError, HostileAnswer, HostileRequest, HostileServer, Roomd, meeting};
use serde_json::{Value, json};

const ROOM: u64 = 1234;
const PUBLISHERS: u64 = 12;
const LIMIT: usize = 9;
/// An audio-only offer webrtcbin answers (DTLS-SRTP, one bundled m-line).
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
    a=ice-ufrag:fkJd\r\na=ice-pwd:3bVhJ1x0yR9sL2pQ7mN4kT8w\r\n\
    a=fingerprint:sha-256 1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09:1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09\r\n\
    a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n";

fn long_name(n: u64) -> String {
    format!("Publisher {n} {}", "x".repeat(500))
}

fn success(request: &Value, extra: Value) -> HostileAnswer {
    let mut answer = json!({ "janus": "success", "transaction": request["transaction"] });
    if let (Value::Object(answer), Value::Object(extra)) = (&mut answer, extra) {
        answer.extend(extra);
    }
    HostileAnswer::reply(200, "application/json", &answer.to_string())
}

fn videoroom(data: Value) -> Value {
    json!({ "plugindata": { "plugin": "janus.plugin.videoroom", "data": data } })
}

fn fake_janus(handles: &AtomicU64, request: &HostileRequest) -> HostileAnswer {
    if request.method == "GET" {
        return HostileAnswer::Hang; // the long poll: no events
    }
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    match body["janus"].as_str().unwrap_or_default() {
        "create" => success(&body, json!({ "data": { "id": 1 } })),
        "attach" => success(
            &body,
            json!({ "data": { "id": handles.fetch_add(1, Ordering::SeqCst) } }),
        ),
        "message" => match (
            body["body"]["request"].as_str().unwrap_or_default(),
            body["body"]["ptype"].as_str().unwrap_or_default(),
        ) {
            ("join", "publisher") => {
                let publishers: Vec<Value> = (1..=PUBLISHERS)
                    .map(|n| json!({ "id": 100 + n, "display": long_name(n) }))
                    .collect();
                success(
                    &body,
                    videoroom(json!({ "videoroom": "joined", "room": ROOM, "id": 1,
                                      "private_id": 7, "publishers": publishers })),
                )
            }
            ("join", "subscriber") => {
                let feed = body["body"]["streams"][0]["feed"].clone();
                let mut answer = videoroom(json!({ "videoroom": "attached", "room": ROOM,
                    "streams": [{ "type": "audio", "mid": "0", "feed_id": feed }] }));
                answer["jsep"] = json!({ "type": "offer", "sdp": OFFER });
                success(&body, answer)
            }
            ("start", _) => success(
                &body,
                videoroom(json!({ "videoroom": "event", "started": "ok" })),
            ),
            ("leave", _) => success(
                &body,
                videoroom(json!({ "videoroom": "event", "left": "ok" })),
            ),
            // roomd's own publish: never answered while the test watches.
            _ => HostileAnswer::Hang,
        },
        _ => HostileAnswer::reply(
            200,
            "application/json",
            &json!({ "janus": "ack", "transaction": body["transaction"] }).to_string(),
        ),
    }
}

fn subscriber_joins(server: &HostileServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.body.contains("\"subscriber\""))
        .count()
}

#[test]
fn at_most_nine_janus_feeds_are_received() -> Result<(), HarnessError> {
    let handles = AtomicU64::new(10);
    let server = HostileServer::start(move |request| fake_janus(&handles, request))?;
    let roomd = Roomd::start_claimed("")?;
    roomd.command(
        "meeting.join",
        &json!({ "target": { "kind": "janus", "server": server.url("/janus"), "room": ROOM } }),
    )?;
    // Wait until roomd stops subscribing (the count stands still for 3 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (usize::MAX, Instant::now());
    loop {
        let now = subscriber_joins(&server);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > 0 && last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "roomd is still subscribing: {now}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        subscriber_joins(&server),
        LIMIT,
        "roomd subscribed to more feeds than a room shows"
    );
    let status = meeting::status(&roomd)?;
    let participants = status["participants"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(participants.len(), LIMIT, "{status}");
    for p in &participants {
        let name = p["name"].as_str().unwrap_or_default();
        assert!(name.chars().count() <= 64, "an unbounded name: {name:?}");
    }
    assert!(
        roomd.stderr_text().contains("not receiving Janus feed"),
        "the ignored feeds are not logged"
    );
    Ok(())
}
