//! roomd's one networkd file: rendered from `[host]`, written atomically with mode 0644.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::HostError;
use roomd_model::config::{HostConfig, NetworkMode};

/// Where networkd reads runtime configuration (a tmpfs: gone at every boot, written again at
/// start). The image makes it writable for roomd; tests point roomd elsewhere.
pub const DEFAULT_NETWORK_DIR: &str = "/run/systemd/network";
/// roomd's file in it. `10-` sorts before the image's own files, so it wins for the links it
/// matches (networkd applies the first matching file only).
pub const NETWORK_FILE: &str = "10-roomd.network";
/// networkd runs as systemd-network and must read the file; roomd's UMask is 0077.
const FILE_MODE: u32 = 0o644;

/// The file for `host`, or `None` when neither `ntp_servers` nor `[host.network]` is set (then
/// the image's default applies). Without `[host.network]` the file keeps the image's default,
/// DHCP on every wired link, and only adds the NTP servers.
pub fn render_network(host: &HostConfig) -> Option<String> {
    let network = &host.network;
    if !network.is_set() && host.ntp_servers.is_empty() {
        return None;
    }
    let mut text = String::from(
        "# Written by roomd from [host] in its configuration (docs/host-settings.md);\n\
         # change it there: roomd rewrites or removes this file.\n\
         [Match]\n\
         Name=en* eth*\n\
         \n\
         [Network]\n",
    );
    match network.mode {
        Some(NetworkMode::Static) => {
            for address in &network.addresses {
                text.push_str(&format!("Address={address}\n"));
            }
            for gateway in &network.gateways {
                text.push_str(&format!("Gateway={gateway}\n"));
            }
        }
        Some(NetworkMode::Dhcp) | None => text.push_str("DHCP=yes\n"),
    }
    for dns in &network.dns {
        text.push_str(&format!("DNS={dns}\n"));
    }
    if !host.ntp_servers.is_empty() {
        text.push_str(&format!("NTP={}\n", host.ntp_servers.join(" ")));
    }
    Some(text)
}

/// Writes `contents` as `<dir>/10-roomd.network`: a temporary file in the same directory, mode
/// 0644 set explicitly (not left to the umask), synced, renamed over the old file. Returns
/// whether the file changed (an identical file is left alone).
pub fn write_network_file(dir: &Path, contents: &str) -> Result<bool, HostError> {
    let path = dir.join(NETWORK_FILE);
    let failed = |p: &Path| {
        let p = p.display().to_string();
        move |e: std::io::Error| HostError::NetworkFile {
            path: p,
            reason: e.to_string(),
        }
    };
    match fs::read(&path) {
        Ok(old) if old == contents.as_bytes() => return Ok(false),
        _ => {}
    }
    let tmp = dir.join(format!(
        ".{NETWORK_FILE}.tmp-{}",
        roomd_base::random::token_hex(6)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(failed(&path)(e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed(dir))?;
    Ok(true)
}

/// Removes `<dir>/10-roomd.network`; returns whether there was one.
pub fn remove_network_file(dir: &Path) -> Result<bool, HostError> {
    let path = dir.join(NETWORK_FILE);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(HostError::NetworkFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomd_model::config::HostNetworkConfig;

    const HEADER: &str = "# Written by roomd from [host] in its configuration (docs/host-settings.md);\n\
                          # change it there: roomd rewrites or removes this file.\n\
                          [Match]\n\
                          Name=en* eth*\n\
                          \n\
                          [Network]\n";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn nothing_set_is_no_file() {
        assert_eq!(render_network(&HostConfig::default()), None);
        let only_hostname = HostConfig {
            hostname: Some("room".into()),
            ..HostConfig::default()
        };
        assert_eq!(render_network(&only_hostname), None);
    }

    #[test]
    fn dhcp_with_dns() {
        let host = HostConfig {
            network: HostNetworkConfig {
                mode: Some(NetworkMode::Dhcp),
                dns: strings(&["192.0.2.53"]),
                ..HostNetworkConfig::default()
            },
            ..HostConfig::default()
        };
        assert_eq!(
            render_network(&host).unwrap(),
            format!("{HEADER}DHCP=yes\nDNS=192.0.2.53\n")
        );
    }

    #[test]
    fn static_v4_and_v6_with_ntp() {
        let host = HostConfig {
            ntp_servers: strings(&["192.0.2.123", "ntp.example.org"]),
            network: HostNetworkConfig {
                mode: Some(NetworkMode::Static),
                addresses: strings(&["192.0.2.10/24", "2001:db8::10/64"]),
                gateways: strings(&["192.0.2.1", "2001:db8::1"]),
                dns: strings(&["192.0.2.53", "2001:db8::53"]),
            },
            ..HostConfig::default()
        };
        assert_eq!(
            render_network(&host).unwrap(),
            format!(
                "{HEADER}Address=192.0.2.10/24\nAddress=2001:db8::10/64\nGateway=192.0.2.1\n\
                 Gateway=2001:db8::1\nDNS=192.0.2.53\nDNS=2001:db8::53\n\
                 NTP=192.0.2.123 ntp.example.org\n"
            )
        );
    }

    #[test]
    fn ntp_only_keeps_dhcp() {
        let host = HostConfig {
            ntp_servers: strings(&["ntp.example.org"]),
            ..HostConfig::default()
        };
        assert_eq!(
            render_network(&host).unwrap(),
            format!("{HEADER}DHCP=yes\nNTP=ntp.example.org\n")
        );
    }

    #[test]
    fn written_atomically_with_mode_0644_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let first = write_network_file(dir.path(), "[Match]\n");
        nix::sys::stat::umask(old);
        assert!(first.unwrap());
        let path = dir.path().join(NETWORK_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // The same content again: nothing to do.
        assert!(!write_network_file(dir.path(), "[Match]\n").unwrap());
        assert!(write_network_file(dir.path(), "[Match]\nName=en*\n").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "[Match]\nName=en*\n");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(remove_network_file(dir.path()).unwrap());
        assert!(!remove_network_file(dir.path()).unwrap());
        let missing = write_network_file(&dir.path().join("missing"), "x").unwrap_err();
        assert!(
            missing.to_string().contains("10-roomd.network"),
            "{missing}"
        );
    }
}
