//! Why an update was refused or failed.

/// Why an update was refused or failed. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// roomd is not running from a firmware image (os-release has no `IMAGE_VERSION`): there is
    /// nothing to update (e.g. `make run`, or the Debian package on a plain system).
    #[error("updates are not available: {0}")]
    NotFirmwareImage(String),
    /// A firmware image, but RAUC cannot be used (not reachable, or the staging folder fails).
    #[error("updates are not available: {0}")]
    NotAvailable(String),
    /// Another update is being received or installed.
    #[error(
        "another update is in progress (status.update.state is {state}); wait until it has finished"
    )]
    Busy {
        /// The state of the update in progress.
        state: &'static str,
    },
    /// The bundle is larger than `update.max_bundle_mib`.
    #[error("the bundle is larger than update.max_bundle_mib ({limit_mib} MiB)")]
    TooLarge {
        /// The limit, in MiB.
        limit_mib: u32,
    },
    /// The file is not a complete RAUC bundle (truncated, or not a bundle at all).
    #[error("the file is not a complete RAUC bundle: {0}")]
    Corrupt(String),
    /// RAUC could not verify the bundle's signature against the device's keyring.
    #[error(
        "RAUC refused the bundle: its signature does not verify against this device's keyring \
         (signed with another key, or changed after signing)"
    )]
    BadSignature,
    /// The bundle is for another kind of device.
    #[error("the bundle is for {bundle:?}, but this device is {device:?}")]
    WrongCompatible {
        /// The bundle's compatible.
        bundle: String,
        /// RAUC's compatible of this device.
        device: String,
    },
    /// The bundle's version is below the device's security floor.
    #[error(
        "the bundle's version {version} is below this device's security floor {floor}: \
         downgrades below the floor are refused"
    )]
    BelowFloor {
        /// The bundle's (signed) version.
        version: String,
        /// The device's floor.
        floor: String,
    },
    /// The bundle did not arrive whole (the upload or download stopped).
    #[error("the bundle did not arrive whole: {0}")]
    Incomplete(String),
    /// The staging folder could not be written.
    #[error("cannot stage the bundle in {path}: {reason}")]
    Staging {
        /// The file or folder.
        path: String,
        /// The operating system's error.
        reason: String,
    },
    /// RAUC or logind failed or could not be reached.
    #[error("{0}")]
    Service(String),
    /// `update.reboot` with no installed update waiting.
    #[error("no installed update waits for a reboot")]
    NothingToReboot,
}
