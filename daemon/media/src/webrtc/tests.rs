//! Two peers in one process, connected over a real (non-loopback) address: the room's own
//! encoded camera and microphone go out through one and arrive on the room display and in the
//! speaker mix through the other.
// Live tests take turns with every test that runs pipelines (media::tests): the guards only
// order tests, no task of a test waits for another's.
#![allow(clippy::await_holding_lock)]

use std::time::{Duration, Instant};

use gstreamer as gst;

use super::{Peer, PeerError, PeerEvent, PeerOptions};
use crate::audio::{AudioBranch, AudioSetup};
use crate::encoder_choice::EncoderSettings;
use crate::video::{VideoBranch, VideoSetup};
use crate::view::RoomView;
use crate::{Feed, MediaKind, MediaTaps};
use roomd_hardware::Profile;
use roomd_model::config::{CameraPosition, Layout, SelfviewMode, SelfviewPosition};

/// libnice ignores loopback: make sure the machine has another IPv4 address, adding a dummy
/// interface (removed when dropped) when it has none.
struct NonLoopback {
    added: bool,
}

const DUMMY: &str = "roomdtest0";

/// The live-media tests take turns: each runs a room (encoders, compositor) and peers or a
/// browser, and on a small shared machine several at once starve each other of CPU.
static LIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl NonLoopback {
    fn ensure() -> NonLoopback {
        let output = std::process::Command::new("ip")
            .args(["-4", "-o", "addr", "show", "scope", "global"])
            .output()
            .expect("ip is installed (iproute2)");
        if !String::from_utf8_lossy(&output.stdout).trim().is_empty() {
            return NonLoopback { added: false };
        }
        for args in [
            vec!["link", "add", DUMMY, "type", "dummy"],
            vec!["addr", "add", "10.213.0.1/24", "dev", DUMMY],
            vec!["link", "set", DUMMY, "up"],
        ] {
            let status = std::process::Command::new("ip")
                .args(&args)
                .status()
                .unwrap();
            assert!(status.success(), "ip {args:?} (tests run as root)");
        }
        NonLoopback { added: true }
    }
}

impl Drop for NonLoopback {
    fn drop(&mut self) {
        if self.added {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", DUMMY])
                .status();
        }
    }
}

/// The room's media branches at test size, in a meeting (so they encode), handed to taps as
/// the engine does. Dropping the returned guard stops them.
pub(crate) struct Room {
    pub(crate) taps: MediaTaps,
    video: VideoBranch,
    audio: AudioBranch,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.video.stop();
        self.audio.stop();
    }
}

/// A peer that only receives, as a far end that shows the room.
fn receiving_peer(taps: &MediaTaps) -> Peer {
    Peer::new(
        taps,
        PeerOptions {
            label: "Far end".into(),
            send_video: false,
            send_audio: false,
            ..PeerOptions::default()
        },
    )
    .unwrap()
}

fn room_in_meeting() -> Room {
    room_encoding_with("x264enc")
}

fn room_encoding_with(encoder: &str) -> Room {
    room_built(encoder, false)
}

/// A room in a meeting whose content input is shared, at 256x144 (the camera is 320x180, so
/// that a receiver can tell the two apart).
pub(crate) fn room_sharing_content() -> Room {
    room_built("x264enc", true)
}

fn room_built(encoder: &str, share_content: bool) -> Room {
    gst::init().unwrap();
    let profile = Profile::builtin("simulated").unwrap();
    let mut camera = profile.cameras[0].clone();
    let mut display = profile.displays[0].clone();
    (camera.width, camera.height, camera.framerate) = (320, 180, 15);
    (display.width, display.height, display.framerate) = (320, 180, 15);
    let settings = EncoderSettings {
        bitrate_kbps: 300,
        framerate: 15,
    };
    let content = share_content.then(|| {
        let mut content = profile.content_inputs[0].clone();
        (content.width, content.height, content.framerate) = (256, 144, 15);
        content
    });
    let video = VideoBranch::build(&VideoSetup {
        camera,
        content,
        display,
        encoder: encoder.into(),
        settings,
    })
    .unwrap();
    let audio = AudioBranch::build(&AudioSetup {
        microphone: profile.microphones[0].clone(),
        speaker: profile.speakers.first().cloned(),
    })
    .unwrap();
    let view = RoomView {
        name: "Room".into(),
        claimed: true,
        volume: 50,
        muted: false,
        layout: Layout::Speaker,
        selfview: SelfviewMode::On,
        selfview_position: SelfviewPosition::LowerRight,
        camera_on: true,
        camera_position: CameraPosition::HOME,
        content_active: share_content,
        standby: false,
        in_meeting: true,
        encrypted: true,
    };
    // As the engine does: the branches get the room's view before they start.
    video.apply(&view, None);
    audio.apply(&view);
    let taps = MediaTaps::default();
    taps.attach_video(
        &crate::taps::CameraEncoder {
            codec: video.codec,
            element: &video.encoder,
            name: encoder,
            kbps: settings.bitrate_kbps,
        },
        &video.keyframes,
        &video.encoded,
        video.mixer.clone(),
    );
    if let Some(content) = &video.content {
        taps.attach_content(&content.keyframes, &content.encoded);
    }
    taps.attach_audio(&audio.encoded, &audio.encoder, audio.speaker.clone());
    video.start().unwrap();
    audio.start().unwrap();
    Room { taps, video, audio }
}

/// A peer's events, remembered, so that a test can wait for each regardless of their order.
struct Events {
    receiver: tokio::sync::mpsc::UnboundedReceiver<PeerEvent>,
    seen: Vec<PeerEvent>,
}

impl Events {
    fn of(peer: &Peer) -> Events {
        Events {
            receiver: peer.take_events().unwrap(),
            seen: Vec::new(),
        }
    }

    /// Waits for `wanted` (or finds it among the events already seen).
    async fn wait(&mut self, wanted: PeerEvent, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.seen.contains(&wanted) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.receiver.recv()).await {
                Ok(Some(PeerEvent::Failed(reason))) => {
                    panic!("{what}: the peer failed: {reason}")
                }
                Ok(Some(event)) => self.seen.push(event),
                other => panic!("{what}: {other:?} after {:?}", self.seen),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_the_rooms_media_over_dtls_srtp() {
    two_peers_exchange_media("x264enc").await;
}

/// The software fallback when no H.264 encoder works: VP8 end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_vp8_when_the_room_encodes_vp8() {
    two_peers_exchange_media("vp8enc").await;
}

async fn two_peers_exchange_media(encoder: &str) {
    let _turn = LIVE.lock().await;
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    let _address = NonLoopback::ensure();
    let room = room_encoding_with(encoder);
    let taps = &room.taps;

    let sender = Peer::new(
        taps,
        PeerOptions {
            label: "sender".into(),
            receive: false,
            ..PeerOptions::default()
        },
    )
    .unwrap();
    let receiver = receiving_peer(taps);
    let mut sender_events = Events::of(&sender);
    let mut receiver_events = Events::of(&receiver);

    let offer = sender.create_offer().await.unwrap();
    assert!(offer.contains("UDP/TLS/RTP/SAVPF"), "{offer}");
    assert!(offer.contains("a=candidate"), "complete SDP: {offer}");
    let codec = if encoder == "vp8enc" {
        "VP8/90000"
    } else {
        "H264/90000"
    };
    assert!(offer.contains(codec), "{codec}: {offer}");
    let answer = receiver.answer_offer(&offer).await.unwrap();
    sender.accept_answer(&answer).await.unwrap();

    sender_events.wait(PeerEvent::Connected, "sender").await;
    receiver_events.wait(PeerEvent::Connected, "receiver").await;
    for kind in [MediaKind::Video, MediaKind::Audio] {
        receiver_events
            .wait(PeerEvent::RemoteTrack { kind }, "remote track")
            .await;
    }
    receiver_events
        .wait(
            PeerEvent::FirstRemoteFrame,
            "first remote frame on the display",
        )
        .await;
    assert_eq!(taps.remote_video_count(), 1);
    // The room's test tone arrives as a voice: the far end talks.
    receiver_events
        .wait(PeerEvent::Talking(true), "talking")
        .await;
    receiver.set_label("Renamed");

    // Rates are measured between two readings.
    receiver.stats().await.unwrap();
    sender.stats().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.stats().await.unwrap();
    let sent = sender.stats().await.unwrap();
    eprintln!("receiver: {received:#?}\nsender: {sent:#?}");
    assert_eq!(received.encryption, "dtls-srtp");
    assert_eq!(sent.encryption, "dtls-srtp");
    let video_in = received
        .streams
        .iter()
        .find(|s| s.direction == "receive" && s.kind == "video")
        .expect("a received video stream");
    assert!(video_in.bitrate_kbps > 0.0, "{video_in:?}");
    assert!(video_in.frames > 0, "{video_in:?}");
    assert_eq!((video_in.width, video_in.height), (320, 180));
    let audio_in = received
        .streams
        .iter()
        .find(|s| s.direction == "receive" && s.kind == "audio")
        .expect("a received audio stream");
    assert!(audio_in.bitrate_kbps > 0.0, "{audio_in:?}");
    let video_out = sent
        .streams
        .iter()
        .find(|s| s.direction == "send" && s.kind == "video")
        .expect("a sent video stream");
    assert!(
        video_out.bitrate_kbps > 0.0 && video_out.frames > 0,
        "{video_out:?}"
    );

    // Closing the receiver takes its picture off the display.
    receiver.close();
    assert_eq!(taps.remote_video_count(), 0);
    sender.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_peer_sends_the_shared_content_and_no_sound() {
    let _turn = LIVE.lock().await;
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    let _address = NonLoopback::ensure();
    let content_peer = || PeerOptions {
        label: "content".into(),
        receive: false,
        send_audio: false,
        video_feed: Feed::Content,
        ..PeerOptions::default()
    };

    // A room without a content input has nothing to send.
    let plain = room_encoding_with("x264enc");
    let peer = Peer::new(&plain.taps, content_peer()).unwrap();
    let err = peer.create_offer().await.unwrap_err();
    assert!(matches!(err, PeerError::NoCommonCodec(_)), "{err}");
    drop(peer);
    drop(plain);

    let room = room_sharing_content();
    let sender = Peer::new(&room.taps, content_peer()).unwrap();
    let receiver = receiving_peer(&room.taps);
    let mut receiver_events = Events::of(&receiver);
    let offer = sender.create_offer().await.unwrap();
    assert!(offer.contains("m=video"), "{offer}");
    assert!(
        !offer.contains("m=audio"),
        "a content peer sends no sound: {offer}"
    );
    let answer = receiver.answer_offer(&offer).await.unwrap();
    sender.accept_answer(&answer).await.unwrap();
    receiver_events
        .wait(PeerEvent::FirstRemoteFrame, "first content frame")
        .await;
    receiver.stats().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.stats().await.unwrap();
    let video_in = received
        .streams
        .iter()
        .find(|s| s.direction == "receive" && s.kind == "video")
        .expect("a received video stream");
    assert!(video_in.frames > 0, "{video_in:?}");
    // The content's size, not the camera's (320x180).
    assert_eq!((video_in.width, video_in.height), (256, 144));
    receiver.close();
    sender.close();
}

#[tokio::test]
async fn bad_remote_descriptions_get_clear_errors() {
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    gst::init().unwrap();
    let taps = MediaTaps::default();
    let options = || PeerOptions {
        send_video: false,
        send_audio: false,
        ..PeerOptions::default()
    };
    let peer = Peer::new(&taps, options()).unwrap();
    let err = peer.answer_offer("not an sdp").await.unwrap_err();
    assert!(matches!(err, PeerError::MalformedSdp(_)), "{err}");

    let plain =
        include_str!("testdata/chromium-sendonly.sdp").replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
    let err = peer.answer_offer(&plain).await.unwrap_err();
    assert!(matches!(err, PeerError::Unencrypted(_)), "{err}");

    let err = peer
        .accept_answer(include_str!("testdata/chromium-sendonly.sdp"))
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::WrongState { .. }), "{err}");

    let err = Peer::new(
        &taps,
        PeerOptions {
            ice: super::IceServers {
                stun: Some("stun.example.org:3478".into()),
                turn: None,
            },
            ..options()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(err, PeerError::IceServer(_)), "{err}");
}

#[tokio::test]
async fn a_chromium_whep_offer_is_answered_with_its_payload_types() {
    let _turn = LIVE.lock().await;
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    let _address = NonLoopback::ensure();
    let room = room_in_meeting();
    let peer = Peer::new(
        &room.taps,
        PeerOptions {
            receive: false,
            ..PeerOptions::default()
        },
    )
    .unwrap();
    let answer = peer
        .answer_offer(include_str!("testdata/chromium-recvonly.sdp"))
        .await
        .unwrap();
    let m_lines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m_lines.len(), 2, "{answer}");
    assert!(
        m_lines[0].starts_with("m=audio") && m_lines[0].ends_with(" 111"),
        "{answer}"
    );
    assert!(
        m_lines[1].starts_with("m=video") && m_lines[1].ends_with(" 108"),
        "{answer}"
    );
    assert!(answer.contains("a=sendonly"), "{answer}");
    assert!(answer.contains("a=fingerprint:"), "{answer}");
}

/// Opus in-band FEC and DTX are asked for both ways: in the room's offers and in its answers
/// (here to Chromium's offer, which asks for FEC but not DTX).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_fec_and_dtx_are_negotiated_in_offers_and_answers() {
    let _turn = LIVE.lock().await;
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    let _address = NonLoopback::ensure();
    let room = room_in_meeting();
    let sending = || {
        Peer::new(
            &room.taps,
            PeerOptions {
                receive: false,
                ..PeerOptions::default()
            },
        )
        .unwrap()
    };
    let offer = sending().create_offer().await.unwrap();
    let answer = sending()
        .answer_offer(include_str!("testdata/chromium-recvonly.sdp"))
        .await
        .unwrap();
    for (what, sdp) in [("offer", &offer), ("answer", &answer)] {
        let fmtp = sdp
            .lines()
            .find(|l| l.starts_with("a=fmtp:111 "))
            .unwrap_or_else(|| panic!("no Opus fmtp in the {what}: {sdp}"));
        assert!(
            fmtp.contains("useinbandfec=1") && fmtp.contains("usedtx=1"),
            "{what}: {fmtp}"
        );
    }
}

/// Debian's chromium as the remote peer, through `tests/browser/webrtc-peer.mjs`.
mod chromium {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::{
        Events, LIVE, NonLoopback, Peer, PeerEvent, PeerOptions, receiving_peer, room_in_meeting,
    };

    /// How long the browser may take for each step (start, offer, media).
    const STEP: Duration = Duration::from_secs(60);

    struct Browser {
        child: Child,
        stdin: ChildStdin,
        lines: std::sync::mpsc::Receiver<String>,
    }

    impl Browser {
        fn start(mode: &str) -> Browser {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
            assert!(
                dir.join("node_modules/playwright-core").exists(),
                "playwright-core is missing: run `npm ci --prefix tests/browser` (make test does)"
            );
            let mut child = Command::new("node")
                .arg(dir.join("webrtc-peer.mjs"))
                .arg(mode)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("node runs (Debian package nodejs)");
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let (sender, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in stdout.lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
            Browser {
                child,
                stdin,
                lines,
            }
        }

        /// The script's next JSON line.
        fn read(&mut self) -> Value {
            let line = tokio::task::block_in_place(|| self.lines.recv_timeout(STEP))
                .expect("the browser answers in time");
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("browser said {line:?}: {e}"));
            assert!(value.get("error").is_none(), "browser: {value}");
            value
        }

        fn write(&mut self, value: &Value) {
            writeln!(self.stdin, "{value}").unwrap();
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            // Normally the script has ended; a failed test must not leave a browser behind.
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }

    /// A browser plays the room (WHEP): it decodes the room's H.264 camera and its Opus.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chromium_decodes_the_rooms_h264_and_opus() {
        let _turn = LIVE.lock().await;
        let _serial = crate::tests::one_pipeline_test_at_a_time();
        let _address = NonLoopback::ensure();
        let room = room_in_meeting();
        let peer = Peer::new(
            &room.taps,
            PeerOptions {
                label: "viewer".into(),
                receive: false,
                ..PeerOptions::default()
            },
        )
        .unwrap();
        let mut browser = Browser::start("whep");
        let offer = browser.read()["offer"].as_str().unwrap().to_owned();
        let answer = peer.answer_offer(&offer).await.unwrap();
        browser.write(&json!({ "answer": answer }));
        let result = browser.read();
        let result = &result["result"];
        eprintln!("chromium: {result}");
        assert_eq!(result["connection"], "connected", "{result}");
        assert_eq!(result["videoCodec"], "video/H264", "{result}");
        assert!(
            result["framesDecoded"].as_u64().unwrap_or(0) >= 10,
            "{result}"
        );
        assert_eq!(
            (&result["width"], &result["height"]),
            (&json!(320), &json!(180))
        );
        assert_eq!(result["audioCodec"], "audio/opus", "{result}");
    }

    /// A browser publishes to the room (WHIP): its picture reaches the room display.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chromium_publisher_appears_on_the_room_display() {
        let _turn = LIVE.lock().await;
        let _serial = crate::tests::one_pipeline_test_at_a_time();
        let _address = NonLoopback::ensure();
        let room = room_in_meeting();
        let peer = receiving_peer(&room.taps);
        let mut events = Events::of(&peer);
        let mut browser = Browser::start("whip");
        let offer = browser.read()["offer"].as_str().unwrap().to_owned();
        let answer = peer.answer_offer(&offer).await.unwrap();
        browser.write(&json!({ "answer": answer }));
        events
            .wait(
                PeerEvent::FirstRemoteFrame,
                "the browser's first frame on the display",
            )
            .await;
        assert_eq!(room.taps.remote_video_count(), 1);
        peer.stats().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stats = peer.stats().await.unwrap();
        eprintln!("room receiving from chromium: {stats:#?}");
        assert_eq!(stats.encryption, "dtls-srtp");
        let video = stats
            .streams
            .iter()
            .find(|s| s.direction == "receive" && s.kind == "video")
            .expect("a received video stream");
        assert!(video.frames > 0 && video.bitrate_kbps > 0.0, "{video:?}");
        assert_eq!((video.width, video.height), (320, 180));
        let result = browser.read();
        assert_eq!(result["result"]["connection"], "connected", "{result}");
        browser.write(&json!({ "done": true }));
    }
}

/// The meeting model keeps peers and slots in tokio tasks and awaits the peer's methods there.
#[test]
fn peers_taps_and_slots_can_live_in_tasks() {
    fn task_safe<T: Send + Sync + 'static>() {}
    task_safe::<Peer>();
    task_safe::<MediaTaps>();
    task_safe::<crate::RemoteVideoSlot>();
    task_safe::<crate::RemoteAudioSlot>();
    task_safe::<crate::TapSubscription>();
    fn send_future<F: std::future::Future + Send>(_: F) {}
    let peer: Option<&Peer> = None;
    if let Some(peer) = peer {
        send_future(peer.create_offer());
        send_future(peer.answer_offer(""));
        send_future(peer.accept_answer(""));
        send_future(peer.stats());
    }
}

/// The speaker layout enlarges whoever talks now, not the first who joined (issue 11, point 5):
/// a silent far end (video only) joins first, then one whose voice (the room's test tone) rises
/// above the talking level; the talker's picture fills the display, the silent one shrinks to a
/// thumbnail. Read back from the compositor's pads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_speaker_layout_enlarges_the_far_end_that_talks() {
    let _turn = LIVE.lock().await;
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    let _address = NonLoopback::ensure();
    let room = room_in_meeting();
    let taps = &room.taps;
    async fn far_end(taps: &MediaTaps, send_audio: bool) -> (Peer, Peer, Events) {
        let sender = Peer::new(
            taps,
            PeerOptions {
                label: "far end".into(),
                receive: false,
                send_audio,
                ..PeerOptions::default()
            },
        )
        .unwrap();
        let receiver = receiving_peer(taps);
        let mut events = Events::of(&receiver);
        let offer = sender.create_offer().await.unwrap();
        let answer = receiver.answer_offer(&offer).await.unwrap();
        sender.accept_answer(&answer).await.unwrap();
        events
            .wait(PeerEvent::FirstRemoteFrame, "far end on the display")
            .await;
        (sender, receiver, events)
    }
    let (_silent_sender, _silent, _) = far_end(taps, false).await;
    let (_talking_sender, _talker, mut talker_events) = far_end(taps, true).await;
    assert_eq!(taps.remote_video_count(), 2);
    talker_events
        .wait(PeerEvent::Talking(true), "the second far end talks")
        .await;
    let full = Some(crate::layout::Rect {
        x: 0,
        y: 0,
        width: 320,
        height: 180,
    });
    let placements = room.video.mixer.remote_placements();
    assert_eq!(placements.len(), 2, "{placements:?}");
    assert_eq!(
        placements[1], full,
        "the talker fills the display: {placements:?}"
    );
    assert!(
        placements[0].is_some_and(|r| r.width < 320 && r.height < 180),
        "the silent far end is a thumbnail: {placements:?}"
    );
}

/// End-to-end peers: the key message crosses the data channel, no frame reaches the far end's
/// display before it holds the key (the sender drops every frame while it has none), and with
/// the key the picture and the voice arrive through the frame elements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_peers_send_frames_only_under_a_key_and_talk_on_the_data_channel() {
    end_to_end_peers("x264enc").await;
}

/// The same with VP8 (roomd's own VP8 payloader carries the encrypted frames).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_vp8_peers_decode_only_under_a_key() {
    end_to_end_peers("vp8enc").await;
}

async fn end_to_end_peers(encoder: &str) {
    let _turn = LIVE.lock().await;
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    let _address = NonLoopback::ensure();
    let room = room_encoding_with(encoder);
    let taps = &room.taps;
    let options = |label: &str, send: bool| PeerOptions {
        label: label.into(),
        send_video: send,
        send_audio: send,
        receive: !send,
        end_to_end: true,
        ..PeerOptions::default()
    };
    let sender = Peer::new(taps, options("sender", true)).unwrap();
    let receiver = Peer::new(taps, options("receiver", false)).unwrap();
    let mut sender_events = Events::of(&sender);
    let mut receiver_events = Events::of(&receiver);

    let offer = sender.create_offer().await.unwrap();
    assert!(offer.contains("webrtc-datachannel"), "{offer}");
    let answer = receiver.answer_offer(&offer).await.unwrap();
    sender.accept_answer(&answer).await.unwrap();
    sender_events.wait(PeerEvent::Connected, "sender").await;
    sender_events
        .wait(PeerEvent::DataChannelOpen, "sender's data channel")
        .await;
    receiver_events
        .wait(PeerEvent::DataChannelOpen, "receiver's data channel")
        .await;
    sender.send_data("{\"type\":\"hello\"}").unwrap();
    receiver_events
        .wait(
            PeerEvent::Data(b"{\"type\":\"hello\"}".to_vec()),
            "the message",
        )
        .await;
    assert!(matches!(
        sender.send_data(&"x".repeat(super::MAX_DATA_MESSAGE_BYTES + 1)),
        Err(PeerError::DataTooLarge(_))
    ));

    // No key yet: nothing is sent, nothing is shown.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = sender.frame_counters();
    assert_eq!(before.protected, 0, "{before:?}");
    assert!(before.unprotected_dropped > 0, "{before:?}");
    assert_eq!(receiver.frame_counters().opened, 0);
    assert_eq!(taps.remote_video_count(), 0, "no picture without keys");

    // The receiver gets the key first (as a grant would bring it), then the sender uses it.
    let secret = roomd_e2ee::KeySecret::new([7; 32]);
    receiver.insert_receiver_key(0x1234_0000, &secret).unwrap();
    sender.set_sender_key(0x1234_0000, &secret).unwrap();
    receiver_events
        .wait(
            PeerEvent::FirstRemoteFrame,
            "first decrypted frame on the display",
        )
        .await;
    receiver_events
        .wait(PeerEvent::Talking(true), "decrypted voice")
        .await;
    let received = receiver.frame_counters();
    assert!(received.opened > 0, "{received:?}");
    eprintln!(
        "{encoder}: sender {:?}, receiver {received:?}",
        sender.frame_counters()
    );

    // Held (meeting.require_e2ee): nothing more is protected or sent; released, it goes on.
    sender.hold_sending(true).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = sender.frame_counters().protected;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sender.frame_counters().protected,
        held,
        "frames sent while held"
    );
    sender.hold_sending(false).unwrap();
    counters_reach(
        || sender.frame_counters().protected > held,
        "nothing sent once released",
    )
    .await;

    // The key removed (the sender left): frames no longer open.
    receiver.remove_receiver_key(0x1234_0000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opened = receiver.frame_counters().opened;
    counters_reach(
        || receiver.frame_counters().refused > received.refused,
        "no frame refused after the key was removed",
    )
    .await;
    let after = receiver.frame_counters();
    assert_eq!(after.opened, opened, "{after:?}");
}

/// Waits until `reached` holds of the frame counters: frames keep coming, but on a loaded
/// machine not within any fixed second (bounded at 10 s).
async fn counters_reach(reached: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !reached() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
