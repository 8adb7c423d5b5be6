//! Two calls' media against each other on loopback, SDES-SRTP, H.264: room A's and room B's
//! ends of one call. Both run on one test room (its camera 320x180, its shared content 256x144),
//! which is what each end sends and where each end's far-end pictures are shown; a second room
//! would only cost the machine another camera, content input and display.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::{Protection, SRTP_KEY_LEN, SipMedia, SipPorts, SipStream};
use crate::{Feed, MediaTaps};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A camera stream and a content stream, both H.264, to the far end's `ports`.
fn video_streams(
    theirs: &SipPorts,
    send: [u8; SRTP_KEY_LEN],
    receive: [u8; SRTP_KEY_LEN],
) -> Vec<SipStream> {
    [(Feed::Camera, 96), (Feed::Content, 97)]
        .into_iter()
        .map(|(feed, payload_type)| SipStream {
            feed,
            encoding: "H264".into(),
            payload_type,
            remote_rtp: SocketAddr::new(LOOPBACK, theirs.port(feed)),
            remote_rtcp: SocketAddr::new(LOOPBACK, theirs.port(feed) + 1),
            protection: Protection::Sdes { send, receive },
            max_kbps: None,
            telephone_event: None,
        })
        .collect()
}

/// Waits until `reached` holds (frames come, but on a loaded machine not within any fixed
/// second), at most `limit`.
fn wait_until(limit: Duration, what: &str, reached: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !reached() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The size of the pictures that the appsink of the far end's `stream` (`video`, `content`)
/// in `media` takes.
fn picture_size(media: &SipMedia, stream: &str) -> Option<(i32, i32)> {
    let prefix = format!("far_end_{stream}_");
    let sink = media
        .pipeline
        .iterate_elements()
        .into_iter()
        .filter_map(Result::ok)
        .find(|element| element.name().starts_with(&prefix))?;
    let caps = sink.static_pad("sink")?.current_caps()?;
    let structure = caps.structure(0)?;
    Some((
        structure.get::<i32>("width").ok()?,
        structure.get::<i32>("height").ok()?,
    ))
}

#[test]
fn content_goes_out_only_while_the_room_holds_the_floor() {
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    let room = crate::webrtc::tests::room_sharing_content();
    let taps = &room.taps;
    let ports_a = SipPorts::bind(LOOPBACK).unwrap();
    let ports_b = SipPorts::bind(LOOPBACK).unwrap();
    let (key_a, key_b) = ([0xA5; SRTP_KEY_LEN], [0x5B; SRTP_KEY_LEN]);
    let streams_a = video_streams(&ports_b, key_a, key_b);
    let streams_b = video_streams(&ports_a, key_b, key_a);
    let a = SipMedia::start(taps, ports_a, "Room B", &streams_a).unwrap();
    let b = SipMedia::start(taps, ports_b, "Room A", &streams_b).unwrap();
    assert!(a.encrypted() && b.encrypted());

    // The call runs (each end shows the other's camera) and the room's content is encoded,
    // but nobody holds the floor: no content goes either way.
    let limit = Duration::from_secs(20);
    wait_until(limit, "B shows A's camera", || {
        b.counters().video_received.get() > 0
    });
    wait_until(limit, "A shows B's camera", || {
        a.counters().video_received.get() > 0
    });
    wait_until(limit, "the room's content is encoded", || {
        taps.feed_caps(Feed::Content).is_some()
    });
    std::thread::sleep(Duration::from_secs(2));
    for (end, media) in [("A", &a), ("B", &b)] {
        let counters = media.counters();
        assert_eq!(counters.content_sent.get(), 0, "{end} sent content");
        assert_eq!(counters.content_received.get(), 0, "{end} decoded content");
        assert_eq!(
            counters.content_received.bytes(),
            0,
            "{end} got content RTP"
        );
    }
    assert!(!*b.first_content_frame().borrow());
    assert_eq!(taps.remote_video_count(), 2, "the two cameras only");

    // A takes the floor: B decodes A's content, the content's size, in a picture of its own.
    a.set_content_sending(true);
    wait_until(limit, "B's first content frame", || {
        *b.first_content_frame().borrow()
    });
    let first = b.counters().content_received.get();
    wait_until(Duration::from_secs(10), "B's content frames grow", || {
        b.counters().content_received.get() >= first + 10
    });
    assert!(a.counters().content_sent.get() > 0);
    assert!(b.counters().content_received.bytes() > 0);
    assert_eq!(picture_size(&b, "content"), Some((256, 144)));
    assert_eq!(picture_size(&b, "video"), Some((320, 180)));
    assert_eq!(
        taps.remote_video_count(),
        3,
        "A's content beside the cameras"
    );

    // A releases the floor: B's content stops while its camera goes on.
    a.set_content_sending(false);
    // What was on its way when the valve closed.
    std::thread::sleep(Duration::from_millis(500));
    let (content, camera) = (
        b.counters().content_received.get(),
        b.counters().video_received.get(),
    );
    let sent = a.counters().content_sent.get();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        b.counters().content_received.get(),
        content,
        "content after release"
    );
    assert_eq!(
        a.counters().content_sent.get(),
        sent,
        "A sent after release"
    );
    assert!(
        b.counters().video_received.get() > camera,
        "the camera stalled"
    );

    // The floor again: the content resumes (on a keyframe the valve's opening asked for).
    a.set_content_sending(true);
    wait_until(limit, "B's content resumes", || {
        b.counters().content_received.get() >= content + 10
    });
    // B never held the floor.
    assert_eq!(b.counters().content_sent.get(), 0);
    assert_eq!(a.counters().content_received.get(), 0);
    drop((a, b));
    assert_eq!(taps.remote_video_count(), 0);
}

/// A room without a content input builds no content sender: the floor changes nothing.
#[test]
fn without_a_content_input_the_content_stream_only_receives() {
    let _serial = crate::tests::one_pipeline_test_at_a_time();
    gst::init().unwrap();
    let taps = MediaTaps::default();
    assert!(!taps.has_content());
    let ports = SipPorts::bind(LOOPBACK).unwrap();
    let far_end = SipPorts::bind(LOOPBACK).unwrap();
    let streams = video_streams(&far_end, [1; SRTP_KEY_LEN], [2; SRTP_KEY_LEN]);
    let media = SipMedia::start(&taps, ports, "far end", &streams[1..]).unwrap();
    assert!(media.content.is_none());
    media.set_content_sending(true);
    media.set_content_sending(true);
    media.set_content_sending(false);
    assert_eq!(media.counters().content_sent.get(), 0);
}
