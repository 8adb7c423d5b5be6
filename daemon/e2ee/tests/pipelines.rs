//! The elements in real GStreamer pipelines (Debian 12's 1.22): encoder → `roomdframeencrypt` →
//! payloader → depayloader → `roomdframedecrypt` → decoder, for each codec roomd sends.
//!
//! What is checked is what a person would see: the decoded picture equals the one of the same
//! pipeline without encryption; a receiver with a wrong key, a receiver that lost its key after a
//! rekey, and a plain decoder fed the RTP an SFU forwards get no picture or sound of it.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use roomd_e2ee::element::{FrameDecrypt, FrameEncrypt};
use roomd_e2ee::{KeySecret, SenderKey};

const FRAMES: usize = 60;
const WIDTH: usize = 320;
const HEIGHT: usize = 240;

fn init() {
    gst::init().expect("GStreamer initialises");
    roomd_e2ee::element::register().expect("the elements register");
}

fn secret(byte: u8) -> KeySecret {
    KeySecret::new([byte; 32])
}

/// Runs `description` until EOS or an error (a decoder fed garbage may give up; that is an
/// outcome, not a test failure), within 60 s; `setup` is called with the pipeline before it
/// plays. Returns every buffer of the appsinks named `sink…`, by sink name.
fn run(
    description: &str,
    setup: impl FnOnce(&gst::Pipeline),
) -> std::collections::BTreeMap<String, Vec<Vec<u8>>> {
    let pipeline = gst::parse::launch(description)
        .expect("the pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    setup(&pipeline);
    let sinks: Vec<gst_app::AppSink> = pipeline
        .iterate_elements()
        .into_iter()
        .flatten()
        .filter_map(|e| e.downcast::<gst_app::AppSink>().ok())
        .collect();
    pipeline.set_state(gst::State::Playing).expect("plays");
    let bus = pipeline.bus().expect("bus");
    let mut out: std::collections::BTreeMap<String, Vec<Vec<u8>>> = sinks
        .iter()
        .map(|sink| (sink.name().to_string(), Vec::new()))
        .collect();
    // appsink holds back EOS until its samples are taken: take them while waiting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        for sink in &sinks {
            while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(1)) {
                let buffer = sample.buffer().expect("a buffer");
                let map = buffer.map_readable().expect("readable");
                if let Some(buffers) = out.get_mut(sink.name().as_str()) {
                    buffers.push(map.as_slice().to_vec());
                }
            }
        }
        let ended = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(5),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        if ended.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pipeline neither ended nor failed in 60 s"
        );
    }
    pipeline.set_state(gst::State::Null).expect("stops");
    out
}

fn encrypt(pipeline: &gst::Pipeline, name: &str) -> FrameEncrypt {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<FrameEncrypt>().ok())
        .expect("the encrypt element")
}

fn decrypt(pipeline: &gst::Pipeline, name: &str) -> FrameDecrypt {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<FrameDecrypt>().ok())
        .expect("the decrypt element")
}

/// Mean absolute difference of two grey pictures.
fn difference(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len().max(1) as f64
}

const H264_SOURCE: &str = "videotestsrc num-buffers=60 pattern=ball ! \
    video/x-raw,width=320,height=240,framerate=30/1 ! \
    x264enc tune=zerolatency threads=1 key-int-max=30 ! \
    video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline";
const H264_DECODE: &str = "rtph264depay ! video/x-h264,stream-format=byte-stream,alignment=au";
const GREY: &str = "avdec_h264 ! videoconvert ! video/x-raw,format=GRAY8,width=320,height=240";

#[test]
fn h264_through_the_elements_decodes_to_the_same_picture_as_without() {
    init();
    let clear = run(
        &format!(
            "{H264_SOURCE} ! rtph264pay ! {H264_DECODE} ! {GREY} ! appsink name=sink sync=false"
        ),
        |_| {},
    );
    let protected = run(
        &format!(
            "{H264_SOURCE} ! roomdframeencrypt name=enc ! rtph264pay ! {H264_DECODE} ! \
             roomdframedecrypt name=dec ! {GREY} ! appsink name=sink sync=false"
        ),
        |p| {
            encrypt(p, "enc").set_key(Some(SenderKey::new(1, &secret(1)).expect("key")));
            decrypt(p, "dec")
                .insert_key(1, &secret(1))
                .expect("receiver key");
        },
    );
    let (clear, protected) = (&clear["sink"], &protected["sink"]);
    assert_eq!(clear.len(), FRAMES);
    assert_eq!(protected.len(), FRAMES, "every frame opened and decoded");
    assert_eq!(protected[0].len(), WIDTH * HEIGHT);
    for (i, (a, b)) in clear.iter().zip(protected).enumerate() {
        assert!(
            difference(a, b) < 0.5,
            "frame {i} differs from the unencrypted pipeline's"
        );
    }
}

#[test]
fn what_the_sfu_forwards_decodes_to_no_picture_and_a_wrong_key_to_nothing() {
    init();
    let reference = run(
        &format!(
            "{H264_SOURCE} ! rtph264pay ! {H264_DECODE} ! {GREY} ! appsink name=sink sync=false"
        ),
        |_| {},
    );
    let reference = &reference["sink"];
    // The SFU's view: the RTP as it goes out, into a plain depayloader and decoder. The decoder
    // may output concealed frames or give up; none may resemble the picture.
    let sfu = run(
        &format!(
            "{H264_SOURCE} ! roomdframeencrypt name=enc ! rtph264pay ! {H264_DECODE} ! \
             {GREY} ! appsink name=sink sync=false"
        ),
        |p| encrypt(p, "enc").set_key(Some(SenderKey::new(1, &secret(1)).expect("key"))),
    );
    for (i, frame) in sfu["sink"].iter().enumerate() {
        let closest = reference
            .iter()
            .map(|r| difference(r, frame))
            .fold(f64::MAX, f64::min);
        assert!(
            closest > 10.0,
            "frame {i} decoded from the forwarded RTP resembles the picture (difference {closest:.1})"
        );
    }
    // A receiver whose key for the same key id is wrong: nothing reaches the decoder, and
    // the element says why.
    let mut dec = None;
    let wrong = run(
        &format!(
            "{H264_SOURCE} ! roomdframeencrypt name=enc ! rtph264pay ! {H264_DECODE} ! \
             roomdframedecrypt name=dec ! {GREY} ! appsink name=sink sync=false"
        ),
        |p| {
            encrypt(p, "enc").set_key(Some(SenderKey::new(1, &secret(1)).expect("key")));
            let element = decrypt(p, "dec");
            element.insert_key(1, &secret(2)).expect("receiver key");
            dec = Some(element);
        },
    );
    assert!(wrong["sink"].is_empty(), "a wrong key decoded frames");
    let dec = dec.expect("the decrypt element");
    assert_eq!(dec.property::<u64>("frames-refused"), FRAMES as u64);
    assert_eq!(dec.property::<u64>("frames-opened"), 0);
    assert!(
        dec.property::<String>("last-error").contains("SFrame"),
        "{}",
        dec.property::<String>("last-error")
    );
}

#[test]
fn a_sender_without_a_key_sends_nothing() {
    init();
    let mut enc = None;
    let out = run(
        &format!(
            "{H264_SOURCE} ! roomdframeencrypt name=enc ! rtph264pay ! appsink name=sink sync=false"
        ),
        |p| enc = Some(encrypt(p, "enc")),
    );
    assert!(out["sink"].is_empty(), "RTP left a sender without a key");
    let enc = enc.expect("the encrypt element");
    assert_eq!(enc.property::<u64>("frames-dropped"), FRAMES as u64);
    assert_eq!(enc.property::<u64>("frames-protected"), 0);
}

const OPUS_SOURCE: &str = "audiotestsrc num-buffers=50 wave=sine samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 ! opusenc";

#[test]
fn after_a_rekey_a_receiver_that_kept_only_the_old_key_hears_nothing_new() {
    init();
    let description = format!(
        "{OPUS_SOURCE} ! roomdframeencrypt name=enc ! rtpopuspay ! rtpopusdepay ! tee name=t \
         t. ! queue ! roomdframedecrypt name=stays ! opusdec ! appsink name=sink_stays sync=false \
         t. ! queue ! roomdframedecrypt name=left ! opusdec ! appsink name=sink_left sync=false"
    );
    let out = run(&description, |p| {
        let enc = encrypt(p, "enc");
        enc.set_key(Some(SenderKey::new(1, &secret(1)).expect("key")));
        let stays = decrypt(p, "stays");
        stays.insert_key(1, &secret(1)).expect("key 1");
        stays.insert_key(2, &secret(2)).expect("key 2");
        decrypt(p, "left").insert_key(1, &secret(1)).expect("key 1");
        // The sender rekeys after 25 frames (a participant left: it never gets key 2).
        let sink = enc.static_pad("sink").expect("sink pad");
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let enc_weak = enc.downgrade();
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == 26
                && let Some(enc) = enc_weak.upgrade()
            {
                enc.set_key(Some(SenderKey::new(2, &secret(2)).expect("key 2")));
            }
            gst::PadProbeReturn::Ok
        });
    });
    let stays = out["sink_stays"].len();
    let left = out["sink_left"].len();
    assert!(
        stays >= 48,
        "the receiver with the new key decoded {stays} of 50 frames"
    );
    assert!(
        (24..=26).contains(&left),
        "the receiver without the new key decoded {left} frames: only those before the rekey"
    );
}

#[test]
fn vp8_through_the_elements_and_roomds_payloader_decodes_to_the_same_picture() {
    init();
    let source = "videotestsrc num-buffers=30 pattern=ball ! \
        video/x-raw,width=320,height=240,framerate=30/1 ! \
        vp8enc deadline=1 threads=1 keyframe-max-dist=15";
    let grey = "vp8dec ! videoconvert ! video/x-raw,format=GRAY8,width=320,height=240";
    // The reference: GStreamer's own payloader, no encryption.
    let clear = run(
        &format!(
            "{source} ! rtpvp8pay mtu=400 ! rtpvp8depay ! {grey} ! appsink name=sink sync=false"
        ),
        |_| {},
    );
    let protected = run(
        &format!(
            "{source} ! roomdframeencrypt name=enc ! roomdrtpvp8pay mtu=400 ! rtpvp8depay ! \
             roomdframedecrypt name=dec ! {grey} ! appsink name=sink sync=false"
        ),
        |p| {
            encrypt(p, "enc").set_key(Some(SenderKey::new(1, &secret(1)).expect("key")));
            decrypt(p, "dec")
                .insert_key(1, &secret(1))
                .expect("receiver key");
        },
    );
    let (clear, protected) = (&clear["sink"], &protected["sink"]);
    assert_eq!(clear.len(), 30);
    assert_eq!(protected.len(), 30, "every VP8 frame opened and decoded");
    for (i, (a, b)) in clear.iter().zip(protected).enumerate() {
        assert!(
            difference(a, b) < 0.5,
            "VP8 frame {i} differs from the unencrypted pipeline's"
        );
    }
}

/// The receiver's key arrives after the sender's key frame (the usual order when someone
/// joins: the subscription's own key frame request comes first): the first frame that opens
/// refers to pictures the decoder never got, so the element asks upstream for a key frame,
/// once; with the key from the start it never asks.
#[test]
fn a_key_that_arrives_after_the_key_frame_asks_for_a_new_one() {
    init();
    let requests_with_key_after = |late: usize| {
        let mut dec = None;
        let upstream = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen_upstream = upstream.clone();
        run(
            &format!(
                "{H264_SOURCE} ! roomdframeencrypt name=enc ! rtph264pay ! {H264_DECODE} ! \
                 roomdframedecrypt name=dec ! fakesink sync=false"
            ),
            |p| {
                encrypt(p, "enc").set_key(Some(SenderKey::new(1, &secret(1)).expect("key")));
                let element = decrypt(p, "dec");
                let sink = element.static_pad("sink").expect("sink pad");
                let frames = std::sync::atomic::AtomicUsize::new(0);
                let weak = element.downgrade();
                sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    if frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == late
                        && let Some(element) = weak.upgrade()
                    {
                        element.insert_key(1, &secret(1)).expect("key");
                    }
                    gst::PadProbeReturn::Ok
                });
                sink.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                    if let Some(event) = info.event()
                        && gstreamer_video::UpstreamForceKeyUnitEvent::parse(event).is_ok()
                    {
                        seen_upstream.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    gst::PadProbeReturn::Ok
                });
                dec = Some(element);
            },
        );
        let property = dec
            .expect("the decrypt element")
            .property::<u64>("keyframe-requests");
        (
            property,
            upstream.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    // Key frames at 0 and 30; the key arrives with frame 5.
    assert_eq!(requests_with_key_after(5), (1, 1));
    assert_eq!(requests_with_key_after(0), (0, 0));
}
