//! Factory reset: the marker file that asks for one, and the factory configuration.
//!
//! The marker is the whole contract between the ways a reset is asked for and the code that
//! carries it out: `<system.state_dir>/factory-reset`, present when roomd starts, means "wipe
//! before opening anything, then start unclaimed". The admin command writes it (and restarts
//! roomd); the image's hardware path writes it as root before roomd starts. Its content is free:
//! roomd's own marker says who asked, so that the line logged after the wipe can say it too.

use crate::config::Config;

/// Name of the marker inside `system.state_dir`.
pub const MARKER_FILE: &str = "factory-reset";

/// The first line of a marker written by roomd itself; who asked follows.
const COMMAND_PREFIX: &str = "system.factory_reset by ";

/// Longest "who" the trigger repeats from a marker (`token <name> (token:<id>)` with a name of
/// at most 64 characters is shorter; anything longer was not written by roomd).
const MAX_WHO_LEN: usize = 100;

/// The content roomd writes into the marker when `who` (e.g. `user alice`, `token panel
/// (token:1a2b3c4d)`) runs `system.factory_reset`. An input that names nobody (empty `who`) is
/// still told apart from a marker written outside roomd.
pub fn command_marker(who: &str) -> String {
    let who = if who.is_empty() { UNNAMED } else { who };
    format!("{COMMAND_PREFIX}{who}\n")
}

/// Who asked, when the input that carried the command named nobody.
const UNNAMED: &str = "a caller that gave no name";

/// What asked for the reset, for the log line after the wipe. The marker may come from anyone
/// who can write the state directory (the hardware path writes anything): only a marker in
/// roomd's own form names who asked, and only a short line without control characters is
/// repeated.
pub fn trigger_of(marker: &[u8]) -> String {
    let who = std::str::from_utf8(marker)
        .ok()
        .and_then(|text| text.strip_prefix(COMMAND_PREFIX))
        .map(|rest| rest.trim_end_matches('\n'))
        .filter(|name| {
            !name.is_empty()
                && name.chars().count() <= MAX_WHO_LEN
                && !name.chars().any(char::is_control)
        });
    match who {
        Some(who) => format!("the command system.factory_reset by {who}"),
        None => format!("the {MARKER_FILE} marker found at start (hardware path or by hand)"),
    }
}

impl Config {
    /// The configuration as it leaves the factory, for this machine: every setting at its
    /// default except those that describe the machine rather than what its owner chose (where
    /// the state lives, the hardware, where the device key is, where the API listens, and where
    /// RAUC and the image's os-release are). Without the machine settings the box could lose
    /// its key or its network reachability; with anything else the next owner would inherit
    /// the previous one's choices. Secrets marked `"set"` go back to unset: the secret store
    /// is wiped with the rest.
    pub fn factory_state(&self) -> Config {
        let mut factory = Config::default();
        factory.system.state_dir = self.system.state_dir.clone();
        factory.system.hardware_profile = self.system.hardware_profile.clone();
        factory.identity = self.identity.clone();
        factory.api.listen = self.api.listen.clone();
        factory.update.rauc_bus = self.update.rauc_bus.clone();
        factory.update.os_release = self.update.os_release.clone();
        factory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IdentityBackend;

    #[test]
    fn roomd_markers_name_the_user_and_others_do_not() {
        assert_eq!(
            trigger_of(command_marker("user alice").as_bytes()),
            "the command system.factory_reset by user alice"
        );
        let foreign = "the factory-reset marker found at start (hardware path or by hand)";
        assert_eq!(
            trigger_of(command_marker("").as_bytes()),
            "the command system.factory_reset by a caller that gave no name"
        );
        assert_eq!(trigger_of(b""), foreign);
        assert_eq!(trigger_of(b"usb stick\n"), foreign);
        assert_eq!(trigger_of(b"system.factory_reset by \x1b[2Jx"), foreign);
        assert_eq!(trigger_of(&[0xff, 0xfe]), foreign);
        let long = command_marker(&"a".repeat(101));
        assert_eq!(trigger_of(long.as_bytes()), foreign);
    }

    #[test]
    fn the_factory_state_keeps_the_machine_and_forgets_the_owner() {
        let mut config = Config::default();
        config.system.state_dir = "/data/roomd".into();
        config.system.hardware_profile = "simulated".into();
        config.system.name = "Board room".into();
        config.identity.backend = IdentityBackend::Software;
        config.api.listen = vec!["127.0.0.1:8443".parse().unwrap()];
        config.api.session_idle_minutes = 5;
        config.audio.default_volume = 7;
        config.update.rauc_bus = "unix:path=/run/rauc".into();
        config.update.os_release = "/tmp/os-release".into();
        config.update.max_bundle_mib = 10;

        let factory = config.factory_state();
        assert_eq!(factory.system.state_dir, config.system.state_dir);
        assert_eq!(factory.system.hardware_profile, "simulated");
        assert_eq!(factory.identity, config.identity);
        assert_eq!(factory.api.listen, config.api.listen);
        assert_eq!(factory.update.rauc_bus, config.update.rauc_bus);
        assert_eq!(factory.update.os_release, config.update.os_release);

        let defaults = Config::default();
        assert_eq!(factory.system.name, defaults.system.name);
        assert_eq!(
            factory.api.session_idle_minutes,
            defaults.api.session_idle_minutes
        );
        assert_eq!(factory.audio, defaults.audio);
        assert_eq!(
            factory.update.max_bundle_mib,
            defaults.update.max_bundle_mib
        );
        assert_eq!(factory.meeting, defaults.meeting);
    }
}
