//! Range and format checks for configuration values, run while deserializing.
//!
//! Running them inside deserialization (rather than on the finished struct) is what lets the
//! file loader and the merge-patch path share one set of rules and still report the offending
//! key: serde_path_to_error records the key, and the TOML deserializer the position.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

const ROOM_NAME_MAX_CHARS: usize = 64;
const HARDWARE_PROFILE_MAX_CHARS: usize = 32;
const LISTEN_MAX_ENTRIES: usize = 8;
const CERTIFICATE_NAMES_MAX_ENTRIES: usize = 16;
const DNS_NAME_MAX_CHARS: usize = 253;
const DNS_LABEL_MAX_CHARS: usize = 63;
const TCTI_MAX_CHARS: usize = 256;
/// TCTIs Debian's tpm2-tss ships (libtss2-tcti-*): `mssim` is listed because tpm2-tss knows it,
/// though swtpm wants `swtpm`.
const TCTI_NAMES: [&str; 5] = ["device", "swtpm", "mssim", "tabrmd", "libtpms"];
/// Most camera presets `video.camera_presets` may hold.
pub const CAMERA_PRESETS_MAX_ENTRIES: usize = 16;
const CAMERA_PRESET_NAME_MAX_CHARS: usize = 32;

pub(super) fn volume<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    integer_in(d, 0, 100)
}

pub(super) fn max_body_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    integer_in(d, 1024, 16 * 1024 * 1024)
}

pub(super) fn session_idle_minutes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 1440)
}

pub(super) fn standby_delay_minutes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 480)
}

pub(super) fn lockout_threshold<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 3, 20)
}

pub(super) fn lockout_max_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    integer_in(d, 1, 86400)
}

/// An enum value written as its name. Reading a string first gives one clear message for a
/// wrong type ("expected a string") in TOML and JSON alike; serde then names the valid choices.
pub(super) fn named<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: de::DeserializeOwned,
{
    let name = String::deserialize(d)?;
    T::deserialize(de::value::StrDeserializer::<de::value::Error>::new(&name))
        .map_err(de::Error::custom)
}

pub(super) fn camera_presets<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<super::CameraPreset>, D::Error> {
    let presets = Vec::<super::CameraPreset>::deserialize(d)?;
    check_camera_presets(&presets).map_err(de::Error::custom)?;
    Ok(presets)
}

/// Checks a whole preset list: at most [`CAMERA_PRESETS_MAX_ENTRIES`], each name and position
/// valid, no name twice. The error names the (1-based) preset at fault.
pub fn check_camera_presets(presets: &[super::CameraPreset]) -> Result<(), String> {
    if presets.len() > CAMERA_PRESETS_MAX_ENTRIES {
        return Err(format!(
            "{} presets; at most {CAMERA_PRESETS_MAX_ENTRIES} are allowed",
            presets.len()
        ));
    }
    for (i, preset) in presets.iter().enumerate() {
        let at = |message: String| format!("preset {}: {message}", i + 1);
        check_camera_preset_name(&preset.name).map_err(at)?;
        let position = preset.position();
        check_camera_position(position).map_err(at)?;
        if presets[..i].iter().any(|p| p.name == preset.name) {
            return Err(at(format!("the name {:?} is used twice", preset.name)));
        }
    }
    Ok(())
}

/// Checks a preset name: 1 to 32 lowercase ASCII letters, digits and `-`.
pub fn check_camera_preset_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= CAMERA_PRESET_NAME_MAX_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a preset name: use 1 to {CAMERA_PRESET_NAME_MAX_CHARS} lowercase \
             letters, digits and '-'",
            name.chars().take(64).collect::<String>()
        ))
    }
}

/// Checks that pan and tilt are within -100..=100 and zoom within 100..=400.
pub fn check_camera_position(position: super::CameraPosition) -> Result<(), String> {
    let pan_tilt = super::CameraPosition::PAN_TILT_RANGE;
    let zoom = super::CameraPosition::ZOOM_RANGE;
    if !pan_tilt.contains(&position.pan) {
        return Err(format!("pan {} is out of range -100..=100", position.pan));
    }
    if !pan_tilt.contains(&position.tilt) {
        return Err(format!("tilt {} is out of range -100..=100", position.tilt));
    }
    if !zoom.contains(&position.zoom) {
        return Err(format!("zoom {} is out of range 100..=400", position.zoom));
    }
    Ok(())
}

pub(super) fn history_retention_days<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 3650)
}

pub(super) fn lobby_timeout_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 5, 3600)
}

/// Names in `meeting.known_guest_names` at most.
const MAX_KNOWN_GUEST_NAMES: usize = 256;

/// `meeting.known_guest_names`: names as a guest gives them (1 to 64 characters, no control
/// characters), at most 256.
pub(super) fn known_guest_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    if names.len() > MAX_KNOWN_GUEST_NAMES {
        return Err(de::Error::custom(format!(
            "at most {MAX_KNOWN_GUEST_NAMES} names are allowed, got {}",
            names.len()
        )));
    }
    for name in &names {
        let chars = name.chars().count();
        if !(1..=64).contains(&chars)
            || name.trim().is_empty()
            || name.chars().any(char::is_control)
        {
            return Err(de::Error::custom(format!(
                "{name:?} is not a guest's name: 1 to 64 characters, no control characters"
            )));
        }
    }
    Ok(names)
}

/// `meeting.document_max_mb`: from a megabyte to two gigabytes (a page holds a document in
/// memory while it hashes and sends it).
pub(super) fn document_max_mb<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 2000)
}

/// `meeting.e2ee_rekey_s`: from a key a minute (tests use 5 s) to a key a day.
pub(super) fn e2ee_rekey_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 5, 86_400)
}

/// `meeting.allowed_servers`: each entry a host pattern the outbound policy understands.
pub(super) fn allowed_servers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use crate::outbound::{MAX_PATTERNS, OutboundPolicy};
    let entries = Vec::<String>::deserialize(d)?;
    if entries.len() > MAX_PATTERNS {
        return Err(de::Error::custom(format!(
            "at most {MAX_PATTERNS} entries are allowed, got {}",
            entries.len()
        )));
    }
    OutboundPolicy::new(&entries).map_err(de::Error::custom)?;
    Ok(entries)
}

/// `update.rauc_bus`: `system`, or a D-Bus address of one of the forms zbus connects to.
pub(super) fn rauc_bus<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    check_rauc_bus(&value).map_err(de::Error::custom)?;
    Ok(value)
}

/// `dbus.bus`: `none`, `system`, or a D-Bus address as for `update.rauc_bus`.
pub(super) fn dbus_bus<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if value != "none" {
        check_rauc_bus(&value).map_err(|_| {
            de::Error::custom(format!(
                "{value:?} is neither \"system\", \"none\" nor a D-Bus address such as \"unix:path=/run/roomd/bus\" (at most 256 characters, no spaces)"
            ))
        })?;
    }
    Ok(value)
}

pub(super) fn check_rauc_bus(value: &str) -> Result<(), String> {
    if value == "system" {
        return Ok(());
    }
    let transport_ok = ["unix:path=", "unix:abstract="].iter().any(|prefix| {
        value
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty())
    });
    if !transport_ok
        || value.len() > 256
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{value:?} is neither \"system\" nor a D-Bus address such as \"unix:path=/run/rauc/bus\" (at most 256 characters, no spaces)"
        ));
    }
    Ok(())
}

/// An absolute path kept as text (like `meeting.ca_file`, but never empty).
pub(super) fn absolute_path_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let path = String::deserialize(d)?;
    if !Path::new(&path).is_absolute() {
        return Err(de::Error::custom(format!(
            "{path:?} is not an absolute path"
        )));
    }
    Ok(path)
}

pub(super) fn max_bundle_mib<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 16384)
}

pub(super) fn download_timeout_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 10, 86400)
}

pub(super) fn health_timeout_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 10, 3600)
}

pub(super) fn audit_max_file_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    integer_in(d, 65536, 64 * 1024 * 1024)
}

pub(super) fn audit_max_files<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 100)
}

pub(super) fn audit_retention_days<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 3650)
}

pub(super) fn audit_noise_interval_seconds<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<u32, D::Error> {
    integer_in(d, 1, 3600)
}

/// `stun://host:port` (the form webrtcbin takes), or empty for none.
pub(super) fn stun_server<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    check_ice_server(&value, &["stun"], false).map_err(de::Error::custom)?;
    Ok(value)
}

/// `turn://user:password@host:port` or `turns://…` (the form webrtcbin takes), or empty.
pub(super) fn turn_server<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    check_ice_server(&value, &["turn", "turns"], true).map_err(de::Error::custom)?;
    Ok(value)
}

/// Longest secret a setting takes (a TURN password is far shorter).
const SEALED_SECRET_MAX_BYTES: usize = 1024;

/// `""` (none), `"set"` (held by the sealed store), or a new secret to be moved there.
pub(super) fn sealed_secret<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if value.len() > SEALED_SECRET_MAX_BYTES || value.chars().any(char::is_control) {
        // Never echo the value: it is a secret.
        return Err(de::Error::custom(format!(
            "a secret must be at most {SEALED_SECRET_MAX_BYTES} bytes without control characters"
        )));
    }
    Ok(value)
}

/// A secret setting is shown and saved as whether it is set, never as its value.
pub(super) fn serialize_sealed_secret<S: Serializer>(
    value: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if value.is_empty() {
        ""
    } else {
        super::SECRET_SET
    })
}

fn check_ice_server(value: &str, schemes: &[&str], credentials: bool) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let example = if credentials {
        "turn://user@turn.example.org:3478"
    } else {
        "stun://stun.example.org:3478"
    };
    // Never echo the value itself: a TURN URL carries a password.
    let problem = |what: &str| format!("{what}; write it like {example:?}, or \"\" for none");
    let url = url::Url::parse(value).map_err(|_| problem("not a URL"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(problem(&format!(
            "the scheme must be {}",
            schemes.join(" or ")
        )));
    }
    if url.host_str().is_none_or(str::is_empty) || url.port().is_none() {
        return Err(problem("a host and a port are needed"));
    }
    if credentials && url.username().is_empty() {
        return Err(problem("a user name is needed"));
    }
    if url.password().is_some() {
        return Err(
            "the password does not belong in the URL, where it would be saved and shown; set \
             meeting.turn_password, which roomd keeps sealed by the TPM"
                .to_owned(),
        );
    }
    Ok(())
}

/// `https://host[:port]` without path, query or credentials, or empty.
pub(super) fn public_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if value.is_empty() {
        return Ok(value);
    }
    let bad = || {
        de::Error::custom(format!(
            "{value:?} is not an https address of this room without a path, e.g. \
             \"https://room-4-12.example.org:8443\" (or \"\" to derive it)"
        ))
    };
    let url = url::Url::parse(&value).map_err(|_| bad())?;
    if url.scheme() != "https"
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || url.path() != "/"
    {
        return Err(bad());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

pub(super) fn room_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    check_room_name(&name).map_err(de::Error::custom)?;
    Ok(name)
}

pub(super) fn hardware_profile<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let profile = String::deserialize(d)?;
    check_hardware_profile(&profile).map_err(de::Error::custom)?;
    Ok(profile)
}

pub(super) fn absolute_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let path = String::deserialize(d)?;
    if !Path::new(&path).is_absolute() {
        return Err(de::Error::custom(format!(
            "{path:?} is not an absolute path"
        )));
    }
    Ok(PathBuf::from(path))
}

/// Paths read from the configuration are always UTF-8; the lossy conversion only matters for a
/// path built in code, and keeps serializing infallible.
pub(super) fn serialize_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

pub(super) fn listen_addresses<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<SocketAddr>, D::Error> {
    let entries = Vec::<String>::deserialize(d)?;
    parse_listen_addresses(&entries).map_err(de::Error::custom)
}

pub(super) fn certificate_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    if names.len() > CERTIFICATE_NAMES_MAX_ENTRIES {
        return Err(de::Error::custom(format!(
            "at most {CERTIFICATE_NAMES_MAX_ENTRIES} names are allowed, got {}",
            names.len()
        )));
    }
    for name in &names {
        check_certificate_name(name).map_err(de::Error::custom)?;
    }
    Ok(names)
}

/// An absolute path, or the empty string for "not set".
pub(super) fn optional_absolute_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let path = String::deserialize(d)?;
    if !path.is_empty() && !Path::new(&path).is_absolute() {
        return Err(de::Error::custom(format!(
            "{path:?} is not an absolute path (or \"\" for none)"
        )));
    }
    Ok(path)
}

/// Most client certificates one device lists; a fleet manager has a handful.
const CLIENT_FINGERPRINTS_MAX_ENTRIES: usize = 256;

/// SHA-256 fingerprints of client certificates: 64 hex digits each, colons allowed (as
/// `openssl x509 -fingerprint -sha256` prints them); kept lowercase without colons.
pub(super) fn certificate_fingerprints<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    let entries = Vec::<String>::deserialize(d)?;
    if entries.len() > CLIENT_FINGERPRINTS_MAX_ENTRIES {
        return Err(de::Error::custom(format!(
            "at most {CLIENT_FINGERPRINTS_MAX_ENTRIES} fingerprints are allowed, got {}",
            entries.len()
        )));
    }
    entries
        .iter()
        .map(|entry| {
            let hex: String = entry
                .chars()
                .filter(|c| *c != ':')
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(hex)
            } else {
                Err(de::Error::custom(format!(
                    "{:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)",
                    entry.chars().take(100).collect::<String>()
                )))
            }
        })
        .collect()
}

/// One of the six roles of docs/permissions.md.
pub(super) fn role<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    name.parse::<crate::Role>().map_err(|_| {
        de::Error::custom(format!(
            "{name:?} is not a role; use admin, integrator, user, room-control, audit or metrics"
        ))
    })?;
    Ok(name)
}

pub(super) fn tcti<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let tcti = String::deserialize(d)?;
    check_tcti(&tcti).map_err(de::Error::custom)?;
    Ok(tcti)
}

/// `name` or `name:configuration`, the form tpm2-tss's TCTI loader takes.
pub(super) fn check_tcti(tcti: &str) -> Result<(), String> {
    let name = tcti.split(':').next().unwrap_or_default();
    if !TCTI_NAMES.contains(&name) {
        return Err(format!(
            "{tcti:?} does not start with a known TCTI ({}), e.g. \"device:/dev/tpmrm0\" or \
             \"swtpm:host=127.0.0.1,port=2321\"",
            TCTI_NAMES.join(", ")
        ));
    }
    if tcti.len() > TCTI_MAX_CHARS || tcti.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{tcti:?} must be at most {TCTI_MAX_CHARS} characters without spaces or control \
             characters"
        ));
    }
    Ok(())
}

pub(super) fn check_room_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the room name must not be blank".to_owned());
    }
    let chars = name.chars().count();
    if chars > ROOM_NAME_MAX_CHARS {
        return Err(format!(
            "the room name has {chars} characters, at most {ROOM_NAME_MAX_CHARS} are allowed"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "{name:?} contains control characters, which displays cannot show"
        ));
    }
    Ok(())
}

pub(super) fn check_hardware_profile(profile: &str) -> Result<(), String> {
    let bytes = profile.as_bytes();
    let starts_well = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if starts_well && rest_ok && bytes.len() <= HARDWARE_PROFILE_MAX_CHARS {
        Ok(())
    } else {
        Err(format!(
            "{profile:?} is not a hardware profile name: use 1 to {HARDWARE_PROFILE_MAX_CHARS} \
             lowercase letters, digits and '-', starting with a letter or digit"
        ))
    }
}

pub(super) fn parse_listen_addresses(entries: &[String]) -> Result<Vec<SocketAddr>, String> {
    if entries.is_empty() {
        return Err("at least one address is needed, or the API is unreachable".to_owned());
    }
    if entries.len() > LISTEN_MAX_ENTRIES {
        return Err(format!(
            "at most {LISTEN_MAX_ENTRIES} addresses are allowed, got {}",
            entries.len()
        ));
    }
    let mut addresses: Vec<SocketAddr> = Vec::with_capacity(entries.len());
    for entry in entries {
        let address: SocketAddr = entry.parse().map_err(|_| {
            format!(
                "{entry:?} is not a socket address (write 192.0.2.10:8443 or [2001:db8::10]:8443)"
            )
        })?;
        if let Some(earlier) = addresses.iter().find(|a| binds_overlap(a, &address)) {
            return Err(if *earlier == address {
                format!("{address} is listed twice")
            } else {
                format!("{earlier} and {address} cannot both be bound: one covers the other")
            });
        }
        addresses.push(address);
    }
    Ok(addresses)
}

/// Two listeners of one address family on the same port clash when the addresses are equal or
/// one of them is the wildcard address: the second bind would fail at the next start.
fn binds_overlap(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

pub(super) fn check_certificate_name(name: &str) -> Result<(), String> {
    if name.parse::<IpAddr>().is_ok() || is_dns_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is neither an IP address nor a DNS name (letters, digits, '-' and '.'; \
             labels of 1 to {DNS_LABEL_MAX_CHARS} characters not starting or ending with '-'; \
             at most {DNS_NAME_MAX_CHARS} characters)"
        ))
    }
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= DNS_NAME_MAX_CHARS
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= DNS_LABEL_MAX_CHARS
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

const HOSTNAME_MAX_CHARS: usize = 64;
const TIMEZONE_MAX_CHARS: usize = 64;
/// Where the tz database lives; a time zone must be a file in it.
const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";
const NTP_SERVERS_MAX_ENTRIES: usize = 8;
const NETWORK_ADDRESSES_MAX_ENTRIES: usize = 8;
const NETWORK_GATEWAYS_MAX_ENTRIES: usize = 4;
const NETWORK_DNS_MAX_ENTRIES: usize = 4;

pub(super) fn host_hostname<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    if let Some(name) = &value {
        check_hostname(name).map_err(de::Error::custom)?;
    }
    Ok(value)
}

/// A static hostname: RFC 1123 labels of lowercase letters, digits and `-` (1 to 63 characters,
/// not starting or ending with `-`), separated by dots, at most 64 characters in all (the
/// kernel's limit).
pub fn check_hostname(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= HOSTNAME_MAX_CHARS
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= DNS_LABEL_MAX_CHARS
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a hostname: use lowercase letters, digits and '-' in labels of 1 to \
             {DNS_LABEL_MAX_CHARS} characters (not starting or ending with '-') separated by \
             '.', at most {HOSTNAME_MAX_CHARS} characters, e.g. \"room-4-12\"",
            name.chars().take(80).collect::<String>()
        ))
    }
}

pub(super) fn host_timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    if let Some(zone) = &value {
        check_timezone(zone, Path::new(ZONEINFO_DIR)).map_err(de::Error::custom)?;
    }
    Ok(value)
}

/// A time zone of the tz database: `UTC`, or names like `Europe/Berlin` (letters, digits, `_`,
/// `+`, `-` in parts separated by `/`) that exist as a file under `zoneinfo`.
pub fn check_timezone(zone: &str, zoneinfo: &Path) -> Result<(), String> {
    if zone == "UTC" {
        return Ok(());
    }
    let shown = zone.chars().take(80).collect::<String>();
    let well_formed = !zone.is_empty()
        && zone.len() <= TIMEZONE_MAX_CHARS
        && zone.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with(['.', '-', '+'])
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        });
    if !well_formed {
        return Err(format!(
            "{shown:?} is not a time zone name: write it as in the tz database, e.g. \
             \"Europe/Berlin\" or \"UTC\""
        ));
    }
    if !zoneinfo.join(zone).is_file() {
        return Err(format!(
            "{shown:?} is not a time zone this system knows (no {}/{shown}); write it as in the \
             tz database, e.g. \"Europe/Berlin\" or \"UTC\"",
            zoneinfo.display()
        ));
    }
    Ok(())
}

pub(super) fn host_ntp_servers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let servers = Vec::<String>::deserialize(d)?;
    check_ntp_servers(&servers).map_err(de::Error::custom)?;
    Ok(servers)
}

/// At most 8 NTP servers, each an IP address or a DNS name, none twice.
pub fn check_ntp_servers(servers: &[String]) -> Result<(), String> {
    if servers.len() > NTP_SERVERS_MAX_ENTRIES {
        return Err(format!(
            "{} servers; at most {NTP_SERVERS_MAX_ENTRIES} are allowed",
            servers.len()
        ));
    }
    for (i, server) in servers.iter().enumerate() {
        if server.parse::<IpAddr>().is_err() && !is_dns_name(server) {
            return Err(format!(
                "server {}: {:?} is neither an IP address nor a host name",
                i + 1,
                server.chars().take(80).collect::<String>()
            ));
        }
        if servers[..i].contains(server) {
            return Err(format!("server {}: {server:?} is listed twice", i + 1));
        }
    }
    Ok(())
}

pub(super) fn host_nightly_reboot<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    if let Some(time) = &value {
        parse_time_of_day(time).map_err(de::Error::custom)?;
    }
    Ok(value)
}

/// `HH:MM` (24-hour, two digits each) as hour and minute.
pub fn parse_time_of_day(value: &str) -> Result<(u8, u8), String> {
    let bad = || {
        format!(
            "{:?} is not a time of day: write it as \"HH:MM\" (24-hour), e.g. \"03:30\"",
            value.chars().take(40).collect::<String>()
        )
    };
    let (hour, minute) = value.split_once(':').ok_or_else(bad)?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hour) || !two_digits(minute) {
        return Err(bad());
    }
    let hour: u8 = hour.parse().map_err(|_| bad())?;
    let minute: u8 = minute.parse().map_err(|_| bad())?;
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok((hour, minute))
}

/// `[host.network]` as written, before the checks that need more than one key.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHostNetwork {
    mode: Option<super::NetworkMode>,
    addresses: Vec<String>,
    gateways: Vec<String>,
    dns: Vec<String>,
}

impl TryFrom<RawHostNetwork> for super::HostNetworkConfig {
    type Error = String;

    fn try_from(raw: RawHostNetwork) -> Result<Self, String> {
        let network = super::HostNetworkConfig {
            mode: raw.mode,
            addresses: raw.addresses,
            gateways: raw.gateways,
            dns: raw.dns,
        };
        check_host_network(&network)?;
        Ok(network)
    }
}

/// The rules of `[host.network]`: static needs 1 to 8 addresses with a prefix length and takes
/// up to 4 gateways; DHCP takes neither; both take up to 4 DNS servers; no mode, no other key.
/// Each message names its key.
pub fn check_host_network(network: &super::HostNetworkConfig) -> Result<(), String> {
    use super::NetworkMode;
    let Some(mode) = network.mode else {
        if network.addresses.is_empty() && network.gateways.is_empty() && network.dns.is_empty() {
            return Ok(());
        }
        return Err(
            "host.network.mode is missing: set it to \"dhcp\" or \"static\" when \
                    host.network sets addresses, gateways or dns"
                .to_owned(),
        );
    };
    match mode {
        NetworkMode::Static => {
            if network.addresses.is_empty() {
                return Err(
                    "host.network.addresses: mode \"static\" needs at least one \
                            address, e.g. [\"192.0.2.10/24\"]"
                        .to_owned(),
                );
            }
        }
        NetworkMode::Dhcp => {
            if !network.addresses.is_empty() {
                return Err("host.network.addresses: addresses are set only with mode \
                            \"static\" (DHCP assigns them)"
                    .to_owned());
            }
            if !network.gateways.is_empty() {
                return Err("host.network.gateways: gateways are set only with mode \
                            \"static\" (DHCP assigns them)"
                    .to_owned());
            }
        }
    }
    if network.addresses.len() > NETWORK_ADDRESSES_MAX_ENTRIES {
        return Err(format!(
            "host.network.addresses: {} addresses; at most {NETWORK_ADDRESSES_MAX_ENTRIES} are \
             allowed",
            network.addresses.len()
        ));
    }
    for (i, address) in network.addresses.iter().enumerate() {
        parse_address_with_prefix(address)
            .map_err(|e| format!("host.network.addresses: entry {}: {e}", i + 1))?;
        if network.addresses[..i].contains(address) {
            return Err(format!(
                "host.network.addresses: entry {}: {address:?} is listed twice",
                i + 1
            ));
        }
    }
    ip_list(
        "host.network.gateways",
        &network.gateways,
        NETWORK_GATEWAYS_MAX_ENTRIES,
    )?;
    ip_list("host.network.dns", &network.dns, NETWORK_DNS_MAX_ENTRIES)
}

fn ip_list(key: &str, entries: &[String], max: usize) -> Result<(), String> {
    if entries.len() > max {
        return Err(format!(
            "{key}: {} entries; at most {max} are allowed",
            entries.len()
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        let ip: IpAddr = entry.parse().map_err(|_| {
            format!(
                "{key}: entry {}: {:?} is not an IP address",
                i + 1,
                entry.chars().take(80).collect::<String>()
            )
        })?;
        if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
            return Err(format!(
                "{key}: entry {}: {entry} cannot be used here (unspecified, loopback or \
                 multicast)",
                i + 1
            ));
        }
        if entries[..i].contains(entry) {
            return Err(format!("{key}: entry {}: {entry:?} is listed twice", i + 1));
        }
    }
    Ok(())
}

/// `192.0.2.10/24` or `2001:db8::10/64`: a usable host address and a prefix length that fits it.
pub fn parse_address_with_prefix(value: &str) -> Result<(IpAddr, u8), String> {
    let shown = value.chars().take(80).collect::<String>();
    let bad = || {
        format!(
            "{shown:?} is not an address with a prefix length, e.g. \"192.0.2.10/24\" or \
             \"2001:db8::10/64\""
        )
    };
    let (ip, prefix) = value.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix == 0 || prefix > max {
        return Err(format!("{shown:?}: the prefix length must be 1..={max}"));
    }
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return Err(format!(
            "{shown:?} cannot be the box's address (unspecified, loopback or multicast)"
        ));
    }
    Ok((ip, prefix))
}

/// Reads any integer and checks it against `min..=max` before narrowing it, so an out-of-range
/// value is reported as such ("150 is out of range 0..=100") instead of as a type overflow.
fn integer_in<'de, D, T>(d: D, min: i128, max: i128) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    let value = d.deserialize_i64(IntegerVisitor)?;
    if value < min || value > max {
        return Err(de::Error::custom(format!(
            "{value} is out of range {min}..={max}"
        )));
    }
    T::try_from(value).map_err(|_| de::Error::custom(format!("{value} does not fit")))
}

struct IntegerVisitor;

impl Visitor<'_> for IntegerVisitor {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(i128::from(v))
    }
}

pub(super) fn fleet_broker<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if !value.is_empty() {
        check_fleet_broker(&value).map_err(de::Error::custom)?;
    }
    Ok(value)
}

/// Host and port of a `mqtts://host[:port]` broker address (port 8883 when absent); IPv6
/// addresses in brackets.
pub fn check_fleet_broker(value: &str) -> Result<(String, u16), String> {
    let bad = || {
        format!(
            "{value:?} is not a broker address of the form mqtts://host[:port] (TLS only; \
             e.g. mqtts://mqtt.example.org:8883)"
        )
    };
    let rest = value.strip_prefix("mqtts://").ok_or_else(bad)?;
    if rest.is_empty() || rest.len() > 253 + 6 || rest.contains(['/', '@', '?', '#', ' ']) {
        return Err(bad());
    }
    host_and_port(rest, 8883).ok_or_else(bad)
}

/// `host[:port]` or `[ipv6][:port]` of a server address whose scheme was taken off; the port
/// is `default_port` when absent and never 0. None when it is neither.
fn host_and_port(rest: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(':') && !rest.starts_with('[') {
        return None;
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return None,
        },
    };
    Some((host.to_owned(), port))
}

pub(super) fn optional_absolute_path_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<String, D::Error> {
    let path = String::deserialize(d)?;
    if !path.is_empty() && !Path::new(&path).is_absolute() {
        return Err(de::Error::custom(format!(
            "{path:?} is not an absolute path"
        )));
    }
    Ok(path)
}

pub(super) fn fleet_room_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if !value.is_empty() {
        check_fleet_room_id(&value).map_err(de::Error::custom)?;
    }
    Ok(value)
}

/// A room id fits one MQTT topic level and a certificate's common name: 1 to 64 letters,
/// digits, `.`, `_` and `-`.
pub fn check_fleet_room_id(value: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a room id: 1 to 64 letters, digits, '.', '_' and '-'"
        ))
    }
}

pub(super) fn fleet_keepalive_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 5, 3600)
}

pub(super) fn fleet_backoff_min_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 100, 60000)
}

pub(super) fn fleet_backoff_max_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1000, 3600000)
}

pub(super) fn fleet_status_interval_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 100, 60000)
}

pub(super) fn fleet_max_payload_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1024, 1048576)
}

pub(super) fn fleet_commands_per_minute<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 1, 6000)
}

/// `[provisioning]` as written, before the check that needs more than one key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawProvisioning {
    #[serde(deserialize_with = "provisioning_url")]
    url: String,
    dns_sd: bool,
    #[serde(deserialize_with = "optional_absolute_path_string")]
    trust_key: String,
    #[serde(deserialize_with = "optional_absolute_path_string")]
    server_ca_file: String,
    #[serde(deserialize_with = "provisioning_retry_max_s")]
    retry_max_s: u32,
}

impl Default for RawProvisioning {
    fn default() -> Self {
        let d = super::ProvisioningConfig::default();
        RawProvisioning {
            url: d.url,
            dns_sd: d.dns_sd,
            trust_key: d.trust_key,
            server_ca_file: d.server_ca_file,
            retry_max_s: d.retry_max_s,
        }
    }
}

impl TryFrom<RawProvisioning> for super::ProvisioningConfig {
    type Error = String;

    fn try_from(raw: RawProvisioning) -> Result<Self, String> {
        let config = super::ProvisioningConfig {
            url: raw.url,
            dns_sd: raw.dns_sd,
            trust_key: raw.trust_key,
            server_ca_file: raw.server_ca_file,
            retry_max_s: raw.retry_max_s,
        };
        // A bundle nobody's key can vouch for would be taken from whoever answers the URL.
        if config.is_on() && config.trust_key.is_empty() {
            return Err(
                "provisioning.trust_key is required when provisioning.url or \
                        provisioning.dns_sd is set: the bundle's signature is what the room \
                        trusts"
                    .to_owned(),
            );
        }
        Ok(config)
    }
}

/// Longest provisioning URL: a host name plus a path, with room to spare.
const PROVISIONING_URL_MAX_CHARS: usize = 2048;

fn provisioning_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if value.is_empty() {
        return Ok(value);
    }
    check_provisioning_url(&value).map_err(de::Error::custom)?;
    Ok(value)
}

/// A provisioning URL: `https://host[:port]/path`, without user info, at most 2048 characters.
pub fn check_provisioning_url(value: &str) -> Result<(), String> {
    let bad = |why: &str| format!("{value:?} is not a provisioning URL: {why}");
    if value.len() > PROVISIONING_URL_MAX_CHARS {
        return Err(bad("longer than 2048 characters"));
    }
    let url = url::Url::parse(value).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad("it must start with https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not carry user info"));
    }
    Ok(())
}

fn provisioning_retry_max_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 5, 86400)
}

pub(super) fn sip_server<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if !value.is_empty() {
        check_sip_server(&value).map_err(de::Error::custom)?;
    }
    Ok(value)
}

/// Host and port of a `sips:host[:port]` server address (port 5061 when absent); IPv6
/// addresses in brackets. Only SIPS: the account's password and calls never go out in clear.
pub fn check_sip_server(value: &str) -> Result<(String, u16), String> {
    let bad = || {
        format!(
            "{value:?} is not a SIP server address of the form sips:host[:port] (TLS only; \
             e.g. sips:sip.example.org:5061)"
        )
    };
    let rest = value.strip_prefix("sips:").ok_or_else(bad)?;
    if rest.is_empty()
        || rest.len() > DNS_NAME_MAX_CHARS + 6
        || rest.contains(['/', '@', '?', '#', ' ', ';', '<', '>', '"'])
    {
        return Err(bad());
    }
    host_and_port(rest, 5061).ok_or_else(bad)
}

pub(super) fn sip_user<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if !value.is_empty() {
        check_sip_user(&value).map_err(de::Error::custom)?;
    }
    Ok(value)
}

/// A SIP user name: 1 to 64 letters, digits and `.`, `_`, `-`, `+` (RFC 3261's unreserved
/// characters without the ones that need escaping in a URI).
pub fn check_sip_user(value: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a SIP user name: 1 to 64 letters, digits, '.', '_', '-' and '+'"
        ))
    }
}

pub(super) fn sip_display_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    // It goes into a quoted string in From headers: no quotes, backslashes or control characters.
    if value.chars().count() > ROOM_NAME_MAX_CHARS
        || value
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(de::Error::custom(format!(
            "{value:?} is not a display name: at most {ROOM_NAME_MAX_CHARS} characters, no quotes, \
             backslashes or control characters"
        )));
    }
    Ok(value)
}

pub(super) fn sip_ring_timeout_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 5, 600)
}

pub(super) fn sip_media_timeout_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 5, 600)
}

/// Most callers `sip.auto_answer` lists.
pub(super) const SIP_AUTO_ANSWER_MAX: usize = 32;

pub(super) fn sip_auto_answer<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = Vec::<String>::deserialize(d)?;
    if values.len() > SIP_AUTO_ANSWER_MAX {
        return Err(de::Error::custom(format!(
            "at most {SIP_AUTO_ANSWER_MAX} callers may be answered automatically"
        )));
    }
    for value in &values {
        check_sip_caller(value).map_err(de::Error::custom)?;
    }
    Ok(values)
}

/// A caller's address as `sip.auto_answer` lists it: `sip:` or `sips:`, a user, `@`, a host
/// (and port), at most 256 characters, no spaces, quotes or control characters.
pub fn check_sip_caller(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("sips:")
        .or_else(|| value.strip_prefix("sip:"));
    let ok = value.len() <= 256
        && !value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '<' | '>' | '\\'))
        && rest.is_some_and(|r| {
            r.split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a caller's SIP address of the form sip:user@host or sips:user@host"
        ))
    }
}

pub(super) fn sip_register_interval_s<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer_in(d, 60, 86400)
}
