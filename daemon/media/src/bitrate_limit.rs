//! The bitrate the room's camera is encoded at: what suits the picture size (the engine's
//! choice), lowered while a far end asks for less (a SIP call's `b=TIAS`/`b=AS`). The camera
//! is encoded once for every far end, so the lowest ask wins; a far end that leaves (its
//! subscription is dropped) no longer counts, and the encoder goes back up.

use std::collections::HashMap;
use std::sync::Mutex;

use gstreamer as gst;

use roomd_base::sync::lock;

use crate::encoder_choice;

/// Lowest bitrate a far end can ask the camera down to, kbit/s: below it no encoder here makes
/// a picture worth showing, and a typo (`b=AS:1`) must not blind the call.
pub const FLOOR_KBPS: u32 = 64;

/// The camera encoder's bitrate and the far ends' asks.
pub struct BitrateLimit {
    state: Mutex<State>,
    /// What the encoder is set to, for `status.system.media.camera_kbps`.
    applied: tokio::sync::watch::Sender<Option<u32>>,
}

impl Default for BitrateLimit {
    fn default() -> Self {
        BitrateLimit {
            state: Mutex::default(),
            applied: tokio::sync::watch::channel(None).0,
        }
    }
}

#[derive(Default)]
struct State {
    encoder: Option<Attached>,
    /// kbit/s per far end (the id of its subscription to the camera).
    asks: HashMap<u64, u32>,
}

struct Attached {
    element: gst::Element,
    /// Its factory name, which decides the property and unit.
    name: String,
    /// What the engine chose for the picture size.
    chosen_kbps: u32,
    /// What it was last set to.
    applied_kbps: u32,
}

impl BitrateLimit {
    /// Far end `far_end` takes at most `kbps` (at least [`FLOOR_KBPS`] is kept); `None`:
    /// no limit of its own.
    pub(super) fn ask(&self, far_end: u64, kbps: Option<u32>) {
        let mut state = lock(&self.state);
        match kbps {
            Some(kbps) => state.asks.insert(far_end, kbps.max(FLOOR_KBPS)),
            None => state.asks.remove(&far_end),
        };
        state.apply();
        self.publish(&state);
    }

    /// A new camera encoder (the video branch was built or rebuilt), chosen at `chosen_kbps`,
    /// starts with what the far ends asked.
    pub(super) fn attach(&self, element: &gst::Element, name: &str, chosen_kbps: u32) {
        let mut state = lock(&self.state);
        state.encoder = Some(Attached {
            element: element.clone(),
            name: name.to_owned(),
            chosen_kbps,
            applied_kbps: chosen_kbps,
        });
        state.apply();
        self.publish(&state);
    }

    pub(super) fn detach(&self) {
        let mut state = lock(&self.state);
        state.encoder = None;
        self.publish(&state);
    }

    /// Follows what the camera encoder is set to (kbit/s; `None` without one).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<Option<u32>> {
        self.applied.subscribe()
    }

    fn publish(&self, state: &State) {
        let now = state.encoder.as_ref().map(|e| e.applied_kbps);
        self.applied.send_if_modified(|applied| {
            let changed = *applied != now;
            *applied = now;
            changed
        });
    }

    /// What the camera encoder is set to now, kbit/s; `None` without one.
    pub fn current_kbps(&self) -> Option<u32> {
        lock(&self.state).encoder.as_ref().map(|e| e.applied_kbps)
    }
}

impl State {
    fn apply(&mut self) {
        let lowest = self.asks.values().copied().min();
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        let target = lowest.map_or(encoder.chosen_kbps, |ask| ask.min(encoder.chosen_kbps));
        if target == encoder.applied_kbps {
            return;
        }
        if encoder_choice::set_bitrate(&encoder.element, &encoder.name, target)
            && encoder_choice::bitrate_kbps(&encoder.element, &encoder.name) == Some(target)
        {
            tracing::info!(
                "camera encoder {} now at {target} kbit/s (a far end takes at most {})",
                encoder.name,
                lowest.map_or("any".to_owned(), |k| format!("{k} kbit/s"))
            );
            encoder.applied_kbps = target;
        } else {
            tracing::warn!(
                "camera encoder {} cannot change its bitrate while it runs; a far end's limit \
                 of {target} kbit/s is not applied",
                encoder.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x264() -> gst::Element {
        gst::init().unwrap();
        gst::ElementFactory::make("x264enc").build().unwrap()
    }

    #[test]
    fn the_lowest_ask_wins_never_above_the_chosen_rate_and_a_leaver_no_longer_counts() {
        let limit = BitrateLimit::default();
        let encoder = x264();
        let watch = limit.watch();
        limit.attach(&encoder, "x264enc", 1500);
        assert_eq!(limit.current_kbps(), Some(1500));
        assert_eq!(*watch.borrow(), Some(1500));
        limit.ask(1, Some(800));
        limit.ask(2, Some(300));
        assert_eq!(limit.current_kbps(), Some(300));
        assert_eq!(*watch.borrow(), Some(300));
        assert_eq!(
            gstreamer::prelude::ObjectExt::property::<u32>(&encoder, "bitrate"),
            300
        );
        limit.ask(3, Some(5000));
        assert_eq!(limit.current_kbps(), Some(300));
        limit.ask(2, None);
        assert_eq!(limit.current_kbps(), Some(800));
        limit.ask(1, None);
        assert_eq!(limit.current_kbps(), Some(1500));
        // A typo does not blind the call.
        limit.ask(4, Some(1));
        assert_eq!(limit.current_kbps(), Some(FLOOR_KBPS));
        // A rebuilt encoder starts at the asks.
        let again = x264();
        limit.attach(&again, "x264enc", 1500);
        assert_eq!(
            gstreamer::prelude::ObjectExt::property::<u32>(&again, "bitrate"),
            FLOOR_KBPS
        );
        limit.detach();
        assert_eq!(limit.current_kbps(), None);
        assert_eq!(*watch.borrow(), None);
    }

    #[test]
    fn each_software_encoder_takes_a_new_rate_in_its_own_unit() {
        gst::init().unwrap();
        for name in ["x264enc", "openh264enc", "vp8enc"] {
            let encoder = gst::ElementFactory::make(name).build().unwrap();
            assert!(encoder_choice::set_bitrate(&encoder, name, 230), "{name}");
            assert_eq!(
                encoder_choice::bitrate_kbps(&encoder, name),
                Some(230),
                "{name}"
            );
        }
        let v4l2 = gst::ElementFactory::make("x264enc").build().unwrap();
        assert!(!encoder_choice::set_bitrate(&v4l2, "v4l2h264enc", 230));
    }
}
