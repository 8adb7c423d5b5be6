//! The firmware image (image/build.sh) boots in a virtual machine, runs roomd, and updates
//! itself: qemu under software emulation with OVMF (Secure Boot on, trusting the key the image is
//! signed with) and a swtpm as the machine's TPM. Each boot's serial console is kept in
//! target/image-test/<test>/serial-*.log (its tail is printed when a test fails).
//!
//! Checked on the built files: the documented GPT layout, both slots' boot entries in the ESP,
//! each UKI signed, each root slot verifying against the root hash inside its UKI (and not with
//! one bit flipped), and the update bundles verifying against the image's keyring.
//!
//! `the_image_boots_verified_and_updates_itself_to_the_other_slot`: the guest boots slot A with
//! its root on the dm-verity device, grows its data partition, picks the `simulated` profile;
//! roomd answers on the forwarded API port, is claimed, reports its device key in the TPM (read
//! back out of the TPM's state with tpm2-tools while the machine is off: it is the key of the TLS
//! certificate the guest served). Through the API, a bundle signed with another key is refused
//! and a good bundle of the next version is installed into slot B; `update.reboot` restarts the
//! box into B on trial (boot counter in the ESP), B reports the new version, roomd marks it good
//! and systemd-bless-boot removes the counter. The claim and certificate survive the slot change.
//!
//! `an_update_that_never_becomes_healthy_is_rolled_back_by_itself`: a bundle whose roomd exits at
//! once is installed; each start of slot B fails roomd's health verdict and reboots, using up a
//! try; after the last one the box starts slot A again by itself, and roomd's status says it
//! rolled back, from which version to which.
//!
//! The image is built from the binaries under test (ROOMD_BIN's folder, debug in `make test`)
//! and only when they or image/ changed since the last build (target/image-test/inputs.sha256).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use roomd_tests::{DeviceCertificate, FirmwareVm, Session, esp_boot_entries};
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use sha2::{Digest, Sha256};

/// From power-on to roomd's report on the console: firmware, kernel and systemd under TCG take
/// about a minute; 5 minutes leaves room for a machine shared with other test runs.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const API_TIMEOUT: Duration = Duration::from_secs(60);
/// Sending a bundle of about 600 MB to the guest and RAUC writing it into a slot, under software
/// emulation (about 2 minutes each on a quiet machine).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(900);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
/// From `update.reboot`, or a failed trial boot, until the guest has turned itself off.
const REBOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// The guest's disk is the image grown by this much, as if flashed onto a larger disk.
const GROW_BYTES: u64 = 512 * 1024 * 1024;
/// Persistent handle of the device key (docs/identity.md).
const DEVICE_KEY_HANDLE: &str = "0x81010010";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

fn out_dir() -> PathBuf {
    repo().join("target").join("image-test")
}

/// The image is built once per test run, by whichever test comes first.
static IMAGE: Mutex<Option<PathBuf>> = Mutex::new(None);

fn stdout_of(command: &mut Command) -> String {
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

/// SHA-256 over what goes into the image: both binaries and every file of image/ and systemd/.
fn inputs_digest(bin_dir: &Path) -> String {
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
    for file in files {
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(Sha256::digest(&bytes));
    }
    hex(&hasher.finalize())
}

/// The key the test image is signed with: Debian's OVMF "snakeoil" key, which the snakeoil
/// variable store (tests/src/vm.rs) enrols as PK, KEK and db with Secure Boot on. Debian ships its
/// private key for exactly this (encrypted with the password "snakeoil"; sbsign wants it plain).
fn signing_key() -> (PathBuf, PathBuf) {
    let dir = out_dir().join("keys");
    let (key, cert) = (dir.join("snakeoil.key"), dir.join("snakeoil.pem"));
    if !key.is_file() || !cert.is_file() {
        std::fs::create_dir_all(&dir).expect("create the key folder");
        stdout_of(
            Command::new("openssl")
                .args(["pkey", "-passin", "pass:snakeoil", "-in"])
                .arg(roomd_tests::SNAKEOIL_KEY)
                .arg("-out")
                .arg(&key),
        );
        std::fs::copy(roomd_tests::SNAKEOIL_CERT, &cert).expect("copy the snakeoil certificate");
    }
    (key, cert)
}

/// A key and self-signed certificate made once in target/image-test/keys/: `name` "bundle" signs
/// the update bundles (its certificate is the image's RAUC keyring), "stranger" a bundle the box
/// must refuse.
fn bundle_key(name: &str) -> (PathBuf, PathBuf) {
    let dir = out_dir().join("keys");
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

/// The image of the binaries under test, built unless target/image-test holds it already.
fn image() -> PathBuf {
    let mut built = IMAGE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(image) = built.as_ref() {
        return image.clone();
    }
    let image = build_image();
    *built = Some(image.clone());
    image
}

fn build_image() -> PathBuf {
    let roomd = roomd_tests::roomd_bin().expect("roomd binary (ROOMD_BIN)");
    let bin_dir = roomd.parent().expect("roomd has a folder");
    let out = out_dir();
    let image = out.join("roomd.img");
    let stamp = out.join("inputs.sha256");
    let digest = inputs_digest(bin_dir);
    if image.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(digest.as_str()) {
        eprintln!("image: up to date in {}", out.display());
        return image;
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
    let (key, cert) = signing_key();
    let (bundle_key, bundle_cert) = bundle_key("bundle");
    let status = Command::new(repo().join("image/build.sh"))
        .env("ROOMD_UKI_KEY", &key)
        .env("ROOMD_UKI_CERT", &cert)
        .env("ROOMD_BUNDLE_KEY", &bundle_key)
        .env("ROOMD_BUNDLE_CERT", &bundle_cert)
        .env("ROOMD_TEST_BUNDLES", "1")
        // Two tries instead of the product's three: the rollback test boots each try under
        // software emulation, and two show the counting and the fallback as well.
        .env("ROOMD_BOOT_TRIES", "2")
        .arg(&deb)
        .arg(&out)
        .status()
        .expect("image/build.sh runs");
    assert!(status.success(), "image/build.sh failed: {status}");
    std::fs::write(&stamp, &digest).expect("write the inputs stamp");
    eprintln!(
        "TIMING image build (deb + image/build.sh): {:.0} s",
        started.elapsed().as_secs_f64()
    );
    image
}

/// KEY=value lines of the manifest build.sh writes beside the image.
fn manifest(key: &str) -> String {
    let text = std::fs::read_to_string(out_dir().join("manifest.env")).expect("manifest.env");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing from manifest.env:\n{text}"))
        .to_owned()
}

/// The partition table as sfdisk reads it from the image file.
fn check_layout(image: &Path) {
    let dump: serde_json::Value =
        serde_json::from_str(&stdout_of(Command::new("sfdisk").arg("--json").arg(image)))
            .expect("sfdisk --json");
    let table = &dump["partitiontable"];
    assert_eq!(table["label"], "gpt");
    let names: Vec<&str> = table["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["esp", "roomd-root-a", "roomd-root-b", "roomd-data"],
        "partitions in {dump}"
    );
    let esp = &table["partitions"][0];
    assert_eq!(esp["type"], "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
}

/// Each slot, read out of the disk image, verifies against the root hash its UKI carries.
fn check_slots_verify(image: &Path) {
    let offset = manifest("HASH_OFFSET");
    let slot_mib: u64 = manifest("SLOT_MIB").parse().expect("SLOT_MIB");
    for (slot, start_key, uuid_key) in [
        ("a", "ROOT_A_START_MIB", "ROOT_A_PARTUUID"),
        ("b", "ROOT_B_START_MIB", "ROOT_B_PARTUUID"),
    ] {
        let uki = out_dir().join(format!("roomd-{slot}.efi"));
        let section = out_dir().join(format!("cmdline-{slot}.txt"));
        stdout_of(
            Command::new("objcopy")
                .arg("--dump-section")
                .arg(format!(".cmdline={}", section.display()))
                .arg(&uki)
                .arg(out_dir().join("objcopy-scratch.efi")),
        );
        let cmdline = std::fs::read_to_string(&section).expect("the UKI's .cmdline");
        // Signed for Secure Boot: the signature covers this command line with its root hash.
        stdout_of(
            Command::new("sbverify")
                .arg("--cert")
                .arg(signing_key().1)
                .arg(&uki),
        );
        let param = |name: &str| {
            cmdline
                .split_whitespace()
                .find_map(|arg| arg.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing from slot {slot}'s UKI: {cmdline}"))
                .to_owned()
        };
        assert_eq!(param("roomd.slot"), slot);
        assert_eq!(
            param("rauc.slot"),
            slot,
            "RAUC learns the booted slot from rauc.slot="
        );
        assert_eq!(param("roomd.verity.hashoffset"), offset);
        assert_eq!(
            param("roomd.verity.data"),
            format!("PARTUUID={}", manifest(uuid_key))
        );
        let roothash = param("roomd.verity.roothash");
        assert_eq!(roothash, manifest("ROOTHASH"));

        let extracted = out_dir().join(format!("slot-{slot}.img"));
        let start: u64 = manifest(start_key).parse().expect("slot start");
        stdout_of(
            Command::new("dd")
                .arg(format!("if={}", image.display()))
                .arg(format!("of={}", extracted.display()))
                .args(["bs=1M", "status=none", "conv=sparse"])
                .arg(format!("skip={start}"))
                .arg(format!("count={slot_mib}")),
        );
        stdout_of(
            Command::new("veritysetup")
                .arg("verify")
                .arg(&extracted)
                .arg(&extracted)
                .arg(&roothash)
                .arg(format!("--hash-offset={offset}")),
        );
        if slot == "a" {
            // One flipped bit anywhere in the root and the slot no longer verifies.
            flip_bit(&extracted, offset.parse::<u64>().expect("hash offset") / 2);
            let tampered = Command::new("veritysetup")
                .arg("verify")
                .arg(&extracted)
                .arg(&extracted)
                .arg(&roothash)
                .arg(format!("--hash-offset={offset}"))
                .output()
                .expect("veritysetup runs");
            assert!(
                !tampered.status.success(),
                "a tampered slot still verifies against its root hash"
            );
        }
        let _ = std::fs::remove_file(&extracted);
    }
    let _ = std::fs::remove_file(out_dir().join("objcopy-scratch.efi"));
}

fn flip_bit(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open the extracted slot");
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.read_exact(&mut byte).expect("read");
    byte[0] ^= 0x01;
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.write_all(&byte).expect("write");
}

/// Prints the console's tail if the test panics while the guest runs.
struct ConsoleOnFailure<'a>(&'a FirmwareVm);

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
fn report_lines(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|line| {
            line.split_once("roomd-image: ")
                .map(|(_, rest)| rest.to_owned())
        })
        .collect()
}

fn report_value(lines: &[String], key: &str) -> String {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the boot report: {lines:#?}"))
        .to_owned()
}

/// The public key (SubjectPublicKeyInfo, DER) in a PEM certificate.
fn spki_of_certificate(pem: &str) -> Vec<u8> {
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate");
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).expect("X.509");
    parsed.public_key().raw.to_vec()
}

/// The device key's public part, read from the TPM state with tpm2-tools while the guest is off.
fn spki_in_tpm_state(state: &Path, scratch: &Path) -> Vec<u8> {
    let port = roomd_tests::free_port().expect("a free port");
    let mut swtpm = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", state.display()))
        .args([
            "--server",
            &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
        ])
        .args([
            "--ctrl",
            &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
        ])
        .args(["--flags", "startup-clear"])
        .spawn()
        .expect("swtpm starts");
    let pem_path = scratch.join("device-key.pem");
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let output = loop {
        let output = Command::new("tpm2_readpublic")
            .args(["-T", &tcti, "-c", DEVICE_KEY_HANDLE, "-f", "pem", "-o"])
            .arg(&pem_path)
            .output()
            .expect("tpm2_readpublic (Debian tpm2-tools) runs");
        // swtpm needs a moment to listen; retry a connection failure, not a missing key.
        if output.status.success() || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = swtpm.kill();
    let _ = swtpm.wait();
    assert!(
        output.status.success(),
        "the TPM holds no key at {DEVICE_KEY_HANDLE}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pem = std::fs::read_to_string(&pem_path).expect("tpm2_readpublic wrote the key");
    rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM public key")
        .to_vec()
}

/// Waits for roomd's boot report on the console of the current boot and returns its lines.
fn wait_for_report(vm: &mut FirmwareVm) -> Vec<String> {
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
fn assert_verified_boot(report: &[String], slot: &str, version: &str) {
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
}

/// The device certificate the boot report printed, trusted alone for the API.
fn certificate_from_report(report: &[String], run_dir: &Path) -> (String, DeviceCertificate) {
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

fn wait_for_api(vm: &FirmwareVm, certificate: &DeviceCertificate) {
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

const ADMIN_PASSWORD: &str = "image-boot-test-password";

/// Claims the freshly booted box with the code from its console and logs in.
fn claim(vm: &FirmwareVm, certificate: &DeviceCertificate, report: &[String]) -> Session {
    let code = report_value(report, "claim-code");
    vm.request(certificate, "POST", "/api/v1/claim")
        .json(&json!({ "code": code, "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .expect("POST /api/v1/claim")
        .expect_status(201, "claiming the booted box")
        .expect("claimed");
    login(vm, certificate)
}

/// Logs in as the admin, retrying while roomd is still starting.
fn login(vm: &FirmwareVm, certificate: &DeviceCertificate) -> Session {
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

/// `status.update`, waited for until `done` holds of it.
fn wait_for_update_status(
    vm: &FirmwareVm,
    certificate: &DeviceCertificate,
    session: &Session,
    what: &str,
    timeout: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let status = vm
            .request(certificate, "GET", "/api/v1/status/update")
            .session(session)
            .send()
            .expect("GET /api/v1/status/update")
            .expect_status(200, "status/update")
            .expect("status.update")
            .json()
            .expect("JSON");
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; status.update is {status}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Sends a bundle file to `POST /api/v1/update`.
fn upload(
    vm: &FirmwareVm,
    certificate: &DeviceCertificate,
    session: &Session,
    bundle: &Path,
) -> roomd_tests::ApiResponse {
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
fn reboot_into_update(vm: &FirmwareVm, certificate: &DeviceCertificate, session: &Session) {
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

/// A well-formed bundle of the image's compatible, signed with a key the image does not trust.
fn stranger_bundle() -> PathBuf {
    let dir = out_dir().join("stranger");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the stranger bundle's folder");
    // Not zeros: squashfs stores zero blocks sparsely, and RAUC refuses a bundle that small.
    let root: Vec<u8> = (0u32..64 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("root.erofs.verity"), root).expect("write a root");
    for uki in ["roomd-a.efi", "roomd-b.efi"] {
        std::fs::write(dir.join(uki), b"not a UKI").expect("write a UKI");
    }
    std::fs::write(
        dir.join("release.env"),
        format!(
            "VERSION={}+stranger\nSECURITY_FLOOR=0\nCOMPATIBLE={}\n",
            manifest("IMAGE_VERSION"),
            manifest("COMPATIBLE")
        ),
    )
    .expect("write release.env");
    let (key, cert) = bundle_key("stranger");
    let bundle = out_dir().join("stranger.raucb");
    stdout_of(
        Command::new(repo().join("image/bundle.sh"))
            .env("ROOMD_BUNDLE_KEY", key)
            .env("ROOMD_BUNDLE_CERT", cert)
            .arg(&dir)
            .arg(&bundle),
    );
    bundle
}

/// The bundles build.sh wrote verify against the image's keyring, and the stranger's does not.
fn check_bundles_verify(stranger: &Path) {
    let keyring = bundle_key("bundle").1;
    for (bundle, version) in [
        (
            "test-next.raucb",
            format!("{}+next", manifest("IMAGE_VERSION")),
        ),
        (
            "test-unhealthy.raucb",
            format!("{}+unhealthy", manifest("IMAGE_VERSION")),
        ),
    ] {
        let info: serde_json::Value = serde_json::from_str(&stdout_of(
            Command::new("rauc")
                .arg("info")
                .arg(format!("--keyring={}", keyring.display()))
                .arg("--output-format=json")
                .arg(out_dir().join(bundle)),
        ))
        .expect("rauc info --output-format=json");
        assert_eq!(
            info["compatible"],
            manifest("COMPATIBLE").as_str(),
            "{bundle}: {info}"
        );
        assert_eq!(info["version"], version.as_str(), "{bundle}: {info}");
    }
    let refused = Command::new("rauc")
        .arg("info")
        .arg(format!("--keyring={}", keyring.display()))
        .arg(stranger)
        .output()
        .expect("rauc info runs");
    assert!(
        !refused.status.success(),
        "the stranger's bundle verifies against the image's keyring"
    );
}

#[test]
fn the_image_boots_verified_and_updates_itself_to_the_other_slot() {
    let image = image();
    check_layout(&image);
    check_slots_verify(&image);
    let stranger = stranger_bundle();
    check_bundles_verify(&stranger);
    let esp_start: u64 = manifest("ESP_START_MIB").parse().expect("ESP_START_MIB");
    let tries: u32 = manifest("BOOT_TRIES").parse().expect("BOOT_TRIES");
    let version = manifest("IMAGE_VERSION");
    let next = format!("{version}+next");
    // As built, both slots hold the same root; A boots first, B is its fallback; no trial.
    assert_eq!(
        esp_boot_entries(&image, esp_start).expect("the image's ESP"),
        ["roomd-1-b.efi", "roomd-2-a.efi"]
    );

    let run_dir = out_dir().join("update");
    let booted = Instant::now();
    let mut vm = FirmwareVm::boot(&image, &run_dir, GROW_BYTES).expect("the VM starts");
    let report = wait_for_report(&mut vm);
    let guard = ConsoleOnFailure(&vm);
    eprintln!(
        "TIMING power-on to roomd's boot report: {:.0} s",
        booted.elapsed().as_secs_f64()
    );
    // Slot A, on the verity device the initramfs opened, read-only.
    assert_verified_boot(&report, "a", &version);
    // The firmware enforced Secure Boot: systemd-boot and the UKI passed its signature check.
    assert_eq!(report_value(&report, "secureboot"), "enabled");
    assert_eq!(report_value(&report, "tpm"), "/dev/tpmrm0");
    // First boot grew the data partition (built at DATA_MIB) over the disk's extra space.
    let data_mib: u64 = report_value(&report, "data")
        .trim_end_matches("MiB")
        .parse()
        .expect("data size in MiB");
    let built_mib: u64 = manifest("DATA_MIB").parse().expect("DATA_MIB");
    assert!(
        data_mib > built_mib + GROW_BYTES / (1024 * 1024) / 2,
        "the data file system was not grown: {data_mib} MiB (built with {built_mib} MiB)"
    );
    assert!(
        vm.console()
            .contains("roomd-image: first boot, hardware profile simulated"),
        "no hardware profile detection on the console"
    );

    // The API, through the forwarded port, trusting only the certificate the console showed.
    let (pem, certificate) = certificate_from_report(&report, &run_dir);
    wait_for_api(&vm, &certificate);
    eprintln!(
        "TIMING power-on to the API answering on port {}: {:.0} s",
        vm.api_port(),
        booted.elapsed().as_secs_f64()
    );

    // Claimed with the code from the console, roomd says its key is in the TPM.
    let session = claim(&vm, &certificate, &report);
    let identity = vm
        .request(&certificate, "GET", "/api/v1/status/identity")
        .session(&session)
        .send()
        .expect("GET /api/v1/status/identity")
        .expect_status(200, "status/identity")
        .expect("identity status")
        .json()
        .expect("JSON");
    assert_eq!(identity["backend"], "tpm", "status identity: {identity}");
    // roomd serves org.roomd.Room1 on the guest's system bus, under the package's policy.
    let system = vm
        .request(&certificate, "GET", "/api/v1/status/system")
        .session(&session)
        .send()
        .expect("GET /api/v1/status/system")
        .expect_status(200, "status/system")
        .expect("system status")
        .json()
        .expect("JSON");
    assert_eq!(
        system["dbus"]["state"], "serving",
        "status.system: {system}"
    );

    // Updates are available; the factory slot is marked good once roomd is healthy.
    let update = wait_for_update_status(
        &vm,
        &certificate,
        &session,
        "roomd marks the running slot good",
        API_TIMEOUT,
        |update| update["marked_good"] == true,
    );
    assert_eq!(update["available"], true, "status.update: {update}");
    assert_eq!(
        update["image_version"],
        version.as_str(),
        "status.update: {update}"
    );
    assert_eq!(update["booted_slot"], "a", "status.update: {update}");
    assert!(update["rolled_back"].is_null(), "status.update: {update}");

    // A bundle signed with a key the image does not trust is refused, and nothing is installed.
    let refused = upload(&vm, &certificate, &session, &stranger);
    assert_eq!(
        refused.status,
        422,
        "the stranger's bundle: {}",
        refused.text()
    );
    assert!(
        refused.text().contains("signature"),
        "the refusal does not name the signature: {}",
        refused.text()
    );

    // The next version goes into slot B.
    let sent = Instant::now();
    upload(
        &vm,
        &certificate,
        &session,
        &out_dir().join("test-next.raucb"),
    )
    .expect_status(202, "POST /api/v1/update test-next.raucb")
    .expect("the bundle is accepted");
    eprintln!(
        "TIMING sending test-next.raucb ({} MiB) to the guest: {:.0} s",
        std::fs::metadata(out_dir().join("test-next.raucb")).map_or(0, |m| m.len() >> 20),
        sent.elapsed().as_secs_f64()
    );
    let update = wait_for_update_status(
        &vm,
        &certificate,
        &session,
        "the update is installed",
        INSTALL_TIMEOUT,
        |update| update["state"] == "installed" || update["state"] == "failed",
    );
    assert_eq!(update["state"], "installed", "status.update: {update}");
    assert_eq!(update["version"], next.as_str(), "status.update: {update}");
    assert_eq!(update["needs_reboot"], true, "status.update: {update}");
    eprintln!(
        "TIMING bundle sent and installed: {:.0} s",
        sent.elapsed().as_secs_f64()
    );

    reboot_into_update(&vm, &certificate, &session);
    drop(guard);
    vm.wait_until_off(REBOOT_TIMEOUT)
        .expect("the guest restarts after update.reboot");
    // Slot B is now first, on trial; A stays as it was.
    assert_eq!(
        vm.boot_entries(esp_start)
            .expect("the ESP after the install"),
        ["roomd-2-a.efi".to_owned(), format!("roomd-3-b+{tries}.efi")]
    );

    // Machine off; the key at the device key's handle in the TPM is the API's TLS key.
    let in_tpm = spki_in_tpm_state(vm.tpm_state(), &run_dir);
    assert_eq!(
        in_tpm,
        spki_of_certificate(&pem),
        "the TLS certificate the guest served is not for the key in its TPM"
    );

    // Slot B boots the new version from its verified root; the data partition kept roomd's
    // configuration, claim and certificate.
    let rebooted = Instant::now();
    vm.power_on("serial-b.log").expect("the VM starts again");
    let report = wait_for_report(&mut vm);
    let guard = ConsoleOnFailure(&vm);
    eprintln!(
        "TIMING power-on to roomd's boot report from slot B: {:.0} s",
        rebooted.elapsed().as_secs_f64()
    );
    assert_verified_boot(&report, "b", &next);
    assert!(
        !vm.console().contains("roomd-image: first boot"),
        "the second boot ran the first-boot configuration again"
    );
    assert!(
        !report.iter().any(|line| line.starts_with("claim-code=")),
        "the claim was lost with the slot change: {report:#?}"
    );
    let session = login(&vm, &certificate);
    let update = wait_for_update_status(
        &vm,
        &certificate,
        &session,
        "roomd marks the new slot good",
        API_TIMEOUT,
        |update| update["marked_good"] == true,
    );
    assert_eq!(
        update["image_version"],
        next.as_str(),
        "status.update: {update}"
    );
    assert_eq!(update["booted_slot"], "b", "status.update: {update}");
    assert!(update["rolled_back"].is_null(), "status.update: {update}");
    // roomd's verdict completes the boot: systemd-bless-boot takes the counter off B's entry.
    let deadline = Instant::now() + API_TIMEOUT;
    loop {
        let entries = vm.boot_entries(esp_start).expect("the ESP while B runs");
        if entries == ["roomd-2-a.efi", "roomd-3-b.efi"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot B was not blessed: the ESP holds {entries:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    drop(guard);
    vm.power_off();

    // The hardware path to a factory reset: a stick labelled ROOMD-RESET at power-on. The box
    // comes back unclaimed with a new claim code, and the same device key in the TPM.
    let stick = make_reset_stick(&run_dir);
    vm.plug_stick(Some(&stick));
    vm.power_on("serial-reset.log")
        .expect("the VM starts with the stick");
    let report = wait_for_report(&mut vm);
    let guard = ConsoleOnFailure(&vm);
    assert!(
        vm.console()
            .contains("roomd-image: factory reset requested by the stick labelled ROOMD-RESET"),
        "the stick was not seen"
    );
    // The reset changes neither the slot nor its version.
    assert_verified_boot(&report, "b", &next);
    let (reset_pem, certificate) = certificate_from_report(&report, &run_dir);
    assert_eq!(
        spki_of_certificate(&reset_pem),
        spki_of_certificate(&pem),
        "the factory reset changed the device key"
    );
    wait_for_api(&vm, &certificate);
    let refused = vm
        .request(&certificate, "POST", "/api/v1/session")
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .expect("POST /api/v1/session");
    assert_eq!(
        refused.status,
        409,
        "the old admin survived the reset: {}",
        refused.text()
    );
    assert!(
        refused.text().contains("not been claimed"),
        "the box is not unclaimed after the reset: {}",
        refused.text()
    );
    // Unclaimed: the new code from the console claims the box again.
    claim(&vm, &certificate, &report);
    drop(guard);
    vm.power_off();
    // The serial logs stay as artefacts; the disk copy does not need to.
    let _ = std::fs::remove_file(run_dir.join("disk.img"));
}

/// A small FAT image labelled ROOMD-RESET with the file roomd-factory-reset: the factory reset
/// stick of README.md, "Factory reset".
fn make_reset_stick(run_dir: &Path) -> PathBuf {
    let stick = run_dir.join("reset-stick.img");
    let _ = std::fs::remove_file(&stick);
    stdout_of(
        Command::new("mkfs.vfat")
            .args(["-n", "ROOMD-RESET", "-C"])
            .arg(&stick)
            .arg("8192"),
    );
    let file = run_dir.join("roomd-factory-reset");
    std::fs::write(&file, "reset this roomd box\n").expect("write the stick's file");
    stdout_of(
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&stick)
            .arg(&file)
            .arg("::/roomd-factory-reset"),
    );
    stick
}

#[test]
fn an_update_that_never_becomes_healthy_is_rolled_back_by_itself() {
    let image = image();
    let esp_start: u64 = manifest("ESP_START_MIB").parse().expect("ESP_START_MIB");
    let tries: u32 = manifest("BOOT_TRIES").parse().expect("BOOT_TRIES");
    let version = manifest("IMAGE_VERSION");
    let unhealthy = format!("{version}+unhealthy");

    let run_dir = out_dir().join("rollback");
    let mut vm = FirmwareVm::boot(&image, &run_dir, GROW_BYTES).expect("the VM starts");
    let report = wait_for_report(&mut vm);
    let guard = ConsoleOnFailure(&vm);
    assert_verified_boot(&report, "a", &version);
    let (_, certificate) = certificate_from_report(&report, &run_dir);
    wait_for_api(&vm, &certificate);
    let session = claim(&vm, &certificate, &report);

    upload(
        &vm,
        &certificate,
        &session,
        &out_dir().join("test-unhealthy.raucb"),
    )
    .expect_status(202, "POST /api/v1/update test-unhealthy.raucb")
    .expect("the bundle is accepted");
    let update = wait_for_update_status(
        &vm,
        &certificate,
        &session,
        "the update is installed",
        INSTALL_TIMEOUT,
        |update| update["state"] == "installed" || update["state"] == "failed",
    );
    assert_eq!(update["state"], "installed", "status.update: {update}");
    assert_eq!(
        update["version"],
        unhealthy.as_str(),
        "status.update: {update}"
    );
    reboot_into_update(&vm, &certificate, &session);
    drop(guard);
    vm.wait_until_off(REBOOT_TIMEOUT)
        .expect("the guest restarts after update.reboot");

    // Each start of B fails roomd's health verdict and reboots; then A starts by itself. Which
    // slot started is on the kernel's command line (the UKI's), printed before anything else.
    let mut trials = 0;
    let report = loop {
        let boot = trials + 1;
        vm.power_on(&format!("serial-{boot}.log"))
            .expect("the VM starts again");
        let command_line = vm
            .wait_for_console("Kernel command line:", BOOT_TIMEOUT)
            .unwrap_or_else(|error| panic!("{error}\n{}", vm.console_tail(40)));
        if command_line.contains("roomd.slot=a ") {
            break wait_for_report(&mut vm);
        }
        assert!(
            command_line.contains("roomd.slot=b "),
            "neither slot: {command_line}"
        );
        trials += 1;
        assert!(
            trials <= tries,
            "slot B started {trials} times, with {tries} tries"
        );
        if let Err(error) = vm.wait_until_off(BOOT_TIMEOUT + REBOOT_TIMEOUT) {
            panic!(
                "a trial boot that never becomes healthy does not reboot: {error}\n{}",
                vm.console_tail(60)
            );
        }
        assert!(
            vm.console()
                .contains("boot-health: roomd.service failed on slot b"),
            "the trial boot ended, but not by roomd-boot-health's verdict:\n{}",
            vm.console_tail(60)
        );
    };
    let guard = ConsoleOnFailure(&vm);
    assert_eq!(trials, tries, "slot B had {trials} trial boots");
    assert_verified_boot(&report, "a", &version);

    // roomd on A says what happened.
    let session = login(&vm, &certificate);
    let update = wait_for_update_status(
        &vm,
        &certificate,
        &session,
        "roomd reports the rollback",
        API_TIMEOUT,
        |update| !update["rolled_back"].is_null(),
    );
    assert_eq!(
        update["rolled_back"],
        json!({ "from": unhealthy, "to": version }),
        "status.update: {update}"
    );
    assert_eq!(update["booted_slot"], "a", "status.update: {update}");
    assert_eq!(
        update["image_version"],
        version.as_str(),
        "status.update: {update}"
    );
    drop(guard);
    vm.power_off();
    // B's entry has used up its tries: systemd-boot keeps starting A.
    assert_eq!(
        vm.boot_entries(esp_start)
            .expect("the ESP after the rollback"),
        [
            "roomd-2-a.efi".to_owned(),
            format!("roomd-3-b+0-{tries}.efi")
        ]
    );
    let _ = std::fs::remove_file(run_dir.join("disk.img"));
}
