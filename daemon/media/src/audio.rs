//! The audio branch. Microphone → (privacy) → webrtcdsp (echo cancellation against the probe at
//! the speaker output, noise suppression, gain control, high-pass) → level (VU) → gate → Opus
//! (voice, 20 ms frames, in-band FEC sized to the loss the far ends report, see
//! [`super::expected_loss`]; DTX: near silence instead of packets in pauses) → the meetings' tap. The gate keeps Opus idle outside
//! meetings. Speaker: the far end mixed (one `audiomixer` pad per remote voice, see
//! [`super::remote`]) → volume → webrtcechoprobe → sink, so the echo canceller hears the far end.

use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::MediaError;
use super::privacy::{self, Blanking};
use super::remote::SpeakerMixer;
use super::view::RoomView;
use roomd_hardware::profile::{AudioSink, AudioSource, Microphone, Speaker};

/// webrtcdsp finds its echo probe by name across the whole process: each branch gets its own.
static NEXT_PROBE: AtomicU64 = AtomicU64::new(1);

/// How often the level element measures (5 Hz is as fast as a VU meter needs).
pub const LEVEL_INTERVAL_NS: u64 = 200_000_000;

/// What the audio branch is built for, from the hardware profile.
#[derive(Debug, Clone)]
pub struct AudioSetup {
    /// The microphone to capture.
    pub microphone: Microphone,
    /// Where the far end is played; `None` plays into a fake sink (sound is still mixed).
    pub speaker: Option<Speaker>,
}

/// How long the speaker mix waits for far-end voices: they arrive stamped with the time they
/// were pushed, so the mixer needs a little slack not to drop them as late.
const MIX_LATENCY_NS: u64 = 40_000_000;

/// The audio pipeline: microphone to the Opus tap, far-end voices to the speaker. Stopped when
/// dropped.
pub struct AudioBranch {
    /// The whole pipeline (microphone and speaker sides).
    pub pipeline: gst::Pipeline,
    /// The `opusenc`; its `packet-loss-percentage` follows the loss the far ends report.
    pub encoder: gst::Element,
    /// Encoded Opus for the meetings' tap.
    pub encoded: gstreamer_app::AppSink,
    /// The far-end mix: where remote voices are added and removed.
    pub speaker: SpeakerMixer,
    encode_gate: gst::Element,
    microphone_blank: Blanking,
    speaker_volume: gst::Element,
}

/// See `VideoBranch`'s `Drop`: a pipeline is never disposed while it plays.
impl Drop for AudioBranch {
    fn drop(&mut self) {
        self.stop();
    }
}

impl AudioBranch {
    /// Builds the pipeline (not yet playing), private: microphone muted, encoding gated off.
    /// Fails when an element is missing.
    pub fn build(setup: &AudioSetup) -> Result<AudioBranch, MediaError> {
        let probe = format!(
            "roomd_echo_probe_{}",
            NEXT_PROBE.fetch_add(1, Ordering::Relaxed)
        );
        let microphone = match setup.microphone.source {
            // An audible test signal that the voice path takes for a talker: 200 ms syllables of
            // a quiet 220 Hz tone, 200 ms apart. A steady tone is noise to the noise suppressor
            // and to Opus's voice detection, which then sends almost no FEC (measured: 3 % of
            // packets at 20 % expected loss, against 55 % for the syllables).
            AudioSource::TestTone => "audiotestsrc name=mic_src is-live=true wave=ticks freq=220 \
                 sine-periods-per-tick=44 tick-interval=400000000 apply-tick-ramp=true volume=0.1"
                .to_owned(),
            AudioSource::Alsa => "alsasrc name=mic_src".to_owned(),
        };
        let speaker_sink = match setup.speaker.as_ref().map(|s| s.sink) {
            Some(AudioSink::Alsa) => "alsasink name=speaker_sink",
            Some(AudioSink::Virtual) | None => "fakesink name=speaker_sink sync=true",
        };
        // webrtcdsp works on S16LE at 48 kHz in 10 ms chunks; both sides use the same format.
        let description = format!(
            "{microphone} ! audioconvert ! audioresample \
               ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! identity name=mic_out \
               ! webrtcdsp probe={probe} echo-cancel=true noise-suppression=true \
                 gain-control=true high-pass-filter=true \
               ! level name=mic_level interval={LEVEL_INTERVAL_NS} post-messages=true \
               ! audioconvert ! audioresample \
               ! valve name=encode_gate drop=true drop-mode=forward-sticky-events \
               ! opusenc name=opus audio-type=voice frame-size=20 bitrate=32000 \
                 inband-fec=true packet-loss-percentage=0 dtx=true \
               ! appsink name=audio_encoded sync=false async=false max-buffers=50 drop=true \
             audiotestsrc is-live=true wave=silence \
               ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
               ! audiomixer name=far_end latency={MIX_LATENCY_NS} ! volume name=speaker_volume \
               ! webrtcechoprobe name={probe} ! audioconvert ! audioresample ! {speaker_sink}"
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| MediaError::Build(format!("audio pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Build("audio pipeline: not a pipeline".into()))?;
        let element = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| MediaError::Build(format!("audio pipeline lacks {name}")))
        };
        if let Some(device) = &setup.microphone.device {
            element("mic_src")?.set_property("device", device);
        }
        if let Some(device) = setup.speaker.as_ref().and_then(|s| s.device.as_ref()) {
            let sink = element("speaker_sink")?;
            if sink.find_property("device").is_some() {
                sink.set_property("device", device);
            }
        }
        let microphone_blank = Blanking::new();
        let mic_out = element("mic_out")?
            .static_pad("src")
            .ok_or_else(|| MediaError::Build("mic_out has no src pad".into()))?;
        privacy::blank_audio(&mic_out, microphone_blank.clone());
        let encoded = element("audio_encoded")?
            .downcast::<gstreamer_app::AppSink>()
            .map_err(|_| MediaError::Build("audio_encoded is not an appsink".into()))?;
        let branch = AudioBranch {
            encoder: element("opus")?,
            encoded,
            speaker: SpeakerMixer::new(pipeline.clone(), element("far_end")?),
            encode_gate: element("encode_gate")?,
            speaker_volume: element("speaker_volume")?,
            microphone_blank,
            pipeline,
        };
        branch.apply(&RoomView::private());
        Ok(branch)
    }

    /// Sets the pipeline playing; fails if it refuses (e.g. the ALSA device is missing or busy).
    pub fn start(&self) -> Result<(), MediaError> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| MediaError::Start("audio pipeline".into()))
    }

    /// Stops the pipeline (state NULL), releasing the devices.
    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    /// Follows the room: mute blanks the microphone, encoding runs only in a meeting, and the
    /// speaker volume (0–100) is applied on a cubic curve.
    pub fn apply(&self, view: &RoomView) {
        self.microphone_blank.set(view.muted);
        self.encode_gate.set_property("drop", !view.in_meeting);
        // Loudness is perceived roughly logarithmically: a cubic curve makes the 0..=100 scale
        // feel even, as on most room systems.
        let linear = f64::from(view.volume) / 100.0;
        self.speaker_volume
            .set_property("volume", linear * linear * linear);
    }

    /// The Opus encoder's sink pad: what the encoder is fed (after privacy blanking).
    pub fn encoder_input(&self) -> Option<gst::Pad> {
        self.encoder.static_pad("sink")
    }
}

/// The RMS level in dBFS of the loudest channel from a `level` element message, if it is one.
pub fn rms_db(message: &gst::MessageRef) -> Option<f64> {
    let structure = message.structure()?;
    if structure.name() != "level" {
        return None;
    }
    let rms = structure.get::<gst::glib::ValueArray>("rms").ok()?;
    rms.iter()
        .filter_map(|value| value.get::<f64>().ok())
        .reduce(f64::max)
}
