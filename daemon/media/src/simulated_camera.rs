//! The simulated camera (`source = "test-pattern"`): a plain background with a square moving
//! across it and a running clock, standing in for a real camera.
//!
//! Why a plain background and a drawn square rather than `videotestsrc pattern=ball`: a real
//! camera hands frames over by DMA at almost no CPU cost, while the ball pattern paints every
//! pixel of every frame (at 720p30 about 8 CPU-seconds a minute, as much as the H.264 encoder).
//! A solid colour is a memset; the square is a few thousand pixels; so the room's measured CPU
//! is the room's own work. The picture still moves in every frame, as a person in front of a
//! camera does, so encoders and receivers see motion. (A still card repeated by `imagefreeze`
//! would be as cheap, but its source has ended once the card is made, and the first caps
//! renegotiation, e.g. when the digital PTZ crop changes, then fails.)

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

/// The gst-launch description of the source, ending in raw I420 video that the following
/// capsfilter fixes (size and frame rate).
pub fn description(name: &str) -> String {
    format!(
        "videotestsrc name={name} is-live=true pattern=solid-color foreground-color=0xff2d4a6b \
         ! identity name={name}_motion \
         ! clockoverlay time-format=\"%H:%M:%S\" halignment=right valignment=bottom \
           font-desc=\"Sans 16\" shaded-background=true"
    )
}

/// Side of the moving square, as a fraction of the picture's height.
const SQUARE_PER_HEIGHT: u32 = 8;
/// Frames the square takes to cross the picture once.
const FRAMES_PER_CROSSING: u64 = 90;
const WHITE: u8 = 235;
const CHROMA_GREY: u8 = 128;

/// Draws the moving square into every I420 frame leaving `pad` (the `identity` of
/// [`description`]); the frame's offset in the stream decides where.
pub fn animate(pad: &gst::Pad) {
    let frames = std::sync::atomic::AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let video = pad
            .current_caps()
            .and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok());
        let n = frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let (Some(video), Some(buffer)) = (video, info.buffer_mut()) {
            draw_square(buffer.make_mut(), &video, n);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Where the square is in frame `n` of a `width` × `height` picture: it bounces left and right
/// and up and down at different speeds, so that it crosses the whole picture.
pub fn square_at(n: u64, width: u32, height: u32) -> (u32, u32, u32) {
    let side = (height / SQUARE_PER_HEIGHT).max(2) & !1;
    let bounce = |n: u64, period: u64, room: u32| -> u32 {
        if room == 0 {
            return 0;
        }
        let phase = n % (2 * period);
        let travelled = if phase < period {
            phase
        } else {
            2 * period - phase
        };
        ((travelled * room as u64 / period) as u32) & !1
    };
    let x = bounce(n, FRAMES_PER_CROSSING, width.saturating_sub(side));
    let y = bounce(n, FRAMES_PER_CROSSING * 2 / 3, height.saturating_sub(side));
    (x, y, side)
}

fn draw_square(buffer: &mut gst::BufferRef, video: &gst_video::VideoInfo, n: u64) -> bool {
    if video.format() != gst_video::VideoFormat::I420 {
        return false;
    }
    let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, video) else {
        return false;
    };
    let (x, y, side) = square_at(n, video.width(), video.height());
    let strides = frame.plane_stride().to_vec();
    for (plane, value, shift) in [(0, WHITE, 0), (1, CHROMA_GREY, 1), (2, CHROMA_GREY, 1)] {
        let stride = strides[plane] as usize;
        let Ok(data) = frame.plane_data_mut(plane as u32) else {
            return false;
        };
        fill(
            data,
            stride,
            (x >> shift) as usize,
            (y >> shift) as usize,
            (side >> shift) as usize,
            value,
        );
    }
    true
}

/// Fills a `side` × `side` square at (`x`, `y`) of a plane with rows `stride` bytes apart,
/// clipped to the plane.
fn fill(plane: &mut [u8], stride: usize, x: usize, y: usize, side: usize, value: u8) {
    for row in y..y + side {
        let start = row * stride + x;
        let end = (start + side).min((row + 1) * stride);
        if let Some(pixels) = plane.get_mut(start..end) {
            pixels.fill(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_square_moves_and_stays_inside_the_picture() {
        let (w, h) = (1280, 720);
        let mut seen = std::collections::HashSet::new();
        for n in 0..1000 {
            let (x, y, side) = square_at(n, w, h);
            assert!(
                x + side <= w && y + side <= h,
                "frame {n}: ({x},{y}) side {side}"
            );
            assert_eq!(x % 2, 0);
            assert_eq!(y % 2, 0);
            seen.insert((x, y));
        }
        // The two bounces repeat together every 360 frames (12 s at 30 fps).
        assert!(seen.len() >= 150, "only {} positions", seen.len());
        assert_ne!(square_at(0, w, h), square_at(1, w, h));
    }

    #[test]
    fn a_square_is_drawn_into_an_i420_frame_and_nowhere_else() {
        gst::init().expect("gstreamer");
        let video = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 64, 48)
            .build()
            .expect("video info");
        let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; video.size()]);
        assert!(draw_square(buffer.make_mut(), &video, 10));
        let map = buffer.map_readable().expect("map");
        let (x, y, side) = square_at(10, 64, 48);
        let luma = &map[..64 * 48];
        let white = luma.iter().filter(|p| **p == WHITE).count();
        assert_eq!(white as u32, side * side);
        assert_eq!(luma[(y * 64 + x) as usize], WHITE);
    }

    #[test]
    fn a_tiny_picture_does_not_panic() {
        gst::init().expect("gstreamer");
        let video = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 2, 2)
            .build()
            .expect("video info");
        let mut buffer = gst::Buffer::with_size(video.size()).expect("buffer");
        draw_square(buffer.make_mut(), &video, 3);
        assert_eq!(square_at(5, 0, 0).0, 0);
    }
}
