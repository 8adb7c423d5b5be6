//! The few Video4Linux2 ioctls roomd needs, through `nix`: device capabilities, and the
//! pan/tilt/zoom controls of cameras that have motors.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum V4l2Error {
    #[error("{path}: {source}", path = path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what} failed: {source}", path = path.display())]
    Ioctl {
        path: PathBuf,
        what: &'static str,
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

nix::ioctl_read!(vidioc_querycap, b'V', 0, RawCapability);

/// `struct v4l2_control` from linux/videodev2.h.
#[repr(C)]
struct RawControl {
    id: u32,
    value: i32,
}

nix::ioctl_readwrite!(vidioc_s_ctrl, b'V', 28, RawControl);

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

nix::ioctl_readwrite!(vidioc_queryctrl, b'V', 36, RawQueryControl);

/// V4L2 camera class control ids (linux/v4l2-controls.h).
pub const CID_PAN_ABSOLUTE: u32 = 0x009a_0908;
pub const CID_TILT_ABSOLUTE: u32 = 0x009a_0909;
pub const CID_ZOOM_ABSOLUTE: u32 = 0x009a_090d;

#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    pub driver: String,
    pub card: String,
    pub can_capture: bool,
}

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
