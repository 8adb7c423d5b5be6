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
//! On the way, the box's OS settings go through roomd's `[host]` to systemd's own services
//! (hostnamed, timedated, timesyncd, networkd with a static IPv4 and IPv6 address, logind's
//! scheduled nightly reboot) and `status.host` reads them back from those services, in slot A and
//! again after the reboot into B (/etc is volatile: roomd applies them at each start). A
//! factory-reset stick brings the box back unclaimed with the image's own settings, and
//! `system.power_off` turns it off through logind.
//!
//! `an_update_that_never_becomes_healthy_is_rolled_back_by_itself`: a bundle whose roomd exits at
//! once is installed; each start of slot B fails roomd's health verdict and reboots, using up a
//! try; after the last one the box starts slot A again by itself, and roomd's status says it
//! rolled back, from which version to which. Then `system.factory_reset` through the API wipes
//! roomd's state and roomd starts again in place under systemd, unclaimed.
//!
//! The image is built from the binaries under test (ROOMD_BIN's folder, debug in `make test`)
//! and only when they or image/ changed since the last build (target/image-test/inputs.sha256).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use roomd_tests::firmware::{
    ADMIN_PASSWORD, API_TIMEOUT, BOOT_TIMEOUT, ConsoleOnFailure, IMAGE_TEST_BUILD, INSTALL_TIMEOUT,
    ImageWorkspace, REBOOT_TIMEOUT, assert_verified_boot, certificate_from_report, claim, login,
    reboot_into_update, report_value, stdout_of, upload, wait_for_api, wait_for_report,
    wait_for_status, wait_for_update_status,
};
use roomd_tests::{DeviceCertificate, FirmwareVm, Session, esp_boot_entries};
use rustls::pki_types::pem::PemObject;
use serde_json::json;

/// The guest's disk is the image grown by this much, as if flashed onto a larger disk.
const GROW_BYTES: u64 = 512 * 1024 * 1024;
/// The two tests run at once, each with its guest: one virtual CPU each (tests/src/vm.rs).
const GUEST_CPUS: u32 = 1;
/// Persistent handle of the device key (docs/identity.md).
const DEVICE_KEY_HANDLE: &str = "0x81010010";

fn workspace() -> ImageWorkspace {
    roomd_tests::firmware::image_test_workspace()
}

fn out_dir() -> PathBuf {
    workspace().dir().to_path_buf()
}

fn manifest(key: &str) -> String {
    workspace().manifest(key)
}

fn signing_key() -> (PathBuf, PathBuf) {
    workspace().signing_key()
}

fn bundle_key(name: &str) -> (PathBuf, PathBuf) {
    workspace().bundle_key(name)
}

/// The image is built once per test run, by whichever test comes first.
static IMAGE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The image of the binaries under test, built unless target/image-test holds it already.
fn image() -> PathBuf {
    let mut built = IMAGE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(image) = built.as_ref() {
        return image.clone();
    }
    let roomd = roomd_tests::roomd_bin().expect("roomd binary (ROOMD_BIN)");
    let bin_dir = roomd.parent().expect("roomd has a folder");
    let (image, _) = workspace().build(bin_dir, &IMAGE_TEST_BUILD);
    *built = Some(image.clone());
    image
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
        Command::new(roomd_tests::firmware::repo().join("image/bundle.sh"))
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
    let mut vm = FirmwareVm::boot(&image, &run_dir, GROW_BYTES, GUEST_CPUS).expect("the VM starts");
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
    apply_host_settings(&vm, &certificate, &session);

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
    // /etc is the signed image's again after every boot; roomd applied its [host] once more.
    wait_for_host_status(
        &vm,
        &certificate,
        &session,
        "the [host] settings after the reboot into slot B",
        host_settings_hold,
    );
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
    let session = claim(&vm, &certificate, &report);
    // The reset took the [host] settings with the rest of the configuration: the image's own.
    let host = wait_for_host_status(
        &vm,
        &certificate,
        &session,
        "the image's own settings after the factory reset",
        |host| host["available"] == true && host["hostname"] == "roomd",
    );
    assert_ne!(host["timezone"], "Europe/Berlin", "status.host: {host}");
    assert!(host["nightly_reboot_at"].is_null(), "status.host: {host}");
    // system.power_off: logind turns the machine off.
    let response = vm
        .request(&certificate, "POST", "/api/v1/commands/system.power_off")
        .session(&session)
        .json(&json!({}))
        .send()
        .expect("POST /api/v1/commands/system.power_off");
    assert!(
        (200..300).contains(&response.status),
        "system.power_off: {} {}",
        response.status,
        response.text()
    );
    drop(guard);
    vm.wait_until_off(REBOOT_TIMEOUT)
        .expect("the guest turns itself off after system.power_off");
    // The serial logs stay as artefacts; the disk copy does not need to.
    let _ = std::fs::remove_file(run_dir.join("disk.img"));
}

/// The box's operating-system settings given to roomd (`[host]`, docs/host-settings.md): static
/// addressing that keeps the address qemu's user network forwards the API to, plus an IPv6
/// address of our own, qemu's DNS and gateway, an NTP server on the host's side, a time zone, a
/// host name and a nightly reboot.
fn host_settings() -> serde_json::Value {
    json!({
        "hostname": "room-4-12",
        "timezone": "Europe/Berlin",
        "ntp": true,
        "ntp_servers": ["10.0.2.2"],
        "nightly_reboot": "03:30",
        "network": {
            "mode": "static",
            "addresses": ["10.0.2.15/24", "fd00:10::15/64"],
            "gateways": ["10.0.2.2"],
            "dns": ["10.0.2.3"]
        }
    })
}

/// roomd applies `[host]` at start while the guest is still busy booting: a service's first
/// answer can take its D-Bus timeout (25 s), and roomd tries a failed key again 10 s later.
const HOST_TIMEOUT: Duration = Duration::from_secs(120);

/// `status.host`, waited for until `done` holds of it.
fn wait_for_host_status(
    vm: &FirmwareVm,
    certificate: &DeviceCertificate,
    session: &Session,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for_status(vm, certificate, session, "host", what, HOST_TIMEOUT, done)
}

fn lists(value: &serde_json::Value, item: &str) -> bool {
    value
        .as_array()
        .is_some_and(|items| items.iter().any(|i| i == item))
}

/// What `host_settings` should have made of the box, as systemd's services report it.
fn host_settings_hold(host: &serde_json::Value) -> bool {
    host["available"] == true
        && host["hostname"] == "room-4-12"
        && host["timezone"] == "Europe/Berlin"
        && host["ntp_enabled"] == true
        && lists(&host["ntp_servers"], "10.0.2.2")
        && lists(&host["addresses"], "10.0.2.15/24")
        && lists(&host["addresses"], "fd00:10::15/64")
        && host["nightly_reboot_at"].is_string()
        && host["error"] == ""
}

/// The box's settings through systemd: hostnamed, timedated, timesyncd, networkd and logind
/// report what roomd's `[host]` asked for; a time zone that does not exist is refused by name.
fn apply_host_settings(vm: &FirmwareVm, certificate: &DeviceCertificate, session: &Session) {
    let refused = vm
        .request(certificate, "PATCH", "/api/v1/config")
        .session(session)
        .json(&json!({ "host": { "timezone": "Mars/Olympus_Mons" } }))
        .send()
        .expect("PATCH /api/v1/config");
    assert_eq!(
        refused.status,
        422,
        "an unknown time zone: {}",
        refused.text()
    );
    assert!(
        refused.text().contains("host.timezone"),
        "the refusal does not name the key: {}",
        refused.text()
    );
    vm.request(certificate, "PATCH", "/api/v1/config")
        .session(session)
        .json(&json!({ "host": host_settings() }))
        .send()
        .expect("PATCH /api/v1/config")
        .expect_status(200, "PATCH config [host]")
        .expect("the settings are accepted");
    let host = wait_for_host_status(
        vm,
        certificate,
        session,
        "the [host] settings take effect",
        host_settings_hold,
    );
    // 03:30 in Berlin is 02:30 UTC in winter and 01:30 UTC in summer.
    let at = host["nightly_reboot_at"].as_str().unwrap_or_default();
    assert!(
        at.contains("T02:30:00") || at.contains("T01:30:00"),
        "logind's scheduled reboot is not at 03:30 Berlin time: {host}"
    );
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
    let mut vm = FirmwareVm::boot(&image, &run_dir, GROW_BYTES, GUEST_CPUS).expect("the VM starts");
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
    // The factory reset through the API: roomd wipes its state and starts again in place under
    // systemd, unclaimed, on the same device key.
    let response = vm
        .request(
            &certificate,
            "POST",
            "/api/v1/commands/system.factory_reset",
        )
        .session(&session)
        .json(&json!({ "confirm": "yes" }))
        .send()
        .expect("POST /api/v1/commands/system.factory_reset");
    assert!(
        (200..300).contains(&response.status),
        "system.factory_reset: {} {}",
        response.status,
        response.text()
    );
    let deadline = Instant::now() + API_TIMEOUT;
    loop {
        let answer = vm
            .request(&certificate, "POST", "/api/v1/session")
            .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send();
        if let Ok(response) = &answer
            && response.status == 409
            && response.text().contains("not been claimed")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "roomd did not come back unclaimed after system.factory_reset: {:?}",
            answer.map(|r| (r.status, r.text()))
        );
        std::thread::sleep(Duration::from_secs(2));
    }
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
