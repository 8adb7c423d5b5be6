//! The hardware a room runs on: the profile that describes it (`hw/<name>.toml`) and the probe
//! that finds out what of it is really there.

pub mod probe;
pub mod profile;
pub mod v4l2;

pub use probe::{DeviceStatus, ElementStatus, HardwareStatus, SystemPaths, probe};
pub use profile::{Profile, ProfileError};

#[cfg(test)]
mod tests;
