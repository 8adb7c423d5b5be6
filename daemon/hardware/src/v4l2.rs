//! The few Video4Linux2 ioctls roomd needs, through `nix`: device capabilities, and the
//! pan/tilt/zoom controls of cameras that have motors.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why a V4L2 device could not be queried or set.
#[derive(Debug, thiserror::Error)]
pub enum V4l2Error {
    /// The device node could not be opened for reading and writing (missing, no permission).
    #[error("{path}: {source}", path = path.display())]
    Open {
        /// The device node, e.g. `/dev/video0`.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The device refused an ioctl.
    #[error("{path}: {what} failed: {source}", path = path.display())]
    Ioctl {
        /// The device node.
        path: PathBuf,
        /// The ioctl, e.g. `VIDIOC_QUERYCAP`.
        what: &'static str,
        /// The error the kernel returned.
        source: nix::Error,
    },
}

/// `struct v4l2_capability` from linux/videodev2.h.
#[repr(C)]
#[derive(Default)]
struct RawCapability {
    driver: [u8; 16],
    card: [u8; 32],
    bus_info: [u8; 32],
    version: u32,
    capabilities: u32,
    device_caps: u32,
    reserved: [u32; 3],
}

const V4L2_CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
const V4L2_CAP_DEVICE_CAPS: u32 = 0x8000_0000;

nix::ioctl_read!(
    /// `VIDIOC_QUERYCAP`: fills in the device's capabilities.
    vidioc_querycap,
    b'V',
    0,
    RawCapability
);

/// `struct v4l2_control` from linux/videodev2.h.
#[repr(C)]
struct RawControl {
    id: u32,
    value: i32,
}

nix::ioctl_readwrite!(
    /// `VIDIOC_S_CTRL`: sets one control's value.
    vidioc_s_ctrl,
    b'V',
    28,
    RawControl
);

/// `struct v4l2_queryctrl` from linux/videodev2.h.
#[repr(C)]
#[derive(Default)]
struct RawQueryControl {
    id: u32,
    kind: u32,
    name: [u8; 32],
    minimum: i32,
    maximum: i32,
    step: i32,
    default_value: i32,
    flags: u32,
    reserved: [u32; 2],
}

const V4L2_CTRL_FLAG_DISABLED: u32 = 0x0001;

nix::ioctl_readwrite!(
    /// `VIDIOC_QUERYCTRL`: fills in one control's range and flags.
    vidioc_queryctrl,
    b'V',
    36,
    RawQueryControl
);

/// `V4L2_CID_PAN_ABSOLUTE`, a camera class control (linux/v4l2-controls.h): pan in arc seconds,
/// positive to the right.
pub const CID_PAN_ABSOLUTE: u32 = 0x009a_0908;
/// `V4L2_CID_TILT_ABSOLUTE`: tilt in arc seconds, positive upwards.
pub const CID_TILT_ABSOLUTE: u32 = 0x009a_0909;
/// `V4L2_CID_ZOOM_ABSOLUTE`: focal length in units the driver defines.
pub const CID_ZOOM_ABSOLUTE: u32 = 0x009a_090d;

/// What `VIDIOC_QUERYCAP` says about a device node.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// Name of the kernel driver, e.g. `uvcvideo`.
    pub driver: String,
    /// Name of the device, e.g. the camera's product name.
    pub card: String,
    /// Whether this node captures video (its own capabilities, not the whole device's).
    pub can_capture: bool,
}

/// Asks the device at `path` what it is and whether it captures video.
pub fn query_capabilities(path: &Path) -> Result<Capabilities, V4l2Error> {
    let file = open(path)?;
    let mut raw = RawCapability::default();
    // SAFETY: the fd is open for the call's duration and `raw` has the kernel's layout.
    unsafe { vidioc_querycap(file.as_raw_fd(), &mut raw) }.map_err(|source| V4l2Error::Ioctl {
        path: path.to_owned(),
        what: "VIDIOC_QUERYCAP",
        source,
    })?;
    // device_caps describes this node; capabilities the whole physical device.
    let caps = if raw.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
        raw.device_caps
    } else {
        raw.capabilities
    };
    Ok(Capabilities {
        driver: c_string(&raw.driver),
        card: c_string(&raw.card),
        can_capture: caps & V4L2_CAP_VIDEO_CAPTURE != 0,
    })
}

/// The range of one control, or `None` when the device does not have it.
pub fn control_range(path: &Path, id: u32) -> Result<Option<(i32, i32)>, V4l2Error> {
    let file = open(path)?;
    let mut raw = RawQueryControl {
        id,
        ..Default::default()
    };
    // SAFETY: as above; the kernel fills in `raw`.
    match unsafe { vidioc_queryctrl(file.as_raw_fd(), &mut raw) } {
        Ok(_) if raw.flags & V4L2_CTRL_FLAG_DISABLED == 0 => Ok(Some((raw.minimum, raw.maximum))),
        Ok(_) | Err(nix::Error::EINVAL) => Ok(None),
        Err(source) => Err(V4l2Error::Ioctl {
            path: path.to_owned(),
            what: "VIDIOC_QUERYCTRL",
            source,
        }),
    }
}

/// Sets one control (e.g. [`CID_PAN_ABSOLUTE`]) of the device at `path`.
pub fn set_control(path: &Path, id: u32, value: i32) -> Result<(), V4l2Error> {
    let file = open(path)?;
    let mut raw = RawControl { id, value };
    // SAFETY: as above; the kernel reads and writes back `raw`.
    unsafe { vidioc_s_ctrl(file.as_raw_fd(), &mut raw) }.map_err(|source| V4l2Error::Ioctl {
        path: path.to_owned(),
        what: "VIDIOC_S_CTRL",
        source,
    })?;
    Ok(())
}

fn open(path: &Path) -> Result<File, V4l2Error> {
    File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| V4l2Error::Open {
            path: path.to_owned(),
            source,
        })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
