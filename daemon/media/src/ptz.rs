//! Pan, tilt and zoom: through the camera's V4L2 controls where it has motors, by cropping and
//! scaling the picture otherwise (digital PTZ).

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;

use roomd_hardware::profile::{Camera, PtzKind};
use roomd_hardware::v4l2::{self, CID_PAN_ABSOLUTE, CID_TILT_ABSOLUTE, CID_ZOOM_ABSOLUTE};
use roomd_model::config::CameraPosition;

/// Pixels to cut from each edge of the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Pixels cut from the left edge.
    pub left: i32,
    /// Pixels cut from the right edge.
    pub right: i32,
    /// Pixels cut from the top edge.
    pub top: i32,
    /// Pixels cut from the bottom edge.
    pub bottom: i32,
}

/// The crop that shows `position` of a `width` × `height` picture: a window of 1/zoom of the
/// picture, moved within it by pan (left → right) and tilt (down → up). Even numbers keep
/// 4:2:0 chroma aligned.
pub fn digital_crop(position: CameraPosition, width: u32, height: u32) -> Crop {
    let (width, height) = (i64::from(width), i64::from(height));
    let zoom = i64::from(position.zoom.clamp(100, 400));
    let even = |v: i64| v & !1;
    let window_width = even(width * 100 / zoom);
    let window_height = even(height * 100 / zoom);
    let (spare_width, spare_height) = (width - window_width, height - window_height);
    let pan = i64::from(position.pan.clamp(-100, 100));
    let tilt = i64::from(position.tilt.clamp(-100, 100));
    let left = even(spare_width * (pan + 100) / 200);
    let top = even(spare_height * (100 - tilt) / 200);
    Crop {
        left: left as i32,
        right: (spare_width - left) as i32,
        top: top as i32,
        bottom: (spare_height - top) as i32,
    }
}

/// How a camera is moved.
#[derive(Debug, Clone, PartialEq)]
pub enum Ptz {
    /// By cropping and scaling a picture of the camera's size.
    Digital {
        /// The camera's picture width, pixels.
        width: u32,
        /// The camera's picture height, pixels.
        height: u32,
    },
    /// Through the camera's V4L2 controls.
    Motorised(MotorRanges),
}

/// The V4L2 control ranges of a motorised camera; `None` for an axis it lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct MotorRanges {
    /// The camera's V4L2 device, e.g. `/dev/video0`.
    pub device: PathBuf,
    /// `(minimum, maximum)` of `V4L2_CID_PAN_ABSOLUTE`.
    pub pan: Option<(i32, i32)>,
    /// `(minimum, maximum)` of `V4L2_CID_TILT_ABSOLUTE`.
    pub tilt: Option<(i32, i32)>,
    /// `(minimum, maximum)` of `V4L2_CID_ZOOM_ABSOLUTE`.
    pub zoom: Option<(i32, i32)>,
}

impl Ptz {
    /// Motorised when the profile says so and the camera has at least one of the controls;
    /// digital otherwise (logged, so the integrator learns the profile promised too much).
    pub fn for_camera(camera: &Camera) -> Ptz {
        let digital = Ptz::Digital {
            width: camera.width,
            height: camera.height,
        };
        let (PtzKind::V4l2, Some(device)) = (camera.ptz, camera.device.as_deref()) else {
            return digital;
        };
        match motor_ranges(device) {
            Ok(ranges)
                if ranges.pan.is_some() || ranges.tilt.is_some() || ranges.zoom.is_some() =>
            {
                Ptz::Motorised(ranges)
            }
            Ok(_) => {
                tracing::warn!(
                    "camera {}: {} has no pan/tilt/zoom controls; using digital PTZ",
                    camera.id,
                    device.display()
                );
                digital
            }
            Err(e) => {
                tracing::warn!("camera {}: {e}; using digital PTZ", camera.id);
                digital
            }
        }
    }

    /// Moves the camera to `position`; `crop` is the pipeline's videocrop element.
    pub fn apply(&self, position: CameraPosition, crop: &gst::Element) {
        match self {
            Ptz::Digital { width, height } => {
                let c = digital_crop(position, *width, *height);
                crop.set_property("left", c.left);
                crop.set_property("right", c.right);
                crop.set_property("top", c.top);
                crop.set_property("bottom", c.bottom);
            }
            Ptz::Motorised(ranges) => {
                let scale = |range: Option<(i32, i32)>, value: i64, from: i64, span: i64| {
                    range.map(|(min, max)| {
                        let span_out = i64::from(max) - i64::from(min);
                        (i64::from(min) + (value - from) * span_out / span) as i32
                    })
                };
                let controls = [
                    (
                        CID_PAN_ABSOLUTE,
                        scale(ranges.pan, position.pan.into(), -100, 200),
                    ),
                    (
                        CID_TILT_ABSOLUTE,
                        scale(ranges.tilt, position.tilt.into(), -100, 200),
                    ),
                    (
                        CID_ZOOM_ABSOLUTE,
                        scale(ranges.zoom, position.zoom.into(), 100, 300),
                    ),
                ];
                for (id, value) in controls {
                    if let Some(value) = value
                        && let Err(e) = v4l2::set_control(&ranges.device, id, value)
                    {
                        tracing::warn!("camera PTZ: {e}");
                    }
                }
            }
        }
    }
}

fn motor_ranges(device: &Path) -> Result<MotorRanges, v4l2::V4l2Error> {
    Ok(MotorRanges {
        device: device.to_owned(),
        pan: v4l2::control_range(device, CID_PAN_ABSOLUTE)?,
        tilt: v4l2::control_range(device, CID_TILT_ABSOLUTE)?,
        zoom: v4l2::control_range(device, CID_ZOOM_ABSOLUTE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pan: i8, tilt: i8, zoom: u16) -> CameraPosition {
        CameraPosition { pan, tilt, zoom }
    }

    #[test]
    fn home_shows_the_whole_picture() {
        let none = Crop {
            left: 0,
            right: 0,
            top: 0,
            bottom: 0,
        };
        assert_eq!(digital_crop(at(0, 0, 100), 640, 360), none);
        // Without zoom there is nothing to pan over.
        assert_eq!(digital_crop(at(100, -100, 100), 640, 360), none);
    }

    #[test]
    fn zoom_pan_and_tilt_move_a_window() {
        // 2x: a 320x180 window, centred.
        assert_eq!(
            digital_crop(at(0, 0, 200), 640, 360),
            Crop {
                left: 160,
                right: 160,
                top: 90,
                bottom: 90
            }
        );
        // Full left and full up: the window in the upper-left corner.
        assert_eq!(
            digital_crop(at(-100, 100, 200), 640, 360),
            Crop {
                left: 0,
                right: 320,
                top: 0,
                bottom: 180
            }
        );
        // 4x, full right, full down.
        assert_eq!(
            digital_crop(at(100, -100, 400), 1280, 720),
            Crop {
                left: 960,
                right: 0,
                top: 540,
                bottom: 0
            }
        );
        // Every crop keeps even edges and the window inside the picture.
        for zoom in [100, 133, 150, 277, 400] {
            for pan in [-100, -37, 0, 55, 100] {
                let c = digital_crop(at(pan, -pan, zoom), 640, 360);
                for edge in [c.left, c.right, c.top, c.bottom] {
                    assert!(edge >= 0 && edge % 2 == 0, "{c:?}");
                }
                assert!(c.left + c.right < 640 && c.top + c.bottom < 360, "{c:?}");
            }
        }
    }
}
