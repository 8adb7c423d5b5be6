//! Two rooms in one Janus VideoRoom with end-to-end encryption (`meeting.e2ee`, docs/security.md):
//! each room's device key is in its own swtpm and certified by a customer CA made here; each
//! room shows the other as end-to-end encrypted and verified by that certificate's name, and
//! decodes the other's moving picture, although Janus forwards only frames it cannot read: what
//! Janus has of a room's video, forwarded by Janus itself as plain RTP (`rtp_forward`) to a
//! plain decoder, does not show the room's picture, while the same capture of a room without
//! end-to-end encryption does (the control).
//! When one leaves, the other makes a new sender key (a new key epoch in status).
//!
//! Layout: Janus inside the test namespace (10.77.<n>.2), both rooms on the host.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use roomd_tests::e2ee::{DeviceCa, EnrolledRoom};
use roomd_tests::{
    BrowserPeer, GstLaunch, HarnessError, Janus, Roomd, Swtpm, TestNetwork, meeting,
};
use serde_json::{Value, json};

const ROOM: u64 = 7301;
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const KEYS_TIMEOUT: Duration = Duration::from_secs(30);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the panel in Chromium may take to show a change of status (events, then a render).
const PANEL_TIMEOUT: Duration = Duration::from_secs(20);
/// About one second of video at 30 fps.
const FRAMES: u64 = 30;
/// How long the SFU's view of a room's video is captured (it starts before the other room
/// joins and runs while the keys are agreed).
const SFU_WATCH: Duration = Duration::from_secs(8);
/// How long B must hear nothing from A once both are keyed: several announce intervals.
const QUIET: Duration = Duration::from_secs(5);
/// The size the captured pictures are scaled to before they are compared.
const VIEW_WIDTH: usize = 32;
const VIEW_HEIGHT: usize = 18;
/// The simulated camera's background (`daemon/media/src/simulated_camera.rs`: solid colour
/// 0x2d4a6b, with a small moving square and a clock on it), as RGB.
const CAMERA_BACKGROUND: [u8; 3] = [0x2d, 0x4a, 0x6b];

/// What each meeting here runs in: Janus with a room on a test network, a customer CA that
/// certifies the rooms, written to `ca_file` in `dir` (which the rooms trust).
struct Rig {
    // Janus goes before its network.
    janus: Janus,
    net: TestNetwork,
    ca: DeviceCa,
    dir: tempfile::TempDir,
    ca_file: std::path::PathBuf,
}

impl Rig {
    fn new(room: u64) -> Result<Rig, HarnessError> {
        let net = TestNetwork::create()?;
        let janus = Janus::builder(&net).room(room).start()?;
        let ca = DeviceCa::new("Customer device CA");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_file = dir.path().join("device-ca.pem");
        ca.write_pem(&ca_file)?;
        Ok(Rig {
            janus,
            net,
            ca,
            dir,
            ca_file,
        })
    }
}

fn janus_target(janus: &Janus, name: &str) -> Value {
    json!({
        "kind": "janus",
        "server": janus.https_url(),
        "room": janus.room(),
        "display_name": name,
    })
}

fn e2ee_room(
    name: &str,
    tpm: &Swtpm,
    janus: &Janus,
    ca_file: &std::path::Path,
) -> Result<Roomd, HarnessError> {
    e2ee_room_with(name, tpm, janus, ca_file, "")
}

fn e2ee_room_with(
    name: &str,
    tpm: &Swtpm,
    janus: &Janus,
    ca_file: &std::path::Path,
    meeting_toml: &str,
) -> Result<Roomd, HarnessError> {
    Roomd::start_claimed(&format!(
        "{}[system]\nname = \"{name}\"\n[meeting]\nca_file = \"{}\"\ne2ee = true\n\
         e2ee_ca_file = \"{}\"\n{meeting_toml}",
        tpm.identity_toml(),
        janus.ca_path().display(),
        ca_file.display()
    ))
}

/// Video frames the room sent so far (its own stream, `self`).
fn sent_video_frames(meeting: &Value) -> u64 {
    meeting::streams(meeting, "send", "video")
        .filter(|s| s["participant"] == "self")
        .filter_map(|s| s["frames"].as_u64())
        .max()
        .unwrap_or(0)
}

/// `status.meeting.e2ee` shows exactly one other participant, end-to-end encrypted and verified
/// by its certificate named `name`.
fn verified_as(meeting: &Value, name: &str) -> bool {
    let e2ee = &meeting["e2ee"];
    let participants = e2ee["participants"].as_array().cloned().unwrap_or_default();
    e2ee["state"] == "established"
        && participants.len() == 1
        && participants[0]["e2ee"] == true
        && participants[0]["verified"] == true
        && participants[0]["verified_by"] == "certificate"
        && participants[0]["certificate_name"] == name
}

fn received_video_frames(meeting: &Value) -> u64 {
    meeting::stream_frames(meeting, "receive", "video")
        .into_iter()
        .max()
        .unwrap_or(0)
}

/// Key messages the room logged hearing so far (debug level; the log never shows keys).
fn key_messages(roomd: &Roomd) -> usize {
    roomd
        .stderr_text()
        .matches("end-to-end key message of")
        .count()
}

/// One request to Janus's plain HTTP API; the answer.
fn janus_request(url: &str, body: &Value) -> Result<Value, HarnessError> {
    let transport = |e: ureq::Error| HarnessError::Transport {
        method: "POST".into(),
        path: url.to_owned(),
        message: e.to_string(),
    };
    let mut answer = ureq::post(url).send_json(body).map_err(transport)?;
    answer.body_mut().read_json().map_err(transport)
}

/// A VideoRoom handle of the SFU's operator on Janus's own API: what the operator can do
/// without being a participant.
fn operator_handle(janus: &Janus) -> Result<String, HarnessError> {
    let url = janus.http_url();
    let session = janus_request(&url, &json!({"janus": "create", "transaction": "c"}))?;
    let session = session["data"]["id"].as_u64().unwrap_or_default();
    let handle = janus_request(
        &format!("{url}/{session}"),
        &json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "a"}),
    )?;
    let handle = handle["data"]["id"].as_u64().unwrap_or_default();
    Ok(format!("{url}/{session}/{handle}"))
}

/// A synchronous VideoRoom request on `handle`; the plugin's answer.
fn videoroom(handle: &str, body: Value) -> Result<Value, HarnessError> {
    let answer = janus_request(
        handle,
        &json!({"janus": "message", "transaction": "m", "body": body}),
    )?;
    Ok(answer["plugindata"]["data"].clone())
}

/// The Janus publisher id of the room's participant called `display`.
fn publisher_id(handle: &str, room: u64, display: &str) -> Result<u64, HarnessError> {
    let list = videoroom(handle, json!({"request": "listparticipants", "room": room}))?;
    list["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["display"] == display && p["publisher"] == true)
        .and_then(|p| p["id"].as_u64())
        .ok_or_else(|| HarnessError::UnexpectedBody {
            what: "Janus's participant list".into(),
            message: format!("no publisher {display:?}: {list}"),
        })
}

/// What the SFU's operator sees of a room's video: Janus forwards it, as Janus has it (after
/// its own DTLS-SRTP), as plain RTP to a plain H.264 depayloader and decoder on the host.
struct SfuView {
    plain: GstLaunch,
    file: std::path::PathBuf,
    started: Instant,
}

impl SfuView {
    /// Starts forwarding the video of the publisher called `display`. Start it before another
    /// participant subscribes: the new subscriber's key frame request gives the plain decoder
    /// a key frame too (the encoder sends one unasked only every 10 s).
    fn start(
        net: &TestNetwork,
        janus: &Janus,
        display: &str,
        dir: &Path,
    ) -> Result<SfuView, HarnessError> {
        let host: Ipv4Addr = net.host_address();
        let port = UdpSocket::bind((host, 0))
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free UDP port");
        let file = dir.join(format!("sfu-view-{port}.rgb"));
        let plain = GstLaunch::start(
            "a plain H.264 decoder of what Janus forwards",
            &format!(
                "udpsrc address={host} port={port} \
                 caps=\"application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96\" ! \
                 identity name=packets silent=false ! rtph264depay ! h264parse ! avdec_h264 ! \
                 videoconvert ! videoscale ! \
                 video/x-raw,format=RGB,width={VIEW_WIDTH},height={VIEW_HEIGHT},pixel-aspect-ratio=1/1 ! \
                 filesink location={} buffer-mode=unbuffered sync=false async=false",
                file.display()
            ),
        )?;
        let handle = operator_handle(janus)?;
        let feed = publisher_id(&handle, janus.room(), display)?;
        let answer = videoroom(
            &handle,
            json!({
                "request": "rtp_forward", "room": janus.room(), "publisher_id": feed,
                "host": host.to_string(), "host_family": "ipv4",
                "streams": [{"mid": "video0", "port": port}],
            }),
        )?;
        assert_eq!(answer["videoroom"], "rtp_forward", "{answer}");
        Ok(SfuView {
            plain,
            file,
            started: Instant::now(),
        })
    }

    /// Once [`SFU_WATCH`] has passed since the start: the RTP packets that arrived and the
    /// pictures the plain decoder made, scaled to [`VIEW_WIDTH`] × [`VIEW_HEIGHT`] RGB.
    fn finish(self) -> (u64, Vec<Vec<u8>>) {
        std::thread::sleep(SFU_WATCH.saturating_sub(self.started.elapsed()));
        let packets = self.plain.frames("packets");
        drop(self.plain);
        let bytes = std::fs::read(&self.file).unwrap_or_default();
        let pictures = bytes
            .chunks_exact(VIEW_WIDTH * VIEW_HEIGHT * 3)
            .map(<[u8]>::to_vec)
            .collect();
        (packets, pictures)
    }
}

/// Whether `picture` (RGB) shows the simulated camera: most of it is the camera's background
/// colour (the square and the clock cover little of it). A picture decoded from frames the
/// decoder cannot read (concealment of garbage) does not.
fn shows_the_camera(picture: &[u8]) -> bool {
    let close = picture
        .chunks_exact(3)
        .filter(|pixel| {
            pixel
                .iter()
                .zip(CAMERA_BACKGROUND)
                .all(|(&p, c)| p.abs_diff(c) <= 24)
        })
        .count();
    close * 10 >= VIEW_WIDTH * VIEW_HEIGHT * 7
}

#[test]
fn two_rooms_meet_end_to_end_encrypted_and_verified_through_janus() -> Result<(), HarnessError> {
    let started = Instant::now();
    // Bound in this order, dropped in the reverse: Janus before its network.
    let Rig {
        net,
        janus,
        ca,
        dir,
        ca_file,
    } = Rig::new(ROOM)?;

    let (tpm_a, tpm_b) = (Swtpm::start()?, Swtpm::start()?);
    let roomd_a = e2ee_room("Room A", &tpm_a, &janus, &ca_file)?;
    // B logs each key message it hears (at debug level; never the keys).
    let roomd_b = e2ee_room_with(
        "Room B",
        &tpm_b,
        &janus,
        &ca_file,
        "[logging]\nlevel = \"debug\"\n",
    )?;
    let a = EnrolledRoom::enrol(&roomd_a, &ca)?;
    let b = EnrolledRoom::enrol(&roomd_b, &ca)?;
    assert_ne!(a.certificate_name, b.certificate_name);
    eprintln!(
        "rooms enrolled as {:?} and {:?} after {:?}",
        a.certificate_name,
        b.certificate_name,
        started.elapsed()
    );

    a.command(
        "meeting.join",
        &json!({ "target": janus_target(&janus, "Room A") }),
    )?;
    a.wait_for("A connected", JOIN_TIMEOUT, |m| m["state"] == "connected")?;
    // The SFU's operator records A's video from now on (see below).
    let sfu = SfuView::start(&net, &janus, "Room A", dir.path())?;
    let joined_at = Instant::now();
    b.command(
        "meeting.join",
        &json!({ "target": janus_target(&janus, "Room B") }),
    )?;

    let seen_by_a = a
        .wait_for(
            "A: B end-to-end encrypted and verified",
            KEYS_TIMEOUT,
            |m| verified_as(m, &b.certificate_name),
        )
        .inspect_err(|_| {
            eprintln!("--- room A's log:\n{}", roomd_a.stderr_text());
            eprintln!("--- room B's log:\n{}", roomd_b.stderr_text());
            eprintln!("--- Janus's log:\n{}", janus.log_text());
        })?;
    let seen_by_b = b.wait_for(
        "B: A end-to-end encrypted and verified",
        KEYS_TIMEOUT,
        |m| verified_as(m, &a.certificate_name),
    )?;
    eprintln!(
        "keys established both ways {:?} after B joined",
        joined_at.elapsed()
    );
    assert_eq!(seen_by_a["e2ee"]["key_epoch"], 0, "{seen_by_a}");
    assert_eq!(seen_by_b["e2ee"]["key_epoch"], 0, "{seen_by_b}");

    // Each decodes the other's moving picture: frames opened with the other's key.
    a.wait_for("A decodes B", MEDIA_TIMEOUT, |m| {
        received_video_frames(m) > FRAMES
    })?;
    b.wait_for("B decodes A", MEDIA_TIMEOUT, |m| {
        received_video_frames(m) > FRAMES
    })?;
    eprintln!(
        "pictures both ways {:?} after B joined",
        joined_at.elapsed()
    );
    // Keyed both ways: from now on neither room repeats its announce, so B hears no key
    // message from A (they came every 2 s before).
    let keyed_at = Instant::now();
    let heard_when_keyed = key_messages(&roomd_b);
    let text = format!("{seen_by_a}{seen_by_b}");
    assert!(!text.contains("secret"), "{text}");

    // The SFU cannot watch: room A's video as Janus has it decodes, in a plain decoder, to no
    // picture of A's camera, while B decodes A's camera meanwhile (the control of the capture
    // path itself is `the_sfus_view_of_a_room_without_e2ee_shows_its_camera`).
    let (packets, pictures) = sfu.finish();
    let b_decoded = received_video_frames(&b.meeting()?);
    let shown = pictures.iter().filter(|p| shows_the_camera(p)).count();
    eprintln!(
        "the SFU's view of A over {SFU_WATCH:?}: {packets} RTP packets, {} pictures from a plain \
         decoder, {shown} of them A's camera; B decoded {b_decoded} frames of A",
        pictures.len()
    );
    assert!(packets > 30, "Janus forwarded {packets} packets");
    assert!(b_decoded > 30, "B decoded {b_decoded} frames of A");
    assert_eq!(shown, 0, "the plain decoder showed A's camera");
    std::thread::sleep(QUIET.saturating_sub(keyed_at.elapsed()));
    let heard = key_messages(&roomd_b) - heard_when_keyed;
    eprintln!(
        "B heard {heard} key messages from A in the {:?} after both were keyed \
         ({heard_when_keyed} before)",
        keyed_at.elapsed()
    );
    assert!(heard_when_keyed > 0, "B's log shows no key message at all");
    assert_eq!(heard, 0, "A repeated itself once keyed");

    // B leaves: A forgets B's keys and makes a new sender key (epoch 1).
    b.command("meeting.leave", &json!({}))?;
    let left_at = Instant::now();
    let rekeyed = a.wait_for("A rekeyed after B left", KEYS_TIMEOUT, |m| {
        m["e2ee"]["key_epoch"] == 1
            && m["e2ee"]["participants"]
                .as_array()
                .is_some_and(Vec::is_empty)
    })?;
    eprintln!(
        "A rekeyed {:?} after B left: {}",
        left_at.elapsed(),
        rekeyed["e2ee"]
    );
    a.command("meeting.leave", &json!({}))?;
    drop((roomd_a, roomd_b));
    eprintln!("whole test {:?}", started.elapsed());
    Ok(())
}

/// `meeting.require_e2ee`: a room without end-to-end encryption joins; the E2EE room shows it
/// as not end-to-end encrypted, says why in status, and sends no media while it is there. The
/// other room shows end-to-end encryption off and receives nothing it could decode.
#[test]
fn under_require_e2ee_a_room_sends_nothing_while_a_participant_has_no_keys()
-> Result<(), HarnessError> {
    let started = Instant::now();
    // Bound in this order, dropped in the reverse: Janus before its network.
    let Rig {
        net: _net,
        janus,
        ca,
        dir: _dir,
        ca_file,
    } = Rig::new(ROOM + 1)?;
    let tpm = Swtpm::start()?;
    let roomd_a = e2ee_room_with("Room A", &tpm, &janus, &ca_file, "require_e2ee = true\n")?;
    let a = EnrolledRoom::enrol(&roomd_a, &ca)?;
    let plain = Roomd::start_claimed(&format!(
        "[system]\nname = \"Room B\"\n[meeting]\nca_file = \"{}\"\n",
        janus.ca_path().display()
    ))?;

    a.command(
        "meeting.join",
        &json!({ "target": janus_target(&janus, "Room A") }),
    )?;
    a.wait_for("A connected", JOIN_TIMEOUT, |m| m["state"] == "connected")?;
    plain.command(
        "meeting.join",
        &json!({ "target": janus_target(&janus, "Room B") }),
    )?;
    meeting::wait_for(&plain, "B connected", JOIN_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;

    let refused = a.wait_for(
        "A: B without end-to-end keys, media held",
        KEYS_TIMEOUT,
        |m| {
            let e2ee = &m["e2ee"];
            e2ee["state"] == "establishing"
                && e2ee["participants"][0]["e2ee"] == false
                && e2ee["participants"][0]["verified"] == false
                && e2ee["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("require_e2ee"))
        },
    )?;
    eprintln!("A holds its media: {}", refused["e2ee"]);
    // A receives B's stream (clear frames it refuses) and sends nothing over time.
    let before = sent_video_frames(&a.meeting()?);
    std::thread::sleep(Duration::from_secs(3));
    let after = a.meeting()?;
    assert_eq!(sent_video_frames(&after), before, "A sent video: {after}");
    assert_eq!(
        received_video_frames(&after),
        0,
        "A decoded clear frames: {after}"
    );
    let b = meeting::status(&plain)?;
    assert_eq!(b["e2ee"]["state"], "off", "{b}");
    assert_eq!(received_video_frames(&b), 0, "B decoded A: {b}");
    eprintln!(
        "A sent {before} video frames in all, none in 3 s; whole test {:?}",
        started.elapsed()
    );
    Ok(())
}

/// The control for the SFU's view: a room without end-to-end encryption, captured the same way
/// (Janus's `rtp_forward` into a plain decoder), shows its camera.
#[test]
fn the_sfus_view_of_a_room_without_e2ee_shows_its_camera() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let janus = Janus::builder(&net).room(ROOM + 2).start()?;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plain_room = |name: &str| {
        Roomd::start_claimed(&format!(
            "[system]\nname = \"{name}\"\n[meeting]\nca_file = \"{}\"\n",
            janus.ca_path().display()
        ))
    };
    let (p, q) = (plain_room("Room P")?, plain_room("Room Q")?);
    p.command(
        "meeting.join",
        &json!({ "target": janus_target(&janus, "Room P") }),
    )?;
    meeting::wait_for(&p, "P connected", JOIN_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    // As in the encrypted meeting: the capture starts, then another room joins.
    let sfu = SfuView::start(&net, &janus, "Room P", dir.path())?;
    q.command(
        "meeting.join",
        &json!({ "target": janus_target(&janus, "Room Q") }),
    )?;
    let (packets, pictures) = sfu.finish();
    let shown = pictures.iter().filter(|p| shows_the_camera(p)).count();
    eprintln!(
        "the SFU's view of a room without E2EE over {SFU_WATCH:?}: {packets} RTP packets, {} \
         pictures, {shown} of them its camera; whole test {:?}",
        pictures.len(),
        started.elapsed()
    );
    assert!(packets > 30, "Janus forwarded {packets} packets");
    assert!(
        shown * 2 > pictures.len() && shown > 15,
        "{shown} of {} pictures show the camera",
        pictures.len()
    );
    Ok(())
}

/// `meeting.e2ee_rekey_s`: with both rooms present, each makes a new sender key on its timer
/// (epoch 1 after about 5 s), grants it to the other, and each goes on decoding the other's
/// picture under the new key.
#[test]
fn on_the_rekey_timer_both_rooms_take_new_keys_and_keep_decoding() -> Result<(), HarnessError> {
    const REKEY: Duration = Duration::from_secs(5);
    let started = Instant::now();
    // Bound in this order, dropped in the reverse: Janus before its network.
    let Rig {
        net: _net,
        janus,
        ca,
        dir: _dir,
        ca_file,
    } = Rig::new(ROOM + 3)?;
    let (tpm_a, tpm_b) = (Swtpm::start()?, Swtpm::start()?);
    let rekey = format!("e2ee_rekey_s = {}\n", REKEY.as_secs());
    let roomd_a = e2ee_room_with("Room A", &tpm_a, &janus, &ca_file, &rekey)?;
    let roomd_b = e2ee_room_with("Room B", &tpm_b, &janus, &ca_file, &rekey)?;
    let a = EnrolledRoom::enrol(&roomd_a, &ca)?;
    let b = EnrolledRoom::enrol(&roomd_b, &ca)?;
    for (room, name) in [(&a, "Room A"), (&b, "Room B")] {
        room.command(
            "meeting.join",
            &json!({ "target": janus_target(&janus, name) }),
        )?;
    }
    let joined_at = Instant::now();
    a.wait_for("A: B verified", KEYS_TIMEOUT, |m| {
        verified_as(m, &b.certificate_name)
    })?;
    b.wait_for("B: A verified", KEYS_TIMEOUT, |m| {
        verified_as(m, &a.certificate_name)
    })?;
    // Both rekey on their timers while the other stays: epoch 1, still keyed both ways.
    let rekeyed = |m: &Value, name: &str| {
        m["e2ee"]["key_epoch"].as_u64().is_some_and(|e| e >= 1) && verified_as(m, name)
    };
    let seen_by_a = a.wait_for("A rekeyed, B still keyed", KEYS_TIMEOUT, |m| {
        rekeyed(m, &b.certificate_name)
    })?;
    let seen_by_b = b.wait_for("B rekeyed, A still keyed", KEYS_TIMEOUT, |m| {
        rekeyed(m, &a.certificate_name)
    })?;
    let rekeyed_after = joined_at.elapsed();
    assert!(rekeyed_after >= REKEY, "rekeyed after {rekeyed_after:?}");
    // Pictures go on under the new keys: more than a second of video each way from now on.
    let (from_b, from_a) = (
        received_video_frames(&seen_by_a),
        received_video_frames(&seen_by_b),
    );
    a.wait_for("A decodes B after the rekey", MEDIA_TIMEOUT, |m| {
        received_video_frames(m) > from_b + FRAMES
    })?;
    b.wait_for("B decodes A after the rekey", MEDIA_TIMEOUT, |m| {
        received_video_frames(m) > from_a + FRAMES
    })?;
    eprintln!(
        "both rooms at key epoch 1 {rekeyed_after:?} after joining, pictures both ways {:?} \
         after joining; whole test {:?}",
        joined_at.elapsed(),
        started.elapsed()
    );
    let text = format!("{seen_by_a}{seen_by_b}");
    assert!(!text.contains("secret"), "{text}");
    Ok(())
}

/// The one other participant in `meeting`'s key agreement.
fn the_other(meeting: &Value) -> Value {
    meeting["e2ee"]["participants"][0].clone()
}

/// Issue 16, point 3: rooms whose certificates chain to no CA the other trusts are not shown as
/// verified; each shows the same short authentication string for the other; once the people in
/// one room confirm it, that room says who confirmed but the other is still unverified; once
/// both have, each shows the other as verified by the string. A confirmation for someone not in
/// the meeting is refused with a reason. Room A's side is done on its shipped touch panel in
/// Chromium, which shows each of these states as status has them.
#[test]
fn rooms_verify_each_other_by_the_short_authentication_string() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let janus = Janus::builder(&net).room(ROOM + 4).start()?;
    // Enrolled by one CA, while each trusts only another: certificates verify nothing here.
    let ca = DeviceCa::new("Customer device CA");
    let other_ca = DeviceCa::new("Some other CA");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_file = dir.path().join("other-ca.pem");
    other_ca.write_pem(&ca_file)?;
    let (tpm_a, tpm_b) = (Swtpm::start()?, Swtpm::start()?);
    let roomd_a = e2ee_room("Room A", &tpm_a, &janus, &ca_file)?;
    let roomd_b = e2ee_room("Room B", &tpm_b, &janus, &ca_file)?;
    let a = EnrolledRoom::enrol(&roomd_a, &ca)?;
    let b = EnrolledRoom::enrol(&roomd_b, &ca)?;
    for (room, name) in [(&a, "Room A"), (&b, "Room B")] {
        room.command(
            "meeting.join",
            &json!({ "target": janus_target(&janus, name) }),
        )?;
    }
    let keyed_unverified = |m: &Value| {
        let other = the_other(m);
        m["e2ee"]["state"] == "established"
            && other["e2ee"] == true
            && other["verified"] == false
            && other["sas"].as_str().is_some_and(|s| s.len() == 7)
    };
    let seen_by_a = a.wait_for("A: B keyed, not verified", KEYS_TIMEOUT, keyed_unverified)?;
    let seen_by_b = b.wait_for("B: A keyed, not verified", KEYS_TIMEOUT, keyed_unverified)?;
    let (b_as_seen, a_as_seen) = (the_other(&seen_by_a), the_other(&seen_by_b));
    eprintln!("A sees {b_as_seen}\nB sees {a_as_seen}");
    assert_eq!(
        b_as_seen["sas"], a_as_seen["sas"],
        "both read the same digits"
    );
    assert!(
        b_as_seen["reason"]
            .as_str()
            .is_some_and(|r| r.contains("trusted CA")),
        "{b_as_seen}"
    );

    // Someone not in the meeting: refused, and the reason names where the ids are.
    let refused = a
        .command("meeting.e2ee_confirm", &json!({ "participant": "j-1" }))
        .expect_err("a confirmation for nobody is refused");
    assert!(
        format!("{refused}").contains("status.meeting.e2ee.participants"),
        "{refused}"
    );

    // A's panel shows B end-to-end encrypted, not verified, with the same digits and a button.
    let (b_id, a_id) = (
        b_as_seen["id"].as_str().unwrap_or_default().to_owned(),
        a_as_seen["id"].as_str().unwrap_or_default().to_owned(),
    );
    let panel = a.panel()?;
    let row_of_b = |line: &Value| -> Value {
        line["participants"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["id"] == b_id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let shown = panel.wait_for(
        "A's panel: B unverified, with the code",
        PANEL_TIMEOUT,
        |l| {
            let row = row_of_b(l);
            l["meeting_e2ee"] == "established"
                && row["e2ee"] == "true"
                && row["verified_by"] == ""
                && row["confirm"] == true
        },
    )?;
    assert_eq!(row_of_b(&shown)["sas"], b_as_seen["sas"], "{shown}");

    // A's people tap "Code matches" on the panel: A says who confirmed; B is not verified
    // until B's people confirm too.
    panel.command(&json!({ "tap": "confirm-sas", "participant": b_id }))?;
    panel.wait_for("A's panel: confirmed, waiting for B", PANEL_TIMEOUT, |l| {
        let row = row_of_b(l);
        row["waiting"] == true && row["verified_by"] == "" && row["confirm"] == false
    })?;
    let confirmed_on_a = a.wait_for("A: confirmed, waiting for B", KEYS_TIMEOUT, |m| {
        let other = the_other(m);
        other["sas_confirmed_by"]
            .as_str()
            .is_some_and(|by| !by.is_empty())
            && other["verified"] == false
    })?;
    std::thread::sleep(Duration::from_secs(2));
    for (room, what) in [(&a, "A before B confirmed"), (&b, "B before it confirmed")] {
        let other = the_other(&room.meeting()?);
        assert_eq!(other["verified"], false, "{what}: {other}");
    }
    b.command("meeting.e2ee_confirm", &json!({ "participant": a_id }))?;
    let verified_by_sas = |m: &Value| {
        let other = the_other(m);
        other["verified"] == true && other["verified_by"] == "sas" && other["e2ee"] == true
    };
    let seen_by_a = a.wait_for("A: B verified by the string", KEYS_TIMEOUT, verified_by_sas)?;
    let seen_by_b = b.wait_for("B: A verified by the string", KEYS_TIMEOUT, verified_by_sas)?;
    let shown = panel.wait_for("A's panel: B verified by the code", PANEL_TIMEOUT, |l| {
        let row = row_of_b(l);
        row["verified_by"] == "sas" && row["sas"] == "" && row["waiting"] == false
    })?;
    eprintln!("A's panel shows B as {}", row_of_b(&shown));
    eprintln!(
        "A confirmed as {}; verified both ways: A sees {}, B sees {}; whole test {:?}",
        the_other(&confirmed_on_a)["sas_confirmed_by"],
        the_other(&seen_by_a),
        the_other(&seen_by_b),
        started.elapsed()
    );
    Ok(())
}

/// The room's view of the participant named `name`: its id, its entry in `e2ee.participants`,
/// the video frames decoded from it, and whether it is talking (its voice, decoded, is loud:
/// Chromium's fake microphone beeps).
fn seen(meeting: &Value, name: &str) -> Option<(String, Value, u64, bool)> {
    let participant = meeting::participant(meeting, name)?;
    let id = participant["id"].as_str()?.to_owned();
    let e2ee = meeting["e2ee"]["participants"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == id.as_str())?
        .clone();
    let video = meeting::streams(meeting, "receive", "video")
        .filter(|s| s["participant"] == id.as_str())
        .filter_map(|s| s["frames"].as_u64())
        .max()
        .unwrap_or(0);
    Some((id, e2ee, video, participant["talking"] == true))
}

/// Frames the browser opened (decrypted) from one feed's `kind`, from its latest `e2ee` line.
fn opened_by_browser(line: &Value, feed: &str, kind: &str) -> u64 {
    line["frames"][format!("{feed}-{kind}")]["opened"]
        .as_u64()
        .unwrap_or(0)
}

/// Two rooms and a Chromium participant in one Janus VideoRoom, all end-to-end encrypted. The
/// browser is the test page (`tests/browser/janus-participant.mjs --e2ee`) running the guest
/// pages' own code (`webui/src/e2ee`: the key agreement with WebCrypto and `@hpke/core`, SFrame
/// in an `RTCRtpScriptTransform` worker); the rooms send VP8 (`video.codec`), which is what
/// Chromium can receive encrypted. Each of the three opens and decodes the others' video and
/// audio; the rooms show the browser end-to-end encrypted but not verified (it has no
/// certificate) and each other verified by certificate; the browser becomes verified with A
/// only once both A's people and the browser's confirmed the digits; content room A shares is
/// opened and decoded by the browser; when room B leaves, the browser and room A make new
/// sender keys and go on decoding each other.
#[test]
fn two_rooms_and_a_browser_meet_end_to_end_encrypted_through_janus() -> Result<(), HarnessError> {
    let started = Instant::now();
    // Bound in this order, dropped in the reverse: Janus before its network.
    let Rig {
        net: _net,
        janus,
        ca,
        dir,
        ca_file,
    } = Rig::new(ROOM)?;
    let vp8 = "[video]\ncodec = \"vp8\"\n";
    let (tpm_a, tpm_b) = (Swtpm::start()?, Swtpm::start()?);
    let roomd_a = e2ee_room_with("Room A", &tpm_a, &janus, &ca_file, vp8)?;
    let roomd_b = e2ee_room_with("Room B", &tpm_b, &janus, &ca_file, vp8)?;
    let a = EnrolledRoom::enrol(&roomd_a, &ca)?;
    let b = EnrolledRoom::enrol(&roomd_b, &ca)?;
    for room in [&a, &b] {
        room.command(
            "meeting.join",
            &json!({ "target": janus_target(&janus, &room.certificate_name) }),
        )?;
    }
    a.wait_for("A: B verified", KEYS_TIMEOUT, |m| {
        verified_as(m, &b.certificate_name)
    })?;
    b.wait_for("B: A verified", KEYS_TIMEOUT, |m| {
        verified_as(m, &a.certificate_name)
    })?;

    let bundles = roomd_tests::e2ee::browser_e2ee_bundles(dir.path());
    let browser = BrowserPeer::janus_participant_with(
        &janus,
        "Chromium",
        &["--e2ee".to_owned(), bundles.display().to_string()],
    )?;
    let joined_at = Instant::now();
    let feed_of = |display: &str| -> Result<String, HarnessError> {
        let line = browser.wait_for(
            &format!("the browser subscribed to {display}"),
            JOIN_TIMEOUT,
            |l| l["event"] == "subscribed" && l["display"] == display,
        )?;
        Ok(line["feed"].to_string())
    };
    let (feed_a, feed_b) = (feed_of(&a.certificate_name)?, feed_of(&b.certificate_name)?);

    // The browser: keys both ways with both rooms, and both rooms' frames opened and decoded.
    let keyed = browser
        .wait_for("the browser keyed with both rooms", KEYS_TIMEOUT, |l| {
            l["event"] == "e2ee"
                && l["state"] == "established"
                && l["participants"].as_array().is_some_and(|p| p.len() == 2)
        })
        .inspect_err(|_| {
            eprintln!("--- the browser's lines:\n{:#?}", browser.lines());
            eprintln!("--- room A's log:\n{}", roomd_a.stderr_text());
            eprintln!("--- Janus's log:\n{}", janus.log_text());
        })?;
    eprintln!(
        "the browser keyed {:?} after joining: {keyed}",
        joined_at.elapsed()
    );
    let decoded = |l: &Value| {
        l["event"] == "stats"
            && [&feed_a, &feed_b].iter().all(|feed| {
                roomd_tests::browser::inbound_video_frames_of(l, &format!("feed-{feed}"))
                    .is_some_and(|f| f > FRAMES)
            })
    };
    browser
        .wait_for("the browser decodes both rooms", MEDIA_TIMEOUT, decoded)
        .inspect_err(|_| eprintln!("--- the browser's lines:\n{:#?}", browser.lines()))?;
    let opened = browser.wait_for("the browser opens both rooms' frames", MEDIA_TIMEOUT, |l| {
        l["event"] == "e2ee"
            && [&feed_a, &feed_b].iter().all(|feed| {
                opened_by_browser(l, feed, "video") > FRAMES
                    && opened_by_browser(l, feed, "audio") > 50
            })
    })?;
    eprintln!("the browser opened: {}", opened["frames"]);

    // Each room: the browser end-to-end encrypted, not verified, with its digits; its video
    // and audio opened and decoded.
    for (room, name) in [(&a, "A"), (&b, "B")] {
        let m = room
            .wait_for(
                &format!("{name}: the browser's media opened"),
                MEDIA_TIMEOUT,
                |m| {
                    seen(m, "Chromium").is_some_and(|(_, e2ee, video, talking)| {
                        e2ee["e2ee"] == true && video > FRAMES && talking
                    })
                },
            )
            .inspect_err(|_| {
                if let Ok(m) = room.meeting() {
                    eprintln!("--- {name}'s meeting: {m}");
                }
            })?;
        let (_, e2ee, video, _) = seen(&m, "Chromium").expect("seen above");
        eprintln!("{name} decoded {video} video frames of the browser, and its voice");
        assert_eq!(e2ee["verified"], false, "{e2ee}");
        assert_eq!(e2ee["frames"], "opening", "{e2ee}");
        assert_eq!(e2ee["sas"].as_str().map(str::len), Some(7), "{e2ee}");
        assert_eq!(m["e2ee"]["state"], "established", "{}", m["e2ee"]);
    }
    // The browser shows the same digits as room A for the pair of them.
    let a_meeting = a.meeting()?;
    let (_, a_view, _, _) = seen(&a_meeting, "Chromium").expect("A sees the browser");
    let browser_view = keyed["participants"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .find(|p| p["participant"].as_str() == Some(feed_a.as_str()))
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        browser_view["sas"], a_view["sas"],
        "{browser_view} / {a_view}"
    );
    assert_eq!(browser_view["verifiedBy"], Value::Null, "{browser_view}");

    // Verifying the browser by the digits. A's people confirm first: A says so and waits, the
    // browser stays unverified on both sides until its person confirms too; then both show the
    // other verified by code. B, who confirmed nothing, still shows the browser unverified.
    let (browser_at_a, _, _, _) = seen(&a_meeting, "Chromium").expect("A sees the browser");
    a.command(
        "meeting.e2ee_confirm",
        &json!({ "participant": browser_at_a }),
    )?;
    let waiting = a.wait_for("A: confirmed here", PANEL_TIMEOUT, |m| {
        seen(m, "Chromium").is_some_and(|(_, e2ee, _, _)| e2ee["sas_confirmed_by"] != "")
    })?;
    let (_, a_waiting, _, _) = seen(&waiting, "Chromium").expect("A sees the browser");
    assert_eq!(a_waiting["verified"], false, "{a_waiting}");
    // The browser hears A's confirmation within a second or two; it must not count as its own.
    std::thread::sleep(Duration::from_secs(2));
    let view_of_a = |line: &Value| {
        line["participants"]
            .as_array()
            .and_then(|p| {
                p.iter()
                    .find(|p| p["participant"].as_str() == Some(feed_a.as_str()))
            })
            .cloned()
            .unwrap_or_default()
    };
    let before_confirming = browser
        .lines()
        .into_iter()
        .rev()
        .find(|l| l["event"] == "e2ee")
        .map(|l| view_of_a(&l))
        .unwrap_or_default();
    assert_eq!(
        before_confirming["verifiedBy"],
        Value::Null,
        "{before_confirming}"
    );
    assert_eq!(
        a.meeting()
            .map(|m| seen(&m, "Chromium").map(|s| s.1["verified"].clone()))?,
        Some(Value::Bool(false)),
        "A counted its own confirmation alone"
    );
    let confirmed_at = browser.line_count();
    browser.command(&json!({ "confirm_sas": feed_a }))?;
    browser.wait_for_after(
        confirmed_at,
        "the browser: A verified by code",
        KEYS_TIMEOUT,
        |l| l["event"] == "e2ee" && view_of_a(l)["verifiedBy"] == "sas",
    )?;
    a.wait_for("A: the browser verified by code", KEYS_TIMEOUT, |m| {
        seen(m, "Chromium")
            .is_some_and(|(_, e2ee, _, _)| e2ee["verified"] == true && e2ee["verified_by"] == "sas")
    })?;
    let (_, b_view, _, _) = seen(&b.meeting()?, "Chromium").expect("B sees the browser");
    assert_eq!(b_view["verified"], false, "{b_view}");

    // Room A shares content: the browser opens its frames with A's keys (A declared the feed)
    // and decodes them, and shows the content feed as it shows A.
    let mark = browser.line_count();
    a.command("video.content.start", &json!({}))?;
    let content_name = format!("{} (content)", a.certificate_name);
    let content_feed = browser.wait_for_after(
        mark,
        "the browser subscribed to A's content",
        JOIN_TIMEOUT,
        |l| l["event"] == "subscribed" && l["display"] == content_name.as_str(),
    )?["feed"]
        .to_string();
    let content_opened = browser
        .wait_for_after(mark, "the browser opens A's content", MEDIA_TIMEOUT, |l| {
            l["event"] == "e2ee"
                && opened_by_browser(l, &content_feed, "video") > FRAMES
                && l["participants"].as_array().is_some_and(|p| {
                    p.iter().any(|p| {
                        p["participant"].as_str() == Some(content_feed.as_str())
                            && p["endToEnd"] == true
                    })
                })
        })
        .inspect_err(|_| eprintln!("--- the browser's lines:\n{:#?}", browser.lines()))?;
    eprintln!(
        "the browser opened A's content: {}",
        content_opened["frames"]
    );
    browser.wait_for_after(
        mark,
        "the browser decodes A's content",
        MEDIA_TIMEOUT,
        |l| {
            l["event"] == "stats"
                && roomd_tests::browser::inbound_video_frames_of(l, &format!("feed-{content_feed}"))
                    .is_some_and(|f| f > FRAMES)
        },
    )?;
    a.command("video.content.stop", &json!({}))?;

    // B leaves: the browser forgets B's keys and makes a new sender key; A and the browser go
    // on opening each other's frames under the new keys.
    b.command("meeting.leave", &json!({}))?;
    let left_at = Instant::now();
    let rekeyed = browser.wait_for("the browser rekeyed after B left", KEYS_TIMEOUT, |l| {
        l["event"] == "e2ee"
            && l["keyEpoch"].as_u64() >= Some(1)
            && l["state"] == "established"
            && l["participants"].as_array().is_some_and(|p| p.len() == 1)
    })?;
    let after = browser.line_count();
    let video_a = opened_by_browser(&rekeyed, &feed_a, "video");
    browser.wait_for_after(
        after,
        "the browser still opens A's video",
        MEDIA_TIMEOUT,
        |l| l["event"] == "e2ee" && opened_by_browser(l, &feed_a, "video") > video_a + FRAMES,
    )?;
    let (_, _, before, _) = seen(&a.meeting()?, "Chromium").expect("A sees the browser");
    a.wait_for(
        "A rekeyed and still decodes the browser",
        MEDIA_TIMEOUT,
        |m| {
            m["e2ee"]["key_epoch"].as_u64() >= Some(1)
                && seen(m, "Chromium").is_some_and(|(_, e2ee, video, _)| {
                    e2ee["e2ee"] == true && video > before + FRAMES
                })
        },
    )?;
    eprintln!(
        "after B left: the browser at key epoch {} {:?} later, A decoding the browser",
        rekeyed["keyEpoch"],
        left_at.elapsed()
    );
    let errors = browser
        .lines()
        .iter()
        .rev()
        .find(|l| l["event"] == "e2ee")
        .map(|l| l["errors"].clone())
        .unwrap_or_default();
    eprintln!("the browser's refused key messages: {errors}");
    a.command("meeting.leave", &json!({}))?;
    drop((roomd_a, roomd_b));
    eprintln!("whole test {:?}", started.elapsed());
    Ok(())
}

/// A participant whose frames do not open with the key it granted (the Janus participant with
/// `--e2ee-wrong-key` encrypts with a key it never hands out): the room holds its granted key,
/// so its status says end-to-end keys are there, but also that the frames are refused, and the
/// room decodes none of them; the browser itself still opens the room's frames.
#[test]
fn a_participant_whose_frames_do_not_open_is_shown_so_and_nothing_of_it_is_decoded()
-> Result<(), HarnessError> {
    // Bound in this order, dropped in the reverse: Janus before its network.
    let Rig {
        net: _net,
        janus,
        ca,
        dir,
        ca_file,
    } = Rig::new(ROOM + 5)?;
    let tpm = Swtpm::start()?;
    let roomd = e2ee_room_with(
        "Room A",
        &tpm,
        &janus,
        &ca_file,
        "[video]\ncodec = \"vp8\"\n",
    )?;
    let a = EnrolledRoom::enrol(&roomd, &ca)?;
    a.command(
        "meeting.join",
        &json!({ "target": janus_target(&janus, "Room A") }),
    )?;
    a.wait_for("A connected", JOIN_TIMEOUT, |m| m["state"] == "connected")?;
    let bundles = roomd_tests::e2ee::browser_e2ee_bundles(dir.path());
    let browser = BrowserPeer::janus_participant_with(
        &janus,
        "Chromium",
        &[
            "--e2ee".to_owned(),
            bundles.display().to_string(),
            "--e2ee-wrong-key".to_owned(),
        ],
    )?;
    let refused = a
        .wait_for("A: the browser's frames refused", MEDIA_TIMEOUT, |m| {
            seen(m, "Chromium")
                .is_some_and(|(_, e2ee, _, _)| e2ee["e2ee"] == true && e2ee["frames"] == "refused")
        })
        .inspect_err(|_| eprintln!("--- the browser's lines:\n{:#?}", browser.lines()))?;
    eprintln!("A's view of the browser: {}", refused["e2ee"]);
    // Meanwhile the browser opens the room's frames: the keys work one way.
    browser.wait_for("the browser opens A's frames", MEDIA_TIMEOUT, |l| {
        l["event"] == "e2ee"
            && l["frames"].as_object().is_some_and(|f| {
                f.iter().any(|(k, v)| {
                    k.ends_with("-video")
                        && !k.starts_with("send")
                        && v["opened"].as_u64() > Some(FRAMES)
                })
            })
    })?;
    // The panel says so beside the participant, from the same status.
    let (browser_at_a, _, _, _) = seen(&refused, "Chromium").expect("A sees the browser");
    let panel = a.panel()?;
    panel.wait_for(
        "A's panel: the browser's frames refused",
        PANEL_TIMEOUT,
        |l| {
            l["event"] == "panel"
                && l["participants"].as_array().is_some_and(|p| {
                    p.iter().any(|p| {
                        p["id"] == browser_at_a.as_str()
                            && p["e2ee"] == "true"
                            && p["frames"] == "refused"
                    })
                })
        },
    )?;
    // A few more seconds: still refused, and not one frame of the browser decoded.
    std::thread::sleep(Duration::from_secs(3));
    let m = a.meeting()?;
    let (_, e2ee, video, talking) = seen(&m, "Chromium").expect("A sees the browser");
    assert_eq!(e2ee["frames"], "refused", "{e2ee}");
    assert_eq!(video, 0, "A decoded frames of the browser: {m}");
    assert!(!talking, "A heard the browser: {m}");
    a.command("meeting.leave", &json!({}))?;
    Ok(())
}

/// Content shared in an end-to-end encrypted meeting: room A shares (a second publisher, its
/// frames encrypted under A's keys with the content bit), declares the content feed to room B
/// over the key agreement, and B decodes A's content with the keys A granted it, shows the
/// content feed as A is shown (end-to-end encrypted, verified by A's certificate) and stays
/// established. B's decrypter refuses a frame that is not encrypted under a key it holds, so
/// B's frames of the content opening is what shows they were encrypted (the SFU's view of
/// frames from the same elements is tested with the camera's).
#[test]
fn content_is_shared_end_to_end_encrypted() -> Result<(), HarnessError> {
    // Bound in this order, dropped in the reverse: Janus before its network.
    let Rig {
        net: _net,
        janus,
        ca,
        dir: _dir,
        ca_file,
    } = Rig::new(ROOM + 6)?;
    let (tpm_a, tpm_b) = (Swtpm::start()?, Swtpm::start()?);
    let roomd_a = e2ee_room("Room A", &tpm_a, &janus, &ca_file)?;
    let roomd_b = e2ee_room("Room B", &tpm_b, &janus, &ca_file)?;
    let a = EnrolledRoom::enrol(&roomd_a, &ca)?;
    let b = EnrolledRoom::enrol(&roomd_b, &ca)?;
    for (room, name) in [(&a, "Room A"), (&b, "Room B")] {
        room.command(
            "meeting.join",
            &json!({ "target": janus_target(&janus, name) }),
        )?;
    }
    b.wait_for("B: A verified", KEYS_TIMEOUT, |m| {
        verified_as(m, &a.certificate_name)
    })?;
    a.command("video.content.start", &json!({}))?;
    let content_name = "Room A (content)";
    let shown = b
        .wait_for("B decodes A's content", MEDIA_TIMEOUT, |m| {
            seen(m, content_name).is_some_and(|(_, e2ee, video, _)| {
                e2ee["e2ee"] == true && e2ee["frames"] == "opening" && video > FRAMES
            })
        })
        .inspect_err(|_| {
            if let Ok(m) = b.meeting() {
                eprintln!("--- B's meeting: {m}");
            }
            eprintln!("--- room A's log:\n{}", roomd_a.stderr_text());
            eprintln!("--- room B's log:\n{}", roomd_b.stderr_text());
        })?;
    let (_, content, video, _) = seen(&shown, content_name).expect("seen above");
    eprintln!("B decoded {video} frames of A's content: {content}");
    assert_eq!(content["verified_by"], "certificate", "{content}");
    assert_eq!(
        content["certificate_name"],
        a.certificate_name.as_str(),
        "{content}"
    );
    assert_eq!(shown["e2ee"]["state"], "established", "{}", shown["e2ee"]);
    a.command("video.content.stop", &json!({}))?;
    for room in [&a, &b] {
        room.command("meeting.leave", &json!({}))?;
    }
    Ok(())
}
