//! Privacy at the source: while the camera is off or the microphones are muted, every buffer
//! leaving the source is blanked (black picture, digital silence) before anything else sees it,
//! so neither the display, the encoders nor a future recorder can leak it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

/// A switch shared between the engine (which follows the core's status) and a pad probe.
#[derive(Debug, Clone)]
pub struct Blanking(Arc<AtomicBool>);

impl Blanking {
    /// Starts blanked: nothing passes until the engine has read the room's status.
    pub fn new() -> Self {
        Blanking(Arc::new(AtomicBool::new(true)))
    }

    /// Blanks (`true`) or passes (`false`) buffers from the next one on.
    pub fn set(&self, blank: bool) {
        self.0.store(blank, Ordering::SeqCst);
    }

    /// Whether buffers are blanked now.
    pub fn is_blank(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Default for Blanking {
    fn default() -> Self {
        Blanking::new()
    }
}

/// Blanks I420 video on `pad` (the camera's output) while `switch` is set. A buffer that
/// cannot be blanked (no caps yet, not I420) is dropped rather than passed on.
pub fn blank_video(pad: &gst::Pad, switch: Blanking) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if !switch.is_blank() {
            return gst::PadProbeReturn::Ok;
        }
        let info_of_caps = pad
            .current_caps()
            .and_then(|caps| gstreamer_video::VideoInfo::from_caps(&caps).ok());
        let blanked = match (info_of_caps, info.buffer_mut()) {
            (Some(video), Some(buffer)) => fill_black_i420(buffer.make_mut(), &video),
            _ => false,
        };
        if blanked {
            gst::PadProbeReturn::Ok
        } else {
            gst::PadProbeReturn::Drop
        }
    });
}

/// Silences integer PCM audio on `pad` (the microphone's output) while `switch` is set.
pub fn blank_audio(pad: &gst::Pad, switch: Blanking) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if switch.is_blank()
            && let Some(buffer) = info.buffer_mut()
        {
            let buffer = buffer.make_mut();
            if let Ok(mut map) = buffer.map_writable() {
                map.as_mut_slice().fill(0);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// I420 black: luma 16, both chroma planes 128 (row padding included).
fn fill_black_i420(buffer: &mut gst::BufferRef, video: &gstreamer_video::VideoInfo) -> bool {
    if video.format() != gstreamer_video::VideoFormat::I420 {
        return false;
    }
    let Ok(mut frame) = gstreamer_video::VideoFrameRef::from_buffer_ref_writable(buffer, video)
    else {
        return false;
    };
    for (plane, value) in [(0, 16u8), (1, 128), (2, 128)] {
        match frame.plane_data_mut(plane) {
            Ok(data) => data.fill(value),
            Err(_) => return false,
        }
    }
    true
}

/// Whether an I420 frame of `video` is entirely black.
#[cfg(test)]
pub fn is_black_i420(buffer: &gst::BufferRef, video: &gstreamer_video::VideoInfo) -> bool {
    let Ok(frame) = gstreamer_video::VideoFrameRef::from_buffer_ref_readable(buffer, video) else {
        return false;
    };
    [(0, 16u8), (1, 128), (2, 128)]
        .into_iter()
        .all(|(plane, value)| {
            frame
                .plane_data(plane)
                .is_ok_and(|data| data.iter().all(|&b| b == value))
        })
}
