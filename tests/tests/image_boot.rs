//! The firmware image (image/build.sh) boots in a virtual machine and runs roomd: qemu under
//! software emulation with OVMF (Secure Boot on, trusting the key the image is signed with) and a
//! swtpm as the machine's TPM, the serial console kept in
//! target/image-test/run/serial.log (its tail is printed when the test fails).
//!
//! Checked: the built disk has the documented GPT layout, each UKI is signed, each root slot
//! verifies against the root hash inside its UKI and a slot with one bit flipped does not; the guest boots from slot A with its root on the dm-verity device,
//! grows its data partition to the disk, picks the `simulated` hardware profile, and roomd
//! answers on the forwarded API port; claimed through the API, roomd reports its device key in
//! the TPM; and, with the machine off, that key is read out of the TPM's state with tpm2-tools
//! (independently of roomd) and is the key of the TLS certificate the guest's API served. Then
//! the same machine boots from slot B: verified root, and roomd keeps its claim and certificate
//! (the data partition and the TPM outlive the slot).
//!
//! The image is built from the binaries under test (ROOMD_BIN's folder, debug in `make test`)
//! and only when they or image/ changed since the last build (target/image-test/inputs.sha256).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use roomd_tests::{DeviceCertificate, FirmwareVm, Session};
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use sha2::{Digest, Sha256};

/// From power-on to roomd's report on the console: firmware, kernel and systemd under TCG take
/// about a minute; 5 minutes leaves room for a machine shared with other test runs.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const API_TIMEOUT: Duration = Duration::from_secs(60);
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

/// The image of the binaries under test, built unless target/image-test holds it already.
fn image() -> PathBuf {
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
    let status = Command::new(repo().join("image/build.sh"))
        .env("ROOMD_UKI_KEY", &key)
        .env("ROOMD_UKI_CERT", &cert)
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

#[test]
fn the_image_boots_from_a_verified_root_and_runs_roomd_with_its_key_in_the_tpm() {
    let image = image();
    check_layout(&image);
    check_slots_verify(&image);

    let run_dir = out_dir().join("run");
    let booted = Instant::now();
    let mut vm = FirmwareVm::boot(&image, &run_dir, GROW_BYTES).expect("the VM starts");
    let last = vm
        .wait_for_console("roomd-image: roomd=", BOOT_TIMEOUT)
        .unwrap_or_else(|error| {
            panic!(
                "{error}\n--- console tail ({}) ---\n{}",
                vm.serial_log().display(),
                vm.console_tail(80)
            )
        });
    let guard = ConsoleOnFailure(&vm);
    let report = report_lines(&vm.console());
    eprintln!(
        "TIMING power-on to roomd's boot report: {:.0} s",
        booted.elapsed().as_secs_f64()
    );
    assert!(
        last.ends_with("roomd=active"),
        "roomd is not running: {last}"
    );

    // Slot A, on the verity device the initramfs opened, read-only.
    assert_eq!(report_value(&report, "slot"), "a");
    let root = report_value(&report, "root");
    assert!(
        root.starts_with("/dev/mapper/root erofs ro"),
        "the root is not the verified erofs slot: {root}"
    );
    assert_eq!(report_value(&report, "verity"), "verified");
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
    let console = vm.console();
    assert!(
        console.contains("roomd-image: first boot, hardware profile simulated"),
        "no hardware profile detection on the console"
    );

    // The API, through the forwarded port, trusting only the certificate the console showed.
    let pem: String = report
        .iter()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .take_while(|line| !line.starts_with("-----END CERTIFICATE-----"))
        .chain(std::iter::once(&"-----END CERTIFICATE-----".to_owned()))
        .map(|line| format!("{line}\n"))
        .collect();
    let certificate_path = run_dir.join("device-cert.pem");
    std::fs::write(&certificate_path, &pem).expect("write the device certificate");
    let certificate =
        DeviceCertificate::load(&certificate_path).expect("the console's certificate");
    let deadline = Instant::now() + API_TIMEOUT;
    loop {
        match vm.request(&certificate, "GET", "/api/v1/health").send() {
            Ok(response) if response.status == 200 => {
                assert_eq!(response.json().expect("JSON"), json!({ "status": "ok" }));
                break;
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
    eprintln!(
        "TIMING power-on to the API answering on port {}: {:.0} s",
        vm.api_port(),
        booted.elapsed().as_secs_f64()
    );

    // Claimed with the code from the console, roomd says its key is in the TPM.
    let code = report_value(&report, "claim-code");
    vm.request(&certificate, "POST", "/api/v1/claim")
        .json(&json!({ "code": code, "username": "admin", "password": "image-boot-test-password" }))
        .send()
        .expect("POST /api/v1/claim")
        .expect_status(201, "claiming the booted box")
        .expect("claimed");
    let login = vm
        .request(&certificate, "POST", "/api/v1/session")
        .json(&json!({ "username": "admin", "password": "image-boot-test-password" }))
        .send()
        .expect("POST /api/v1/session")
        .expect_status(200, "logging in")
        .expect("logged in");
    let session = Session::from_login_response(&login).expect("a session");
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

    // Machine off; the key at the device key's handle in the TPM is the API's TLS key.
    drop(guard);
    vm.power_off();
    let in_tpm = spki_in_tpm_state(vm.tpm_state(), &run_dir);
    assert_eq!(
        in_tpm,
        spki_of_certificate(&pem),
        "the TLS certificate the guest served is not for the key in its TPM"
    );

    // The same box started from slot B (as after an update of B): verified root from B, and the
    // data partition kept roomd's configuration, its claim and its certificate; the key is the
    // one in the TPM (roomd serves the same certificate, whose key was read from the TPM above).
    let esp_start: u64 = manifest("ESP_START_MIB").parse().expect("ESP_START_MIB");
    vm.set_default_boot_entry(esp_start, "roomd-b.efi")
        .expect("loader.conf names slot B");
    let rebooted = Instant::now();
    vm.power_on("serial-b.log").expect("the VM starts again");
    let last = vm
        .wait_for_console("roomd-image: roomd=", BOOT_TIMEOUT)
        .unwrap_or_else(|error| {
            panic!(
                "{error}\n--- console tail ({}) ---\n{}",
                vm.serial_log().display(),
                vm.console_tail(80)
            )
        });
    let guard = ConsoleOnFailure(&vm);
    eprintln!(
        "TIMING power-on to roomd's boot report from slot B: {:.0} s",
        rebooted.elapsed().as_secs_f64()
    );
    assert!(
        last.ends_with("roomd=active"),
        "roomd is not running: {last}"
    );
    let console = vm.console();
    let report = report_lines(&console);
    assert_eq!(report_value(&report, "slot"), "b");
    assert!(report_value(&report, "root").starts_with("/dev/mapper/root erofs ro"));
    assert_eq!(report_value(&report, "verity"), "verified");
    assert!(
        !console.contains("roomd-image: first boot"),
        "the second boot ran the first-boot configuration again"
    );
    assert!(
        !report.iter().any(|line| line.starts_with("claim-code=")),
        "the claim was lost with the slot change: {report:#?}"
    );
    let deadline = Instant::now() + API_TIMEOUT;
    let login = loop {
        let answer = vm
            .request(&certificate, "POST", "/api/v1/session")
            .json(&json!({ "username": "admin", "password": "image-boot-test-password" }))
            .send();
        match answer {
            Ok(response) if response.status == 200 => break response,
            Ok(response) if Instant::now() > deadline => {
                panic!(
                    "logging in after the slot change: {} {}",
                    response.status,
                    response.text()
                )
            }
            Err(error) if Instant::now() > deadline => {
                panic!("logging in after the slot change: {error}")
            }
            _ => std::thread::sleep(Duration::from_secs(1)),
        }
    };
    Session::from_login_response(&login).expect("a session on slot B");
    drop(guard);
    vm.power_off();
    // The serial logs stay as artefacts; the 3 GB disk copy does not need to.
    let _ = std::fs::remove_file(run_dir.join("disk.img"));
}
