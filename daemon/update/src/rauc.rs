//! RAUC's D-Bus interface (RAUC 1.8, /usr/share/dbus-1/interfaces/de.pengutronix.rauc.Installer.xml).

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

/// One slot of `GetSlotStatus`: its name and its properties.
pub(crate) type SlotStatus = (String, HashMap<String, OwnedVariant>);

#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/"
)]
pub(crate) trait Installer {
    /// Starts installing the bundle at `source`; the result comes with `Completed`.
    fn install_bundle(&self, source: &str, args: HashMap<&str, Variant<'_>>) -> zbus::Result<()>;

    /// Verifies the bundle's signature and returns its (compatible, version).
    fn info(&self, bundle: &str) -> zbus::Result<(String, String)>;

    /// Marks a slot `good`, `bad` or `active`; returns (slot name, message).
    fn mark(&self, state: &str, slot_identifier: &str) -> zbus::Result<(String, String)>;

    /// Every slot with its status.
    fn get_slot_status(&self) -> zbus::Result<Vec<SlotStatus>>;

    /// `idle` or `installing`.
    #[zbus(property)]
    fn operation(&self) -> zbus::Result<String>;

    /// The last error's message.
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;

    /// (percent, message, nesting depth) of the install in progress.
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<(i32, String, i32)>;

    /// The system's compatible (`roomd-<arch>`).
    #[zbus(property)]
    fn compatible(&self) -> zbus::Result<String>;

    /// The bootname of the booted slot.
    #[zbus(property)]
    fn boot_slot(&self) -> zbus::Result<String>;

    /// The install finished: 0 for success.
    #[zbus(signal)]
    fn completed(&self, result: i32) -> zbus::Result<()>;
}

/// A string property of a slot, empty when absent.
pub(crate) fn slot_text(slot: &HashMap<String, OwnedVariant>, key: &str) -> String {
    slot.get(key)
        .and_then(|v| <&str>::try_from(v).ok().map(str::to_owned))
        .unwrap_or_default()
}
