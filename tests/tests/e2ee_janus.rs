//! Two rooms in one Janus VideoRoom with end-to-end encryption (`meeting.e2ee`, docs/security.md):
//! each room's device key is in its own swtpm and certified by a customer CA made here; each
//! room shows the other as end-to-end encrypted and verified by that certificate's name, and
//! decodes the other's moving picture, although Janus forwards only frames it cannot read.
//! When one leaves, the other makes a new sender key (a new key epoch in status).
//!
//! Layout: Janus inside the test namespace (10.77.<n>.2), both rooms on the host.

use std::time::{Duration, Instant};

use roomd_tests::e2ee::{DeviceCa, EnrolledRoom};
use roomd_tests::{HarnessError, Janus, Roomd, Swtpm, TestNetwork, meeting};
use serde_json::{Value, json};

const ROOM: u64 = 7301;
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const KEYS_TIMEOUT: Duration = Duration::from_secs(30);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// About one second of video at 30 fps.
const FRAMES: u64 = 30;

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

#[test]
fn two_rooms_meet_end_to_end_encrypted_and_verified_through_janus() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let janus = Janus::builder(&net).room(ROOM).start()?;
    let ca = DeviceCa::new("Customer device CA");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_file = dir.path().join("device-ca.pem");
    ca.write_pem(&ca_file)?;

    let (tpm_a, tpm_b) = (Swtpm::start()?, Swtpm::start()?);
    let roomd_a = e2ee_room("Room A", &tpm_a, &janus, &ca_file)?;
    let roomd_b = e2ee_room("Room B", &tpm_b, &janus, &ca_file)?;
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
    let text = format!("{seen_by_a}{seen_by_b}");
    assert!(!text.contains("secret"), "{text}");

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
    let net = TestNetwork::create()?;
    let janus = Janus::builder(&net).room(ROOM + 1).start()?;
    let ca = DeviceCa::new("Customer device CA");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_file = dir.path().join("device-ca.pem");
    ca.write_pem(&ca_file)?;
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
