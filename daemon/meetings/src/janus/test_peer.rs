//! Real SDP for the signalling tests, made by GStreamer's `webrtcbin`: a sending peer's offer
//! (VP8 video and Opus audio test sources) and a receiving peer's answer to a server's offer.
//! Media never flows (ICE ignores loopback); only the descriptions are used.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;

/// A pipeline with a `webrtcbin`, stopped when dropped.
pub(super) struct Peer {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Peer {
    fn new(description: &str) -> Peer {
        gst::init().expect("GStreamer init");
        let pipeline = gst::parse::launch(description)
            .expect("test pipeline")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let webrtc = pipeline.by_name("w").expect("webrtcbin named w");
        pipeline.set_state(gst::State::Playing).expect("playing");
        Peer { pipeline, webrtc }
    }

    /// A sending peer and its offer (with every candidate it gathered).
    pub(super) fn offer() -> (Peer, String) {
        // Each stream's SSRC is in the offer from the start, as roomd's own peers do it
        // (media::webrtc::peer): webrtcbin 1.22 otherwise writes `a=ssrc` only once caps have
        // flowed, and Janus rejects a bundle-only audio line without one (about one offer in
        // five here raced that way and failed with "media 1 is missing 'ice-ufrag'").
        let video = "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000";
        // With its channels: Janus looks for `opus/48000/2`, and webrtcbin writes the rtpmap from
        // these caps when the offer is made before the payloader's own caps have flowed (about
        // one offer in six here: Janus then rejected the audio line, and with it the bundle's
        // ICE, "ICE failed").
        let audio = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2";
        let (video_ssrc, audio_ssrc) = (0x5EED_0001u32, 0x5EED_0002u32);
        let peer = Peer::new(&format!(
            "webrtcbin name=w bundle-policy=max-bundle \
             videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 ! \
             vp8enc deadline=1 ! rtpvp8pay ssrc={video_ssrc} ! {video} ! w.sink_0 \
             audiotestsrc is-live=true ! opusenc ! rtpopuspay ssrc={audio_ssrc} ! {audio} ! w.sink_1"
        ));
        for (pad, caps, ssrc) in [("sink_0", video, video_ssrc), ("sink_1", audio, audio_ssrc)] {
            let transceiver = peer
                .webrtc
                .static_pad(pad)
                .expect("a linked webrtcbin sink pad")
                .property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
            let mut caps = caps.parse::<gst::Caps>().expect("RTP caps");
            caps.make_mut()
                .structure_mut(0)
                .expect("one structure")
                .set("ssrc", ssrc);
            transceiver.set_property("codec-preferences", caps);
        }
        let reply = peer.promise("create-offer", None);
        let offer = reply
            .get::<gst_webrtc::WebRTCSessionDescription>("offer")
            .expect("webrtcbin made an offer");
        let sdp = peer.set_local_and_gather(offer);
        (peer, sdp)
    }

    /// A receiving peer and its answer to `offer`.
    pub(super) fn answer(offer: &str) -> (Peer, String) {
        let peer = Peer::new("webrtcbin name=w bundle-policy=max-bundle fakesink");
        let message =
            gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).expect("Janus' offer is SDP");
        let remote =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, message);
        let promise = gst::Promise::new();
        peer.webrtc
            .emit_by_name::<()>("set-remote-description", &[&remote, &promise]);
        promise.wait();
        let reply = peer.promise("create-answer", None);
        let answer = reply
            .get::<gst_webrtc::WebRTCSessionDescription>("answer")
            .expect("webrtcbin made an answer");
        let sdp = peer.set_local_and_gather(answer);
        (peer, sdp)
    }

    /// Applies the server's answer to our offer: ICE and DTLS start.
    pub(super) fn set_remote_answer(&self, answer: &str) {
        let message = gst_sdp::SDPMessage::parse_buffer(answer.as_bytes()).expect("answer is SDP");
        let remote =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        let promise = gst::Promise::new();
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&remote, &promise]);
        promise.wait();
    }

    fn promise(&self, signal: &str, options: Option<gst::Structure>) -> gst::Structure {
        let promise = gst::Promise::new();
        self.webrtc
            .emit_by_name::<()>(signal, &[&options, &promise]);
        assert_eq!(promise.wait(), gst::PromiseResult::Replied, "{signal}");
        promise.get_reply().expect("a reply").to_owned()
    }

    /// Sets `description` as local, waits for ICE gathering, returns the local SDP text.
    fn set_local_and_gather(&self, description: gst_webrtc::WebRTCSessionDescription) -> String {
        let promise = gst::Promise::new();
        self.webrtc
            .emit_by_name::<()>("set-local-description", &[&description, &promise]);
        promise.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .webrtc
            .property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
            != gst_webrtc::WebRTCICEGatheringState::Complete
        {
            assert!(Instant::now() < deadline, "ICE gathering did not complete");
            std::thread::sleep(Duration::from_millis(50));
        }
        let local = self
            .webrtc
            .property::<gst_webrtc::WebRTCSessionDescription>("local-description");
        local.sdp().as_text().expect("SDP as text")
    }
}
