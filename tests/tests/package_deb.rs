//! The Debian package (`make deb`, image/deb/build.sh): it holds both binaries, the unit, the
//! sysusers and tmpfiles snippets and /etc/roomd/roomd.toml as a conffile, its dependencies cover
//! what roomd links and what it loads at run time, dpkg on this machine would install it, and
//! lintian finds nothing to report.
//!
//! The package is built here from the binaries under test (ROOMD_BIN's folder, debug in `make
//! test`); `make deb` builds the same from target/release.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

fn stdout_of(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds the package into `out` and returns its path.
fn build_package(out: &Path) -> PathBuf {
    let roomd = roomd_tests::roomd_bin().expect("roomd binary (ROOMD_BIN)");
    let bin_dir = roomd.parent().expect("roomd has a folder");
    let printed = stdout_of(
        Command::new(repo().join("image/deb/build.sh"))
            .env("DEB_COMPRESSION", "gzip")
            .arg(bin_dir)
            .arg(out),
    );
    let package = PathBuf::from(printed.trim());
    assert!(package.is_file(), "build.sh printed {printed:?}");
    package
}

#[test]
fn the_package_installs_what_a_room_needs_and_lintian_is_clean() {
    let out = tempfile::tempdir().expect("temporary directory");
    let package = build_package(out.path());
    let name = package
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    let arch = stdout_of(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(
        name,
        format!("roomd_{}_{}.deb", env!("CARGO_PKG_VERSION"), arch.trim())
    );

    let contents = stdout_of(Command::new("dpkg-deb").arg("--contents").arg(&package));
    for (mode, path) in [
        ("-rwxr-xr-x", "./usr/bin/roomd"),
        ("-rwxr-xr-x", "./usr/bin/roomctl"),
        ("-rw-r--r--", "./lib/systemd/system/roomd.service"),
        ("-rw-r--r--", "./usr/lib/sysusers.d/roomd.conf"),
        ("-rw-r--r--", "./usr/lib/tmpfiles.d/roomd.conf"),
        ("-rw-r--r--", "./usr/share/dbus-1/system.d/org.roomd.conf"),
        ("-rw-r--r--", "./etc/roomd/roomd.toml"),
        ("-rw-r--r--", "./usr/share/doc/roomd/copyright"),
    ] {
        assert!(
            contents
                .lines()
                .any(|line| line.starts_with(&format!("{mode} root/root")) && line.ends_with(path)),
            "{path} ({mode}, root) missing from the package:\n{contents}"
        );
    }
    // The shipped files are the repository's, byte for byte.
    for (inside, shipped) in [
        (
            "./lib/systemd/system/roomd.service",
            "systemd/roomd.service",
        ),
        (
            "./usr/lib/sysusers.d/roomd.conf",
            "systemd/sysusers.d/roomd.conf",
        ),
        (
            "./usr/lib/tmpfiles.d/roomd.conf",
            "systemd/tmpfiles.d/roomd.conf",
        ),
        (
            "./usr/share/dbus-1/system.d/org.roomd.conf",
            "systemd/org.roomd.conf",
        ),
    ] {
        let unpacked = stdout_of(
            Command::new("sh")
                .arg("-c")
                .arg("dpkg-deb --fsys-tarfile \"$0\" | tar -xOf - \"$1\"")
                .arg(&package)
                .arg(inside),
        );
        let expected = std::fs::read_to_string(repo().join(shipped)).expect(shipped);
        assert_eq!(unpacked, expected, "{inside} differs from {shipped}");
    }

    let conffiles = stdout_of(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(&package)
            .arg("conffiles"),
    );
    assert_eq!(conffiles.trim(), "/etc/roomd/roomd.toml");
    // The default configuration is a valid one (every key has a default): roomd accepts it.
    let config = stdout_of(
        Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$0\" | tar -xOf - ./etc/roomd/roomd.toml")
            .arg(&package),
    );
    let parsed: toml::Table = toml::from_str(&config).expect("roomd.toml is TOML");
    assert!(
        parsed.is_empty(),
        "the shipped roomd.toml sets nothing: {parsed:?}"
    );

    let depends = stdout_of(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(&package)
            .arg("Depends"),
    );
    for needed in [
        "libgstreamer1.0-0",
        "libtss2-esys",
        "libtss2-tcti-device0",
        "gstreamer1.0-nice",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-libav",
        "systemd",
    ] {
        assert!(
            depends.contains(needed),
            "Depends lacks {needed}: {depends}"
        );
    }
    // Every dependency is installable here: dpkg would install the package as it is.
    let dry_run = run(Command::new("dpkg")
        .arg("--dry-run")
        .arg("-i")
        .arg(&package));
    assert!(
        dry_run.status.success(),
        "dpkg --dry-run -i refuses the package: {}{}",
        String::from_utf8_lossy(&dry_run.stdout),
        String::from_utf8_lossy(&dry_run.stderr)
    );

    let lintian = run(Command::new("lintian")
        .arg("--fail-on")
        .arg("error,warning")
        .arg(&package));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&lintian.stdout),
        String::from_utf8_lossy(&lintian.stderr)
    );
    assert!(lintian.status.success(), "lintian reports:\n{report}");
    assert!(
        !report
            .lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "lintian reports:\n{report}"
    );
}
