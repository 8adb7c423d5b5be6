//! The firmware image for test and benchmark programs: building it (image/build.sh) from the
//! binaries under test into a work folder, reading the boot report its guest prints on the serial
//! console, and using its API through the forwarded port. Like assertions, these helpers panic with
//! a message that names what failed: they serve tests/tests/image_boot.rs and the bench-image
//! program only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{ApiResponse, DeviceCertificate, FirmwareVm, SNAKEOIL_CERT, SNAKEOIL_KEY, Session};

/// From power-on to roomd's report on the console: firmware, kernel and systemd under TCG take
/// about a minute; 5 minutes leaves room for a machine shared with other test runs.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
pub const API_TIMEOUT: Duration = Duration::from_secs(60);
/// The one claim request of a booted guest (it hashes the admin password under emulation).
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(180);
/// Sending a bundle of about 600 MB to the guest and RAUC writing it into a slot, under software
/// emulation (about 2 minutes each on a quiet machine).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(900);
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
/// From `update.reboot`, or a failed trial boot, until the guest has turned itself off.
pub const REBOOT_TIMEOUT: Duration = Duration::from_secs(300);

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

pub fn stdout_of(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 over what goes into the image: both binaries, every file of image/ and systemd/, and
/// the build options.
fn inputs_digest(bin_dir: &Path, options: &BuildOptions) -> String {
    let mut files = vec![bin_dir.join("roomd"), bin_dir.join("roomctl")];
    for dir in ["image", "systemd"] {
        let listed = stdout_of(Command::new("git").arg("-C").arg(repo()).args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            dir,
        ]));
        files.extend(listed.lines().map(|line| repo().join(line)));
    }
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "tries={} test-bundles={}",
        options.boot_tries, options.test_bundles
    ));
    for file in files {
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(Sha256::digest(&bytes));
    }
    hex(&hasher.finalize())
}

/// How an image is built for a test or benchmark run.
pub struct BuildOptions {
    /// Tries a newly installed slot gets (the product's default is 3).
    pub boot_tries: u32,
    /// Also write the test bundles (test-next.raucb, test-unhealthy.raucb; image/build.sh).
    pub test_bundles: bool,
}

/// The image the image tests boot (tests/tests/image_boot.rs), in `target/image-test`.
pub fn image_test_workspace() -> ImageWorkspace {
    ImageWorkspace::named("image-test")
}

/// How the image tests' image is built: with the test bundles, and one try for a new slot
/// instead of the product's three. The rollback test boots every try under software emulation
/// (about two minutes each); one try still shows the counting (`+1`, then `+0-1`) and the
/// fallback, and the counting itself is systemd-boot's.
pub const IMAGE_TEST_BUILD: BuildOptions = BuildOptions {
    boot_tries: 1,
    test_bundles: true,
};

/// A work folder under target/ that holds one image with its keys, bundles and manifest, and the
/// guests' run folders: target/image-test for the tests, target/image-bench for the benchmark,
/// so that neither rebuilds the other's image.
pub struct ImageWorkspace {
    dir: PathBuf,
}

impl ImageWorkspace {
    /// `target/<name>` of the repository.
    pub fn named(name: &str) -> Self {
        ImageWorkspace {
            dir: repo().join("target").join(name),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key the image's boot loader and UKIs are signed with: Debian's OVMF "snakeoil" key,
    /// which the snakeoil variable store (tests/src/vm.rs) enrols as PK, KEK and db with Secure
    /// Boot on. Debian ships its private key for exactly this (encrypted with the password
    /// "snakeoil"; sbsign wants it plain).
    pub fn signing_key(&self) -> (PathBuf, PathBuf) {
        let dir = self.dir.join("keys");
        let (key, cert) = (dir.join("snakeoil.key"), dir.join("snakeoil.pem"));
        if !key.is_file() || !cert.is_file() {
            std::fs::create_dir_all(&dir).expect("create the key folder");
            stdout_of(
                Command::new("openssl")
                    .args(["pkey", "-passin", "pass:snakeoil", "-in"])
                    .arg(SNAKEOIL_KEY)
                    .arg("-out")
                    .arg(&key),
            );
            std::fs::copy(SNAKEOIL_CERT, &cert).expect("copy the snakeoil certificate");
        }
        (key, cert)
    }

    /// A key and self-signed certificate made once in `keys/`: `name` "bundle" signs the update
    /// bundles (its certificate is the image's RAUC keyring), "stranger" a bundle the box must
    /// refuse.
    pub fn bundle_key(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.dir.join("keys");
        let (key, cert) = (
            dir.join(format!("{name}.key")),
            dir.join(format!("{name}.crt")),
        );
        if !key.is_file() || !cert.is_file() {
            std::fs::create_dir_all(&dir).expect("create the key folder");
            stdout_of(
                Command::new("openssl")
                    .args([
                        "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    ])
                    .args(["-days", "3650", "-subj"])
                    .arg(format!("/O=roomd tests/CN=roomd test {name} bundles/"))
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert),
            );
        }
        (key, cert)
    }

    /// The image of the binaries in `bin_dir` (roomd, roomctl), built unless the folder holds
    /// it already for the same binaries and image/ and systemd/ files (inputs.sha256). Returns
    /// the disk image and, when it was built now, how long that took.
    pub fn build(&self, bin_dir: &Path, options: &BuildOptions) -> (PathBuf, Option<Duration>) {
        let out = &self.dir;
        let image = out.join("roomd.img");
        let stamp = out.join("inputs.sha256");
        let digest = inputs_digest(bin_dir, options);
        if image.is_file()
            && std::fs::read_to_string(&stamp).ok().as_deref() == Some(digest.as_str())
        {
            eprintln!("image: up to date in {}", out.display());
            return (image, None);
        }
        let started = Instant::now();
        let _ = std::fs::remove_file(&stamp);
        let deb_dir = out.join("deb");
        let printed = stdout_of(
            Command::new(repo().join("image/deb/build.sh"))
                .env("DEB_COMPRESSION", "gzip")
                .arg(bin_dir)
                .arg(&deb_dir),
        );
        let deb = PathBuf::from(printed.trim());
        let (key, cert) = self.signing_key();
        let (bundle_key, bundle_cert) = self.bundle_key("bundle");
        let status = Command::new(repo().join("image/build.sh"))
            .env("ROOMD_UKI_KEY", &key)
            .env("ROOMD_UKI_CERT", &cert)
            .env("ROOMD_BUNDLE_KEY", &bundle_key)
            .env("ROOMD_BUNDLE_CERT", &bundle_cert)
            .env(
                "ROOMD_TEST_BUNDLES",
                if options.test_bundles { "1" } else { "0" },
            )
            .env("ROOMD_BOOT_TRIES", options.boot_tries.to_string())
            .arg(&deb)
            .arg(out)
            .status()
            .expect("image/build.sh runs");
        assert!(status.success(), "image/build.sh failed: {status}");
        std::fs::write(&stamp, &digest).expect("write the inputs stamp");
        let took = started.elapsed();
        eprintln!(
            "TIMING image build (deb + image/build.sh): {:.0} s",
            took.as_secs_f64()
        );
        (image, Some(took))
    }

    /// KEY=value lines of the manifest build.sh writes beside the image.
    pub fn manifest(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join("manifest.env")).expect("manifest.env");
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from manifest.env:\n{text}"))
            .to_owned()
    }
}

/// Prints the console's tail if the test panics while the guest runs.
pub struct ConsoleOnFailure<'a>(pub &'a FirmwareVm);

impl Drop for ConsoleOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last 80 lines of the guest's serial console ({}) ---\n{}\n---",
                self.0.serial_log().display(),
                self.0.console_tail(80)
            );
        }
    }
}

/// The `roomd-image: ` lines of the console (image/rootfs/usr/lib/roomd-image/report).
pub fn report_lines(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|line| {
            line.split_once("roomd-image: ")
                .map(|(_, rest)| rest.to_owned())
        })
        .collect()
}

pub fn report_value(lines: &[String], key: &str) -> String {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the boot report: {lines:#?}"))
        .to_owned()
}

/// Waits for roomd's boot report on the console of the current boot and returns its lines.
pub fn wait_for_report(vm: &mut FirmwareVm) -> Vec<String> {
    vm.wait_for_console("roomd-image: roomd=", BOOT_TIMEOUT)
        .unwrap_or_else(|error| {
            panic!(
                "{error}\n--- console tail ({}) ---\n{}",
                vm.serial_log().display(),
                vm.console_tail(80)
            )
        });
    report_lines(&vm.console())
}

/// The boot report of a boot from `slot` at `version`: roomd running, and the root the slot's
/// erofs on the dm-verity device the initramfs opened, read-only.
pub fn assert_verified_boot(report: &[String], slot: &str, version: &str) {
    assert_eq!(
        report_value(report, "roomd"),
        "active",
        "roomd is not running"
    );
    assert_eq!(report_value(report, "slot"), slot);
    assert_eq!(report_value(report, "version"), version);
    let root = report_value(report, "root");
    assert!(
        root.starts_with("/dev/mapper/root erofs ro"),
        "the root is not the verified erofs slot: {root}"
    );
    assert_eq!(report_value(report, "verity"), "verified");
    // /etc is writable for this boot only, in memory over the verified root's.
    assert_eq!(report_value(report, "etc"), "overlay");
}

/// The device certificate the boot report printed, trusted alone for the API.
pub fn certificate_from_report(report: &[String], run_dir: &Path) -> (String, DeviceCertificate) {
    let pem: String = report
        .iter()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .take_while(|line| !line.starts_with("-----END CERTIFICATE-----"))
        .chain(std::iter::once(&"-----END CERTIFICATE-----".to_owned()))
        .map(|line| format!("{line}\n"))
        .collect();
    let path = run_dir.join("device-cert.pem");
    std::fs::write(&path, &pem).expect("write the device certificate");
    let certificate = DeviceCertificate::load(&path).expect("the console's certificate");
    (pem, certificate)
}

pub fn wait_for_api(vm: &FirmwareVm, certificate: &DeviceCertificate) {
    let deadline = Instant::now() + API_TIMEOUT;
    loop {
        match vm.request(certificate, "GET", "/api/v1/health").send() {
            Ok(response) if response.status == 200 => {
                assert_eq!(response.json().expect("JSON"), json!({ "status": "ok" }));
                return;
            }
            Ok(response) if Instant::now() > deadline => {
                panic!(
                    "GET /api/v1/health: {} {}",
                    response.status,
                    response.text()
                )
            }
            Err(error) if Instant::now() > deadline => panic!("GET /api/v1/health: {error}"),
            _ => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

pub const ADMIN_PASSWORD: &str = "image-boot-test-password";

/// Claims the freshly booted box with the code from its console and logs in.
pub fn claim(vm: &FirmwareVm, certificate: &DeviceCertificate, report: &[String]) -> Session {
    let code = report_value(report, "claim-code");
    vm.request(certificate, "POST", "/api/v1/claim")
        // Once only (a second claim would be refused), so with room for argon2id inside an
        // emulated CPU on a busy host: seconds when idle, more than the agent's 30 s under load.
        .timeout(CLAIM_TIMEOUT)
        .json(&json!({ "code": code, "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .expect("POST /api/v1/claim")
        .expect_status(201, "claiming the booted box")
        .expect("claimed");
    login(vm, certificate)
}

/// Logs in as the admin, retrying while roomd is still starting.
pub fn login(vm: &FirmwareVm, certificate: &DeviceCertificate) -> Session {
    let deadline = Instant::now() + API_TIMEOUT;
    loop {
        let answer = vm
            .request(certificate, "POST", "/api/v1/session")
            .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send();
        match answer {
            Ok(response) if response.status == 200 => {
                return Session::from_login_response(&response).expect("a session");
            }
            Ok(response) if Instant::now() > deadline => {
                panic!("logging in: {} {}", response.status, response.text())
            }
            Err(error) if Instant::now() > deadline => panic!("logging in: {error}"),
            _ => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// `status.<section>` (e.g. `update`, `host`), waited for until `done` holds of it.
pub fn wait_for_status(
    vm: &FirmwareVm,
    certificate: &DeviceCertificate,
    session: &Session,
    section: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let path = format!("/api/v1/status/{section}");
    let deadline = Instant::now() + timeout;
    loop {
        let status = vm
            .request(certificate, "GET", &path)
            .session(session)
            .send()
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
            .expect_status(200, &path)
            .unwrap_or_else(|error| panic!("status.{section}: {error}"))
            .json()
            .expect("JSON");
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; status.{section} is {status}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// `status.update`, waited for until `done` holds of it.
pub fn wait_for_update_status(
    vm: &FirmwareVm,
    certificate: &DeviceCertificate,
    session: &Session,
    what: &str,
    timeout: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for_status(vm, certificate, session, "update", what, timeout, done)
}

/// Sends a bundle file to `POST /api/v1/update`.
pub fn upload(
    vm: &FirmwareVm,
    certificate: &DeviceCertificate,
    session: &Session,
    bundle: &Path,
) -> ApiResponse {
    let bytes = std::fs::read(bundle)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", bundle.display()));
    vm.request(certificate, "POST", "/api/v1/update")
        .session(session)
        .header("Content-Type", "application/octet-stream")
        .body(bytes)
        .timeout(UPLOAD_TIMEOUT)
        .send()
        .unwrap_or_else(|error| panic!("POST /api/v1/update {}: {error}", bundle.display()))
}

/// Runs `update.reboot`: the box restarts into the installed slot.
pub fn reboot_into_update(vm: &FirmwareVm, certificate: &DeviceCertificate, session: &Session) {
    let response = vm
        .request(certificate, "POST", "/api/v1/commands/update.reboot")
        .session(session)
        .json(&json!({}))
        .send()
        .expect("POST /api/v1/commands/update.reboot");
    assert!(
        (200..300).contains(&response.status),
        "update.reboot: {} {}",
        response.status,
        response.text()
    );
}
