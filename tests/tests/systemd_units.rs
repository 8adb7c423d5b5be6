//! The shipped systemd files: roomd.service parses cleanly and keeps its hardening, and the
//! sysusers.d/tmpfiles.d snippets create the user, groups and config directory the unit relies on.
//!
//! Needs systemd's tools (`make deps` installs them) and the built roomd binary (`ROOMD_BIN`, set
//! by `make test`, or target/debug/roomd), because `systemd-analyze verify` checks ExecStart.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The exposure score promised for roomd.service (`systemd-analyze security`, 0 = best, 10 = worst).
const MAX_EXPOSURE: f64 = 2.5;

/// Device groups roomd joins: cameras, microphones/speakers, GPU encoders, TPM.
const DEVICE_GROUPS: [&str; 4] = ["video", "audio", "render", "tss"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

fn unit_file() -> PathBuf {
    repo().join("systemd/roomd.service")
}

fn roomd_binary() -> PathBuf {
    let binary = std::env::var_os("ROOMD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/debug/roomd"));
    assert!(
        binary.is_file(),
        "roomd binary {} not found: run `cargo build -p roomd --bins` or set ROOMD_BIN",
        binary.display()
    );
    binary
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?} (is systemd installed?): {error}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A throw-away root for `systemd-analyze verify --root`: the host's stock units (verify needs
/// sysinit.target and friends), the roomd binary at /usr/bin/roomd and roomd.service in
/// /etc/systemd/system. Without a root, verify would look for /usr/bin/roomd on the build host.
fn verify_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temporary directory");
    let stock_units = root.path().join("usr/lib/systemd");
    fs::create_dir_all(&stock_units).expect("create usr/lib/systemd");
    let copied = run(Command::new("cp")
        .arg("-a")
        .arg("/usr/lib/systemd/system")
        .arg(&stock_units));
    assert!(
        copied.status.success(),
        "copying the host's systemd units failed: {}",
        text(&copied.stderr)
    );

    let bin = root.path().join("usr/bin");
    fs::create_dir_all(&bin).expect("create usr/bin");
    // A hard link is instant; across file systems fall back to a copy.
    if fs::hard_link(roomd_binary(), bin.join("roomd")).is_err() {
        fs::copy(roomd_binary(), bin.join("roomd")).expect("copy the roomd binary");
    }

    let units = root.path().join("etc/systemd/system");
    fs::create_dir_all(&units).expect("create etc/systemd/system");
    fs::copy(unit_file(), units.join("roomd.service")).expect("copy roomd.service");
    root
}

#[test]
fn unit_verifies_without_warnings() {
    let root = verify_root();
    let output = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("/etc/systemd/system/roomd.service"));
    let printed = format!("{}{}", text(&output.stdout), text(&output.stderr));
    // verify exits 0 even for ignored keys and unparsable values; it only prints them.
    assert!(
        output.status.success() && printed.trim().is_empty(),
        "systemd-analyze verify complained about roomd.service ({}):\n{printed}",
        output.status
    );
}

/// Reads "→ Overall exposure level for roomd.service: 1.7 OK 🙂".
fn overall_exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|line| line.contains("Overall exposure level for roomd.service:"))?;
    let (_, after) = line.split_once("roomd.service:")?;
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn unit_exposure_stays_low() {
    let output = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit_file()));
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "systemd-analyze security failed ({}): {}",
        output.status,
        text(&output.stderr)
    );
    let exposure = overall_exposure(&report)
        .unwrap_or_else(|| panic!("no overall exposure level in the report:\n{report}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "roomd.service exposure {exposure} is above {MAX_EXPOSURE}:\n{report}"
    );
}

#[test]
fn exposure_parser_reads_the_score() {
    let line = "\u{2192} Overall exposure level for roomd.service: 1.7 OK \u{1F642}";
    assert_eq!(overall_exposure(line), Some(1.7));
    assert_eq!(
        overall_exposure("Overall exposure level for other.service: 1.0"),
        None
    );
}

/// `Key=Value` pairs of the unit's [Service] section, in order; keys may repeat.
fn service_settings() -> Vec<(String, String)> {
    let unit = fs::read_to_string(unit_file()).expect("read systemd/roomd.service");
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[Service]"
            && let Some((key, value)) = line.split_once('=')
        {
            settings.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    settings
}

/// The settings the design relies on; the exposure score alone would tolerate losing several.
const REQUIRED_SETTINGS: &[(&str, &str)] = &[
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("ExecStart", "/usr/bin/roomd --config /etc/roomd/roomd.toml"),
    ("WatchdogSec", "30s"),
    ("Restart", "on-failure"),
    ("KillSignal", "SIGTERM"),
    ("TimeoutStopSec", "10s"),
    ("User", "roomd"),
    ("Group", "roomd"),
    ("SupplementaryGroups", "video audio render tss"),
    ("StateDirectory", "roomd"),
    ("StateDirectoryMode", "0700"),
    ("ReadWritePaths", "/etc/roomd"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("UMask", "0077"),
    ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
    ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
    ("NoNewPrivileges", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("DevicePolicy", "closed"),
    ("DeviceAllow", "char-video4linux rw"),
    ("DeviceAllow", "char-alsa rw"),
    ("DeviceAllow", "char-drm rw"),
    ("DeviceAllow", "/dev/tpmrm0 rw"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictNamespaces", "yes"),
    (
        "RestrictAddressFamilies",
        "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    ),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", "@system-service"),
    ("LimitNOFILE", "4096"),
    ("MemoryMax", "1G"),
    ("TasksMax", "512"),
];

/// Keys that must appear exactly once, so a later line cannot widen what an earlier one allowed.
const SINGLE_KEYS: &[&str] = &[
    "User",
    "AmbientCapabilities",
    "CapabilityBoundingSet",
    "DevicePolicy",
    "RestrictAddressFamilies",
    "SupplementaryGroups",
    "LimitNOFILE",
    "MemoryMax",
    "TasksMax",
];

#[test]
fn unit_keeps_required_settings() {
    let settings = service_settings();
    for (key, value) in REQUIRED_SETTINGS {
        assert!(
            settings.iter().any(|(k, v)| k == key && v == value),
            "roomd.service lacks {key}={value}"
        );
    }
    for key in SINGLE_KEYS {
        let count = settings.iter().filter(|(k, _)| k == key).count();
        assert_eq!(count, 1, "roomd.service sets {key}= {count} times");
    }
    // PrivateDevices=yes would hide /dev/video*; DeviceAllow= is the allow list instead.
    assert!(
        !settings.iter().any(|(k, _)| k == "PrivateDevices"),
        "roomd.service must not set PrivateDevices="
    );
}

/// Runs the repository's sysusers.d file for real against an empty root (into its etc/passwd).
fn sysusers_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temporary directory");
    fs::create_dir(root.path().join("etc")).expect("create etc");
    let output = run(Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo().join("systemd/sysusers.d/roomd.conf")));
    assert!(
        output.status.success(),
        "systemd-sysusers rejected systemd/sysusers.d/roomd.conf ({}): {}{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    root
}

/// The `name:x:id:…` line of `name` in an /etc/passwd or /etc/group file.
fn entry(file: &Path, name: &str) -> Option<Vec<String>> {
    fs::read_to_string(file)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()))
        .lines()
        .map(|line| line.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|fields| fields.first().map(String::as_str) == Some(name))
}

#[test]
fn sysusers_creates_roomd_in_its_device_groups() {
    let root = sysusers_root();
    let user = entry(&root.path().join("etc/passwd"), "roomd").expect("user roomd created");
    assert_eq!(
        user.get(5).map(String::as_str),
        Some("/var/lib/roomd"),
        "{user:?}"
    );
    assert_eq!(
        user.get(6).map(String::as_str),
        Some("/usr/sbin/nologin"),
        "{user:?}"
    );

    let groups = root.path().join("etc/group");
    assert!(entry(&groups, "roomd").is_some(), "group roomd missing");
    for group in DEVICE_GROUPS {
        let fields = entry(&groups, group).unwrap_or_else(|| panic!("group {group} missing"));
        let members = fields.get(3).map(String::as_str).unwrap_or("");
        assert!(
            members.split(',').any(|member| member == "roomd"),
            "roomd is not a member of {group}: {fields:?}"
        );
    }
}

#[test]
fn tmpfiles_creates_a_config_dir_only_roomd_can_write() {
    let root = sysusers_root();
    let output = run(Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(repo().join("systemd/tmpfiles.d/roomd.conf")));
    let complaints = text(&output.stderr);
    let config_dir = root.path().join("etc/roomd");
    let metadata = fs::metadata(&config_dir).unwrap_or_else(|error| {
        panic!("systemd-tmpfiles did not create /etc/roomd ({error}): {complaints}")
    });
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o750);

    // The temporary root was created by this process, so its owner is our effective uid.
    let running_as_root = fs::metadata(root.path()).expect("temporary root").uid() == 0;
    if running_as_root {
        assert!(
            output.status.success() && complaints.trim().is_empty(),
            "systemd-tmpfiles failed ({}): {complaints}",
            output.status
        );
        let user = entry(&root.path().join("etc/passwd"), "roomd").expect("user roomd");
        let uid: u32 = user[2].parse().expect("numeric uid");
        let gid: u32 = user[3].parse().expect("numeric gid");
        assert_eq!(
            (metadata.uid(), metadata.gid()),
            (uid, gid),
            "owner of /etc/roomd"
        );
    } else {
        // Without root, chown to roomd must fail; everything else (syntax, resolving the user
        // and group from the root's passwd) must still have worked.
        for complaint in complaints.lines() {
            assert!(
                complaint.contains("fchownat()") && complaint.contains("Operation not permitted"),
                "systemd-tmpfiles complained: {complaint}"
            );
        }
    }
}
