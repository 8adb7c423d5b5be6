//! Firmware updates: roomd's side of RAUC (see docs/api.md, "Firmware updates").
//!
//! - `os_release`: what image runs (`IMAGE_VERSION`, `ROOMD_SECURITY_FLOOR`).
//! - `floor`: the security floor persisted in the state directory, never lowered.
//! - `bundle`: a quick look at a staged file's structure, to tell a truncated file from a bad
//!   signature (RAUC's `Info` answers both with the same error).
//! - `rauc`: the `de.pengutronix.rauc.Installer` proxy.
//! - `worker`: the one owner of `status.update`: stages a bundle, checks it (signature,
//!   compatible, floor) before RAUC installs it, follows the install, marks the booted slot good
//!   once the room is healthy, and reboots through logind on `update.reboot`.
//!
//! The room core knows nothing of D-Bus: the worker reports [`roomd_model::update::UpdateStatus`]
//! to it, and the core publishes it.

mod bundle;
mod error;
mod floor;
mod os_release;
mod rauc;
mod worker;

pub use error::UpdateError;
pub use os_release::OsRelease;
pub use worker::{FLOOR_FILE, STAGING_DIR, Staging, UpdateHandle, UpdateSetup, start};
