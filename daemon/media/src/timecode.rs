//! A machine-readable wall clock in the simulated camera's picture (camera source
//! `test-pattern-timecode`, profile `simulated-timecode`): each frame carries the Unix time in
//! milliseconds at which it left the camera, so that a receiver on the same machine measures
//! glass-to-glass latency (`make bench`, tests/src/bin/bench-meeting.rs; the browser side is
//! tests/browser/lib/timecode-reader.js).
//!
//! The stamp is `BITS` square blocks along the top edge of the luma plane, each
//! `width / COLUMNS` pixels wide and high, white for 1 and black for 0, most significant bit
//! first. Blocks this large, in pure black and white, survive H.264 at meeting bitrates.

use std::time::{SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

/// 48 bits of milliseconds last until the year 10889.
pub const BITS: u32 = 48;
/// The picture's width is divided into this many block columns (BITS of them are used).
pub const COLUMNS: u32 = 64;
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// Stamps the current wall-clock time into every I420 buffer passing `pad`.
pub fn stamp_frames(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
        let video = pad
            .current_caps()
            .and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok());
        if let (Some(video), Some(buffer)) = (video, info.buffer_mut()) {
            stamp_buffer(buffer.make_mut(), &video, now_ms());
        }
        gst::PadProbeReturn::Ok
    });
}

fn now_ms() -> u64 {
    // A clock before 1970 stamps 0, which the reader rejects as implausible.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes `ms` into the luma plane of an I420 buffer; false if it is not I420 or too small.
fn stamp_buffer(buffer: &mut gst::BufferRef, video: &gst_video::VideoInfo, ms: u64) -> bool {
    if video.format() != gst_video::VideoFormat::I420 {
        return false;
    }
    let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, video) else {
        return false;
    };
    let stride = frame.plane_stride()[0] as usize;
    match frame.plane_data_mut(0) {
        Ok(luma) => stamp_luma(luma, stride, video.width(), video.height(), ms),
        Err(_) => false,
    }
}

/// Writes `ms` into a luma plane of `width` × `height` pixels with rows `stride` bytes apart.
pub fn stamp_luma(luma: &mut [u8], stride: usize, width: u32, height: u32, ms: u64) -> bool {
    let block = (width / COLUMNS) as usize;
    if block < 2 || (height as usize) < block || luma.len() < stride * block {
        return false;
    }
    for row in luma.chunks_mut(stride).take(block) {
        for bit in 0..BITS as usize {
            let set = (ms >> (BITS as usize - 1 - bit)) & 1 == 1;
            row[bit * block..(bit + 1) * block].fill(if set { WHITE } else { BLACK });
        }
    }
    true
}

/// Reads a stamp back from the centres of its blocks (what the browser's reader does).
#[cfg(test)]
pub fn read_luma(luma: &[u8], stride: usize, width: u32) -> u64 {
    let block = (width / COLUMNS) as usize;
    let row = &luma[(block / 2) * stride..];
    (0..BITS as usize).fold(0, |value, bit| {
        (value << 1) | u64::from(row[bit * block + block / 2] >= 128)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_leaves_the_rest_of_the_picture_alone() {
        let (width, height, stride) = (1280u32, 720u32, 1280usize);
        let mut luma = vec![77u8; stride * height as usize];
        let ms = 1_795_000_000_123;
        assert!(stamp_luma(&mut luma, stride, width, height, ms));
        assert_eq!(read_luma(&luma, stride, width), ms);
        // Block 20 px: rows 0..20 carry the stamp, columns 0..960; the rest is untouched.
        assert_eq!(luma[20 * stride], 77);
        assert_eq!(luma[960], 77);
        assert!(luma[..960].iter().all(|&y| y == WHITE || y == BLACK));
    }

    #[test]
    fn a_picture_too_small_for_blocks_is_left_as_it_is() {
        let mut luma = vec![77u8; 64 * 64];
        assert!(!stamp_luma(&mut luma, 64, 64, 64, 42));
        assert!(luma.iter().all(|&y| y == 77));
    }

    #[test]
    fn stamps_go_into_i420_buffers_only() {
        gst::init().expect("GStreamer initialises");
        let video = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 640, 360)
            .build()
            .expect("valid video info");
        let mut buffer = gst::Buffer::with_size(video.size()).expect("buffer");
        let ms = 1_795_000_000_456;
        assert!(stamp_buffer(buffer.make_mut(), &video, ms));
        let map = buffer.map_readable().expect("readable");
        assert_eq!(read_luma(map.as_slice(), 640, 640), ms);
        drop(map);

        let rgb = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 640, 360)
            .build()
            .expect("valid video info");
        let mut buffer = gst::Buffer::with_size(rgb.size()).expect("buffer");
        assert!(!stamp_buffer(buffer.make_mut(), &rgb, ms));
    }
}
