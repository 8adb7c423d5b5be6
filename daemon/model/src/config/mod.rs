//! roomd's configuration: one TOML file (`roomd --config FILE`), changed at run time through the
//! API with JSON merge patches (RFC 7396) and written back atomically.
//!
//! Both ways in share one deserializer with the checks built in (see `checks`), so a value the
//! file may not hold cannot arrive through the API either, and every error names its key.
//! The reference for every key is docs/configuration.md; a unit test keeps it in step.

mod checks;
mod error;
mod model;
mod schema;
mod secret_settings;

#[cfg(test)]
mod doc_sync_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

pub use checks::{
    CAMERA_PRESETS_MAX_ENTRIES, check_camera_position, check_camera_preset_name,
    check_camera_presets, check_fleet_broker, check_fleet_room_id, check_host_network,
    check_hostname, check_ntp_servers, check_provisioning_url, check_sip_caller, check_sip_server,
    check_sip_user, check_timezone, parse_address_with_prefix, parse_time_of_day,
};
pub use error::ConfigError;
/// Shared with the hardware profiles, which report errors the same way.
pub use error::{line_and_column, toml_error_position};
pub use model::{
    AccountsConfig, ApiConfig, AudioConfig, CameraPosition, CameraPreset, Config, DbusConfig,
    FleetConfig, HostConfig, HostNetworkConfig, IdentityBackend, IdentityConfig, Layout,
    LobbyPolicy, LogLevel, LoggingConfig, MeetingConfig, NetworkMode, ProvisioningConfig,
    SelfviewMode, SelfviewPosition, SipConfig, StandbyConfig, SystemConfig, UpdateConfig,
    VideoCodec, VideoConfig,
};
pub use schema::{SchemaKey, schema};
pub use secret_settings::{NewSecret, PatchSecrets, set_in, take_from_config, take_from_patch};

/// What a secret setting (e.g. `meeting.turn_password`) shows when the sealed store holds it.
pub const SECRET_SET: &str = "set";

/// Secret settings: the configuration holds [`SECRET_SET`] or `""`; the value itself lives in
/// the sealed secret store under the name given here.
pub const SECRET_KEYS: [(&str, &str); 2] = [
    ("meeting.turn_password", TURN_PASSWORD_SECRET),
    ("sip.password", SIP_PASSWORD_SECRET),
];

/// Name of the TURN password in the secret store.
pub const TURN_PASSWORD_SECRET: &str = "turn-password";

/// Name of the SIP account's digest password in the secret store.
pub const SIP_PASSWORD_SECRET: &str = "sip-password";

/// Permission of the saved file: the daemon's user writes it, its group (admins) may read it.
const FILE_MODE: u32 = 0o640;

const FILE_HEADER: &str = "\
# roomd configuration. Every key and its allowed values: docs/configuration.md.
# roomd rewrites this file when the configuration is changed through its API;
# comments and key order are not preserved.

";

/// Keys that are read once at start; a change to them is saved at once but takes effect only
/// at the next start of roomd. Every other key takes effect immediately.
pub const NEXT_START_KEYS: [&str; 40] = [
    "system.hardware_profile",
    // The video encoder is chosen once, when the media engine starts.
    "video.codec",
    "system.state_dir",
    "api.listen",
    "api.certificate_names",
    "api.client_ca",
    "api.client_role",
    "api.client_fingerprints",
    "api.client_crl",
    "logging.level",
    "identity.backend",
    "identity.tcti",
    "update.rauc_bus",
    "update.os_release",
    "update.health_timeout_s",
    "dbus.bus",
    // The fleet worker reads [fleet] once, when roomd starts.
    "fleet.broker",
    "fleet.ca_file",
    "fleet.room_id",
    "fleet.role",
    "fleet.keepalive_s",
    "fleet.backoff_min_ms",
    "fleet.backoff_max_ms",
    "fleet.status_interval_ms",
    "fleet.max_payload_bytes",
    "fleet.commands_per_minute",
    // The provisioning worker runs once, when roomd starts.
    "provisioning.url",
    "provisioning.dns_sd",
    "provisioning.trust_key",
    "provisioning.server_ca_file",
    "provisioning.retry_max_s",
    // The SIP worker reads [sip] once, when roomd starts (the password too: it is read from
    // the secret store then).
    "sip.registrar",
    "sip.proxy",
    "sip.fallback_proxy",
    "sip.user",
    "sip.auth_user",
    "sip.password",
    "sip.display_name",
    "sip.register_interval_s",
    "sip.ca_file",
];

/// Keys that decide whom the device trusts and where its key lives. The API cannot change them
/// (an integrator with `ConfigWrite` could otherwise trust a CA of their choosing as admin, or
/// move the device key out of the TPM); they are set in the file, by whoever administers the
/// device itself.
pub const FILE_ONLY_KEYS: &[&str] = &[
    "api.client_ca",
    "api.client_role",
    "identity.backend",
    "identity.tcti",
    "meeting.require_encryption",
    "meeting.ca_file",
    "meeting.allowed_servers",
    // Whether meetings are end-to-end encrypted and whose certificates count as verified: through
    // the API, a caller could turn it off or have a room of their choosing shown as verified.
    "meeting.e2ee",
    "meeting.e2ee_ca_file",
    "meeting.require_e2ee",
    // How long a sender key lives: through the API, a caller could stretch it to a day.
    "meeting.e2ee_rekey_s",
    // Where keys, accounts and the audit log live: pointed elsewhere, roomd would come up over
    // a directory of the caller's choosing (unclaimed, or with their users).
    "system.state_dir",
    "api.client_fingerprints",
    "api.client_crl",
    // Which RAUC roomd trusts to install firmware, and which file tells it what image runs.
    "update.rauc_bus",
    "update.os_release",
    // Where roomd takes commands from local programs: another bus would hand the room to
    // whoever runs that bus and its policy.
    "dbus.bus",
    // Which broker the room takes commands from, which CA it trusts for it, under which name
    // and with which role: through the API, a caller could hand the room to a broker of their
    // choosing, or raise the role fleet commands run with.
    "fleet.broker",
    "fleet.ca_file",
    "fleet.room_id",
    "fleet.role",
    // Whose signed bundles the room applies, and from where: through the API, a caller could
    // make the room obey a key of their choosing.
    "provisioning.url",
    "provisioning.dns_sd",
    "provisioning.trust_key",
    "provisioning.server_ca_file",
    // Which CA the room trusts for its SIP servers: another would let a caller's server pose as
    // the registrar.
    "sip.ca_file",
];

/// Keys a signed provisioning bundle may not set although the file may: where the state lives
/// and where the device key lives (moved, the room would come up over other accounts or with
/// a copyable key), which TPM is asked, provisioning itself (a bundle cannot hand the room to
/// another signer) and secret settings (they belong in the sealed store, not in a bundle that
/// sits on a web server).
pub const PROVISIONING_REFUSED_KEYS: &[&str] = &[
    "system.state_dir",
    "identity.backend",
    "identity.tcti",
    "provisioning.url",
    "provisioning.dns_sd",
    "provisioning.trust_key",
    "provisioning.server_ca_file",
    "provisioning.retry_max_s",
    "meeting.turn_password",
    "sip.password",
];

/// Keys that decide how hard the device is to get into (lockout of password guessing, which
/// networks reach the API): only an admin may change them through the API, not an integrator.
pub const ADMIN_ONLY_KEYS: &[&str] = &[
    "accounts.lockout_threshold",
    "accounts.lockout_max_seconds",
    "api.listen",
    // How long and how much of the audit trail is kept: an integrator could otherwise shorten
    // it to erase what they did.
    "logging.audit_max_file_bytes",
    "logging.audit_max_files",
    "logging.audit_retention_days",
    // Which networks the box is on and at which addresses: as api.listen, they decide who
    // reaches the device (and a wrong one cuts the API off).
    "host.network.mode",
    "host.network.addresses",
    "host.network.gateways",
    "host.network.dns",
    // Where the room sends its SIP credentials and calls: an integrator could otherwise point
    // them at a server of their choosing and collect digest responses.
    "sip.registrar",
    "sip.proxy",
    "sip.fallback_proxy",
    // Whose calls open the room's camera and microphone without anyone in the room agreeing.
    "sip.auto_answer",
];

/// Whether a change of `key` (dotted, e.g. `api.listen`) needs a restart to take effect.
pub fn takes_effect_at_next_start(key: &str) -> bool {
    NEXT_START_KEYS.contains(&key)
}

impl Config {
    /// Reads, parses and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&source, path)
    }

    /// Parses and validates a TOML document; `origin` names it in error messages.
    pub fn from_toml_str(source: &str, origin: &Path) -> Result<Config, ConfigError> {
        let deserializer = toml::de::Deserializer::parse(source)
            .map_err(|e| error::syntax_error(origin, source, &e))?;
        serde_path_to_error::deserialize(deserializer)
            .map_err(|e| error::invalid_file(origin, source, &e))
    }

    /// The whole configuration as JSON, as the API shows it and merge patches apply to it.
    pub fn to_json(&self) -> serde_json::Value {
        // Every field serializes to a string, number, boolean or list of strings (paths go
        // through a lossy conversion), so this cannot fail; a failure would be a broken model.
        serde_json::to_value(self).unwrap_or_else(|e| {
            unreachable!("the configuration model always serializes to JSON: {e}")
        })
    }

    /// This configuration changed by an RFC 7396 merge patch: the patch must be a JSON object,
    /// `null` resets a key (or a whole section) to its default. The result is validated exactly
    /// like the file; on error nothing changes and the error names the key.
    pub fn apply_merge_patch(&self, patch: &serde_json::Value) -> Result<Config, ConfigError> {
        let changed = self.merged(patch)?;
        if let Some(key) = self
            .changed_keys(&changed)
            .into_iter()
            .find(|key| FILE_ONLY_KEYS.contains(&key.as_str()))
        {
            return Err(ConfigError::Patch {
                message: format!(
                    "{key} decides whom this device trusts or where it keeps its accounts and \
                     cannot be changed through the API; change it in the configuration file on \
                     the device"
                ),
                key: Some(key),
            });
        }
        Ok(changed)
    }

    /// This configuration changed by the merge patch of a provisioning bundle whose signature
    /// verified with `provisioning.trust_key`: the key the image (or whoever wrote the file)
    /// trusts speaks with the file's authority, so file-only keys such as `fleet.broker` may
    /// change, except [`PROVISIONING_REFUSED_KEYS`]. Validated exactly like the file.
    pub fn apply_provisioning_patch(
        &self,
        patch: &serde_json::Value,
    ) -> Result<Config, ConfigError> {
        let changed = self.merged(patch)?;
        if let Some(key) = self
            .changed_keys(&changed)
            .into_iter()
            .find(|key| PROVISIONING_REFUSED_KEYS.contains(&key.as_str()))
        {
            return Err(ConfigError::Patch {
                message: format!(
                    "{key} cannot be set by a provisioning bundle; set it in the configuration \
                     file on the device"
                ),
                key: Some(key),
            });
        }
        Ok(changed)
    }

    fn merged(&self, patch: &serde_json::Value) -> Result<Config, ConfigError> {
        if !patch.is_object() {
            return Err(ConfigError::Patch {
                key: None,
                message: format!(
                    "a configuration change must be a JSON object (an RFC 7396 merge patch), \
                     not {}",
                    json_type_name(patch)
                ),
            });
        }
        let mut merged = self.to_json();
        json_patch::merge(&mut merged, patch);
        serde_path_to_error::deserialize(&merged).map_err(|e| error::invalid_patch(&e))
    }

    /// The complete configuration file, with a header comment.
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        let body = toml::to_string_pretty(self).map_err(|e| ConfigError::Encode {
            message: e.to_string(),
        })?;
        Ok(format!("{FILE_HEADER}{body}"))
    }

    /// Writes the configuration to `path` so that a crash leaves either the old or the new file.
    /// The text is parsed back first: a value set in code that breaks a rule is refused here
    /// rather than found at the next start, when roomd would not come up.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let contents = self.to_toml_string()?;
        Config::from_toml_str(&contents, path).map_err(|e| ConfigError::Unloadable {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        roomd_base::fsutil::write_atomic(path, contents.as_bytes(), FILE_MODE).map_err(|source| {
            ConfigError::Write {
                path: path.to_owned(),
                source,
            }
        })
    }

    /// Dotted leaf keys (e.g. `audio.default_volume`) whose values differ, sorted. A list
    /// counts as one value.
    pub fn changed_keys(&self, other: &Config) -> Vec<String> {
        let (mine_json, theirs_json) = (self.to_json(), other.to_json());
        let mine = leaf_values(&mine_json);
        let theirs = leaf_values(&theirs_json);
        let mut keys: Vec<String> = mine
            .keys()
            .chain(theirs.keys())
            .filter(|key| mine.get(*key) != theirs.get(*key))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Every non-object value in `json`, by its dotted path.
fn leaf_values(json: &serde_json::Value) -> BTreeMap<String, &serde_json::Value> {
    fn walk<'a>(
        prefix: &str,
        value: &'a serde_json::Value,
        out: &mut BTreeMap<String, &'a serde_json::Value>,
    ) {
        match value.as_object() {
            Some(object) => {
                for (name, inner) in object {
                    let key = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    walk(&key, inner, out);
                }
            }
            None => {
                out.insert(prefix.to_owned(), value);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", json, &mut out);
    out
}

fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
