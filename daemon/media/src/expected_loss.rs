//! The packet loss the room's Opus encoder is told to expect. libopus adds in-band FEC (a
//! low-bitrate copy of each frame in the next packet) only when it expects loss, and sizes it to
//! that loss: with `packet-loss-percentage=0` an `inband-fec=true` encoder sends no FEC at all.
//!
//! The room encodes its microphones once for every far end, so the encoder protects against the
//! worst path: each far end's RTCP receiver reports (fraction lost since its previous report)
//! are followed per far end (up at once, down by halves), and the encoder gets the highest. A far end that leaves
//! (its subscription is dropped) no longer counts.

use std::collections::HashMap;
use std::sync::Mutex;

use gstreamer as gst;
use gstreamer::prelude::*;

use roomd_base::sync::lock;

/// The encoder property libopus's expected loss is set through (0..=100).
const PROPERTY: &str = "packet-loss-percentage";
/// Weight of a lower report: receiver reports come every few seconds, each over its own short
/// interval; a path that loses less is believed by halves (one lucky interval does not switch
/// the FEC off), a path that loses more at once (words are lost meanwhile).
const FALLING_WEIGHT: f64 = 0.5;

/// The loss the Opus encoder protects against (in-band FEC): the worst far end's reported voice
/// packet loss, smoothed, applied to whichever encoder is attached.
#[derive(Default)]
pub struct ExpectedLoss {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    encoder: Option<gst::Element>,
    /// Smoothed loss in percent per far end (the id of its subscription to the microphones).
    far_ends: HashMap<u64, f64>,
}

impl ExpectedLoss {
    /// A far end reported `percent` of the room's voice packets lost since its previous report.
    pub(super) fn report(&self, far_end: u64, percent: f64) {
        let percent = percent.clamp(0.0, 100.0);
        let mut state = lock(&self.state);
        let smoothed = match state.far_ends.get(&far_end) {
            Some(before) if percent < *before => before + FALLING_WEIGHT * (percent - before),
            _ => percent,
        };
        // Halving never reaches zero by itself: a path that stopped losing gets FEC off.
        let smoothed = if smoothed < 0.5 { 0.0 } else { smoothed };
        state.far_ends.insert(far_end, smoothed);
        state.apply();
    }

    /// The far end is gone.
    pub(super) fn forget(&self, far_end: u64) {
        let mut state = lock(&self.state);
        if state.far_ends.remove(&far_end).is_some() {
            state.apply();
        }
    }

    /// A new encoder (the audio branch was built or rebuilt) starts with what is known.
    pub(super) fn attach(&self, encoder: &gst::Element) {
        let mut state = lock(&self.state);
        state.encoder = Some(encoder.clone());
        state.apply();
    }

    pub(super) fn detach(&self) {
        lock(&self.state).encoder = None;
    }

    /// What the running encoder was told, read back from it; `None` without an encoder.
    pub fn current(&self) -> Option<u32> {
        let encoder = lock(&self.state).encoder.clone()?;
        Some(encoder.property::<i32>(PROPERTY).max(0) as u32)
    }
}

impl State {
    /// The worst far end's loss, rounded up: a little protection too much costs a few kbit/s,
    /// too little costs words.
    fn worst(&self) -> i32 {
        self.far_ends
            .values()
            .copied()
            .fold(0.0, f64::max)
            .ceil()
            .clamp(0.0, 100.0) as i32
    }

    fn apply(&self) {
        let Some(encoder) = &self.encoder else {
            return;
        };
        let worst = self.worst();
        if encoder.property::<i32>(PROPERTY) != worst {
            tracing::debug!("Opus encoder now expects {worst} % packet loss");
            encoder.set_property(PROPERTY, worst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder() -> gst::Element {
        gst::init().unwrap();
        gst::ElementFactory::make("opusenc").build().unwrap()
    }

    #[test]
    fn the_encoder_expects_the_worst_far_ends_smoothed_loss() {
        let loss = ExpectedLoss::default();
        let opus = encoder();
        loss.attach(&opus);
        assert_eq!(loss.current(), Some(0));
        loss.report(1, 4.0);
        loss.report(2, 20.0);
        assert_eq!(loss.current(), Some(20));
        // Smoothed: one clean interval halves the estimate rather than dropping it.
        loss.report(2, 0.0);
        assert_eq!(loss.current(), Some(10));
        for _ in 0..6 {
            loss.report(1, 0.0);
        }
        loss.forget(2);
        assert_eq!(loss.current(), Some(0));
        // More loss counts at once.
        loss.report(1, 2.0);
        loss.report(2, 3.0);
        loss.report(1, 4.0);
        assert_eq!(loss.current(), Some(4));
        loss.forget(1);
        assert_eq!(loss.current(), Some(3));
    }

    #[test]
    fn a_rebuilt_encoder_starts_with_the_known_loss() {
        let loss = ExpectedLoss::default();
        loss.report(7, 12.5);
        assert_eq!(loss.current(), None);
        let opus = encoder();
        loss.attach(&opus);
        assert_eq!(opus.property::<i32>(PROPERTY), 13);
        loss.detach();
        assert_eq!(loss.current(), None);
    }
}
