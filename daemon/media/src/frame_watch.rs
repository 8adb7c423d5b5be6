//! Notices a pipeline that stops moving without saying so. On GStreamer 1.22 a pipeline started
//! under load has been seen to never deliver a frame, with no error on its bus; a camera driver
//! can hang the same way. An error or end of stream already makes the engine rebuild a branch;
//! this is for the silent case: the engine asks every second how long the frames have stood
//! still, and rebuilds the branch once it is too long.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

/// How long a branch's frames may stand still before the engine rebuilds it. A camera gives
/// at least a few frames a second even in the dark, and building a branch takes well under a
/// second, so three seconds leaves a wide margin.
pub const STALL_LIMIT: Duration = Duration::from_secs(3);

/// Counts the buffers passing a pad and remembers when the count last moved.
#[derive(Clone)]
pub struct FrameWatch {
    what: &'static str,
    frames: Arc<AtomicU64>,
    /// The count at the last look, and when it last changed.
    seen: Arc<Mutex<(u64, Instant)>>,
}

impl FrameWatch {
    /// Starts counting the buffers through `pad`; `what` names them in the reason for a rebuild.
    pub fn on(pad: &gst::Pad, what: &'static str) -> FrameWatch {
        let watch = FrameWatch::new(what);
        let frames = watch.frames.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            frames.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
        watch
    }

    fn new(what: &'static str) -> FrameWatch {
        FrameWatch {
            what,
            frames: Arc::new(AtomicU64::new(0)),
            seen: Arc::new(Mutex::new((0, Instant::now()))),
        }
    }

    /// Why the branch must be rebuilt, if its frames have stood still for `limit` (counted
    /// from the last look that saw them move, or from the start).
    pub fn stalled(&self, limit: Duration) -> Option<String> {
        let now = Instant::now();
        let count = self.frames.load(Ordering::Relaxed);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if count != seen.0 {
            *seen = (count, now);
            return None;
        }
        let still = now.duration_since(seen.1);
        (still >= limit).then(|| {
            format!(
                "no {} for {:.1} s ({} so far)",
                self.what,
                still.as_secs_f64(),
                count
            )
        })
    }

    #[cfg(test)]
    fn count(&self, n: u64) {
        self.frames.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_frames_are_never_a_stall_and_standing_ones_are_after_the_limit() {
        let watch = FrameWatch::new("camera frames");
        let limit = Duration::from_millis(60);
        assert_eq!(watch.stalled(limit), None);
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(30));
            watch.count(1);
            assert_eq!(watch.stalled(limit), None);
        }
        std::thread::sleep(Duration::from_millis(70));
        let reason = watch.stalled(limit).expect("a stall");
        assert!(reason.starts_with("no camera frames for 0."), "{reason}");
        assert!(reason.ends_with("(4 so far)"), "{reason}");
        // Frames again: no longer stalled.
        watch.count(1);
        assert_eq!(watch.stalled(limit), None);
    }
}
